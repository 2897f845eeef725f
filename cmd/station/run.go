package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// verb is one `station <verb>` command.
type verb struct {
	usage string
	help  string
	run   func(c *cli, args []string) error
}

// cli is what every verb gets: streams, environment, the two contexts and
// the verb's usage line.
type cli struct {
	usage        string
	ctx, cardCtx context.Context
	getenv       func(string) string
	stdin        io.Reader
	stdout       io.Writer
	stderr       io.Writer
}

var verbs = map[string]verb{
	"serve":          {"serve [--listen ADDR] [--data DIR] [--config FILE] [--reader sim|pcsc[:NAME]] [--printer spool[:DIR]|ipp:URI|sim[:OPTIONS]] [--lane NAME=READER,PRINTER[,TRANSPORT]]... [--production] [--db URL] [--name NAME]", "run the station daemon", runServe},
	"order submit":   {"order submit [--url URL] [--token TOKEN] [--data DIR] [--photo IMG] (FILE.json | --dir DIR)", "push orders to a running station", runOrderSubmit},
	"db backup":      {"db backup [--data DIR] [--db sqlite:PATH|postgres://…] FILE", "write a consistent copy of the database while the station runs (PostgreSQL: pg_dump's custom format)", runDBBackup},
	"db migrate":     {"db migrate [--data DIR] [--db sqlite:PATH|postgres://…]", "bring the database's schema up to date (stations also do it at start)", runDBMigrate},
	"photo check":    {"photo check IMG [--json]", "check a photo against the ID06 rules (exit 0 pass, 1 fail, 2 unreadable)", runPhotoCheck},
	"photo crop":     {"photo crop IMG -o OUT.png [--chip-jpeg OUT.jpg]", "crop a photo to the 300x380 grayscale card portrait", runPhotoCrop},
	"photo override": {"photo override ORDER-ID pass|fail --reason TEXT [--code CODE] [--operator NAME] [--data DIR]", "override the photo verdict of an order (operator)", runPhotoOverride},
	"card render":    {"card render ORDER.json -o face.pdf [--png face.png] [--template FILE] [--card-number NUMBER]", "lay out a card face without the daemon", runCardRender},
	"verify":         {"verify [--reader NAME] [--pin PIN] [--json] [--data DIR] [--config FILE] [--crl FILE]", "check an encoded card in a reader (QA); exit 0 every check passed, 1 one failed, 2 some could not run, 3 no verification", runVerify},
	"readers":        {"readers", "list the PC/SC readers", runReaders},
	"sim card":       {"sim card --vpcd HOST:PORT [--stock NAME] [--uid HEX] [--state FILE] [--remove-after-writes N] [--mgmt-alg ALG] [--mgmt-key HEX] [--capacity BYTES]", "attach a simulated blank PIV card to vsmartcard-vpcd", runSimCard},
	"token create":   {"token create --supplier NAME [--scope orders|operator] [--data DIR]", "create an API token (shown once, stored hashed)", runTokenCreate},
	"token list":     {"token list [--data DIR]", "list the API tokens: id, supplier, scopes, created (never the token)", runTokenList},
	"token revoke":   {"token revoke ID [--data DIR]", "revoke an API token by the id token list shows; it is refused at once", runTokenRevoke},
	"user add":       {"user add NAME --role operator|qa|admin [--data DIR]", "create an operator account for the operator page (password from stdin or a prompt)", runUserAdd},
	"help":           {"help", "list the verbs", nil},
}

// run is the whole program; main only supplies the process's world.
func run(ctx, cardCtx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, cardCtx: cardCtx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	name, rest := lookup(args)
	if name == "" || name == "help" {
		usage(stdout)
		if name == "" && len(args) > 0 {
			fmt.Fprintf(stderr, "station: unknown verb %q\n", strings.Join(args, " "))
			return 2
		}
		return 0
	}
	c.usage = verbs[name].usage
	err := verbs[name].run(c, rest)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "station:", ee.err)
		}
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "usage: station", verbs[name].usage)
		return 0
	}
	fmt.Fprintf(stderr, "station %s: %v\n", name, err)
	return 1
}

// lookup finds the verb of one or two words at the start of args.
func lookup(args []string) (string, []string) {
	if len(args) >= 2 {
		if _, ok := verbs[args[0]+" "+args[1]]; ok {
			return args[0] + " " + args[1], args[2:]
		}
	}
	if len(args) >= 1 {
		if _, ok := verbs[args[0]]; ok {
			return args[0], args[1:]
		}
	}
	return "", args
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "station — ID06 card production station\n\nusage:")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  station %-80s %s\n", verbs[n].usage, verbs[n].help)
	}
}

// usageErr says how the verb is called, from its line in the verb table.
func (c *cli) usageErr() error { return errors.New("usage: station " + c.usage) }

// flags makes a verb's flag set that reports errors instead of exiting.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// args parses the verb's flags and wants n positional arguments (any number
// when n < 0) and every check in want to hold once the flags are read;
// otherwise it says how the verb is called.
func (c *cli) args(fs *flag.FlagSet, args []string, n int, want ...func() bool) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	ok := n < 0 || len(pos) == n
	for _, w := range want {
		ok = ok && w()
	}
	if !ok {
		return nil, c.usageErr()
	}
	return pos, nil
}

// file parses the verb's flags, wants one positional argument and reads
// the file it names.
func (c *cli) file(fs *flag.FlagSet, args []string, want ...func() bool) (name string, data []byte, err error) {
	pos, err := c.args(fs, args, 1, want...)
	if err != nil {
		return "", nil, err
	}
	data, err = os.ReadFile(pos[0])
	return pos[0], data, err
}

// parse parses flags wherever they stand among the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *cli) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func dataDir(c *cli, flagVal string) string {
	if flagVal != "" {
		return flagVal
	}
	if v := c.getenv("STATION_DATA"); v != "" {
		return v
	}
	return "./var"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
