package pcsc_test

import (
	"bytes"
	"context"
	"crypto/des"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"id06/personalize/apdu"
	"id06/personalize/cardtest"
	"id06/personalize/pcsc"
	"id06/personalize/pcscdtest"
)

func TestMain(m *testing.M) {
	pcscdtest.MaybeServeCard()
	os.Exit(m.Run())
}

func openCard(t testing.TB, env *pcscdtest.Env) apdu.Card {
	t.Helper()
	r, err := pcsc.Open(env.ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	card, err := r.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { card.Close() })
	return card
}

// The whole conformance suite through ebfe/scard, the real pcscd and vpcd:
// every session gets a new blank because Close resets the card.
func TestConformanceThroughPCSCD(t *testing.T) {
	env := pcscdtest.StartBlanks(t)
	cardtest.Run(t, func(t *testing.T) apdu.Card { return openCard(t, env) })
}

func TestReadersAndErrors(t *testing.T) {
	env := pcscdtest.Start(t, nil)
	names, err := pcsc.Readers()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 || names[0] != env.ReaderName {
		t.Fatalf("readers %q, want %q first", names, env.ReaderName)
	}
	// "" picks the reader holding the card, not the empty 00 01.
	r, err := pcsc.Open("")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != env.ReaderName {
		t.Fatalf("Open(\"\") chose %q", r.Name())
	}
	r.Close()
	if _, err := pcsc.Open("No Such Reader"); err == nil || !strings.Contains(err.Error(), env.ReaderName) {
		t.Fatalf("unknown reader: %v (want the list of readers in the message)", err)
	}

	// Exclusive: a second session on the same card is refused.
	card := openCard(t, env)
	r2, err := pcsc.Open(env.ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Connect(t.Context()); !errors.Is(err, pcsc.ErrInUse) {
		t.Fatalf("second exclusive connect: %v, want ErrInUse", err)
	}

	// pcscd going away mid-session: the card is gone, then the service.
	env.Stop()
	if _, err := apdu.Do(context.Background(), card, apdu.Command{INS: 0xFD, Le: 256}); err == nil {
		t.Fatal("transmit after pcscd stopped succeeded")
	}
	if _, err := pcsc.Readers(); !errors.Is(err, pcsc.ErrNoService) || !strings.Contains(err.Error(), "pcscd") {
		t.Fatalf("Readers without pcscd: %v, want ErrNoService", err)
	}
}

func TestConnectHonoursContext(t *testing.T) {
	pcscdtest.Start(t, nil)
	r, err := pcsc.Open("Virtual PCD 00 01") // the second vpcd slot holds no card
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Connect waits for a card; the deadline ends the wait.
	ctx, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	if _, err := r.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect to an empty reader: %v, want the deadline", err)
	}
}

// BenchmarkPCSCRoundTrip measures one short APDU through ebfe/scard, pcscd,
// vpcd and the emulator.
func BenchmarkPCSCRoundTrip(b *testing.B) {
	env := pcscdtest.Start(b, nil)
	card := openCard(b, env)
	ctx := context.Background()
	cmd := []byte{0x00, 0xFD, 0x00, 0x00, 0x00} // GET VERSION: no crypto on the card side
	b.ReportAllocs()
	for b.Loop() {
		if _, err := card.Transmit(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/APDU")
}

// BenchmarkPCSCReadObject reads a 3 KB data object (a certificate's size)
// through pcscd, once with extended length and once with short APDUs and
// GET RESPONSE.
func BenchmarkPCSCReadObject(b *testing.B) {
	env := pcscdtest.Start(b, nil)
	card := openCard(b, env)
	ctx := context.Background()
	authenticate(b, card)
	tag := []byte{0x5F, 0xC1, 0x05}
	put := apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: append(apdu.TLV(0x5C, tag), apdu.TLV(0x53, make([]byte, 3000))...), Extended: true}
	if _, err := apdu.Do(ctx, card, put); err != nil {
		b.Fatal(err)
	}
	for _, ext := range []bool{true, false} {
		name := "short"
		get := apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: apdu.TLV(0x5C, tag), Le: 256}
		if ext {
			name, get.Le, get.Extended = "extended", 65536, true
		}
		b.Run(name, func(b *testing.B) {
			cc := apdu.Count(card)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := apdu.Do(ctx, cc, get); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cc.APDUs())/float64(b.N), "APDUs/op")
		})
	}
}

func authenticate(b *testing.B, card apdu.Card) {
	ctx := context.Background()
	blk, err := des.NewTripleDESCipher(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3))
	if err != nil {
		b.Fatal(err)
	}
	out, err := apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: 0x03, P2: 0x9B, Data: apdu.TLV(0x7C, apdu.TLV(0x80, nil)), Le: 256})
	if err != nil || len(out) != 12 {
		b.Fatalf("witness % X: %v", out, err)
	}
	w := make([]byte, 8)
	blk.Decrypt(w, out[4:])
	body := append(append(apdu.TLV(0x80, w), apdu.TLV(0x81, make([]byte, 8))...), apdu.TLV(0x82, nil)...)
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: 0x03, P2: 0x9B, Data: apdu.TLV(0x7C, body), Le: 256}); err != nil {
		b.Fatal(err)
	}
}
