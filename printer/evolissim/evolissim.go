// Package evolissim simulates the command channel of an Evolis card printer
// with a smart-card contact station: the subset hardware.md describes
// ("Evolis command channel"), over any byte stream (an in-memory pipe or
// TCP), so that the station's Evolis transport can be tested without the
// printer. It follows the public programming guide where the guide is
// explicit; where it is silent the simulator picks a behaviour and says so.
package evolissim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

const (
	esc = 0x1B
	cr  = 0x0D
	ack = 0x06
	nak = 0x15
)

// Printer is one simulated printer. Its fields are set through methods.
type Printer struct {
	mu       sync.Mutex
	blanks   int  // in the feeder; -1 endless
	ackNak   bool // Pem;4 was received (until power off)
	host     bool // Pem;2: the host manages errors
	card     bool // a card waits under the contact station
	jam      bool // the card path is jammed until ClearJam
	jamNext  bool
	cover    bool // the cover is open
	ejected  int
	rejected int
	inserted int
	log      []string
}

// New returns a printer with blanks cards in its feeder (-1: endless), in
// the state of a printer just switched on: standard protocol, no answers.
func New(blanks int) *Printer { return &Printer{blanks: blanks} }

// Serve answers commands on conn until it is closed.
func (p *Printer) Serve(conn io.ReadWriteCloser) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		frame, err := r.ReadBytes(cr)
		if err != nil {
			return
		}
		// Leading NULs are tolerated as on the device; a frame without ESC is
		// ignored (the guide: the start character may be left out after a CR,
		// which this simulator does not support).
		frame = []byte(strings.TrimLeft(string(frame), "\x00"))
		if len(frame) < 2 || frame[0] != esc {
			continue
		}
		answer := p.do(string(frame[1 : len(frame)-1]))
		if answer == nil {
			continue
		}
		if _, err := conn.Write(answer); err != nil {
			return
		}
	}
}

// do runs one command and returns the bytes to answer (nil: no answer).
func (p *Printer) do(cmd string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, cmd)
	code := p.exec(cmd)
	if !p.ackNak {
		// Standard protocol: errors are not reported on the channel.
		return nil
	}
	if code == 0 {
		return []byte{ack}
	}
	return []byte{nak, code}
}

// exec returns 0 for success or a NAK code (caller holds mu).
func (p *Printer) exec(cmd string) byte {
	switch cmd {
	case "Pem;4":
		p.ackNak = true
		return 0
	case "Pem;2":
		p.host = true
		return 0
	}
	if p.cover {
		return 'C'
	}
	if p.jam {
		return 'T'
	}
	switch cmd {
	case "Sis":
		switch {
		case p.card:
			// The guide does not say; the simulator refuses a second card.
			return '1'
		case p.blanks == 0:
			return 'F'
		case p.jamNext:
			p.jamNext, p.jam = false, true
			p.consume()
			return 'T'
		}
		p.consume()
		p.card = true
		return 0
	case "Se":
		if p.card {
			p.card = false
			p.ejected++
		}
		return 0
	case "Ser":
		if p.card {
			p.card = false
			p.rejected++
		}
		return 0
	}
	return '1'
}

func (p *Printer) consume() {
	if p.blanks > 0 {
		p.blanks--
	}
	p.inserted++
}

// Pipe returns the station's end of an in-memory connection to the printer.
func (p *Printer) Pipe() (io.ReadWriteCloser, error) {
	station, printer := net.Pipe()
	go p.Serve(printer)
	return station, nil
}

// Listen serves the printer on a loopback TCP port until Close; it
// returns the address.
func (p *Printer) Listen() (addr string, closeFn func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.Serve(c)
		}
	}()
	return l.Addr().String(), func() { l.Close() }, nil
}

// locked runs an operator's action on the printer under its lock.
func (p *Printer) locked(action func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	action()
}

// Refill puts n blanks into the feeder.
func (p *Printer) Refill(n int) { p.locked(func() { p.blanks = n }) }

// JamNext makes the next insertion jam.
func (p *Printer) JamNext() { p.locked(func() { p.jamNext = true }) }

// ClearJam is an operator removing the stuck card.
func (p *Printer) ClearJam() { p.locked(func() { p.jam, p.card = false, false }) }

// SetCover opens or closes the cover.
func (p *Printer) SetCover(open bool) { p.locked(func() { p.cover = open }) }

// PowerCycle switches the printer off and on: protocol settings are lost.
func (p *Printer) PowerCycle() { p.locked(func() { p.ackNak, p.host = false, false }) }

// Counts are the cards inserted, ejected and rejected so far.
func (p *Printer) Counts() (inserted, ejected, rejected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inserted, p.ejected, p.rejected
}

// CardInside reports a card under the contact station.
func (p *Printer) CardInside() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.card
}

// HostErrors reports whether the station took over error management.
func (p *Printer) HostErrors() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.host
}

// Log returns the commands received, without ESC and CR.
func (p *Printer) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// String describes the printer for test failures.
func (p *Printer) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("evolissim{blanks %d, card %v, jam %v, cover %v, log %q}", p.blanks, p.card, p.jam, p.cover, p.log)
}
