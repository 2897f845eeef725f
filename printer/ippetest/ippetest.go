// Package ippetest runs, for one test, Debian's ippeveprinter (an IPP
// Everywhere printer in software) with a private D-Bus, as the printer
// driver and the station's end-to-end tests need it.
package ippetest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"id06/internal/integration"
)

// Printer is a running ippeveprinter (cups-ipp-utils) with a private D-Bus.
type Printer struct {
	URI     string // http://localhost:PORT/ipp/print
	Web     string // http://localhost:PORT
	Spool   string // -d: where -k keeps the received documents
	JamFlag string // while this file exists the job command reports a jam
	log     string // ippeveprinter's stdout and stderr
}

// Start starts ippeveprinter the way the issue found works here:
// private dbus-daemon, -n localhost, -r off, PDF accepted, -k -d, and a -c
// command that finishes at once (or reports media-jam while jamFlag exists).
func Start(t testing.TB) *Printer {
	t.Helper()
	eve := integration.Tool(t, "ippeveprinter", "cups-ipp-utils")
	dbus := integration.Tool(t, "dbus-daemon", "dbus")
	dir, err := os.MkdirTemp("", "ippeve") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &Printer{Spool: filepath.Join(dir, "spool"), JamFlag: filepath.Join(dir, "jam")}
	if err := os.Mkdir(e.Spool, 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "print.sh")
	// ippeveprinter reads "STATE: +/-keyword" lines from the command's stderr
	// into printer-state-reasons, as CUPS does for filters.
	body := fmt.Sprintf("#!/bin/sh\nwhile [ -f %q ]; do\n  echo 'STATE: +media-jam-error' >&2\n  sleep 0.05\ndone\necho 'STATE: -media-jam-error' >&2\nexit 0\n", e.JamFlag)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "dbus.sock")
	startProc(t, exec.Command(dbus, "--session", "--address=unix:path="+sock, "--nofork"))
	waitFor(t, func() bool { _, err := os.Stat(sock); return err == nil })

	// Another test on the machine may take the free port first: retry.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("ippeveprinter-%d.log", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		e.log = logf.Name()
		c := exec.Command(eve, "-2", "-n", "localhost", "-p", fmt.Sprint(port), "-r", "off", "-k", "-d", e.Spool,
			"-f", "application/pdf,image/png,image/pwg-raster", "-c", script, "ID06 Test Card Printer")
		c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+sock)
		c.Stdout, c.Stderr = logf, logf
		p := startProc(t, c)
		logf.Close() // the child keeps its own descriptor
		e.Web = fmt.Sprintf("http://localhost:%d", port)
		e.URI = e.Web + "/ipp/print"
		up := false
		deadline := time.Now().Add(10 * time.Second)
		for !up && time.Now().Before(deadline) {
			select {
			case <-p.exited:
				deadline = time.Time{}
				continue
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("localhost:%d", port)); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if up {
			return e
		}
		if attempt == 3 {
			t.Fatalf("ippeveprinter did not come up:\n%s", e.LogText())
		}
	}
}

// LogText is ippeveprinter's log, for failure messages.
func (e *Printer) LogText() string {
	b, _ := os.ReadFile(e.log)
	return string(b)
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProc starts a helper process and stops it (SIGTERM, then SIGKILL)
// when the test ends.
func startProc(t testing.TB, c *exec.Cmd) *proc {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("start %s: %v", c.Path, err)
	}
	p := &proc{cmd: c, exited: make(chan struct{})}
	go func() { _ = c.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// SetCards fills or empties ippeveprinter's trays through its media web form
// (a GET form meant for testing), which sets or clears media-empty.
func (e *Printer) SetCards(t testing.TB, n int) {
	t.Helper()
	q := fmt.Sprintf("size1=iso_a4_210x297mm&type1=cardstock&level1=%d&size3=iso_a4_210x297mm&level3=%d", n, min(n, 25))
	resp, err := http.Get(e.Web + "/media?" + q)
	if err != nil {
		t.Fatal(err)
	}
	// ippeveprinter sends the headers first and applies the form before the
	// page body; reading the body to the end waits for the change.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("media form: HTTP %d", resp.StatusCode)
	}
}

// Received lists the documents ippeveprinter kept (-k).
func (e *Printer) Received(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(e.Spool, "*.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
