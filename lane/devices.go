package lane

import (
	"errors"
	"fmt"

	"id06/personalize"
	"id06/printer"
)

// Devices are a lane's opened reader, printer and card transport.
type Devices struct {
	Reader    personalize.Reader
	Printer   printer.Driver
	Transport printer.Transport
	// PrinterID names the printer in print records: its hot folder or URI,
	// or the lane's simulator.
	PrinterID string
}

// Open opens a lane's devices, keeping their files under dataDir (see
// Config.dirs). The simulators keep state there, so a restarted station
// finds the card in hand and the printer's job history as it left them.
// stock is the station's card stock profile, the blanks a simulated reader
// is fed with.
func Open(c Config, dataDir, stock string) (*Devices, error) {
	d := c.dirs(dataDir)
	r, err := personalize.OpenReader(c.Reader, d.readerSim, stock)
	if err != nil {
		return nil, fmt.Errorf("lane %s: %w", c.Name, err)
	}
	p, err := printer.Open(c.Printer, printer.Dirs{Spool: d.spool, Sim: d.printerSim})
	if err != nil {
		return nil, fmt.Errorf("lane %s: %w", c.Name, err)
	}
	t, err := printer.OpenTransport(c.Transport, p)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("lane %s: %w", c.Name, err)
	}
	id, err := printer.Identity(c.Printer, d.spool)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("lane %s: %w", c.Name, err)
	}
	if id == "" {
		id = "sim:" + c.Name
	}
	return &Devices{Reader: r, Printer: p, Transport: t, PrinterID: id}, nil
}

// Close releases the devices (a sim transport is the printer itself).
func (d *Devices) Close() error {
	err := d.Printer.Close()
	if any(d.Transport) != any(d.Printer) {
		err = errors.Join(err, d.Transport.Close())
	}
	if c, ok := d.Reader.(interface{ Close() error }); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}
