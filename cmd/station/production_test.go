package main

import (
	"strings"
	"testing"
)

// Every start on development keys says so in the log; --production refuses
// to start on them and names what to configure.
func TestDevelopmentKeysAreNeverSilent(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	for start := 1; start <= 2; start++ {
		d := startDaemon(t, dir)
		d.stop()
		log := d.stderr.String()
		if !strings.Contains(log, "development CA") || !strings.Contains(log, "development age key") {
			t.Fatalf("start %d does not warn of the development keys:\n%s", start, log)
		}
	}
	_, errOut, code := runCLI(t, "serve", "--production", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	if code == 0 {
		t.Fatal("--production started on development keys")
	}
	for _, want := range []string{"ca_cert", "ca_key", "seal_to"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the refusal does not name %s: %s", want, errOut)
		}
	}
}
