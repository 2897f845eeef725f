package packaging

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitPath = "usr/lib/systemd/system/station.service"

// unitSettings reads a unit file into key → values (a key may repeat).
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// TestUnitSettings pins what the README and the maintainer scripts rely on.
func TestUnitSettings(t *testing.T) {
	_, root := builtDeb(t)
	u := unitSettings(t, filepath.Join(root, unitPath))
	for key, want := range map[string]string{
		"Type":                    "notify",
		"User":                    "station",
		"ExecStart":               "/usr/bin/station serve --config /etc/station/config.json --data /var/lib/station",
		"EnvironmentFile":         "/etc/station/station.env",
		"StateDirectory":          "station", // = /var/lib/station, the one writable path
		"StateDirectoryMode":      "0700",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"TimeoutStopSec":          "90s",
		"CapabilityBoundingSet":   "",
		"ProtectSystem":           "strict",
		"MemoryDenyWriteExecute":  "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	} {
		if got := u[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	// Secrets go to the 0600 EnvironmentFile, never into the world-readable unit.
	if v, ok := u["Environment"]; ok {
		t.Errorf("the unit sets Environment=%q; put it in /etc/station/station.env", v)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the packaged unit, in the
// package's own root (the binary must be there), and checks on a broken copy
// that the same call does catch a bad setting.
func TestUnitVerifies(t *testing.T) {
	_, root := builtDeb(t)
	needTools(t, map[string]string{"systemd-analyze": "systemd"})
	// Dependencies (network-online.target, pcscd.socket) are not in the
	// package's root; the installed test verifies them on the machine.
	verify := func(root string) (string, error) {
		out, err := run("systemd-analyze", "verify", "--man=no", "--recursive-errors=no", "--root="+root, "station.service")
		if err != nil {
			return err.Error(), err
		}
		return string(out), nil
	}
	if out, err := verify(root); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	broken := t.TempDir()
	unit, err := os.ReadFile(filepath.Join(root, unitPath))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(broken, unitPath), strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=stricter", 1), 0o644)
	writeFile(t, filepath.Join(broken, "usr/bin/station"), "#!/bin/sh\n", 0o755)
	if out, err := verify(broken); err == nil || !strings.Contains(out, "stricter") {
		t.Fatalf("systemd-analyze verify passed a unit with ProtectSystem=stricter: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// maxExposure is the highest `systemd-analyze security` score the unit may
// get: 0 is fully locked down, 10 unprotected. What remains is the network
// (the station must reach printers and webhook receivers anywhere) and the
// host's root directory.
const maxExposure = 1.5

var (
	exposureRe       = regexp.MustCompile(`Overall exposure level for station\.service: ([0-9.]+) (\w+)`)
	readmeExposureRe = regexp.MustCompile(`rates the unit \*\*([0-9.]+) (\w+)\*\* \(systemd ([0-9]+)`)
	systemdVersionRe = regexp.MustCompile(`^systemd ([0-9]+)`)
)

// TestUnitExposure scores the unit offline and checks the README's figure
// for the systemd version it names.
func TestUnitExposure(t *testing.T) {
	_, root := builtDeb(t)
	needTools(t, map[string]string{"systemd-analyze": "systemd"})
	out, err := run("systemd-analyze", "security", "--offline=true", "--root="+root, "station.service")
	if err != nil {
		t.Fatal(err)
	}
	m := exposureRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	if score > maxExposure {
		t.Errorf("exposure %s %s, want at most %.1f:\n%s", m[1], m[2], maxExposure, out)
	}
	version := ""
	if v := systemdVersionRe.FindStringSubmatch(mustRun(t, "systemd-analyze", "--version")); v != nil {
		version = v[1]
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	r := readmeExposureRe.FindStringSubmatch(string(readme))
	switch {
	case r == nil:
		t.Errorf("README does not record the exposure (\"rates the unit **%s %s** (systemd %s\")", m[1], m[2], version)
	case r[3] == version && (r[1] != m[1] || r[2] != m[2]):
		t.Errorf("README says %s %s for systemd %s; this systemd scores %s %s", r[1], r[2], r[3], m[1], m[2])
	default:
		t.Logf("exposure %s %s (systemd %s)", m[1], m[2], version)
	}
}
