package pcscdtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/internal/integration"
	"id06/personalize/pcscdtest"
)

func run(t *testing.T, env *pcscdtest.Env, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func must(t *testing.T, env *pcscdtest.Env, name string, args ...string) string {
	t.Helper()
	out, err := run(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// The emulator as yubico-piv-tool, OpenSC's pkcs15-tool and its PKCS#11
// module see it through the real pcscd: generate a key, import a
// certificate, set a CHUID, sign through PKCS#11, change the PIN and the
// management key; import a key on YubiKey-class stock only.
func TestToolsAgainstEmulator(t *testing.T) {
	for _, stock := range []string{"generic", "yubikey"} {
		t.Run(stock, func(t *testing.T) { testTools(t, stock) })
	}
}

func testTools(t *testing.T, stock string) {
	yk := integration.Tool(t, "yubico-piv-tool", "yubico-piv-tool")
	p15 := integration.Tool(t, "pkcs15-tool", "opensc")
	p11 := integration.Tool(t, "pkcs11-tool", "opensc")
	module := ""
	for _, m := range []string{"/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so", "/usr/lib/opensc-pkcs11.so"} {
		if _, err := os.Stat(m); err == nil {
			module = m
		}
	}
	if module == "" {
		t.Skip("opensc-pkcs11.so not found")
	}
	env := pcscdtest.StartStock(t, stock)
	dir := t.TempDir()
	ykr := func(args ...string) string { return must(t, env, yk, append([]string{"-r", "Virtual"}, args...)...) }

	pubPath := filepath.Join(dir, "pub.pem")
	ykr("-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", pubPath)
	pub := readPublicKey(t, pubPath)
	certPath := filepath.Join(dir, "cert.pem")
	writeCert(t, pub, certPath)
	ykr("-a", "import-certificate", "-s", "9a", "-i", certPath)
	ykr("-a", "set-chuid")
	status := ykr("-a", "status")
	for _, want := range []string{"Slot 9a", "ECCP256", "CN=Holder", "CN=Test CA", "PIN tries left:\t3"} {
		if !strings.Contains(status, want) {
			t.Errorf("yubico-piv-tool status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "CHUID:\tNo data") {
		t.Errorf("CHUID missing after set-chuid:\n%s", status)
	}

	dump := must(t, env, p15, "-D")
	for _, want := range []string{"Certificate for PIV Authentication", "Private EC Key [PIV AUTH key]", "MD:guid"} {
		if !strings.Contains(dump, want) {
			t.Errorf("pkcs15-tool -D lacks %q:\n%s", want, dump)
		}
	}

	// OpenSC signs with the on-card key; the signature verifies with the
	// key yubico-piv-tool got from GENERATE.
	data := []byte("sign me through PKCS#11")
	in, sigPath := filepath.Join(dir, "data"), filepath.Join(dir, "sig")
	os.WriteFile(in, data, 0o600)
	must(t, env, p11, "--module", module, "-l", "--pin", "123456", "--sign", "-m", "ECDSA-SHA256", "--id", "01", "-i", in, "-o", sigPath)
	sig, err := os.ReadFile(sigPath)
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature % X, %v", sig, err)
	}
	digest := sha256.Sum256(data)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		t.Fatal("PKCS#11 signature does not verify with the slot 9A key")
	}

	// A key imported with yubico-piv-tool signs its test signature.
	imported, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(imported)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, cert9D := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert9d.pem")
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	writeCert(t, &imported.PublicKey, cert9D)
	if stock == "generic" {
		// Importing a key is a Yubico extension generic stock lacks.
		if out, err := run(t, env, yk, "-r", "Virtual", "-a", "import-key", "-s", "9d", "-i", keyPath); err == nil {
			t.Fatalf("generic stock took a Yubico key import:\n%s", out)
		}
	} else {
		ykr("-a", "import-key", "-s", "9d", "-i", keyPath)
		ykr("-a", "import-certificate", "-s", "9d", "-i", cert9D)
		if out := ykr("-a", "verify-pin", "-P", "123456", "-a", "test-signature", "-s", "9d", "-i", cert9D); !strings.Contains(out, "Successful") {
			t.Errorf("test-signature with the imported key:\n%s", out)
		}
	}

	ykr("-a", "change-pin", "-P", "123456", "-N", "24681357")
	if out, err := run(t, env, yk, "-r", "Virtual", "-a", "verify-pin", "-P", "123456"); err == nil {
		t.Fatalf("old PIN still verifies:\n%s", out)
	}
	ykr("-a", "verify-pin", "-P", "24681357")

	newKey := "0F0E0D0C0B0A09080706050403020100F0E0D0C0B0A09080"
	ykr("-a", "set-mgm-key", "-n", newKey)
	if out, err := run(t, env, yk, "-r", "Virtual", "-a", "set-ccc"); err == nil {
		t.Fatalf("transport management key still works:\n%s", out)
	}
	ykr("-k"+newKey, "-a", "set-ccc")
}

func readPublicKey(t *testing.T, path string) *ecdsa.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s is not PEM:\n%s", path, b)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want P-256", k)
	}
	return pub
}

func writeCert(t *testing.T, pub *ecdsa.PublicKey, path string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Holder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
