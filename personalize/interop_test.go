package personalize

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"id06/internal/integration"
)

// TestCMSVerifiesWithOpenSSL checks the three signed objects with an
// independent CMS implementation: the CHUID signature (detached, signer
// certificate embedded), the facial image signature and the security
// object (no certificate: the signer comes from the CHUID).
func TestCMSVerifiesWithOpenSSL(t *testing.T) {
	integration.Tool(t, "openssl", "openssl")
	f := newFixture(t, DefaultStock())
	sign := signer{f.p.pki.signerCert, f.p.pki.signerKey}
	fasc, err := newFASCN(f.data.CardNumber)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := fasc.encode()
	if err != nil {
		t.Fatal(err)
	}
	chuidV, err := buildCHUID(sign, fb, f.data.CardUUID, f.data.ValidUntil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCHUID(chuidV)
	if err != nil {
		t.Fatal(err)
	}
	facialV, err := buildFacial(sign, f.data.FacialJPEG, fb, f.data.CardUUID, f.now, f.data.ValidUntil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := parseFacial(facialV)
	if err != nil {
		t.Fatal(err)
	}
	containers := map[uint][]byte{}
	for _, o := range []object{objCHUID, objCCC, objPrinted, objFacial} {
		containers[o.Tag] = container([]byte(o.Name))
	}
	soV, err := buildSecurityObject(sign, containers)
	if err != nil {
		t.Fatal(err)
	}
	so, err := parseSecurityObject(soV)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string { return writeFile(t, dir, name, b) }
	ca := filepath.Join(f.dir, caCertFile)
	signerPEM := filepath.Join(f.dir, signerCertFile)
	tests := []struct {
		name string
		args []string
	}{
		{"CHUID", []string{"-in", write("chuid.p7", c.Signature), "-content", write("chuid.bin", c.Signed)}},
		{"Facial Image", []string{"-in", write("facial.p7", fi.Signature), "-content", write("facial.bin", fi.Signed), "-certfile", signerPEM}},
		{"Security Object", []string{"-in", write("so.p7", so.CMS), "-certfile", signerPEM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"cms", "-verify", "-inform", "DER", "-binary", "-CAfile", ca, "-purpose", "any", "-out", os.DevNull}, tt.args...)
			if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v\n%s", args, err, out)
			}
		})
	}
	// A flipped byte in the signed content must fail, or the test proves nothing.
	bad := append([]byte(nil), c.Signed...)
	bad[len(bad)-1] ^= 1
	args := []string{"cms", "-verify", "-inform", "DER", "-binary", "-CAfile", ca, "-purpose", "any", "-out", os.DevNull,
		"-in", filepath.Join(dir, "chuid.p7"), "-content", write("bad.bin", bad)}
	if err := exec.Command("openssl", args...).Run(); err == nil {
		t.Fatal("openssl accepted a CHUID signature over altered content")
	}
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
