// Package softhsmtest gives a test its own SoftHSM2 token (Debian's
// softhsm2), in a temporary directory, as the PKCS#11 token the station
// keeps its keys in. Without softhsm2 the test is skipped, or fails when
// STATION_REQUIRE_INTEGRATION=1.
package softhsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"id06/internal/integration"
)

// Token is an initialised SoftHSM2 token.
type Token struct {
	Module string // the PKCS#11 module
	Label  string
	PIN    string // the user PIN
	Conf   string // the SOFTHSM2_CONF file naming the token directory
	Dir    string // the token directory
}

// Modules lists where Debian installs the SoftHSM2 PKCS#11 module.
var Modules = []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"}

// New initialises a token in t.TempDir() and points this process's
// SOFTHSM2_CONF at it (child processes need Environ).
func New(t testing.TB) *Token {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		integration.Missing(t, "softhsm2-util not found: apt-get install softhsm2")
	}
	tok := &Token{Label: "id06-test", PIN: "246813"}
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			tok.Module = m
			break
		}
	}
	if tok.Module == "" {
		integration.Missing(t, "libsofthsm2.so not found: apt-get install softhsm2")
	}
	dir := t.TempDir()
	tok.Dir = filepath.Join(dir, "tokens")
	tok.Conf = filepath.Join(dir, "softhsm2.conf")
	if err := os.Mkdir(tok.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tok.Dir)
	if err := os.WriteFile(tok.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", tok.Conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", tok.Label, "--so-pin", "13572468", "--pin", tok.PIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return tok
}

// Environ is os.Environ() with this token's SOFTHSM2_CONF.
func (tok *Token) Environ() []string {
	return append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
}
