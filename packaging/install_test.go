package packaging

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"id06/personalize/pcscdtest"
)

// testMarker tells a later run that the installed package is this test's,
// left by a run that was killed before its cleanup.
const testMarker = "/var/lib/station/.installed-by-packaging-test"

// TestInstallOnThisMachine installs the package with dpkg -i, checks what
// the maintainer scripts made, runs the station as the unit would (as user
// station, with the real pcscd), then removes and purges it. It changes the
// machine, so it runs only as root in CI (CI=true or
// STATION_REQUIRE_INTEGRATION=1); the purge runs even when a check fails.
// systemd is not PID 1 in CI, so the service itself is not started.
func TestInstallOnThisMachine(t *testing.T) {
	required := os.Getenv("STATION_REQUIRE_INTEGRATION") == "1"
	switch {
	case os.Geteuid() != 0 && required:
		t.Fatal("installing the package needs root (dpkg -i); run the tests as root in CI")
	case os.Geteuid() != 0 || !required && os.Getenv("CI") != "true":
		t.Skip("installs the package on this machine with dpkg -i and purges it: runs only as root with STATION_REQUIRE_INTEGRATION=1 or CI=true")
	}
	deb, _ := builtDeb(t)
	needTools(t, map[string]string{"systemd-analyze": "systemd", "runuser": "util-linux", "adduser": "adduser"})
	if dpkgInstalled("station") {
		if _, err := os.Stat(testMarker); err != nil {
			t.Fatal("a station package is installed on this machine, not by this test; the test would purge it and its database. Back up and purge it first (dpkg -P station).")
		}
		t.Log("purging the package an interrupted run of this test left")
		mustRun(t, "dpkg", "-P", "station")
	}
	_, err := user.Lookup("station")
	userExisted := err == nil
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "-P", "station").CombinedOutput(); err != nil {
			t.Errorf("dpkg -P station: %v\n%s", err, out)
		}
		if !userExisted {
			exec.Command("deluser", "--system", "station").Run()
			exec.Command("delgroup", "--system", "station").Run()
		}
	})

	dpkg(t, "-i", deb)
	writeFile(t, testMarker, "", 0o600)

	station, err := user.Lookup("station")
	if err != nil {
		t.Fatalf("postinst made no user station: %v", err)
	}
	uid, _ := strconv.Atoi(station.Uid)
	gid, _ := strconv.Atoi(station.Gid)
	if uid >= 1000 || station.HomeDir != "/var/lib/station" {
		t.Errorf("user station: uid %d home %s, want a system uid and /var/lib/station", uid, station.HomeDir)
	}
	if g, err := user.LookupGroupId(station.Gid); err != nil || g.Name != "station" {
		t.Errorf("user station's group: %v %v, want station", g, err)
	}
	if ent := mustRun(t, "getent", "passwd", "station"); !strings.HasSuffix(strings.TrimSpace(ent), ":/usr/sbin/nologin") {
		t.Errorf("user station can log in: %s", ent)
	}
	for _, f := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"/var/lib/station", os.ModeDir | 0o700, uid, gid},
		{"/etc/station/config.json", 0o640, 0, gid},
		{"/etc/station/station.env", 0o600, 0, 0},
		{"/usr/bin/station", 0o755, 0, 0},
	} {
		checkFile(t, f.path, f.mode, f.uid, f.gid)
	}

	if out := mustRun(t, "/usr/bin/station", "help"); !strings.Contains(out, "station serve") {
		t.Errorf("station help:\n%s", out)
	}
	// On the machine, with its systemd units: the dependencies resolve too.
	if out, err := run("systemd-analyze", "verify", "--man=no", "station.service"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify station.service: %v\n%s", err, out)
	}
	checkPcscdOpen(t)

	// The README's first operator, as the README says to make it.
	cmd := exec.Command("runuser", "-u", "station", "--", "station", "user", "add", "floor-admin", "--role", "admin", "--data", "/var/lib/station")
	cmd.Stdin = strings.NewReader("a long enough test password\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "user floor-admin added") {
		t.Fatalf("station user add as user station: %v\n%s", err, out)
	}
	checkFile(t, "/var/lib/station/station.db", anyMode, uid, gid)

	// The administrator's part of the README: the issuing CA and the sealing
	// recipient into the config, the key readable by group station.
	caCert, caKey, sealTo := issuingKeys(t, "/etc/station")
	t.Cleanup(func() { os.Remove(caCert); os.Remove(caKey); os.Remove("/etc/station") })
	os.Chown(caKey, 0, gid)
	os.Chmod(caKey, 0o640)
	config, err := os.ReadFile("/etc/station/config.json")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.NewReplacer(`"ca_cert": ""`, `"ca_cert": "`+caCert+`"`, `"ca_key": ""`, `"ca_key": "`+caKey+`"`,
		`"seal_to": ""`, `"seal_to": "`+sealTo+`"`).Replace(string(config))
	if strings.Count(edited, "/etc/station/ca") != 2 || !strings.Contains(edited, sealTo) {
		t.Fatalf("the default config has no empty ca_cert, ca_key and seal_to to fill in:\n%s", config)
	}
	if err := os.WriteFile("/etc/station/config.json", []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}

	// The unit's command as user station with that config (production,
	// reader pcsc) against a real pcscd with a card in its reader. Only the
	// listen address is moved off 8080.
	env := pcscdtest.Start(t, []string{"/usr/bin/station", "sim", "card", "--vpcd", pcscdtest.VPCDAddr})
	for _, d := range []string{env.Dir, filepath.Dir(env.SocketPath)} {
		os.Chmod(d, 0o711) // pcscdtest's directories are root's; the socket itself is pcscd's
	}
	readers := asStation(exec.Command("/usr/bin/station", "readers"), uid, gid, env.SocketPath)
	if out, err := readers.CombinedOutput(); err != nil || !strings.Contains(string(out), env.ReaderName) {
		t.Fatalf("station readers as user station (no extra group): %v\n%s", err, out)
	}
	serve := asStation(exec.Command("/bin/true"), uid, gid, env.SocketPath)
	serve.Path, serve.Args = "/usr/bin/station", execStart(t, "/usr/lib/systemd/system/station.service", "/usr/bin/station", "/etc/station/config.json", "/var/lib/station")
	serve.Env = append(serve.Env, environmentFile(t, "/etc/station/station.env")...)
	serve.Env = append(serve.Env, "STATION_LISTEN=127.0.0.1:0")
	serveLikeSystemd(t, serve)
	env.Stop()

	// The edited config survives a reinstall (it is a conffile), with its mode.
	dpkg(t, "-i", deb)
	if b, _ := os.ReadFile("/etc/station/config.json"); string(b) != edited {
		t.Errorf("reinstalling replaced the edited config:\n%s", b)
	}
	checkFile(t, "/etc/station/config.json", 0o640, 0, gid)

	// Removal keeps the database and the config; purge deletes both.
	out := dpkg(t, "-r", "station")
	if _, err := os.Stat("/usr/bin/station"); err == nil {
		t.Error("dpkg -r left /usr/bin/station")
	}
	for _, p := range []string{"/var/lib/station/station.db", "/etc/station/config.json"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dpkg -r removed %s: %v", p, err)
		}
	}
	if !strings.Contains(out, "stays in /var/lib/station") {
		t.Errorf("dpkg -r did not say where the data stays:\n%s", out)
	}
	out = dpkg(t, "-P", "station")
	// The administrator's own key files stay; the package's files go.
	for _, p := range []string{"/var/lib/station", "/etc/station/config.json", "/etc/station/station.env"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("dpkg -P left %s", p)
		}
	}
	if !strings.Contains(out, "numbers are reused") {
		t.Errorf("dpkg -P did not warn about the card-number register:\n%s", out)
	}
	if out, err := run("dpkg-statoverride", "--list", "/etc/station/config.json"); err == nil {
		t.Errorf("dpkg -P left the statoverride: %s", out)
	}
	if dpkgInstalled("station") {
		t.Error("station still installed after dpkg -P")
	}
}

// dpkg runs dpkg and returns everything it and the maintainer scripts said.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func dpkgInstalled(pkg string) bool {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return strings.HasSuffix(string(out), " installed")
}

// anyMode makes checkFile check the owner only.
const anyMode = ^os.FileMode(0)

func checkFile(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if mode != anyMode && fi.Mode()&(os.ModeDir|os.ModePerm) != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// asStation runs cmd as user station with no supplementary group, in the
// environment systemd gives the unit, with libpcsclite pointed at sock.
func asStation(cmd *exec.Cmd, uid, gid int, sock string) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/var/lib/station", "USER=station", "LOGNAME=station", "PCSCLITE_CSOCK_NAME=" + sock}
	return cmd
}

// environmentFile reads NAME=value lines as systemd's EnvironmentFile= does
// (comments and blank lines skipped).
func environmentFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	return env
}

// checkPcscdOpen backs the README's claim that user station needs no group
// to reach the machine's pcscd: Debian's socket unit opens the socket to
// every local user, and a pcscd that asks polkit finds the package's rule.
func checkPcscdOpen(t *testing.T) {
	t.Helper()
	var unit map[string][]string
	for _, p := range []string{"/usr/lib/systemd/system/pcscd.socket", "/lib/systemd/system/pcscd.socket"} {
		if _, err := os.Stat(p); err == nil {
			unit = unitSettings(t, p)
			break
		}
	}
	if unit == nil {
		t.Fatal("pcscd.socket not found: is pcscd installed (a Depends of the package)?")
	}
	if m := unit["SocketMode"]; len(m) != 1 || m[0] != "0666" {
		t.Errorf("pcscd.socket has SocketMode=%q: user station may need a group to reach pcscd; update the README and postinst", m)
	}
	libs := mustRun(t, "ldd", "/usr/sbin/pcscd")
	if strings.Contains(libs, "libpolkit") {
		if _, err := os.Stat("/usr/share/polkit-1/rules.d/60-station-pcscd.rules"); err != nil {
			t.Errorf("pcscd asks polkit and the station's rule is missing: %v", err)
		}
		t.Log("pcscd asks polkit: the package's rule lets user station in")
	} else {
		t.Log("pcscd does not ask polkit: its 0666 socket lets user station in")
	}
}
