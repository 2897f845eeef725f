package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"id06/queue"
	"id06/ui"
)

// runUserAdd creates an operator account. The password never appears on
// the command line (where ps and shell history would keep it): it is typed
// at a prompt, or read as the first line of stdin when piped.
func runUserAdd(c *cli, args []string) error {
	fs := c.flags("user add")
	role := fs.String("role", "", "operator, qa or admin")
	data := fs.String("data", "", "data directory (default ./var)")
	pos, err := c.args(fs, args, 1, func() bool { return *role != "" })
	if err != nil {
		return err
	}
	if !queue.ValidRole(*role) {
		return fmt.Errorf("role %q: use operator, qa or admin", *role)
	}
	password, err := c.readPassword()
	if err != nil {
		return err
	}
	hash, err := ui.HashPassword(password)
	if err != nil {
		return err
	}
	err = c.withStore(*data, func(store *queue.Store) error {
		if err := store.AddUser(c.ctx, pos[0], *role, hash); errors.Is(err, queue.ErrUserExists) {
			return fmt.Errorf("user %q exists already; pick another name", pos[0])
		} else if err != nil {
			return err
		}
		return store.Audit(c.ctx, "cli", "user_add", pos[0]+" as "+*role)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "user %s added with role %s\n", pos[0], *role)
	return nil
}

func (c *cli) readPassword() (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(c.stderr, "Again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("the two passwords differ; nothing was stored")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on stdin: pipe it in (echo … | station user add …) or run on a terminal")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
