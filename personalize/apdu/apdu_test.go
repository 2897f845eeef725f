package apdu

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestCommandEncoding(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 300)
	tests := []struct {
		name string
		cmd  Command
		want []byte
	}{
		{"case1", Command{CLA: 0, INS: 0xA4, P1: 4}, []byte{0, 0xA4, 4, 0}},
		{"case2 short 256", Command{INS: 0xC0, Le: 256}, []byte{0, 0xC0, 0, 0, 0}},
		{"case2 short", Command{INS: 0xC0, Le: 16}, []byte{0, 0xC0, 0, 0, 16}},
		{"case3 short", Command{INS: 0x20, P2: 0x80, Data: []byte{1, 2}}, []byte{0, 0x20, 0, 0x80, 2, 1, 2}},
		{"case4 short", Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: []byte{0x5C, 1, 0x7E}, Le: 256}, []byte{0, 0xCB, 0x3F, 0xFF, 3, 0x5C, 1, 0x7E, 0}},
		{"case2 extended max", Command{INS: 0xCB, Le: 65536, Extended: true}, []byte{0, 0xCB, 0, 0, 0, 0, 0}},
		{"case3 extended", Command{INS: 0xDB, Data: long, Extended: true}, append([]byte{0, 0xDB, 0, 0, 0, 1, 44}, long...)},
		{"case4 extended", Command{INS: 0xDB, Data: []byte{9}, Le: 1000, Extended: true}, []byte{0, 0xDB, 0, 0, 0, 0, 1, 9, 3, 0xE8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Bytes = % X, want % X", got, tc.want)
			}
			back, err := ParseCommand(got)
			if err != nil {
				t.Fatal(err)
			}
			if back.CLA != tc.cmd.CLA || back.INS != tc.cmd.INS || back.P1 != tc.cmd.P1 || back.P2 != tc.cmd.P2 ||
				!bytes.Equal(back.Data, tc.cmd.Data) || back.Le != tc.cmd.Le {
				t.Fatalf("ParseCommand = %+v, want %+v", back, tc.cmd)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	bad := []Command{
		{Data: make([]byte, 256)},
		{Le: 257},
		{Le: -1},
		{Data: make([]byte, 65536), Extended: true},
		{Le: 65537, Extended: true},
	}
	for _, c := range bad {
		if _, err := c.Bytes(); err == nil {
			t.Errorf("Bytes(%d data, Le %d, ext %v) succeeded", len(c.Data), c.Le, c.Extended)
		}
	}
	raw := [][]byte{{0, 1, 2}, {0, 1, 2, 3, 5, 1}, {0, 1, 2, 3, 0, 0, 2, 1}, {0, 1, 2, 3, 0, 0}, {0, 1, 2, 3, 0, 0, 0, 1}}
	for _, b := range raw {
		if _, err := ParseCommand(b); err == nil {
			t.Errorf("ParseCommand(% X) succeeded", b)
		}
	}
}

// scriptCard answers each Transmit from a script and records what it got.
type scriptCard struct {
	t       *testing.T
	answers [][]byte
	got     [][]byte
}

func (s *scriptCard) ATR() []byte  { return nil }
func (s *scriptCard) Close() error { return nil }
func (s *scriptCard) Transmit(_ context.Context, b []byte) ([]byte, error) {
	s.got = append(s.got, append([]byte(nil), b...))
	if len(s.answers) == 0 {
		s.t.Fatalf("unexpected APDU % X", b)
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

func TestDoChainingAndGetResponse(t *testing.T) {
	data := make([]byte, 600)
	for i := range data {
		data[i] = byte(i)
	}
	card := &scriptCard{t: t, answers: [][]byte{
		{0x90, 0}, {0x90, 0}, {1, 2, 0x61, 2}, {3, 4, 0x90, 0},
	}}
	got, err := Do(context.Background(), card, Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: data, Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Fatalf("data % X", got)
	}
	if len(card.got) != 4 {
		t.Fatalf("%d APDUs, want 4", len(card.got))
	}
	for i, want := range []struct {
		cla byte
		n   int
	}{{0x10, 255}, {0x10, 255}, {0x00, 90}} {
		if card.got[i][0] != want.cla || int(card.got[i][4]) != want.n {
			t.Errorf("APDU %d header % X, want CLA %02X Lc %d", i, card.got[i][:5], want.cla, want.n)
		}
	}
	if !bytes.Equal(card.got[3], []byte{0, 0xC0, 0, 0, 2}) {
		t.Errorf("GET RESPONSE = % X", card.got[3])
	}
}

func TestDoWrongLe(t *testing.T) {
	card := &scriptCard{t: t, answers: [][]byte{{0x6C, 3}, {7, 8, 9, 0x90, 0}}}
	got, err := Do(context.Background(), card, Command{INS: 0xCA, Le: 256})
	if err != nil || !bytes.Equal(got, []byte{7, 8, 9}) {
		t.Fatalf("Do = % X, %v", got, err)
	}
	if card.got[1][4] != 3 {
		t.Fatalf("re-sent Le %d, want 3", card.got[1][4])
	}
}

func TestDoStatusErrors(t *testing.T) {
	tests := []struct {
		sw   []byte
		want error
	}{
		{[]byte{0x6A, 0x82}, ErrNotFound},
		{[]byte{0x69, 0x82}, ErrSecurityStatus},
		{[]byte{0x69, 0x83}, ErrAuthBlocked},
		{[]byte{0x6A, 0x84}, ErrMemoryFull},
		{[]byte{0x6D, 0x00}, ErrInsNotSupported},
	}
	for _, tc := range tests {
		card := &scriptCard{t: t, answers: [][]byte{tc.sw}}
		_, err := Do(context.Background(), card, Command{INS: 0xCB})
		if !errors.Is(err, tc.want) {
			t.Errorf("SW % X: err %v, want %v", tc.sw, err, tc.want)
		}
	}
	card := &scriptCard{t: t, answers: [][]byte{{0x63, 0xC2}}}
	_, err := Do(context.Background(), card, Command{INS: 0x20, P2: 0x80})
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Retries != 2 {
		t.Fatalf("err %v, want AuthError{2}", err)
	}
	if errors.Is(err, ErrSecurityStatus) {
		t.Fatal("AuthError matched ErrSecurityStatus")
	}
}

func TestTLV(t *testing.T) {
	tests := []struct {
		tag  uint
		n    int
		head []byte
	}{
		{0x53, 5, []byte{0x53, 5}},
		{0x5C, 0x80, []byte{0x5C, 0x81, 0x80}},
		{0x7F49, 300, []byte{0x7F, 0x49, 0x82, 1, 44}},
		{0x5FC102, 70000, []byte{0x5F, 0xC1, 0x02, 0x83, 1, 0x11, 0x70}},
	}
	for _, tc := range tests {
		v := bytes.Repeat([]byte{0x42}, tc.n)
		b := TLV(tc.tag, v)
		if !bytes.HasPrefix(b, tc.head) {
			t.Errorf("TLV(%X, %d) head % X, want % X", tc.tag, tc.n, b[:len(tc.head)], tc.head)
		}
		items, err := ParseTLV(append(b, TLV(0xFE, nil)...))
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 2 || items[0].Tag != tc.tag || !bytes.Equal(items[0].Value, v) || items[1].Tag != 0xFE {
			t.Errorf("ParseTLV round trip of %X failed: %+v", tc.tag, items[0].Tag)
		}
	}
	for _, bad := range [][]byte{{0x53}, {0x53, 3, 1}, {0x5F}, {0x53, 0x84, 0, 0, 0, 1, 0}, {0x53, 0x80}, {0x5F, 0xC1, 0x82, 0x81, 0}} {
		if _, err := ParseTLV(bad); err == nil {
			t.Errorf("ParseTLV(% X) succeeded", bad)
		}
	}
}

func TestUnwrap(t *testing.T) {
	if v, err := Unwrap([]byte{0x7C, 2, 0x80, 0}, 0x7C); err != nil || !bytes.Equal(v, []byte{0x80, 0}) {
		t.Fatalf("Unwrap = % X, %v", v, err)
	}
	for _, bad := range [][]byte{nil, {0x7D, 0}, {0x7C, 0, 0x80}} {
		if _, err := Unwrap(bad, 0x7C); err == nil {
			t.Errorf("Unwrap(% X) succeeded", bad)
		}
	}
}

func TestUnwrapItems(t *testing.T) {
	items, err := UnwrapItems([]byte{0x7C, 4, 0x80, 0, 0x81, 0}, 0x7C)
	if err != nil || len(items) != 2 || items[0].Tag != 0x80 || items[1].Tag != 0x81 {
		t.Fatalf("UnwrapItems = %+v, %v", items, err)
	}
	for _, bad := range [][]byte{{0x7D, 2, 0x80, 0}, {0x7C, 2, 0x80, 5}} {
		if _, err := UnwrapItems(bad, 0x7C); err == nil {
			t.Errorf("UnwrapItems(% X) succeeded", bad)
		}
	}
}

func TestCount(t *testing.T) {
	c := Count(&scriptCard{t: t, answers: [][]byte{{0x90, 0}, {1, 0x90, 0}}})
	ctx := context.Background()
	for range 2 {
		if _, err := Do(ctx, c, Command{INS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if c.APDUs() != 2 {
		t.Fatalf("APDUs = %d", c.APDUs())
	}
	if s, r := c.Bytes(); s != 8 || r != 5 {
		t.Fatalf("bytes %d/%d", s, r)
	}
}
