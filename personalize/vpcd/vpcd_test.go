package vpcd_test

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"id06/personalize/apdu"
	"id06/personalize/emulator"
	"id06/personalize/pcsc"
	"id06/personalize/pcscdtest"
	"id06/personalize/vpcd"
)

const envSimArgs = "VPCD_TEST_SIMCARD_ARGS"

// TestMain doubles as `station sim card` when pcscdtest runs this binary as
// the card side with VPCD_TEST_SIMCARD_ARGS set.
func TestMain(m *testing.M) {
	if args := os.Getenv(envSimArgs); args != "" {
		// Die with pcscd, our parent, even if the test process was killed
		// before it could stop us; SIGTERM's default action ends us too.
		syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
		ctx := context.Background()
		if err := vpcd.RunSimCard(ctx, strings.Fields(args), os.Stdout); err != nil {
			os.Stderr.WriteString("sim card: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	pcscdtest.MaybeServeCard()
	os.Exit(m.Run())
}

// fakeVPCD plays the vpcd driver's side of the socket protocol.
type fakeVPCD struct {
	t    *testing.T
	conn net.Conn
}

func (f *fakeVPCD) send(b []byte) {
	f.t.Helper()
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	if _, err := f.conn.Write(append(msg, b...)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeVPCD) recv() []byte {
	f.t.Helper()
	f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var n [2]byte
	if _, err := io.ReadFull(f.conn, n[:]); err != nil {
		f.t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(f.conn, b); err != nil {
		f.t.Fatal(err)
	}
	return b
}

func TestProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stock := emulator.DefaultStock()
	stock.UID = []byte{4, 1, 2, 3, 4, 5, 6}
	card := emulator.New(stock)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- vpcd.Serve(ctx, ln.Addr().String(), card) }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeVPCD{t: t, conn: conn}
	f.send([]byte{1}) // power on: no answer
	f.send([]byte{4})
	if got := f.recv(); !bytes.Equal(got, card.ATR()) {
		t.Fatalf("ATR % X, want % X", got, card.ATR())
	}
	f.send([]byte{0xFF, 0xCA, 0, 0, 0})
	if got := f.recv(); !bytes.Equal(got, []byte{4, 1, 2, 3, 4, 5, 6, 0x90, 0}) {
		t.Fatalf("UID answer % X", got)
	}
	// A 3 KB extended APDU crosses the 2-byte length framing intact.
	f.send([]byte{2}) // reset
	data := append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, 0x02}), apdu.TLV(0x53, make([]byte, 3000))...)
	cmd, _ := apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: data, Extended: true}.Bytes()
	f.send(cmd)
	if got := f.recv(); !bytes.Equal(got, []byte{0x69, 0x82}) {
		t.Fatalf("PUT DATA without authentication answered % X, want 69 82", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	conn.Close()
}

func TestServeRedialsUntilVPCDListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens yet: Serve keeps dialling
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go vpcd.Serve(ctx, addr, emulator.New(emulator.DefaultStock()))
	time.Sleep(300 * time.Millisecond)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer ln.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("Serve did not dial again: %v", err)
	}
	conn.Close()
}

func TestRunSimCardFlags(t *testing.T) {
	bad := [][]string{
		{"--uid", "zz"},
		{"--uid", "01"},
		{"--vpcd", "nohostport"},
		{"extra"},
		{"--mgmt-alg", "des"},
		{"--mgmt-alg", "aes128", "--mgmt-key", "0102"},
		{"--mgmt-key", "xyz"},
		{"--capacity", "0"},
		{"--stock", "javacard"},
		{"--remove-after-writes", "-1"},
	}
	for _, args := range bad {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		var out bytes.Buffer
		err := vpcd.RunSimCard(ctx, args, &out)
		cancel()
		if err == nil {
			t.Errorf("RunSimCard(%q) succeeded", args)
		}
	}
}

// station sim card behind the real pcscd: the UID given on the command line
// is what a PC/SC client reads, and --state keeps the card across restarts.
func TestSimCardThroughPCSCD(t *testing.T) {
	state := filepath.Join(t.TempDir(), "card.json")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSimArgs, "--vpcd "+pcscdtest.VPCDAddr+" --uid 04A1B2C3D4E5F6 --state "+state)
	cardCmd := []string{exe, "-test.run=^$"}

	env := pcscdtest.Start(t, cardCmd)
	card := connect(t, env.ReaderName)
	ctx := t.Context()
	uid, err := apdu.Do(ctx, card, apdu.Command{CLA: 0xFF, INS: 0xCA, Le: 256})
	if err != nil || !bytes.Equal(uid, []byte{4, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6}) {
		t.Fatalf("UID % X, %v", uid, err)
	}
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x20, P2: 0x80, Data: []byte("999999\xff\xff")}); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	card.Close()
	env.Stop()

	env = pcscdtest.Start(t, cardCmd)
	card = connect(t, env.ReaderName)
	_, err = apdu.Do(ctx, card, apdu.Command{INS: 0x20, P2: 0x80})
	if ae, ok := err.(*apdu.AuthError); !ok || ae.Retries != 2 {
		t.Fatalf("PIN retries after restarting the sim card: %v, want 2 left", err)
	}
}

func connect(t *testing.T, name string) apdu.Card {
	t.Helper()
	r, err := pcsc.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c, err := r.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A card pulled out mid-write reaches a PC/SC client as apdu.ErrCardRemoved;
// re-inserted, it holds what was written before.
func TestRemovalThroughPCSCD(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSimArgs, "--vpcd "+pcscdtest.VPCDAddr+" --remove-after-writes 1")
	env := pcscdtest.Start(t, []string{exe, "-test.run=^$"})
	ctx := t.Context()
	r, err := pcsc.Open(env.ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	card, err := r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mgmtAuth(t, card)
	put := func(tag byte) error {
		_, err := apdu.Do(ctx, card, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF,
			Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, tag}), apdu.TLV(0x53, []byte{1, 2, 3})...)})
		return err
	}
	if err := put(0x02); err != nil {
		t.Fatal(err)
	}
	if err := put(0x07); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("write while the card is pulled out: %v, want ErrCardRemoved", err)
	}
	card.Close()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	card, err = r.Connect(wait) // waits until the card is back
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	get := func(tag byte) error {
		_, err := apdu.Do(ctx, card, apdu.Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: apdu.TLV(0x5C, []byte{0x5F, 0xC1, tag}), Le: 256})
		return err
	}
	if err := get(0x02); err != nil {
		t.Fatalf("object written before the removal: %v", err)
	}
	if err := get(0x07); !errors.Is(err, apdu.ErrNotFound) {
		t.Fatalf("interrupted object: %v, want ErrNotFound", err)
	}
}

func mgmtAuth(t *testing.T, card apdu.Card) {
	t.Helper()
	ctx := t.Context()
	blk, err := des.NewTripleDESCipher(emulator.DefaultManagementKey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: 0x03, P2: 0x9B, Data: apdu.TLV(0x7C, apdu.TLV(0x80, nil)), Le: 256})
	if err != nil || len(out) != 12 {
		t.Fatalf("witness: % X %v", out, err)
	}
	w := make([]byte, 8)
	blk.Decrypt(w, out[4:])
	body := append(append(apdu.TLV(0x80, w), apdu.TLV(0x81, make([]byte, 8))...), apdu.TLV(0x82, nil)...)
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: 0x03, P2: 0x9B, Data: apdu.TLV(0x7C, body), Le: 256}); err != nil {
		t.Fatalf("management key: %v", err)
	}
}

func TestSimCardAESStock(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSimArgs, "--vpcd "+pcscdtest.VPCDAddr+" --stock yubikey --mgmt-alg aes128")
	env := pcscdtest.Start(t, []string{exe, "-test.run=^$"})
	card := connect(t, env.ReaderName)
	md, err := apdu.Do(t.Context(), card, apdu.Command{INS: 0xF7, P2: 0x9B, Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(md, []byte{0x01, 0x01, emulator.AlgAES128}) {
		t.Fatalf("management key metadata % X, want AES-128", md)
	}
}
