package main

import (
	"encoding/pem"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/internal/integration"
	"id06/personalize/pcscdtest"
	"id06/personalize/softhsmtest"
)

// The station with its keys in a SoftHSM2 token, end to end through the
// real pcscd: the card it makes carries 9A and 9E certificates and a CHUID
// that verify (openssl) against the CA certificate, while no private key
// exists anywhere in the data directory — they were made and used inside
// the token.
func TestStationWithPKCS11Token(t *testing.T) {
	skipShort(t, "runs pcscd, SoftHSM2 and the real binary")
	integration.Tool(t, "yubico-piv-tool", "yubico-piv-tool")
	integration.Tool(t, "openssl", "openssl")
	tok := softhsmtest.New(t)
	bin := stationBinary(t)
	env := pcscdtest.Start(t, []string{bin, "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	dir := t.TempDir()
	pinFile := filepath.Join(t.TempDir(), "hsm.pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "station.json")
	if err := os.WriteFile(conf, []byte(`{"pkcs11_module": "`+tok.Module+`", "pkcs11_token": "`+tok.Label+`", "pkcs11_pin_file": "`+pinFile+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemonEnv(t, dir, env.Environ(), "--reader", "pcsc:"+pcscdtest.ReaderName, "--config", conf)
	d.submit("hsm-1", passPhotos(t)[2])
	d.produced("hsm-1", 3*time.Minute)
	d.stop()

	// QA verify with the station's configuration reaches the master key in
	// the token: the card takes the per-card key derived there.
	cmd := exec.Command(bin, "verify", "--reader", "Virtual", "--json", "--data", dir, "--config", conf)
	cmd.Env = env.Environ()
	out, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), `"name": "management key: this station's per-card key",
      "status": "pass"`) || strings.Contains(string(out), `"status": "fail"`) {
		t.Fatalf("verify with the token: exit %d\n%s", code, out)
	}

	// No private or secret key in the data directory.
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "PRIVATE KEY") || strings.HasSuffix(path, ".key") && !strings.HasSuffix(path, "supplier-age.key") {
			t.Errorf("%s holds a key although the keys are in the token", path)
		}
		return nil
	})

	tool := func(args ...string) string {
		cmd := exec.Command("yubico-piv-tool", append([]string{"-r", "Virtual"}, args...)...)
		cmd.Env = env.Environ()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("yubico-piv-tool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ca := filepath.Join(dir, "pki", "ca.pem")
	tmp := t.TempDir()
	for _, slot := range []string{"9a", "9e"} {
		certPEM := tool("-a", "read-certificate", "-s", slot)
		if b, _ := pem.Decode([]byte(certPEM)); b == nil {
			t.Fatalf("slot %s: no certificate:\n%s", slot, certPEM)
		}
		path := filepath.Join(tmp, slot+".pem")
		os.WriteFile(path, []byte(certPEM), 0o600)
		if out, err := exec.Command("openssl", "verify", "-CAfile", ca, "-purpose", "any", path).CombinedOutput(); err != nil {
			t.Errorf("openssl verify of the %s certificate: %v\n%s", slot, err, out)
		}
	}
	// The CHUID's signature (the content signer's certificate inside it)
	// verifies against the CA.
	chuidFile := filepath.Join(tmp, "chuid.bin")
	tool("-a", "read-object", "--id", "0x5FC102", "-f", "binary", "-o", chuidFile)
	chuid, err := os.ReadFile(chuidFile)
	if err != nil {
		t.Fatal(err)
	}
	signed, sig := splitCHUID(t, chuid)
	os.WriteFile(filepath.Join(tmp, "signed.bin"), signed, 0o600)
	os.WriteFile(filepath.Join(tmp, "sig.p7"), sig, 0o600)
	if out, err := exec.Command("openssl", "cms", "-verify", "-inform", "DER", "-binary", "-in", filepath.Join(tmp, "sig.p7"),
		"-content", filepath.Join(tmp, "signed.bin"), "-CAfile", ca, "-purpose", "any", "-out", os.DevNull).CombinedOutput(); err != nil {
		t.Errorf("openssl cms -verify of the CHUID: %v\n%s", err, out)
	}
}

// splitCHUID returns the CHUID elements before the signature (what it
// signs) and the signature (tag 3E), from a CHUID value.
func splitCHUID(t *testing.T, v []byte) (signed, sig []byte) {
	t.Helper()
	for i := 0; i < len(v); {
		tag := v[i]
		n, hdr := int(v[i+1]), 2
		switch v[i+1] {
		case 0x81:
			n, hdr = int(v[i+2]), 3
		case 0x82:
			n, hdr = int(v[i+2])<<8|int(v[i+3]), 4
		}
		if tag == 0x3E {
			return v[:i], v[i+hdr : i+hdr+n]
		}
		i += hdr + n
	}
	t.Fatalf("CHUID without a signature: % X", v)
	return nil, nil
}
