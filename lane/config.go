// Package lane configures the station's production lanes. A lane is one
// encoder (a PC/SC reader, usually the contact station inside the card
// printer), one printer and the card transport between them (DESIGN §9).
// This package reads the lanes from --lane flags, STATION_LANES or the
// config file, refuses lanes that would share a device, and opens a lane's
// devices.
package lane

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"id06/personalize"
	"id06/printer"
)

// Config is one lane as configured.
type Config struct {
	Name    string `json:"name"`
	Reader  string `json:"reader"`  // sim[:apdu-delay=D] | pcsc[:NAME]
	Printer string `json:"printer"` // spool[:DIR] | ipp:URI | sim[:OPTIONS]
	// Transport moves the cards: manual | sim | evolis:DEVICE; "" is sim
	// for a simulated printer and manual for any other.
	Transport string `json:"transport,omitempty"`
}

// Main is the lane that --reader and --printer describe on their own.
const Main = "main"

// nameRE keeps lane names usable in URLs, metric labels and folder names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ParseFlag reads one --lane value: NAME=READER,PRINTER[,TRANSPORT].
func ParseFlag(s string) (Config, error) {
	name, devices, ok := strings.Cut(s, "=")
	parts := strings.Split(devices, ",")
	if !ok || len(parts) < 2 || len(parts) > 3 {
		return Config{}, fmt.Errorf("lane %q: want NAME=READER,PRINTER[,TRANSPORT], e.g. a=pcsc:Reader 0,ipp:ipp://printer-a/ipp/print", s)
	}
	c := Config{Name: strings.TrimSpace(name), Reader: strings.TrimSpace(parts[0]), Printer: strings.TrimSpace(parts[1])}
	if len(parts) == 3 {
		c.Transport = strings.TrimSpace(parts[2])
	}
	return c, nil
}

// ParseList reads STATION_LANES: --lane values separated by ';'.
func ParseList(s string) ([]Config, error) {
	var lanes []Config
	var errs []error
	for _, item := range strings.Split(s, ";") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		c, err := ParseFlag(strings.TrimSpace(item))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lanes = append(lanes, c)
	}
	return lanes, errors.Join(errs...)
}

// Sources are the places lanes may be configured.
type Sources struct {
	Flags []string // each --lane value
	Env   string   // STATION_LANES
	File  []Config // the config file's "lanes"
	// Reader and Printer describe the single lane Main when no lanes are
	// configured (--reader/--printer, their variables, the config file or
	// the defaults). Explicit says the operator set either, which does not
	// go with a lane list.
	Reader, Printer string
	Explicit        bool
}

// Resolve picks the lanes, flags over environment over config file, else
// the one lane Main, and checks them against each other. dataDir is where
// lanes without a spool folder of their own get one.
func Resolve(s Sources, dataDir string) ([]Config, error) {
	var lanes []Config
	var from string
	switch {
	case len(s.Flags) > 0:
		from = "--lane"
		for _, f := range s.Flags {
			c, err := ParseFlag(f)
			if err != nil {
				return nil, err
			}
			lanes = append(lanes, c)
		}
	case strings.TrimSpace(s.Env) != "":
		from = "STATION_LANES"
		var err error
		if lanes, err = ParseList(s.Env); err != nil {
			return nil, fmt.Errorf("STATION_LANES: %w", err)
		}
	case len(s.File) > 0:
		from, lanes = "the config file's lanes", append([]Config(nil), s.File...)
	default:
		lanes = []Config{{Name: Main, Reader: s.Reader, Printer: s.Printer}}
	}
	if from != "" && s.Explicit {
		return nil, fmt.Errorf("lanes come from %s, but a reader or printer is also set on its own (--reader/--printer, STATION_READER/STATION_PRINTER or the config's reader/printer): give each lane its reader and printer instead", from)
	}
	for i := range lanes {
		if lanes[i].Transport == "" {
			lanes[i].Transport = "manual"
			if isSim(lanes[i].Printer) {
				lanes[i].Transport = "sim"
			}
		}
	}
	return lanes, Check(lanes, dataDir)
}

func isSim(printerSpec string) bool {
	kind, _, _ := strings.Cut(printerSpec, ":")
	return kind == "sim"
}

// Check refuses lanes the station cannot run: bad names or specs, and two
// lanes on the same reader, printer or transport (the message names both).
func Check(lanes []Config, dataDir string) error {
	if len(lanes) == 0 {
		return errors.New("no lanes configured")
	}
	var errs []error
	type owner struct{ lane, kind string }
	devices := map[string]owner{}
	claim := func(lane, kind, id string) {
		if id == "" {
			return
		}
		if o, taken := devices[id]; taken {
			errs = append(errs, fmt.Errorf("lanes %q and %q both use the %s %s: give each lane its own", o.lane, lane, kind, id))
			return
		}
		devices[id] = owner{lane, kind}
	}
	names := map[string]bool{}
	for _, c := range lanes {
		if !nameRE.MatchString(c.Name) {
			errs = append(errs, fmt.Errorf("lane name %q: use 1-32 lower-case letters, digits, '-' or '_', starting with a letter or digit", c.Name))
			continue
		}
		if names[c.Name] {
			errs = append(errs, fmt.Errorf("two lanes are called %q: give each lane its own name", c.Name))
			continue
		}
		names[c.Name] = true
		rid, err := readerIdentity(c.Reader, len(lanes))
		if err != nil {
			errs = append(errs, fmt.Errorf("lane %s: %w", c.Name, err))
		}
		claim(c.Name, "reader", rid)
		pid, err := printer.Identity(c.Printer, c.dirs(dataDir).spool)
		if err != nil {
			errs = append(errs, fmt.Errorf("lane %s: %w", c.Name, err))
		}
		claim(c.Name, "printer", pid)
		tid, err := printer.TransportIdentity(c.Transport)
		if err != nil {
			errs = append(errs, fmt.Errorf("lane %s: %w", c.Name, err))
		}
		if c.Transport == "sim" && !isSim(c.Printer) {
			errs = append(errs, fmt.Errorf("lane %s: transport sim is the simulated printer's own card path, but the printer is %q: use manual or the printer's command channel", c.Name, c.Printer))
		}
		claim(c.Name, "transport", tid)
	}
	return errors.Join(errs...)
}

// readerIdentity checks a reader spec and names the reader ("" for the
// simulator: each lane gets its own).
func readerIdentity(spec string, lanes int) (string, error) {
	kind, name, _ := strings.Cut(spec, ":")
	switch {
	case kind == "sim":
		// The simulated reader opens without any device: opening it is the check.
		_, err := personalize.OpenReader(spec, "", "")
		return "", err
	case spec == "pcsc" && lanes > 1:
		return "", errors.New(`reader "pcsc" takes whichever reader holds a card; with several lanes name each lane's reader (pcsc:NAME, as "station readers" lists them)`)
	case spec == "pcsc":
		return "pcsc", nil
	case kind == "pcsc" && strings.TrimSpace(name) != "":
		return "pcsc:" + name, nil
	}
	return "", fmt.Errorf("reader %q: use sim, sim:apdu-delay=DURATION, pcsc or pcsc:NAME", spec)
}

// laneDirs are where a lane's devices keep their files.
type laneDirs struct {
	readerSim, printerSim, spool string
}

// dirs keeps lane Main where a one-lane station always kept its files
// (DATA/sim, DATA/spool), so a station upgraded with a card in hand finds
// it. Other lanes keep simulator state under DATA/sim/lanes/NAME (with the
// station's other owner-only files) and a bare spool folder in
// DATA/lanes/NAME/spool (shared with the printer's watcher).
func (c Config) dirs(dataDir string) laneDirs {
	if c.Name == Main {
		return laneDirs{
			readerSim:  filepath.Join(dataDir, "sim"),
			printerSim: filepath.Join(dataDir, "sim", "printer"),
			spool:      filepath.Join(dataDir, "spool"),
		}
	}
	sim := filepath.Join(dataDir, "sim", "lanes", c.Name)
	return laneDirs{
		readerSim:  sim,
		printerSim: filepath.Join(sim, "printer"),
		spool:      filepath.Join(dataDir, "lanes", c.Name, "spool"),
	}
}
