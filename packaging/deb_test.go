package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The package is built once per test process, by the script `make deb` runs.
var (
	buildOnce sync.Once
	workDir   string // removed by TestMain
	debFile   string
	debRoot   string // the package's files, extracted with dpkg-deb -x
	buildErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv(envUnderWX) != "" {
		execUnderWX() // does not return
	}
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// requireIntegration skips a test that lacks a tool, or fails it in CI
// (STATION_REQUIRE_INTEGRATION=1).
func requireIntegration(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("STATION_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (set STATION_REQUIRE_INTEGRATION=1 to make this fatal)", args...)
}

// needTools skips or fails the test unless every tool is on PATH; the map
// names the Debian package of each.
func needTools(t testing.TB, tools map[string]string) {
	t.Helper()
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			requireIntegration(t, "%s not found: apt-get install %s", tool, pkg)
		}
	}
}

// builtDeb builds the package with build-deb.sh and extracts it.
func builtDeb(t testing.TB) (deb, root string) {
	t.Helper()
	needTools(t, map[string]string{"go": "golang (Go 1.26)", "gcc": "gcc", "dpkg-deb": "dpkg", "dpkg-shlibdeps": "dpkg-dev"})
	buildOnce.Do(func() {
		if workDir, buildErr = os.MkdirTemp("", "station-deb-"); buildErr != nil {
			return
		}
		var out []byte
		if out, buildErr = run("./build-deb.sh", filepath.Join(workDir, "out")); buildErr != nil {
			return
		}
		debFile = strings.TrimSpace(lastLine(string(out)))
		debRoot = filepath.Join(workDir, "root")
		_, buildErr = run("dpkg-deb", "-x", debFile, debRoot)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return debFile, debRoot
}

// run runs a command and returns its stdout; the error carries stderr.
func run(name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &cmdError{cmd: strings.Join(cmd.Args, " "), err: err, stderr: stderr.String(), stdout: string(out)}
	}
	return out, nil
}

type cmdError struct {
	cmd, stderr, stdout string
	err                 error
}

func (e *cmdError) Error() string {
	return e.cmd + ": " + e.err.Error() + "\n" + e.stdout + e.stderr
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestPackageFiles(t *testing.T) {
	deb, _ := builtDeb(t)
	want := map[string]string{
		"./usr/bin/station":                                   "-rwxr-xr-x root/root",
		"./usr/lib/systemd/system/station.service":            "-rw-r--r-- root/root",
		"./etc/station/config.json":                           "-rw-r--r-- root/root", // 0640 root:station by dpkg-statoverride in postinst
		"./etc/station/station.env":                           "-rw------- root/root",
		"./usr/share/polkit-1/rules.d/60-station-pcscd.rules": "-rw-r--r-- root/root",
		"./usr/share/doc/station/copyright":                   "-rw-r--r-- root/root",
		"./usr/share/doc/station/README.md":                   "-rw-r--r-- root/root",
		"./usr/share/doc/station/hardware.md":                 "-rw-r--r-- root/root",
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(mustRun(t, "dpkg-deb", "-c", deb)))
	for sc.Scan() {
		// -rw-r--r-- root/root  154 2026-12-01 20:18 ./etc/station/config.json
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			t.Errorf("unexpected entry %q", sc.Text())
			continue
		}
		if strings.HasPrefix(f[0], "d") {
			if f[0] != "drwxr-xr-x" || f[1] != "root/root" {
				t.Errorf("directory %s is %s %s, want drwxr-xr-x root/root", f[5], f[0], f[1])
			}
			continue
		}
		got[f[5]] = f[0] + " " + f[1]
	}
	for path, w := range want {
		if got[path] != w {
			t.Errorf("%s: %q, want %q", path, got[path], w)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("unexpected file %s in the package", path)
		}
	}
}

func TestPackageControl(t *testing.T) {
	deb, root := builtDeb(t)
	fields := map[string]string{}
	for _, line := range strings.Split(mustRun(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends"), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			fields[k] = v
		}
	}
	arch := strings.TrimSpace(mustRun(t, "dpkg", "--print-architecture"))
	if fields["Package"] != "station" || fields["Architecture"] != arch {
		t.Errorf("Package %q Architecture %q, want station %s", fields["Package"], fields["Architecture"], arch)
	}
	if !regexp.MustCompile(`^0\.0~git[0-9]{14}\.[0-9a-f]{7,}(\+dirty)?$`).MatchString(fields["Version"]) {
		t.Errorf("Version %q", fields["Version"])
	}
	if filepath.Base(deb) != "station_"+fields["Version"]+"_"+arch+".deb" {
		t.Errorf("file name %s does not follow station_VERSION_ARCH.deb", filepath.Base(deb))
	}

	depends := map[string]bool{}
	for _, d := range strings.Split(fields["Depends"], ",") {
		depends[strings.Fields(d)[0]] = true
	}
	need := map[string]string{"pcscd": "the daemon libpcsclite talks to", "adduser": "the postinst creates the user"}
	for lib, pkg := range linkedPackages(t, filepath.Join(root, "usr/bin/station")) {
		need[pkg] = "provides " + lib
	}
	for pkg, why := range need {
		if !depends[pkg] {
			t.Errorf("Depends %q lacks %s (%s)", fields["Depends"], pkg, why)
		}
	}

	if got := mustRun(t, "dpkg-deb", "-I", deb, "conffiles"); got != "/etc/station/config.json\n/etc/station/station.env\n" {
		t.Errorf("conffiles:\n%s", got)
	}
	ctrl := t.TempDir()
	mustRun(t, "dpkg-deb", "-e", deb, ctrl)
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctrl, s))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s is %v, want 0755", s, fi.Mode().Perm())
		}
		if out, err := run("sh", "-n", filepath.Join(ctrl, s)); err != nil {
			t.Errorf("%s: %v %s", s, err, out)
		}
	}
}

// linkedPackages maps each shared library ldd resolves for bin to the
// Debian package that owns it.
func linkedPackages(t *testing.T, bin string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, path := range lddPaths(t, bin) {
		owner, err := dpkgOwner(path)
		if err != nil {
			t.Fatalf("%s links %s, which no package owns: %v", bin, path, err)
		}
		out[filepath.Base(path)] = owner
	}
	return out
}

// dpkgOwner asks dpkg which package holds path, trying the /usr-merged
// spellings too.
func dpkgOwner(path string) (string, error) {
	var err error
	for _, p := range []string{path, "/usr" + path, strings.TrimPrefix(path, "/usr")} {
		var out []byte
		if out, err = run("dpkg", "-S", p); err == nil {
			pkg, _, _ := strings.Cut(string(out), ": ")
			pkg, _, _ = strings.Cut(pkg, ":") // libc6:amd64
			return pkg, nil
		}
	}
	return "", err
}

// TestLicences checks that the copyright file carries the licence of every
// Go module linked into the packaged binary, of Go itself, and of the
// embedded cascades and fonts.
func TestLicences(t *testing.T) {
	_, root := builtDeb(t)
	b, err := os.ReadFile(filepath.Join(root, "usr/share/doc/station/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	copyright := string(b)
	var sections []string
	for _, line := range strings.Split(mustRun(t, "go", "version", "-m", filepath.Join(root, "usr/bin/station")), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "dep" {
			sections = append(sections, "==== "+f[1]+" "+f[2]+" ====")
		}
	}
	if len(sections) < 10 {
		t.Fatalf("go version -m lists %d modules; expected the station's dependencies", len(sections))
	}
	goVersion := strings.TrimSpace(mustRun(t, "go", "env", "GOVERSION"))
	sections = append(sections,
		"==== Go standard library ("+goVersion+") ====",
		"==== Face-detection cascades facefinder and puploc",
		"==== Go fonts, Go Regular and Go Bold")
	sort.Strings(sections)
	for _, s := range sections {
		i := strings.Index(copyright, s)
		if i < 0 {
			t.Errorf("copyright lacks the section %q", s)
			continue
		}
		// Each section holds at least one licence text.
		if rest := copyright[i+len(s):]; !strings.Contains(firstSection(rest), "--- ") {
			t.Errorf("section %q has no licence file", s)
		}
	}
	for _, text := range []string{"Copyright (c) 2018 Endre Simo", "Bigelow & Holmes"} {
		if !strings.Contains(copyright, text) {
			t.Errorf("copyright lacks %q", text)
		}
	}
}

func firstSection(s string) string {
	if i := strings.Index(s, "\n==== "); i >= 0 {
		return s[:i]
	}
	return s
}
