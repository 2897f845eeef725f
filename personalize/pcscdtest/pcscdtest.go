// Package pcscdtest starts, for one test, a private pcscd with vsmartcard's
// vpcd reader and an emulated card behind it, in their own network and
// mount namespaces so they never meet the machine's pcscd or ports.
//
// Use from a package's tests:
//
//	func TestMain(m *testing.M) { pcscdtest.MaybeServeCard(); os.Exit(m.Run()) }
//	func TestX(t *testing.T) { env := pcscdtest.Start(t, nil); … pcsc.Open(env.ReaderName) … }
//
// Start sets PCSCLITE_CSOCK_NAME in the test process, which libpcsclite
// reads once: call Start before any other PC/SC use in the process, and run
// child tools (pkcs15-tool, yubico-piv-tool) with env.Environ(). One Env
// runs at a time per process: Stop it (or end its test) before the next.
//
// Needs pcscd, vsmartcard-vpcd, util-linux (unshare, mount) and iproute2,
// and either root or unprivileged user namespaces. Without them the test is
// skipped, or fails when STATION_REQUIRE_INTEGRATION=1.
package pcscdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"id06/internal/integration"
	"id06/personalize/apdu"
	"id06/personalize/emulator"
	"id06/personalize/pcsc"
	"id06/personalize/vpcd"
)

// VPCDAddr is where vpcd listens inside the private network namespace; a
// card command passed to Start connects there.
const VPCDAddr = "127.0.0.1:35963"

// ReaderName is the name pcscd gives the vpcd reader on port 35963.
const ReaderName = "Virtual PCD 00 00"

const (
	envCard   = "PCSCDTEST_CARD"  // "persistent" or "blanks": run as the card side
	envStock  = "PCSCDTEST_STOCK" // the card side's emulator stock name
	vpcdLib   = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	readyWait = 20 * time.Second
)

// MaybeServeCard turns this process into the card side when Start re-ran
// the test binary for it: it serves an emulated default-stock card to vpcd
// until terminated, then exits. Call it first thing in TestMain.
func MaybeServeCard() {
	mode := os.Getenv(envCard)
	if mode == "" {
		return
	}
	// Die with pcscd (our parent after sh's exec), even if the test
	// process was killed before it could stop us.
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stock, err := emulator.StockNamed(os.Getenv(envStock))
	if err == nil && mode == "blanks" {
		err = vpcd.ServeBlanks(ctx, VPCDAddr, stock)
	} else if err == nil {
		err = vpcd.Serve(ctx, VPCDAddr, emulator.New(stock))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcscdtest card:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Env is a running private pcscd with a card in ReaderName.
type Env struct {
	SocketPath string // pcscd's socket, also exported as PCSCLITE_CSOCK_NAME
	ReaderName string
	Dir        string // configuration and pcscd.log, removed by Stop
	cmd        *exec.Cmd
	done       chan struct{}
	stopOnce   sync.Once
}

// Environ is os.Environ() with PCSCLITE_CSOCK_NAME for child tools.
func (e *Env) Environ() []string {
	return append(os.Environ(), "PCSCLITE_CSOCK_NAME="+e.SocketPath)
}

// Log returns pcscd's and the card's output so far, APDU traces included
// with the data of VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER
// masked: PINs and PUKs stay out of test logs.
func (e *Env) Log() string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, "pcscd.log"))
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		lines[i] = maskSecrets(l)
	}
	return strings.Join(lines, "\n")
}

// maskSecrets hides the data field of a logged APDU that carries a PIN or
// PUK ("APDU: CLA INS P1 P2 Lc data…").
func maskSecrets(line string) string {
	at := strings.Index(line, "APDU: ")
	if at < 0 {
		return line
	}
	f := strings.Fields(line[at+len("APDU: "):])
	if len(f) < 6 {
		return line
	}
	switch strings.ToUpper(f[1]) {
	case "20", "24", "2C":
		for i := 5; i < len(f); i++ {
			f[i] = "**"
		}
		return line[:at] + "APDU: " + strings.Join(f, " ")
	}
	return line
}

var (
	// libpcsclite caches the socket name, so every Env of this process
	// uses the same directory, one at a time.
	baseDir = filepath.Join(os.TempDir(), fmt.Sprintf("pcscdtest-%d", os.Getpid()))
	busy    sync.Mutex
)

// Start runs pcscd and the card side; both stop when the test ends.
// cardCmd runs inside the namespaces and must connect a card to VPCDAddr
// (e.g. station sim card --vpcd 127.0.0.1:35963); nil re-runs the test
// binary, whose TestMain must call MaybeServeCard, with one persistent
// default-stock (generic PIV) card.
func Start(t testing.TB, cardCmd []string) *Env {
	return start(t, cardCmd, "persistent", "generic")
}

// StartStock is Start(t, nil) with one persistent card of the named
// emulator stock (see emulator.StockNamed).
func StartStock(t testing.TB, stock string) *Env {
	return start(t, nil, "persistent", stock)
}

// StartBlanks is Start with a card side that feeds a new blank at every
// reset: each pcsc Connect/Close session sees a fresh card.
func StartBlanks(t testing.TB) *Env {
	return start(t, nil, "blanks", "generic")
}

func start(t testing.TB, cardCmd []string, mode, stock string) *Env {
	t.Helper()
	for _, tool := range []string{"pcscd", "unshare", "ip", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			integration.Missing(t, "pcscdtest: %s not found: apt-get install pcscd util-linux iproute2", tool)
		}
	}
	if _, err := os.Stat(vpcdLib); err != nil {
		integration.Missing(t, "pcscdtest: %s missing: apt-get install vsmartcard-vpcd", vpcdLib)
	}
	removeStale()
	if !busy.TryLock() {
		t.Fatal("pcscdtest: another Env of this process is still running: Stop it first (libpcsclite allows one pcscd socket per process)")
	}
	env := &Env{
		SocketPath: filepath.Join(baseDir, "run", "pcscd.comm"),
		ReaderName: ReaderName,
		Dir:        baseDir,
		done:       make(chan struct{}),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pcscdtest: pcscd and card output:\n%s", env.Log())
		}
		env.Stop()
	})
	// A short path (a unix socket path must fit in 108 bytes), the same for
	// the whole process.
	if err := os.Setenv("PCSCLITE_CSOCK_NAME", env.SocketPath); err != nil {
		t.Fatalf("pcscdtest: %v", err)
	}
	if err := env.writeConfig(); err != nil {
		t.Fatalf("pcscdtest: %v", err)
	}
	cardEnv := []string{}
	if cardCmd == nil {
		exe, err := os.Executable()
		if err != nil {
			t.Fatalf("pcscdtest: %v", err)
		}
		cardCmd = []string{exe, "-test.run=^$"}
		cardEnv = append(cardEnv, envCard+"="+mode, envStock+"="+stock)
	}
	if err := env.run(cardCmd, cardEnv); err != nil {
		t.Fatalf("pcscdtest: %v", err)
	}
	if err := env.waitReady(); err != nil {
		if log := env.Log(); strings.HasPrefix(log, "unshare:") {
			// No namespaces here (not root, user namespaces disabled).
			integration.Missing(t, "pcscdtest: cannot create namespaces: %s", strings.TrimSpace(log))
		}
		t.Fatalf("pcscdtest: %v\n--- pcscd and card output ---\n%s", err, env.Log())
	}
	return env
}

// removeStale deletes the directories of test processes that were killed
// before their Stop ran.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pcscdtest-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "pcscdtest-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

func (e *Env) writeConfig() error {
	for _, d := range []string{"conf", "run"} {
		if err := os.MkdirAll(filepath.Join(e.Dir, d), 0o700); err != nil {
			return err
		}
	}
	os.Remove(e.SocketPath)
	conf := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:%s\nLIBPATH %s\nCHANNELID 0x8C7B\n",
		strings.Split(VPCDAddr, ":")[1], vpcdLib)
	return os.WriteFile(filepath.Join(e.Dir, "conf", "vpcd"), []byte(conf), 0o600)
}

// script runs as root of fresh network and mount namespaces: loopback up,
// pcscd's run directory replaced by ours, the card side in the background,
// pcscd in the foreground.
const script = `set -e
ip link set lo up
mkdir -p /run/pcscd
mount --bind "$PCSCDTEST_RUN" /run/pcscd
"$@" &
exec pcscd --foreground --apdu --info -c "$PCSCDTEST_CONF"
`

func (e *Env) run(cardCmd, cardEnv []string) error {
	args := []string{"--mount", "--net", "--fork", "--kill-child"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user")
	}
	args = append(args, "sh", "-c", script, "pcscdtest")
	args = append(args, cardCmd...)
	log, err := os.Create(filepath.Join(e.Dir, "pcscd.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), cardEnv...)
	cmd.Env = append(cmd.Env,
		"PCSCDTEST_RUN="+filepath.Join(e.Dir, "run"),
		"PCSCDTEST_CONF="+filepath.Join(e.Dir, "conf"),
		"PCSCLITE_CSOCK_NAME=/run/pcscd/pcscd.comm")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting unshare: %w", err)
	}
	e.cmd = cmd
	go func() { cmd.Wait(); close(e.done) }()
	return nil
}

// waitReady waits until pcscd lists the vpcd reader with a card in it.
func (e *Env) waitReady() error {
	deadline := time.Now().Add(readyWait)
	for {
		select {
		case <-e.done:
			return errors.New("pcscd exited during start-up (namespaces need root or user namespaces)")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no card in %q after %v (does TestMain call pcscdtest.MaybeServeCard?)", e.ReaderName, readyWait)
		}
		if _, err := os.Stat(e.SocketPath); err == nil && e.cardPresent() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *Env) cardPresent() bool {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return false
	}
	defer ctx.Release()
	st := []scard.ReaderState{{Reader: e.ReaderName, CurrentState: scard.StateUnaware}}
	if err := ctx.GetStatusChange(st, 0); err != nil {
		return false
	}
	return st[0].EventState&scard.StatePresent != 0
}

// Stop ends pcscd and the card side (also done by the test's cleanup);
// another Start may follow.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		defer busy.Unlock()
		defer os.RemoveAll(e.Dir)
		if e.cmd == nil || e.cmd.Process == nil {
			return
		}
		syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-e.done
		}
	})
}

// WithCard connects to the card in this pcscd's reader (ebfe/scard, as the
// station does), runs f and releases the card. The connection is exclusive:
// tools such as yubico-piv-tool run between such calls.
func (e *Env) WithCard(t testing.TB, f func(ctx context.Context, card apdu.Card)) {
	t.Helper()
	r, err := pcsc.Open(e.ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	card, err := r.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	f(ctx, card)
}

// Trace returns the APDU lines of pcscd's log (pcscd --apdu).
func (e *Env) Trace() []string {
	var out []string
	for _, l := range strings.Split(e.Log(), "\n") {
		if strings.Contains(l, "APDU") || strings.Contains(l, "SW:") {
			out = append(out, l)
		}
	}
	return out
}
