package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// progress shows a bar on a terminal and plain lines anywhere else (logs,
// pipes, CI), so batch work is readable both ways.
type progress struct {
	w        io.Writer
	total, n int
	tty      bool
	last     string
}

func newProgress(w io.Writer, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, total: total, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// step counts one item done.
func (p *progress) step(line string) { p.set(p.n+1, p.total, line) }

// set reports n of total done. Off a terminal only a line that says
// something new is printed.
func (p *progress) set(n, total int, line string) {
	p.n, p.total = n, total
	if !p.tty {
		if line != "" && line != p.last {
			fmt.Fprintln(p.w, line)
			p.last = line
		}
		return
	}
	const width = 30
	filled := min(width, width*p.n/max(p.total, 1))
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %-40.40s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), p.n, p.total, line)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
