// Package apdu is the ISO 7816-4 command/response layer shared by every card
// implementation: encoding, command chaining, GET RESPONSE loops, status
// words as typed errors, and the BER-TLV helpers PIV data objects need.
package apdu

import (
	"context"
	"errors"
	"fmt"
)

// Card is one powered card reachable through some reader.
type Card interface {
	ATR() []byte
	// Transmit sends one raw command APDU and returns the raw response
	// (data followed by SW1 SW2).
	Transmit(ctx context.Context, apdu []byte) ([]byte, error)
	Close() error
}

// ErrCardRemoved is returned by a Card whose card left the reader.
var ErrCardRemoved = errors.New("card removed from the reader")

// Command is one logical command APDU.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	// Le is the expected response length: 0 = no response data expected,
	// 256 (short) or 65536 (extended) = as much as the card has.
	Le int
	// Extended selects extended length encoding (Lc up to 65535, Le up to
	// 65536). Without it, Do splits long data by command chaining.
	Extended bool
}

// Bytes encodes the command (ISO 7816-3 §12.1 cases 1–4, short or extended).
func (c Command) Bytes() ([]byte, error) {
	b := []byte{c.CLA, c.INS, c.P1, c.P2}
	if c.Le < 0 {
		return nil, fmt.Errorf("apdu: negative Le %d", c.Le)
	}
	if !c.Extended {
		if len(c.Data) > 255 {
			return nil, fmt.Errorf("apdu: %d data bytes need extended length or command chaining (max 255)", len(c.Data))
		}
		if c.Le > 256 {
			return nil, fmt.Errorf("apdu: Le %d needs extended length (max 256)", c.Le)
		}
		if len(c.Data) > 0 {
			b = append(b, byte(len(c.Data)))
			b = append(b, c.Data...)
		}
		if c.Le > 0 {
			b = append(b, byte(c.Le)) // 256 encodes as 00
		}
		return b, nil
	}
	if len(c.Data) > 65535 {
		return nil, fmt.Errorf("apdu: %d data bytes exceed the extended maximum 65535", len(c.Data))
	}
	if c.Le > 65536 {
		return nil, fmt.Errorf("apdu: Le %d exceeds the extended maximum 65536", c.Le)
	}
	if len(c.Data) == 0 && c.Le == 0 {
		return b, nil
	}
	b = append(b, 0)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)>>8), byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Le > 0 {
		b = append(b, byte(c.Le>>8), byte(c.Le)) // 65536 encodes as 00 00
	}
	return b, nil
}

// ParseCommand decodes a raw command APDU (the card side of Bytes).
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("apdu: command of %d bytes is shorter than the 4-byte header", len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2 short
		c.Le = shortLe(body[0])
		return c, nil
	case body[0] != 0: // short case 3 or 4
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			c.Le = shortLe(body[1+lc])
		default:
			return Command{}, fmt.Errorf("apdu: Lc %d does not match %d body bytes", lc, len(body))
		}
		c.Data = body[1 : 1+lc]
		return c, nil
	}
	// body[0] == 0 and at least 2 bytes: extended length.
	c.Extended = true
	if len(body) == 3 { // case 2E
		c.Le = extLe(body[1], body[2])
		return c, nil
	}
	if len(body) < 3 {
		return Command{}, fmt.Errorf("apdu: truncated extended length")
	}
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return Command{}, fmt.Errorf("apdu: extended Lc of zero")
	}
	switch len(body) {
	case 3 + lc:
	case 5 + lc:
		c.Le = extLe(body[3+lc], body[4+lc])
	default:
		return Command{}, fmt.Errorf("apdu: extended Lc %d does not match %d body bytes", lc, len(body))
	}
	c.Data = body[3 : 3+lc]
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

func extLe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return 65536
	}
	return n
}

// Response is a decoded response APDU.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a raw response into data and status word.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("apdu: response of %d bytes has no status word", len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// maxResponse bounds a GET RESPONSE loop so a misbehaving card cannot make
// Do allocate without end; no PIV object comes near it.
const maxResponse = 1 << 20

// Do sends one logical command: data longer than 255 bytes goes by command
// chaining (CLA|0x10) unless cmd.Extended; 61xx answers are collected with
// GET RESPONSE and 6Cxx answers re-sent with the corrected Le. It returns the
// response data, or a *StatusError / *AuthError for any status but 9000.
func Do(ctx context.Context, card Card, cmd Command) ([]byte, error) {
	if !cmd.Extended && len(cmd.Data) > 255 {
		rest := cmd.Data
		for len(rest) > 255 {
			part := Command{CLA: cmd.CLA | 0x10, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: rest[:255]}
			r, err := transmit(ctx, card, part)
			if err != nil {
				return nil, err
			}
			if r.SW != 0x9000 {
				return nil, statusErr(r.SW)
			}
			rest = rest[255:]
		}
		cmd.Data = rest
	}
	r, err := transmit(ctx, card, cmd)
	if err != nil {
		return nil, err
	}
	if r.SW>>8 == 0x6C {
		cmd.Le = shortLe(byte(r.SW))
		if r, err = transmit(ctx, card, cmd); err != nil {
			return nil, err
		}
	}
	data := r.Data
	for r.SW>>8 == 0x61 {
		if len(data) > maxResponse {
			return nil, fmt.Errorf("apdu: card keeps answering 61xx after %d bytes", len(data))
		}
		get := Command{CLA: cmd.CLA &^ 0x10, INS: 0xC0, Le: shortLe(byte(r.SW))}
		if r, err = transmit(ctx, card, get); err != nil {
			return nil, err
		}
		data = append(data, r.Data...)
	}
	if r.SW != 0x9000 {
		return nil, statusErr(r.SW)
	}
	return data, nil
}

func transmit(ctx context.Context, card Card, cmd Command) (Response, error) {
	raw, err := cmd.Bytes()
	if err != nil {
		return Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	out, err := card.Transmit(ctx, raw)
	if err != nil {
		return Response{}, err
	}
	return ParseResponse(out)
}
