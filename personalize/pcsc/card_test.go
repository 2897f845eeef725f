package pcsc

import (
	"context"
	"errors"
	"testing"

	"github.com/ebfe/scard"

	"id06/personalize/apdu"
)

// fakeSCard scripts the PC/SC answers a connected card gives.
type fakeSCard struct {
	answers    []error
	out        []byte
	sent       int
	reconnects int
	reconnErr  error
}

func (f *fakeSCard) Transmit(cmd []byte) ([]byte, error) {
	f.sent++
	if len(f.answers) > 0 {
		err := f.answers[0]
		f.answers = f.answers[1:]
		if err != nil {
			return nil, err
		}
	}
	return f.out, nil
}

func (f *fakeSCard) Reconnect(scard.ShareMode, scard.Protocol, scard.Disposition) error {
	f.reconnects++
	return f.reconnErr
}

func (f *fakeSCard) Disconnect(scard.Disposition) error { return nil }

func TestTransmit(t *testing.T) {
	tests := []struct {
		name       string
		fake       fakeSCard
		wantErr    error
		reconnects int
		sent       int
	}{
		{"ok", fakeSCard{out: []byte{0x90, 0}}, nil, 0, 1},
		{"reset once", fakeSCard{answers: []error{scard.ErrResetCard}, out: []byte{0x90, 0}}, nil, 1, 2},
		{"reset twice", fakeSCard{answers: []error{scard.ErrResetCard, scard.ErrResetCard}, out: []byte{0x90, 0}}, scard.ErrResetCard, 1, 2},
		{"reconnect fails", fakeSCard{answers: []error{scard.ErrResetCard}, reconnErr: scard.ErrRemovedCard}, apdu.ErrCardRemoved, 1, 1},
		{"removed", fakeSCard{answers: []error{scard.ErrRemovedCard}}, apdu.ErrCardRemoved, 0, 1},
		{"no smartcard", fakeSCard{answers: []error{scard.ErrNoSmartcard}}, apdu.ErrCardRemoved, 0, 1},
		{"mute", fakeSCard{out: nil}, apdu.ErrCardRemoved, 0, 1},
		{"service gone", fakeSCard{answers: []error{scard.ErrNoService}}, ErrNoService, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			c := &card{c: &f, reader: "R"}
			_, err := c.Transmit(context.Background(), []byte{0, 0xFD, 0, 0})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if f.reconnects != tc.reconnects || f.sent != tc.sent {
				t.Fatalf("%d reconnects, %d transmits; want %d, %d", f.reconnects, f.sent, tc.reconnects, tc.sent)
			}
		})
	}
}

func TestClosedCard(t *testing.T) {
	c := &card{c: &fakeSCard{}, reader: "R"}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transmit(context.Background(), []byte{0, 0xFD, 0, 0}); err == nil {
		t.Fatal("transmit on a closed card succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
