package packaging

import (
	"bytes"
	"debug/elf"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	envUnderWX    = "PACKAGING_UNDER_WX"
	wxUnsupported = 86 // execUnderWX's exit code when the kernel lacks PR_SET_MDWE
)

// execUnderWX runs in a re-executed test binary: it turns on the kernel's
// W^X switch (PR_SET_MDWE with PR_MDWE_REFUSE_EXEC_GAIN, Linux 6.3+),
// checks that it holds, and execs os.Args[1:], which keeps it. It stands in
// for the unit's MemoryDenyWriteExecute=, which refuses the same mappings
// (writable and executable, or made executable later) with seccomp.
func execUnderWX() {
	const prSetMDWE, refuseExecGain = 65, 1
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetMDWE, refuseExecGain, 0, 0, 0, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_MDWE):", e)
		os.Exit(wxUnsupported)
	}
	if m, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, syscall.MAP_PRIVATE|syscall.MAP_ANON); err == nil {
		syscall.Munmap(m)
		fmt.Fprintln(os.Stderr, "PR_SET_MDWE is on but a writable executable mapping was granted")
		os.Exit(1)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, envUnderWX+"=") {
			env = append(env, e)
		}
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], env)
	fmt.Fprintln(os.Stderr, "exec:", err)
	os.Exit(127)
}

// underWX makes a command that runs args under the W^X switch.
func underWX(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), envUnderWX+"=1")
	return cmd
}

// TestBinaryUnderWX backs MemoryDenyWriteExecute=yes: neither the binary nor
// a library it links asks for text relocations or an executable stack (the
// loader would need writable code for those), and the packaged binary checks
// a real portrait (libjpeg-turbo, pigo) and serves (SQLite, TLS keys, HTTP)
// with writable-and-executable memory refused by the kernel.
func TestBinaryUnderWX(t *testing.T) {
	_, root := builtDeb(t)
	bin := filepath.Join(root, "usr/bin/station")
	for _, f := range append([]string{bin}, lddPaths(t, bin)...) {
		if err := needsNoWritableCode(f); err != nil {
			t.Error(err)
		}
	}

	cmd := underWX(t, bin, "photo", "check", sharedPortrait(t))
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == wxUnsupported {
		t.Skipf("this kernel has no W^X switch (PR_SET_MDWE, Linux 6.3+): %s", out)
	}
	if err != nil || !strings.Contains(string(out), ": PASS") {
		t.Fatalf("station photo check under W^X: %v\n%s", err, out)
	}

	// The packaged config is a production one: without the issuing CA and
	// the sealing recipient it refuses to start, naming them.
	args := execStart(t, filepath.Join(root, unitPath), bin, filepath.Join(root, "etc/station/config.json"), t.TempDir())
	out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
	for _, want := range []string{"configure ca_cert and ca_key", "configure seal_to"} {
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("the packaged config without keys: %v, want an error saying %q:\n%s", err, want, out)
		}
	}

	caCert, caKey, sealTo := issuingKeys(t, t.TempDir())
	cmd = underWX(t, args...)
	cmd.Env = append(cmd.Env, "STATION_CA_CERT="+caCert, "STATION_CA_KEY="+caKey, "STATION_SEAL_TO="+sealTo,
		"STATION_READER=sim", "STATION_LISTEN=127.0.0.1:0")
	serveLikeSystemd(t, cmd)
}

// needsNoWritableCode reads an ELF file's program headers and dynamic tags.
func needsNoWritableCode(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	stack := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_GNU_STACK {
			stack = true
			if p.Flags&elf.PF_X != 0 {
				return fmt.Errorf("%s asks for an executable stack", path)
			}
		}
	}
	if !stack {
		return fmt.Errorf("%s has no PT_GNU_STACK header: the loader would make the stack executable", path)
	}
	if v, _ := f.DynValue(elf.DT_TEXTREL); len(v) > 0 {
		return fmt.Errorf("%s has text relocations", path)
	}
	if v, _ := f.DynValue(elf.DT_FLAGS); len(v) > 0 && v[0]&uint64(elf.DF_TEXTREL) != 0 {
		return fmt.Errorf("%s has text relocations (DF_TEXTREL)", path)
	}
	return nil
}

// lddPaths lists the shared library files ldd resolves for bin.
func lddPaths(t *testing.T, bin string) []string {
	t.Helper()
	var paths []string
	for _, line := range strings.Split(mustRun(t, "ldd", bin), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
		// linux-vdso.so.1 has no file.
		switch f := strings.Fields(line); {
		case len(f) == 4 && f[1] == "=>":
			paths = append(paths, f[2])
		case len(f) == 2 && strings.HasPrefix(f[0], "/"):
			paths = append(paths, f[0])
		}
	}
	if len(paths) == 0 {
		t.Fatalf("ldd %s found no shared libraries", bin)
	}
	return paths
}

// sharedPortrait finds a portrait the photo rules pass, in the team's
// shared/testdata above the repository.
func sharedPortrait(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if m, _ := filepath.Glob(filepath.Join(d, "shared", "testdata", "photos", "dev", "pass_london_*.jpg")); len(m) > 0 {
			return m[0]
		}
	}
	t.Fatal("shared/testdata/photos/dev/pass_london_*.jpg not found above " + dir)
	return ""
}

// execStart is the unit's ExecStart with the binary, the configuration file
// and the data directory moved to bin, config and data.
func execStart(t *testing.T, unit, bin, config, data string) []string {
	t.Helper()
	u := unitSettings(t, unit)
	if len(u["ExecStart"]) != 1 {
		t.Fatalf("ExecStart %q", u["ExecStart"])
	}
	args := strings.Fields(u["ExecStart"][0])
	for i, a := range args {
		switch a {
		case "/usr/bin/station":
			args[i] = bin
		case "/etc/station/config.json":
			args[i] = config
		case "/var/lib/station":
			args[i] = data
		}
	}
	return args
}

// serveLikeSystemd runs `station serve` as a Type=notify unit: it must send
// READY=1 when it answers HTTP, STOPPING=1 after SIGTERM, and exit 0.
func serveLikeSystemd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	dir, err := os.MkdirTemp("", "notify-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // the station may run as another user
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	os.Chmod(sock, 0o666)

	var stderr bytes.Buffer
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("station stderr:\n%s", stderr.String())
		}
	}()
	msgs := make(chan string, 2)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if ok {
				return m
			}
		case err := <-done:
			done <- err
			// A message sent just before exiting is already in the socket's
			// buffer: the reader may simply not have passed it on yet.
			select {
			case m, ok := <-msgs:
				if ok {
					return m
				}
			case <-time.After(5 * time.Second):
			}
			t.Fatalf("station exited (%v) before its next sd_notify message", err)
		case <-time.After(60 * time.Second):
		}
		t.Fatal("no sd_notify message within 60 s")
		return ""
	}
	ready := next()
	addr, ok := strings.CutPrefix(ready, "READY=1\nSTATUS=listening on ")
	if !ok {
		t.Fatalf("first sd_notify message %q, want READY=1 and the address", ready)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("READY=1 but /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if msg := next(); msg != "STOPPING=1" {
		t.Fatalf("sd_notify after SIGTERM %q, want STOPPING=1", msg)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("station exited with %v after SIGTERM", err)
		}
	case <-time.After(90 * time.Second): // the unit's TimeoutStopSec
		t.Fatal("station still running 90 s after SIGTERM")
	}
}
