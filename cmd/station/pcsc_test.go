package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/personalize/apdu"
	"id06/personalize/pcsc"
	"id06/personalize/pcscdtest"
)

// The whole station through the real pcscd: the daemon encodes a card in
// vpcd's reader (the emulator behind vsmartcard), then QA's `station verify`
// passes on it, and fails naming the object after yubico-piv-tool alters it.
func TestStationThroughPCSCD(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pcscd and the real binary")
	}
	bin := stationBinary(t)
	env := pcscdtest.Start(t, []string{bin, "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	dir := t.TempDir()
	d := startDaemonEnv(t, dir, env.Environ(), "--reader", "pcsc:"+pcscdtest.ReaderName)
	if code, b, _ := d.do(http.MethodPost, "/v1/orders", orderJSON(t, "pcsc-1", passPhotos(t)[3], false)); code != http.StatusCreated {
		t.Fatalf("%d %s", code, b)
	}
	o := d.waitFinal([]string{"pcsc-1"}, 3*time.Minute)["pcsc-1"]
	if o.State != "produced" {
		t.Fatalf("pcsc-1 ended %s: %+v\n%s\n%s", o.State, o.Events, d.stderr.String(), env.Log())
	}
	d.stop()

	verify := func() (report struct {
		UID        string
		CardNumber string `json:"card_number"`
		CardUUID   string `json:"card_uuid"`
		OK         bool
		Result     string
		Order      string
		Checks     []struct {
			Name   string
			Status string
			Detail string
		}
	}, code int, out string) {
		cmd := exec.Command(bin, "verify", "--reader", "Virtual", "--json", "--data", dir)
		cmd.Env = env.Environ()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("verify output is not JSON (exit %d): %v\n%s\n%s", code, err, stdout.String(), stderr.String())
		}
		return report, code, stdout.String()
	}
	// Without the PIN (and with no CRL served yet) some checks cannot run:
	// exit 2, nothing failed, the per-card key and 9E checked.
	rep, code, out := verify()
	if code != 2 || rep.OK || rep.Result != "incomplete" || rep.CardNumber != o.CardNumber || rep.Order != "pcsc-1" {
		t.Fatalf("QA verify of a fresh card: exit %d\n%s", code, out)
	}
	status := map[string]string{}
	for _, c := range rep.Checks {
		status[c.Name] = c.Status
	}
	for name, want := range map[string]string{
		"management key: this station's per-card key": "pass", "management key: no well-known key": "pass",
		"key 9E (sign a challenge, no PIN)": "pass", "Facial Image (5FC108)": "skipped", "key 9A (sign a challenge)": "skipped",
	} {
		if status[name] != want {
			t.Errorf("check %q: %q, want %q\n%s", name, status[name], want, out)
		}
	}
	for name, st := range status {
		if st == "fail" {
			t.Errorf("check %q failed on a fresh card\n%s", name, out)
		}
	}
	if !strings.EqualFold(rep.UID, o.ChipUID) {
		t.Errorf("verify reports chip %s, the order recorded %s", rep.UID, o.ChipUID)
	}

	// The stock's transport key (0102…08 ×3, what yubico-piv-tool uses by
	// default) no longer opens the card.
	tool := exec.Command("yubico-piv-tool", "-r", "Virtual", "-a", "set-chuid")
	tool.Env = env.Environ()
	if b, err := tool.CombinedOutput(); err == nil || !strings.Contains(string(b), "authentication") {
		t.Fatalf("yubico-piv-tool set-chuid with the default key on a produced card: %v\n%s", err, b)
	}
	cardKey := derivedCardKey(t, filepath.Join(dir, "pki", "mgmt-master.key"), rep.CardUUID)
	withPCSCCard(t, env, func(ctx context.Context, card apdu.Card) {
		factory := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4)
		for _, k := range []struct {
			alg byte
			key []byte
		}{{0x03, factory[:24]}, {0x08, factory[:16]}, {0x0A, factory[:24]}, {0x0C, factory}, {0x0C, make([]byte, 32)}} {
			if err := mgmtAuth(ctx, card, k.alg, k.key); err == nil {
				t.Errorf("GENERAL AUTHENTICATE with the well-known key %02X/% X succeeded", k.alg, k.key)
			}
		}
		// The key derived independently (openssl's SP 800-108 KBKDF) from
		// the station's master key opens the card; an insider using it to
		// swap the CCC is caught by verify.
		if err := mgmtAuth(ctx, card, 0x0C, cardKey); err != nil {
			t.Fatalf("the derived AES-256 card key: %v", err)
		}
		ccc := []byte{0x5C, 0x03, 0x5F, 0xC1, 0x07, 0x53, 0x04, 0xF0, 0x02, 0x00, 0x00}
		if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xDB, P1: 0x3F, P2: 0xFF, Data: ccc}); err != nil {
			t.Fatal(err)
		}
	})
	rep, code, out = verify()
	if code != 1 || rep.OK {
		t.Fatalf("verify passed a tampered card: exit %d\n%s", code, out)
	}
	named := false
	for _, c := range rep.Checks {
		if c.Status == "fail" && strings.Contains(c.Name, "5FC107") {
			named = true
		}
	}
	if !named {
		t.Fatalf("verify did not name the altered CCC:\n%s", out)
	}
}

// derivedCardKey computes a card's AES-256 management key from the station's
// master key file with openssl's KBKDF (NIST SP 800-108 counter mode,
// HMAC-SHA256), independently of the station's code.
func derivedCardKey(t *testing.T, masterFile, cardUUID string) []byte {
	t.Helper()
	b, err := os.ReadFile(masterFile)
	if err != nil {
		t.Fatal(err)
	}
	var master string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			master = strings.TrimSpace(l)
		}
	}
	id, err := hex.DecodeString(strings.ReplaceAll(cardUUID, "-", ""))
	if err != nil || len(id) != 16 {
		t.Fatalf("card UUID %q", cardUUID)
	}
	out, err := exec.Command("openssl", "kdf", "-keylen", "32", "-kdfopt", "mac:HMAC", "-kdfopt", "digest:SHA2-256",
		"-kdfopt", "hexkey:"+master, "-kdfopt", "hexsalt:"+hex.EncodeToString([]byte("ID06 PIV card management key")),
		"-kdfopt", "hexinfo:"+hex.EncodeToString(append(id, 0x0C)), "KBKDF").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl kdf: %v\n%s", err, out)
	}
	key, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(out)), ":", ""))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// withPCSCCard connects to the vpcd reader through the real pcscd and
// selects the PIV application.
func withPCSCCard(t *testing.T, env *pcscdtest.Env, f func(ctx context.Context, card apdu.Card)) {
	t.Helper()
	r, err := pcsc.Open(env.ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	card, err := r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	aid := []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}
	if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xA4, P1: 0x04, Data: aid, Le: 256}); err != nil {
		t.Fatal(err)
	}
	f(ctx, card)
}

// mgmtAuth is SP 800-73-4 part 2 mutual authentication with a management
// key: decrypt the card's witness, send it back with a challenge, check the
// card's answer.
func mgmtAuth(ctx context.Context, card apdu.Card, alg byte, key []byte) error {
	var blk cipher.Block
	var err error
	if alg == 0x03 {
		blk, err = des.NewTripleDESCipher(key)
	} else {
		blk, err = aes.NewCipher(key)
	}
	if err != nil {
		return err
	}
	n := blk.BlockSize()
	out, err := apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: alg, P2: 0x9B, Data: []byte{0x7C, 0x02, 0x80, 0x00}, Le: 256})
	if err != nil {
		return err
	}
	if len(out) != 4+n {
		return fmt.Errorf("witness % X", out)
	}
	w := make([]byte, n)
	blk.Decrypt(w, out[4:])
	chal := bytes.Repeat([]byte{0x42}, n)
	body := append(append([]byte{0x80, byte(n)}, w...), append([]byte{0x81, byte(n)}, chal...)...)
	body = append(body, 0x82, 0x00)
	out, err = apdu.Do(ctx, card, apdu.Command{INS: 0x87, P1: alg, P2: 0x9B, Data: append([]byte{0x7C, byte(len(body))}, body...), Le: 256})
	if err != nil {
		return err
	}
	want := make([]byte, n)
	blk.Encrypt(want, chal)
	if !bytes.HasSuffix(out, want) {
		return fmt.Errorf("the card's answer % X does not prove the key", out)
	}
	return nil
}
