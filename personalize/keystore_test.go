package personalize

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"id06/personalize/emulator"
)

// The file key store keeps every key owner-only; the master key, once made,
// is never silently replaced: a lost or swapped key stops the station with
// what to do.
func TestFileKeyStoreAndMasterKey(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{PKIDir: dir, Certs: testCerts, Issuer: "Test Issuer AB"}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{caKeyFile, signerKeyFile, masterKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	kcv, err := os.ReadFile(filepath.Join(dir, masterCheckFile))
	if err != nil || len(strings.TrimSpace(string(kcv))) != 16 {
		t.Fatalf("check value %q, %v", kcv, err)
	}
	if _, err := New(cfg); err != nil {
		t.Fatalf("second start: %v", err)
	}

	master := filepath.Join(dir, masterKeyFile)
	saved, _ := os.ReadFile(master)
	os.Remove(master)
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "restore it from the backup") {
		t.Fatalf("start without the master key: %v", err)
	}
	if _, err := os.Stat(master); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a new master key was made in place of the lost one")
	}
	if err := (FileKeyStore{Dir: dir}).NewSecret(KeyMaster); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "is not the one") {
		t.Fatalf("start with another master key: %v", err)
	}
	if err := (FileKeyStore{Dir: dir}).NewSecret(KeyMaster); err == nil {
		t.Fatal("a key file was overwritten")
	}
	os.Remove(master)
	os.WriteFile(master, saved, 0o600)
	if _, err := New(cfg); err != nil {
		t.Fatalf("start with the restored key: %v", err)
	}

	os.Remove(filepath.Join(dir, caKeyFile))
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "restore it from the backup") {
		t.Fatalf("start without the CA key: %v", err)
	}
}

// Stock without AES gets a 3DES per-card key; stock whose profile promises
// AES it lacks refuses the key change before anything else is written, with
// what to change.
func TestPerCardKeyAlgorithm(t *testing.T) {
	ctx := context.Background()
	old := emulator.DefaultStock()
	old.NoAES = true

	stock := DefaultStock()
	stock.CardMgmtAlg = alg3DES
	f := newFixture(t, stock)
	card := connect(t, emulator.NewReader("test", old, ""))
	if _, err := f.p.Personalize(ctx, card, f.data, Record{}); err != nil {
		t.Fatal(err)
	}
	f.cardKeySession(t, card) // authenticates with the 3DES per-card key

	f = newFixture(t, DefaultStock())
	reader := emulator.NewReader("test", old, "")
	_, err := f.p.Personalize(ctx, connect(t, reader), f.data, Record{})
	if err == nil || errors.Is(err, ErrSpoiled) || !strings.Contains(err.Error(), "per-card algorithm") {
		t.Fatalf("AES key on 3DES-only stock: %v", err)
	}
	if objs, keys := reader.Card().Inspect(); len(objs) != 0 || len(keys) != 0 {
		t.Fatalf("the refused card holds objects %X and keys %X", objs, keys)
	}
}
