// Package integration decides what an integration test does when a real
// part it needs is missing: it skips on a developer's machine and fails in
// CI (STATION_REQUIRE_INTEGRATION=1), so that CI never passes by skipping.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Missing fails the test in CI and skips it elsewhere, saying what is
// missing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("STATION_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set STATION_REQUIRE_INTEGRATION=1 to make this fatal)")
}

// Tool returns the path of an external tool, or calls Missing naming the
// Debian package that has it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found: apt-get install %s", name, pkg)
	}
	return p
}
