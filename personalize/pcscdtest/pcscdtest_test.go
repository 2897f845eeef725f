package pcscdtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"id06/personalize/pcscdtest"
)

func TestMain(m *testing.M) {
	pcscdtest.MaybeServeCard()
	os.Exit(m.Run())
}

// The private pcscd answers opensc-tool, a client independent of ours.
func TestOpenSCSeesCard(t *testing.T) {
	env := pcscdtest.Start(t, nil)
	if _, err := exec.LookPath("opensc-tool"); err != nil {
		t.Skip("opensc-tool not installed (apt-get install opensc)")
	}
	cmd := exec.Command("opensc-tool", "-l")
	cmd.Env = env.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opensc-tool -l: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), env.ReaderName) || !strings.Contains(string(out), "Yes") {
		t.Fatalf("opensc-tool -l does not list a card in %q:\n%s", env.ReaderName, out)
	}
}
