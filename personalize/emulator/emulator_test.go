package emulator_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"id06/personalize/apdu"
	"id06/personalize/cardtest"
	"id06/personalize/emulator"
)

func TestConformance(t *testing.T) {
	stocks := []struct {
		name   string
		alg    byte
		key    []byte
		yubico bool
	}{
		{"3DES", emulator.Alg3DES, emulator.DefaultManagementKey, false},
		{"AES128", emulator.AlgAES128, bytes.Repeat([]byte{0x42}, 16), false},
		{"AES192", emulator.AlgAES192, emulator.DefaultManagementKey, false},
		{"AES256", emulator.AlgAES256, bytes.Repeat([]byte{0x17}, 32), false},
		{"Yubico 3DES", emulator.Alg3DES, emulator.DefaultManagementKey, true},
		{"Yubico AES192", emulator.AlgAES192, emulator.DefaultManagementKey, true},
	}
	for _, st := range stocks {
		t.Run(st.name, func(t *testing.T) {
			stock := emulator.DefaultStock()
			stock.MgmtAlg, stock.MgmtKey, stock.Yubico = st.alg, st.key, st.yubico
			cfg := cardtest.Default()
			cfg.MgmtAlg, cfg.MgmtKey, cfg.Yubico = st.alg, st.key, st.yubico
			cardtest.RunConfig(t, cfg, func(t *testing.T) apdu.Card { return emulator.New(stock) })
		})
	}
}

func TestRemovalMidWrite(t *testing.T) {
	ctx := context.Background()
	r := emulator.NewReader("sim", emulator.DefaultStock(), "")
	r.InjectNext(emulator.Fault{RemoveAfterWrites: 2})
	card, err := r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mgmtAuth(t, card, emulator.DefaultManagementKey)
	put := func(tag byte, n int) error {
		_, err := apdu.Do(ctx, card, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF,
			Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, tag}), apdu.TLV(0x53, make([]byte, n))...)})
		return err
	}
	if err := put(0x02, 10); err != nil {
		t.Fatal(err)
	}
	// 600 bytes chain in 3 APDUs: the second part is the third write.
	if err := put(0x05, 600); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("write after removal: %v, want ErrCardRemoved", err)
	}
	if _, err := card.Transmit(ctx, []byte{0, 0xCB, 0x3F, 0xFF}); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("removed card answered: %v", err)
	}
	// Re-seated: the first object is there, the interrupted one is not.
	card, err = r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apdu.Do(ctx, card, getData(0x02)); err != nil {
		t.Fatalf("object written before removal: %v", err)
	}
	if _, err := apdu.Do(ctx, card, getData(0x05)); !errors.Is(err, apdu.ErrNotFound) {
		t.Fatalf("interrupted object: %v, want ErrNotFound", err)
	}
	objs, keys := r.Card().Inspect()
	if !slices.Equal(objs, []uint{0x5FC102}) || len(keys) != 0 {
		t.Fatalf("card holds objects %X and keys %X", objs, keys)
	}
}

func TestWrongManagementKeyAndMemoryFull(t *testing.T) {
	ctx := context.Background()
	r := emulator.NewReader("sim", emulator.DefaultStock(), "")
	r.InjectNext(emulator.Fault{WrongMgmtKey: true})
	card, err := r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryMgmtAuth(ctx, card, emulator.DefaultManagementKey); !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Fatalf("transport key on a wrong-key blank: %v", err)
	}
	if err := r.Eject(ctx); err != nil {
		t.Fatal(err)
	}
	r.InjectNext(emulator.Fault{MemoryFull: true})
	card, _ = r.Connect(ctx)
	mgmtAuth(t, card, emulator.DefaultManagementKey)
	_, err = apdu.Do(ctx, card, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF,
		Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, 0x05}), apdu.TLV(0x53, make([]byte, 2000))...)})
	if !errors.Is(err, apdu.ErrMemoryFull) {
		t.Fatalf("2 KB into a full card: %v", err)
	}
	// The fault applies to one blank only.
	r.Eject(ctx)
	card, _ = r.Connect(ctx)
	mgmtAuth(t, card, emulator.DefaultManagementKey)
}

func TestReaderPersistsHalfWrittenCard(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := emulator.NewReader("sim", emulator.DefaultStock(), dir)
	card, err := r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	uid := r.Card().UID()
	mgmtAuth(t, card, emulator.DefaultManagementKey)
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF,
		Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, 0x02}), apdu.TLV(0x53, []byte("chuid"))...)}); err != nil {
		t.Fatal(err)
	}
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x20, P2: 0x80, Data: []byte("000000\xff\xff")}); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	state, err := os.ReadFile(filepath.Join(dir, "slot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(state, []byte("123456")) || bytes.Contains(state, []byte("MTIzNDU2")) {
		t.Fatal("the PIN is stored in clear")
	}

	// A restarted station finds the same card, object and counter intact.
	r2 := emulator.NewReader("sim", emulator.DefaultStock(), dir)
	card2, err := r2.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.Card().UID(), uid) {
		t.Fatalf("UID % X after restart, want % X", r2.Card().UID(), uid)
	}
	out, err := apdu.Do(ctx, card2, getData(0x02))
	if err != nil || !bytes.Contains(out, []byte("chuid")) {
		t.Fatalf("CHUID after restart: % X %v", out, err)
	}
	var ae *apdu.AuthError
	if _, err := apdu.Do(ctx, card2, apdu.Command{INS: 0x20, P2: 0x80}); !errors.As(err, &ae) || ae.Retries != 2 {
		t.Fatalf("PIN retries after restart: %v", err)
	}
	if err := r2.Eject(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ejected", hexUID(uid)+".json")); err != nil {
		t.Fatalf("ejected card not kept: %v", err)
	}
	card3, _ := r2.Connect(ctx)
	if bytes.Equal(r2.Card().UID(), uid) {
		t.Fatal("Eject did not feed a new blank")
	}
	if _, err := apdu.Do(ctx, card3, getData(0x02)); !errors.Is(err, apdu.ErrNotFound) {
		t.Fatalf("new blank has a CHUID: %v", err)
	}
}

func TestUnmarshalRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("{}"), []byte(`{"uid":"AQID","salt":"AQ==","pin_hash":"AQ==","puk_hash":"AQ==","mgmt_alg":3,"mgmt_key":"AQ=="}`)} {
		if _, err := emulator.Load(b); err == nil {
			t.Errorf("Load(%q) succeeded", b)
		}
	}
}

func TestStockValidate(t *testing.T) {
	bad := []func(*emulator.Stock){
		func(s *emulator.Stock) { s.PIN = "12a456" },
		func(s *emulator.Stock) { s.PIN = "123" },
		func(s *emulator.Stock) { s.MgmtAlg = 0x09 },
		func(s *emulator.Stock) { s.MgmtAlg = emulator.AlgAES128 },
		func(s *emulator.Stock) { s.Capacity = 0 },
		func(s *emulator.Stock) { s.UID = []byte{1} },
	}
	for i, f := range bad {
		s := emulator.DefaultStock()
		f(&s)
		if s.Validate() == nil {
			t.Errorf("case %d: invalid stock accepted", i)
		}
	}
	if err := emulator.DefaultStock().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestUIDFromStock(t *testing.T) {
	s := emulator.DefaultStock()
	s.UID = []byte{1, 2, 3, 4, 5, 6, 7}
	c := emulator.New(s)
	out, err := apdu.Do(context.Background(), c, apdu.Command{CLA: 0xFF, INS: 0xCA, Le: 256})
	if err != nil || !bytes.Equal(out, s.UID) {
		t.Fatalf("UID % X, %v", out, err)
	}
	if a, b := emulator.New(emulator.DefaultStock()).UID(), emulator.New(emulator.DefaultStock()).UID(); bytes.Equal(a, b) || len(a) != 7 {
		t.Fatalf("random UIDs % X and % X", a, b)
	}
}

// A fault waits for the next blank; closing and reconnecting the card does
// not lose a pending removal.
func TestFaultAppliesToNextBlank(t *testing.T) {
	ctx := context.Background()
	r := emulator.NewReader("sim", emulator.DefaultStock(), "")
	card, _ := r.Connect(ctx)
	r.InjectNext(emulator.Fault{WrongMgmtKey: true, RemoveAfterWrites: 1})
	card.Close()
	card, _ = r.Connect(ctx) // same card: no fault
	mgmtAuth(t, card, emulator.DefaultManagementKey)
	r.Eject(ctx)
	card, _ = r.Connect(ctx)
	if err := tryMgmtAuth(ctx, card, emulator.DefaultManagementKey); !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Fatalf("next blank accepted the transport key: %v", err)
	}
	card.Close()
	card, _ = r.Connect(ctx)
	put := apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, 0x02}), apdu.TLV(0x53, []byte{1})...)}
	if _, err := apdu.Do(ctx, card, put); !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Fatalf("first write: %v, want 6982 (not authenticated)", err)
	}
	if _, err := apdu.Do(ctx, card, put); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("second write after a reconnect: %v, want ErrCardRemoved", err)
	}
	// One-shot: re-seated, the card stays in.
	card, _ = r.Connect(ctx)
	for range 3 {
		if _, err := apdu.Do(ctx, card, put); errors.Is(err, apdu.ErrCardRemoved) {
			t.Fatal("removed again")
		}
	}
}

func TestInspect(t *testing.T) {
	ctx := context.Background()
	card := emulator.New(emulator.DefaultStock())
	mgmtAuth(t, card, emulator.DefaultManagementKey)
	for _, slot := range []byte{0x9E, 0x9A} {
		if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0x47, P2: slot, Data: apdu.TLV(0xAC, apdu.TLV(0x80, []byte{0x11})), Le: 256}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tag := range []byte{0x08, 0x02} {
		if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF,
			Data: append(apdu.TLV(0x5C, []byte{0x5F, 0xC1, tag}), apdu.TLV(0x53, []byte{1})...)}); err != nil {
			t.Fatal(err)
		}
	}
	objs, keys := card.Inspect()
	if !slices.Equal(objs, []uint{0x5FC102, 0x5FC108}) || !bytes.Equal(keys, []byte{0x9A, 0x9E}) {
		t.Fatalf("Inspect = %X, %X", objs, keys)
	}
}

// 3DES-only stock lists no AES algorithm and refuses an AES management key.
func TestNoAESStock(t *testing.T) {
	ctx := context.Background()
	stock := emulator.DefaultStock()
	stock.NoAES = true
	card := emulator.New(stock)
	apt, err := apdu.Do(ctx, card, apdu.Command{INS: 0xA4, P1: 0x04, Data: []byte{0xA0, 0, 0, 3, 8}, Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(apt, []byte{0x80, 0x01, emulator.AlgAES256}) || !bytes.Contains(apt, []byte{0x80, 0x01, emulator.Alg3DES}) {
		t.Fatalf("3DES-only stock's property template % X", apt)
	}
	mgmtAuth(t, card, emulator.DefaultManagementKey)
	aes := append([]byte{emulator.AlgAES256, 0x9B, 32}, bytes.Repeat([]byte{7}, 32)...)
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xFF, P1: 0xFF, P2: 0xFF, Data: aes}); !errors.Is(err, apdu.ErrWrongData) {
		t.Fatalf("AES key on 3DES-only stock: %v, want 6A80", err)
	}
	des := append([]byte{emulator.Alg3DES, 0x9B, 24}, bytes.Repeat([]byte{7, 8}, 12)...)
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xFF, P1: 0xFF, P2: 0xFF, Data: des}); err != nil {
		t.Fatalf("3DES key on 3DES-only stock: %v", err)
	}
	stock.MgmtAlg, stock.MgmtKey = emulator.AlgAES192, emulator.DefaultManagementKey
	if stock.Validate() == nil {
		t.Fatal("3DES-only stock with an AES transport key accepted")
	}
}
