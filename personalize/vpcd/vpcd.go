// Package vpcd connects an emulated card to vsmartcard's vpcd driver inside
// pcscd, so that pcscd and every PC/SC program see it as a real card in the
// reader "Virtual PCD 00 00".
//
// Wire protocol (vsmartcard vpcd): each message is a 2-byte big-endian
// length and a payload. A 1-byte payload from vpcd is a control code
// (0 power off, 1 power on, 2 reset, 4 get ATR, answered with the ATR);
// any other payload is a command APDU, answered with the response APDU.
package vpcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
)

const (
	ctrlOff   = 0
	ctrlOn    = 1
	ctrlReset = 2
	ctrlATR   = 4
)

// retryDelay is the pause before re-dialling vpcd (pcscd not up yet, or
// restarted). outDelay is how long a card pulled out stays out: pcscd polls
// presence every ~400 ms and misses a shorter absence.
const (
	retryDelay = 200 * time.Millisecond
	outDelay   = time.Second
)

// Serve inserts card into the vpcd reader listening at addr (host:port) and
// answers vpcd until ctx ends. A lost connection is re-dialled: vpcd sees
// the card removed and inserted again.
func Serve(ctx context.Context, addr string, card *emulator.Card) error {
	return serve(ctx, addr, &slot{card: card})
}

// ServeBlanks is Serve with a stack of blanks: every power-on or reset from
// pcscd (a new session after SCardDisconnect with SCARD_RESET_CARD) finds a
// new blank card of stock. It lets a conformance suite get a fresh card per
// test through the real pcscd.
func ServeBlanks(ctx context.Context, addr string, stock emulator.Stock) error {
	if err := stock.Validate(); err != nil {
		return err
	}
	return serve(ctx, addr, &slot{card: emulator.New(stock), stock: &stock})
}

// slot is the card in the virtual reader.
type slot struct {
	card  *emulator.Card
	stock *emulator.Stock // non-nil: feed a new blank at every power-on
}

func (s *slot) powerOn() {
	if s.stock != nil {
		s.card = emulator.New(*s.stock)
		return
	}
	s.card.PowerOn()
}

func serve(ctx context.Context, addr string, s *slot) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("vpcd: address %q: want HOST:PORT: %w", addr, err)
	}
	var d net.Dialer
	logged := false
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !logged {
				slog.Info("vpcd: waiting for pcscd's vpcd driver", "addr", addr, "err", err)
				logged = true
			}
			if !sleep(ctx, retryDelay) {
				return nil
			}
			continue
		}
		logged = false
		slog.Info("vpcd: card inserted", "addr", addr)
		err = serveConn(ctx, conn.(*net.TCPConn), s)
		conn.Close()
		if ctx.Err() != nil {
			return nil
		}
		slog.Info("vpcd: card out of the reader", "reason", err)
		if !sleep(ctx, outDelay) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func serveConn(ctx context.Context, conn *net.TCPConn, s *slot) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 0x10000+2)
	for {
		// Delayed ACKs would hold each response ~40 ms: TCP_QUICKACK is
		// cleared by the kernel after use, so set it before every read.
		raw.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
		msg, err := readMsg(conn, buf)
		if err != nil {
			return err
		}
		var reply []byte
		if len(msg) == 1 {
			switch msg[0] {
			case ctrlOff, ctrlOn, ctrlReset:
				s.powerOn()
				continue
			case ctrlATR:
				reply = s.card.ATR()
			default:
				return fmt.Errorf("vpcd: unknown control code %d", msg[0])
			}
		} else {
			reply, err = s.card.Transmit(ctx, msg)
			if errors.Is(err, apdu.ErrCardRemoved) {
				return err
			}
			if err != nil {
				return fmt.Errorf("vpcd: card: %w", err)
			}
		}
		if err := writeMsg(conn, reply); err != nil {
			return err
		}
	}
}

func readMsg(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf[:2]))
	if n == 0 {
		return nil, errors.New("vpcd: empty message")
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func writeMsg(w io.Writer, b []byte) error {
	if len(b) > 0xFFFF {
		return fmt.Errorf("vpcd: %d-byte message exceeds the protocol's 65535", len(b))
	}
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := w.Write(out)
	return err
}
