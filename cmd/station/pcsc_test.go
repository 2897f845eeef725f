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
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/internal/integration"
	"id06/personalize/apdu"
	"id06/personalize/pcscdtest"
)

// The whole station through the real pcscd: the daemon encodes a card in
// vpcd's reader (the emulator behind vsmartcard), then QA's `station verify`
// passes on it, and fails naming the object after yubico-piv-tool alters it.
func TestStationThroughPCSCD(t *testing.T) {
	skipShort(t, "runs pcscd and the real binary")
	bin := stationBinary(t)
	env := pcscdtest.Start(t, []string{bin, "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	dir := t.TempDir()
	d := startDaemonEnv(t, dir, env.Environ(), "--reader", "pcsc:"+pcscdtest.ReaderName)
	d.submit("pcsc-1", passPhotos(t)[3])
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
	env.WithCard(t, func(ctx context.Context, card apdu.Card) {
		aid := []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}
		if _, err := apdu.Do(ctx, card, apdu.Command{INS: 0xA4, P1: 0x04, Data: aid, Le: 256}); err != nil {
			t.Fatal(err)
		}
		f(ctx, card)
	})
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

// freePort finds a port to listen on, so that the station's certificates
// can name its own /pki URLs.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Revocation end to end: the card the station made through the real pcscd
// passes openssl verify -crl_check with the CRL fetched from the running
// station, and station verify (which fetches the CRL from the certificate's
// distribution point) passes its revocation check; after POST …/revoke
// both refuse it.
func TestRevocationThroughPCSCD(t *testing.T) {
	skipShort(t, "runs pcscd and the real binary")
	integration.Tool(t, "yubico-piv-tool", "yubico-piv-tool")
	integration.Tool(t, "openssl", "openssl")
	bin := stationBinary(t)
	env := pcscdtest.Start(t, []string{bin, "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	dir := t.TempDir()
	d := startDaemonEnv(t, dir, env.Environ(), "--reader", "pcsc:"+pcscdtest.ReaderName, "--listen", freePort(t))
	d.submit("lost-1", passPhotos(t)[4])
	d.produced("lost-1", 3*time.Minute)
	tmp := t.TempDir()
	get := func(path string) []byte {
		resp, err := http.Get(d.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return b
	}
	openssl := func(args ...string) (string, error) {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		return string(out), err
	}
	ca := filepath.Join(tmp, "ca.pem")
	os.WriteFile(filepath.Join(tmp, "ca.der"), get("/pki/ca.crt"), 0o600)
	if out, err := openssl("x509", "-inform", "DER", "-in", filepath.Join(tmp, "ca.der"), "-out", ca); err != nil {
		t.Fatalf("the served CA certificate: %v\n%s", err, out)
	}
	var certs []string
	for _, slot := range []string{"9a", "9e"} {
		cmd := exec.Command("yubico-piv-tool", "-r", "Virtual", "-a", "read-certificate", "-s", slot)
		cmd.Env = env.Environ()
		pemCert, err := cmd.Output()
		if err != nil {
			t.Fatalf("read-certificate %s: %v", slot, err)
		}
		path := filepath.Join(tmp, slot+".pem")
		os.WriteFile(path, pemCert, 0o600)
		certs = append(certs, path)
	}
	verifyWithCRL := func() []string {
		crlPEM := filepath.Join(tmp, "crl.pem")
		os.WriteFile(filepath.Join(tmp, "crl.der"), get("/pki/ca.crl"), 0o600)
		if out, err := openssl("crl", "-inform", "DER", "-in", filepath.Join(tmp, "crl.der"), "-out", crlPEM); err != nil {
			t.Fatalf("the served CRL: %v\n%s", err, out)
		}
		var outs []string
		for _, c := range certs {
			out, err := openssl("verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", ca, "-purpose", "any", c)
			if err != nil {
				out = "REFUSED " + out
			}
			outs = append(outs, out)
		}
		return outs
	}
	for i, out := range verifyWithCRL() {
		if !strings.Contains(out, ": OK") {
			t.Fatalf("openssl verify -crl_check of the fresh card's certificate %d: %s", i, out)
		}
	}
	stationVerify := func() (int, string) {
		cmd := exec.Command(bin, "verify", "--reader", "Virtual", "--json", "--data", dir)
		cmd.Env = env.Environ()
		out, _ := cmd.Output()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	revocation := func(out string) string {
		var rep struct {
			Checks []struct{ Name, Status, Detail string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("verify output: %v\n%s", err, out)
		}
		for _, c := range rep.Checks {
			if c.Name == "revocation (CRL)" {
				return c.Status + " " + c.Detail
			}
		}
		return ""
	}
	if code, out := stationVerify(); code != 2 || !strings.HasPrefix(revocation(out), "pass") {
		t.Fatalf("station verify of the fresh card: exit %d, revocation %q\n%s", code, revocation(out), out)
	}

	if code, b, _ := d.do(http.MethodPost, "/v1/orders/lost-1/revoke", []byte(`{"reason": "lost"}`)); code != http.StatusOK || !strings.Contains(string(b), `"reason": "lost"`) {
		t.Fatalf("revoke: %d %s", code, b)
	}
	for i, out := range verifyWithCRL() {
		if !strings.Contains(out, "REFUSED") || !strings.Contains(out, "certificate revoked") {
			t.Fatalf("openssl verify -crl_check of revoked certificate %d: %s", i, out)
		}
	}
	if code, out := stationVerify(); code != 1 || !strings.HasPrefix(revocation(out), "fail") {
		t.Fatalf("station verify of the revoked card: exit %d, revocation %q\n%s", code, revocation(out), out)
	}
}
