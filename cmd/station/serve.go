package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"id06/api"
	"id06/internal/atomicfile"
	"id06/lane"
	"id06/personalize"
	"id06/printer"
	"id06/queue"
	"id06/station"
)

func runServe(c *cli, args []string) error {
	cfg, err := parseServeFlags(args, c.getenv, c.stderr)
	if err != nil {
		return err
	}
	log := c.logger()
	parts, closeParts, err := openParts(cfg, log)
	if err != nil {
		return err
	}
	defer closeParts()
	sd := sdNotifier{socket: c.getenv("NOTIFY_SOCKET"), log: log}
	defer context.AfterFunc(c.ctx, func() { sd.notify("STOPPING=1") })()
	// ready runs once the devices are open and the listener accepts; the
	// pipeline starts right after it.
	return station.New(cfg, parts, log).Run(c.ctx, c.cardCtx, func(addr string) {
		fmt.Fprintf(c.stdout, "station listening on http://%s\n", addr)
		if c.ctx.Err() == nil {
			sd.notify("READY=1\nSTATUS=listening on " + addr)
		}
	})
}

// parseServeFlags reads `station serve` flags over env over the config file
// over the defaults.
func parseServeFlags(args []string, getenv func(string) string, out io.Writer) (station.Config, error) {
	cfg := station.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	configFile := fs.String("config", getenv("STATION_CONFIG"), "configuration file (JSON)")
	singleLane := false // the operator set a reader or printer of the one lane main
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:8080)")
	data := fs.String("data", "", "data directory (default ./var)")
	reader := fs.String("reader", "", "card reader of the one lane main: sim | pcsc[:NAME]")
	printerSpec := fs.String("printer", "", "printer of the one lane main: spool[:DIR] | ipp:URI | sim[:OPTIONS]")
	var laneFlags []string
	fs.Func("lane", "a production lane NAME=READER,PRINTER[,TRANSPORT] (repeatable; env STATION_LANES, ';'-separated)", func(v string) error {
		laneFlags = append(laneFlags, v)
		return nil
	})
	production := fs.Bool("production", false, "refuse to start until real keys are configured (ca_cert, ca_key, seal_to)")
	db := fs.String("db", "", "database: sqlite:PATH | postgres://… (default sqlite:DATA/station.db)")
	name := fs.String("name", "", "this station's name in a fleet (default the host name)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", *configFile, err)
		}
		var set struct{ Reader, Printer *string }
		if json.Unmarshal(b, &set) == nil && (set.Reader != nil || set.Printer != nil) {
			singleLane = true
		}
	}
	pick := func(dst *string, flagVal, env string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flagVal != "" {
			*dst = flagVal
		}
	}
	pick(&cfg.Listen, *listen, "STATION_LISTEN")
	pick(&cfg.DataDir, *data, "STATION_DATA")
	pick(&cfg.Reader, *reader, "STATION_READER")
	pick(&cfg.Printer, *printerSpec, "STATION_PRINTER")
	pick(&cfg.DB, *db, "STATION_DB")
	pick(&cfg.Name, *name, "STATION_NAME")
	pick(&cfg.Template, "", "STATION_TEMPLATE")
	pick(&cfg.CardPrefix, "", "STATION_CARD_PREFIX")
	pick(&cfg.SealTo, "", "STATION_SEAL_TO")
	pick(&cfg.CACert, "", "STATION_CA_CERT")
	pick(&cfg.CAKey, "", "STATION_CA_KEY")
	pick(&cfg.Stock, "", "STATION_STOCK")
	cfg.PKCS11PIN = getenv("STATION_PKCS11_PIN")
	if v := getenv("STATION_PRODUCTION"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("STATION_PRODUCTION=%q: use true or false", v)
		}
		cfg.Production = on
	}
	cfg.Production = cfg.Production || *production
	singleLane = singleLane || *reader != "" || *printerSpec != "" || getenv("STATION_READER") != "" || getenv("STATION_PRINTER") != ""
	lanes, err := lane.Resolve(lane.Sources{Flags: laneFlags, Env: getenv("STATION_LANES"), File: cfg.Lanes,
		Reader: cfg.Reader, Printer: cfg.Printer, Explicit: singleLane}, cfg.DataDir)
	if err != nil {
		return cfg, err
	}
	cfg.Lanes = lanes
	return cfg, cfg.Validate()
}

// openParts opens what the station runs on, as its configuration says: it
// takes the data directory's lock (for a SQLite database; PostgreSQL is
// shared by a fleet), opens the database, registers the station's name,
// rescues the leases of its previous run, makes sure a development token
// exists, and opens the card template, each lane's reader, printer and card
// transport, and the chip writer. closeParts closes them all.
func openParts(cfg station.Config, log *slog.Logger) (parts station.Parts, closeParts func() error, err error) {
	if err := ensureDataDir(cfg.DataDir); err != nil {
		return parts, nil, err
	}
	if err := ownerOnly(cfg.DataDir, log); err != nil {
		return parts, nil, err
	}
	var closers []func() error
	closeParts = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			closeParts()
		}
	}()
	opts := []queue.Option{queue.WithStation(cfg.Name)}
	sole := !queue.IsPostgres(cfg.Database())
	if sole {
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return parts, nil, err
		}
		closers = append(closers, lock.Close)
		opts = append(opts, queue.WithSoleStation())
	}
	if parts.Store, err = queue.Open(cfg.Database(), opts...); err != nil {
		return parts, nil, err
	}
	closers = append(closers, parts.Store.Close)
	if err := station.Register(context.Background(), parts.Store, sole, log); err != nil {
		return parts, nil, err
	}
	if n, err := parts.Store.Rescue(context.Background(), true); err != nil {
		return parts, nil, err
	} else if n > 0 {
		log.Warn("resuming orders left in progress by the previous run", "orders", n)
	}
	if !cfg.Production {
		if err := ensureDevToken(parts.Store, cfg.DevTokenPath()); err != nil {
			return parts, nil, err
		}
	}
	if parts.Template, err = loadTemplate(cfg.Template); err != nil {
		return parts, nil, err
	}
	lanes, closeLanes, err := station.OpenLanes(cfg)
	if err != nil {
		return parts, nil, err
	}
	parts.Lanes = lanes
	closers = append(closers, closeLanes)
	stock, err := personalize.Stock(cfg.Stock)
	if err != nil {
		return parts, nil, err
	}
	pc := personalize.Config{PKIDir: filepath.Join(cfg.DataDir, "pki"), CACert: cfg.CACert, CAKey: cfg.CAKey,
		SealTo: cfg.SealTo, Issuer: cfg.Issuer, Stock: stock, Certs: cfg.CertProfile()}
	token, err := cfg.OpenKeyStore()
	if err != nil {
		return parts, nil, err
	}
	if token != nil {
		pc.Keys = token
		closers = append(closers, token.Close)
	}
	if parts.Chip, err = personalize.New(pc); err != nil {
		return parts, nil, err
	}
	// Said at every start, so that nobody runs on them by oversight.
	if cfg.DevelopmentCA() {
		log.Warn("DEVELOPMENT KEYS: cards are signed by the development CA the station made in " + filepath.Join(cfg.DataDir, "pki") +
			"; no relying party trusts it. Configure ca_cert and ca_key (and production: true) for real cards")
	}
	if cfg.DevelopmentSeal() {
		log.Warn("DEVELOPMENT KEYS: PIN and PUK are sealed to the development age key whose private half is in " +
			filepath.Join(cfg.DataDir, "pki") + "; anyone who can read the data directory can open them. Configure seal_to with the supplier's age recipient")
	}
	return parts, closeParts, nil
}

func loadTemplate(path string) (*printer.Template, error) {
	if path == "" {
		return printer.DefaultTemplate(), nil
	}
	t, err := printer.LoadTemplate(path)
	if err != nil {
		return nil, fmt.Errorf("card template %s: %w", path, err)
	}
	return t, nil
}

// ensureDataDir creates the data directory for the station's user alone:
// it holds the database, keys, photos and the dev token.
func ensureDataDir(dir string) error { return os.MkdirAll(dir, 0o700) }

// secretPaths are what the station keeps in the data directory besides the
// database (whose modes queue.Open sets) and the spool folder (shared with
// the printer's watcher through the group, see hardware.md).
var secretPaths = []string{"dev-token", "pki", "sim"}

// publicFiles in those are certificates, for anyone to read.
var publicFiles = map[string]bool{"ca.pem": true, "content-signer.pem": true}

// ownerOnly closes the station's secret files and folders to other users
// when an older version, a copy or an admin left them open: new ones are
// created owner-only, but a file written in place keeps its old mode.
func ownerOnly(dataDir string, log *slog.Logger) error {
	for _, name := range secretPaths {
		root := filepath.Join(dataDir, name)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return nil
			}
			if err != nil || d.Type()&fs.ModeSymlink != 0 || publicFiles[d.Name()] {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm()&0o077 == 0 {
				return nil
			}
			log.Warn("data file was open to other users; made owner-only", "path", path, "was", fi.Mode().Perm().String())
			return os.Chmod(path, want)
		})
		if err != nil {
			return fmt.Errorf("data directory %s: %w", dataDir, err)
		}
	}
	return nil
}

// lockDataDir makes sure one station owns a data directory: a second one
// would rescue the first one's leases and encode the same order twice.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "station.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another station is already running on %s", dir)
	}
	return f, nil
}

// ensureDevToken creates a development supplier token on first start when
// none is configured, so `station order submit` works out of the box.
func ensureDevToken(store *queue.Store, path string) error {
	if b, err := os.ReadFile(path); err == nil {
		return store.AddToken(context.Background(), "dev", strings.TrimSpace(string(b)), []string{"orders"})
	}
	token, err := api.NewToken()
	if err != nil {
		return err
	}
	if err := store.AddToken(context.Background(), "dev", token, []string{"orders"}); err != nil {
		return err
	}
	return atomicfile.Write(path, []byte(token+"\n"), 0o600)
}
