// Package pgtest runs a private PostgreSQL server for a test process, from
// Debian's postgresql package: initdb into a temporary directory, then the
// server on a Unix socket in that directory (no TCP) under its own port
// number, with fsync on, so durability and commit rates are real. One
// server serves the whole `go test` process; each test gets a fresh
// database.
//
// Use from a package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//	func TestX(t *testing.T) { url := pgtest.URL(t); … queue.Open(url) … }
//
// PostgreSQL refuses to run as root: under root the server runs as the
// postgres system user (made by the package), in a directory it owns.
// Without PostgreSQL installed the tests are skipped, or fail when
// STATION_REQUIRE_INTEGRATION=1.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"id06/queue"
)

// Server is a running private PostgreSQL.
type Server struct {
	Dir  string // data directory and socket directory, removed by Stop
	Port int
	bin  string // the directory of initdb, postgres, pg_ctl
	cred *syscall.Credential

	mu    sync.Mutex
	cmd   *exec.Cmd
	exit  chan error
	admin *sql.DB
}

var (
	once    sync.Once
	shared  *Server
	initErr error
	dbSeq   atomic.Int64
)

// Main runs the tests and stops the server they started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Shared returns the process's server, starting it on first use; t is
// skipped (or failed when STATION_REQUIRE_INTEGRATION=1) when PostgreSQL
// cannot run here.
func Shared(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, initErr = Start() })
	if initErr != nil {
		if os.Getenv("STATION_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("PostgreSQL: %v", initErr)
		}
		t.Skipf("PostgreSQL: %v", initErr)
	}
	return shared
}

// URL makes a new empty database on the shared server for this test and
// returns its postgres:// URL; the database is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := s.CreateDatabase(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := s.admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return s.URL(name)
}

// BinDir finds the PostgreSQL server programs: where `postgres` is, on
// the PATH or in Debian's /usr/lib/postgresql/VERSION/bin (the newest).
func BinDir() (string, error) {
	p, err := queue.PostgresTool("postgres")
	if err != nil {
		return "", fmt.Errorf("%w (make test-deps installs it)", err)
	}
	// A link on the PATH points into the version's own directory, where
	// its other programs are.
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return filepath.Dir(p), nil
}

// Start initialises and starts a new server.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user (Debian's postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "--pgdata="+s.dataDir(), "--username=postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if s.admin, err = sql.Open("pgx", s.URL("postgres")); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// start runs the server as a child of the test process that dies with it
// (no server is left behind by a test binary killed on a timeout), and
// waits until it takes connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir(),
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+s.Dir, "-c", "port="+strconv.Itoa(s.Port),
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=300",
		"-c", "shared_buffers=64MB", "-c", "logging_collector=off")
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	log, err := os.OpenFile(filepath.Join(s.Dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.Dial("unix", filepath.Join(s.Dir, fmt.Sprintf(".s.PGSQL.%d", s.Port)))
		if err == nil {
			conn.Close()
			if s.ping() == nil {
				return nil
			}
		}
		select {
		case err := <-exit:
			exit <- err
			return fmt.Errorf("postgres exited: %v: %s", err, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not start within a minute: %s", s.Log())
		}
	}
}

func (s *Server) ping() error {
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// stop shuts the server down the way `pg_ctl stop -m fast` does (SIGINT:
// roll back open transactions, checkpoint, exit) and waits for it.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exit:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Restart stops the server (fast: open transactions roll back, clients are
// cut off) and starts it again, as `pg_ctl restart -m fast` does; down
// holds it stopped in between.
func (s *Server) Restart(down time.Duration) error {
	s.stop()
	time.Sleep(down)
	return s.start()
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	s.stop()
	os.RemoveAll(s.Dir)
}

// URL is the postgres:// URL of database name on this server.
func (s *Server) URL(name string) string {
	q := url.Values{"host": {s.Dir}, "port": {strconv.Itoa(s.Port)}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + name + "?" + q.Encode()
}

// CreateDatabase makes an empty database.
func (s *Server) CreateDatabase(name string) error {
	_, err := s.admin.Exec(`CREATE DATABASE ` + name + ` TEMPLATE template0`)
	return err
}

// Bin is the path of one of the server's programs (pgbench, psql, pg_dump).
func (s *Server) Bin(name string) string { return filepath.Join(s.bin, name) }

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
