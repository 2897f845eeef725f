package personalize

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/internal/integration"
)

func testCert(t *testing.T, f *fixture, slot byte) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.p.pki.issueCardCert(slot, k.Public(), f.data, f.now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openssl reads the station's CRL and, with -crl_check, refuses exactly the
// revoked certificate.
func TestCRLWithOpenSSL(t *testing.T) {
	integration.Tool(t, "openssl", "openssl")
	f := newFixture(t, DefaultStock())
	lost, kept := testCert(t, f, slotPIVAuth), testCert(t, f, slotCardAuth)
	der, err := f.p.IssueCRL([]Revoked{{Serial: serialHex(lost), At: f.now.Add(-time.Hour), Reason: ReasonLost}}, 7, f.now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string { return writeFile(t, dir, name, b) }
	crlDER := write("ca.crl", der)
	crlPEM := filepath.Join(dir, "ca-crl.pem")
	out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlDER, "-out", crlPEM, "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	text, _ := os.ReadFile(crlPEM)
	for _, want := range []string{"X509v3 CRL Number", "7", "Key Compromise", strings.ToUpper(serialHex(lost)), "X509v3 Authority Key Identifier"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	ca := filepath.Join(f.dir, caCertFile)
	// openssl checks the CRL at the wall-clock time; the fixture's clock is now.
	verify := func(c *x509.Certificate) (string, error) {
		path := write(serialHex(c)+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		out, err := exec.Command("openssl", "verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", ca, "-purpose", "any", path).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(lost); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -crl_check of the revoked certificate: %v\n%s", err, out)
	}
	if out, err := verify(kept); err != nil {
		t.Errorf("openssl verify -crl_check of a certificate not revoked: %v\n%s", err, out)
	}

	crl, err := ParseCRL(der, f.p.pki.caCert, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if d := crl.list.NextUpdate.Sub(crl.list.ThisUpdate); d > 24*time.Hour || d <= 0 {
		t.Errorf("the CRL is current for %v, want at most 24 h", d)
	}
	if ok, code := crl.Revoked(lost); !ok || code != 1 {
		t.Errorf("lost card: revoked %v, reason %d", ok, code)
	}
	if ok, _ := crl.Revoked(kept); ok {
		t.Error("a certificate not revoked is on the CRL")
	}
	if _, err := ParseCRL(der, f.p.pki.caCert, f.now.Add(25*time.Hour)); err == nil || !strings.Contains(err.Error(), "out of date") {
		t.Errorf("a day-old CRL: %v", err)
	}
	other := newFixture(t, DefaultStock())
	if _, err := ParseCRL(der, other.p.pki.caCert, f.now); err == nil {
		t.Error("a CRL of another CA was accepted")
	}
	if _, err := f.p.IssueCRL([]Revoked{{Serial: "zz", Reason: ReasonLost}}, 8, f.now); err == nil {
		t.Error("a bad serial was put on a CRL")
	}
	if _, err := f.p.IssueCRL([]Revoked{{Serial: "01", Reason: "misplaced"}}, 8, f.now); err == nil {
		t.Error("an unknown reason was put on a CRL")
	}
}

func TestFetchCRL(t *testing.T) {
	body := []byte("crl bytes")
	mux := http.NewServeMux()
	mux.HandleFunc("/pki/ca.crl", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, MaxCRLSize+1)) })
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range MaxCRLSize/4096 + 1 { // no Content-Length: the read limit must catch it
			w.Write(make([]byte, 4096))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Second) })
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://elsewhere/ca.crl", http.StatusFound)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/pki/ca.crl", http.StatusFound) })
	mux.HandleFunc("/gone", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	for _, path := range []string{"/pki/ca.crl", "/moved"} {
		if got, err := FetchCRL(ctx, srv.URL+path, time.Second); err != nil || string(got) != string(body) {
			t.Errorf("%s: %q %v", path, got, err)
		}
	}
	for path, want := range map[string]string{"/big": "larger than", "/big-chunked": "larger than", "/slow": "Timeout", "/to-file": "another scheme", "/gone": "404"} {
		timeout := 10 * time.Second // generous: a loaded machine must not turn every case into a timeout
		if path == "/slow" {
			timeout = 300 * time.Millisecond
		}
		if _, err := FetchCRL(ctx, srv.URL+path, timeout); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error mentioning %q", path, err, want)
		}
	}
	if _, err := FetchCRL(ctx, "file:///etc/passwd", time.Second); err == nil {
		t.Error("a file URL was fetched")
	}
}
