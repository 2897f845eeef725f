package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// EvolisTransport drives the card path of an Evolis printer with a
// smart-card contact station through the printer's command channel (USB
// printer device or TCP), as hardware.md ("Evolis command channel")
// describes it: a command is ESC, its name and ';'-separated parameters,
// CR. The driver turns on the ACK/NACK protocol (Pem;4) and host error
// management (Pem;2), so that the printer answers each command with ACK, or
// NAK and an error code. Tested against printer/evolissim only.
type EvolisTransport struct {
	name string
	open func() (io.ReadWriteCloser, error)
	// Timeout bounds one command; inserting a card takes a few seconds.
	Timeout time.Duration

	mu    sync.Mutex
	conn  io.ReadWriteCloser // nil until opened, and after an I/O error
	setUp bool               // Pem;2 and Pem;4 were taken on this connection
	fault *Fault             // the last fault the printer reported, until Recover
}

// The protocol's control characters.
const (
	evolisESC = 0x1B
	evolisCR  = 0x0D
	evolisACK = 0x06
	evolisNAK = 0x15
)

// OpenEvolis names an Evolis printer's command channel: a device file
// ("/dev/usb/lp0") or "tcp:HOST:PORT". The connection opens with the first
// command, so a printer switched off at start-up shows as a lane fault.
func OpenEvolis(device string) (*EvolisTransport, error) {
	switch {
	case device == "":
		return nil, errors.New(`transport "evolis": no device given; use evolis:/dev/usb/lp0 or evolis:tcp:HOST:PORT`)
	case strings.HasPrefix(device, "tcp:"):
		addr := strings.TrimPrefix(device, "tcp:")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("transport evolis:%s: want tcp:HOST:PORT: %w", device, err)
		}
		return NewEvolis("evolis:"+device, func() (io.ReadWriteCloser, error) {
			return net.DialTimeout("tcp", addr, 5*time.Second)
		}), nil
	}
	return NewEvolis("evolis:"+device, func() (io.ReadWriteCloser, error) {
		return os.OpenFile(device, os.O_RDWR, 0)
	}), nil
}

// NewEvolis drives the printer that open connects to; name is for messages.
func NewEvolis(name string, open func() (io.ReadWriteCloser, error)) *EvolisTransport {
	return &EvolisTransport{name: name, open: open, Timeout: 30 * time.Second}
}

// Feed inserts a blank under the smart-card contact station (Sis).
func (e *EvolisTransport) Feed(ctx context.Context) error { return e.do(ctx, "Sis") }

// Eject ends the card's sequence, which ejects it (Se).
func (e *EvolisTransport) Eject(ctx context.Context) error { return e.do(ctx, "Se") }

// Reject sends the card to the reject box (Ser).
func (e *EvolisTransport) Reject(ctx context.Context) error { return e.do(ctx, "Ser") }

// TransportStatus is the last fault the printer reported: the protocol
// subset the station uses has no hopper count and no status query.
func (e *EvolisTransport) TransportStatus(context.Context) TransportStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fault != nil {
		return TransportStatus{Blanks: -1, Fault: e.fault, Message: e.fault.Message}
	}
	return TransportStatus{Blanks: -1, Message: "Evolis card path ready"}
}

// Recover is an operator's resume: the printer is asked again (the setup
// commands) and the remembered fault is dropped once it answers.
func (e *EvolisTransport) Recover(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setUp = false
	if err := e.ensure(ctx); err != nil {
		return err
	}
	e.fault = nil
	return nil
}

// Close drops the connection.
func (e *EvolisTransport) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drop()
	return nil
}

func (e *EvolisTransport) do(ctx context.Context, cmd string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.ensure(ctx); err != nil {
		return err
	}
	err := e.command(ctx, cmd)
	if f, ok := AsFault(err); ok {
		e.fault = f
	}
	return err
}

// ensure opens the connection and sets the printer up (caller holds mu).
func (e *EvolisTransport) ensure(ctx context.Context) error {
	if e.conn == nil {
		c, err := e.open()
		if err != nil {
			e.fault = e.offline(err)
			return e.fault
		}
		e.conn, e.setUp = c, false
	}
	if e.setUp {
		return nil
	}
	// Pem;4 turns the ACK/NACK answers on without changing the error
	// management, so it is answered whether or not an earlier connection
	// already did it; then Pem;2 hands error recovery to the station.
	for _, cmd := range []string{"Pem;4", "Pem;2"} {
		if err := e.command(ctx, cmd); err != nil {
			return err
		}
	}
	e.setUp = true
	return nil
}

// command sends one command and reads its ACK, or NAK and code.
func (e *EvolisTransport) command(ctx context.Context, cmd string) error {
	if err := e.send(ctx, cmd); err != nil {
		return err
	}
	ans, err := e.read(ctx, cmd)
	if err != nil {
		return err
	}
	if ans == "" {
		return nil
	}
	return evolisNAKFault(cmd, ans)
}

func (e *EvolisTransport) send(ctx context.Context, cmd string) error {
	frame := append(append([]byte{evolisESC}, cmd...), evolisCR)
	_, err := e.io(ctx, cmd, func(c io.ReadWriter) (string, error) {
		_, err := c.Write(frame)
		return "", err
	})
	return err
}

// read returns "" for ACK or the NAK code. NULs before the answer are
// padding (USB reads may return them) and skipped.
func (e *EvolisTransport) read(ctx context.Context, cmd string) (string, error) {
	return e.io(ctx, cmd, func(c io.ReadWriter) (string, error) {
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return "", err
			}
			switch b[0] {
			case 0:
				continue
			case evolisACK:
				return "", nil
			case evolisNAK:
				if _, err := io.ReadFull(c, b); err != nil {
					return "", err
				}
				return string(b), nil
			}
			return "", fmt.Errorf("%w: answer byte 0x%02X is neither ACK nor NAK", errEvolisProtocol, b[0])
		}
	})
}

var errEvolisProtocol = errors.New("unexpected answer")

// io runs one exchange, bounded by ctx and Timeout. A connection that fails
// or hangs is closed (which also ends the blocked read) and reopened by the
// next command.
func (e *EvolisTransport) io(parent context.Context, cmd string, f func(io.ReadWriter) (string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(parent, e.Timeout)
	defer cancel()
	type result struct {
		s   string
		err error
	}
	conn := e.conn
	done := make(chan result, 1)
	go func() {
		s, err := f(conn)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			e.drop()
			if errors.Is(r.err, errEvolisProtocol) {
				return "", fmt.Errorf("%s: %s: %w", e.name, cmd, r.err)
			}
			e.fault = e.offline(r.err)
			return "", e.fault
		}
		return r.s, nil
	case <-ctx.Done():
		// Closing ends the blocked exchange where the device allows it; the
		// goroutine is not waited for, as a dead USB device may not.
		e.drop()
		if err := parent.Err(); err != nil {
			return "", err
		}
		e.fault = e.offline(fmt.Errorf("no answer to %s in %s", cmd, e.Timeout))
		return "", e.fault
	}
}

func (e *EvolisTransport) drop() {
	if e.conn != nil {
		_ = e.conn.Close()
		e.conn, e.setUp = nil, false
	}
}

func (e *EvolisTransport) offline(err error) *Fault {
	return &Fault{Code: FaultOffline, Retryable: true,
		Message: fmt.Sprintf("Printer %s does not answer: check power and cable (%v)", e.name, err)}
}

// evolisNAKFault maps a NAK code of the ACK/NACK protocol to a fault.
func evolisNAKFault(cmd, code string) error {
	switch code {
	case "T":
		f := NewFault(FaultMediaJam)
		f.Message = "Card jam or mechanical error: open the printer and remove the stuck card"
		return f
	case "C":
		return NewFault(FaultCoverOpen)
	case "F":
		f := NewFault(FaultMediaEmpty)
		f.Message = "Out of cards or feeder error: refill the card hopper"
		return f
	case "R":
		return NewFault(FaultRibbonEmpty)
	case "1", "2":
		// The printer refuses the command itself: no operator can fix that
		// at the printer, so it is an error, not a fault.
		what := map[string]string{"1": "command", "2": "parameter"}[code]
		return fmt.Errorf("evolis printer refused %s (%s error): does it have a smart-card contact station?", cmd, what)
	}
	return &Fault{Code: FaultPrinterUnknown, Message: fmt.Sprintf("The printer reports error %q on %s: check its display", code, cmd)}
}
