package station

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"id06/imaging"
	"id06/personalize"
	"id06/printer"
	"id06/queue"
)

// Server is a running station: database, devices, pipeline and HTTP.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *queue.Store
	pipeline *Pipeline
	template *printer.Template
	reader   CardReader
	printer  printer.Driver
	chip     *personalize.Personalizer
	keys     *personalize.PKCS11KeyStore // nil: key files in DATA/pki
	crl      crlCache
	metrics  *Metrics
	limiter  *rateLimiter
	hub      *hub
	ops      *opsState // operator page, logins, webhook deliverer
	now      func() time.Time
	lock     *os.File
}

// Open prepares a station from its configuration: it takes the data
// directory's lock, opens the database, rescues the leases of a previous run
// and opens the devices.
func Open(cfg Config, log *slog.Logger) (*Server, error) {
	if err := EnsureDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := ownerOnly(cfg.DataDir, log); err != nil {
		lock.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, now: time.Now, lock: lock, limiter: newRateLimiter(cfg.RatePerSecond, cfg.RateBurst), hub: newHub()}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if s.store, err = queue.Open(cfg.DBPath()); err != nil {
		return nil, err
	}
	if n, err := s.store.Rescue(context.Background(), true); err != nil {
		return nil, err
	} else if n > 0 {
		log.Warn("resuming orders left in progress by the previous run", "orders", n)
	}
	if !cfg.Production {
		if err := s.ensureDevToken(); err != nil {
			return nil, err
		}
	}
	if s.template, err = loadTemplate(cfg.Template); err != nil {
		return nil, err
	}
	if s.reader, err = personalize.OpenReader(cfg.Reader, filepath.Join(cfg.DataDir, "sim"), cfg.Stock); err != nil {
		return nil, fmt.Errorf("card reader %q: %w", cfg.Reader, err)
	}
	stock, err := personalize.Stock(cfg.Stock)
	if err != nil {
		return nil, err
	}
	pc := personalize.Config{PKIDir: filepath.Join(cfg.DataDir, "pki"), CACert: cfg.CACert, CAKey: cfg.CAKey,
		SealTo: cfg.SealTo, Issuer: cfg.Issuer, Stock: stock, Certs: cfg.CertProfile()}
	if s.keys, err = cfg.OpenKeyStore(); err != nil {
		return nil, err
	}
	if s.keys != nil {
		pc.Keys = s.keys
	}
	if s.chip, err = personalize.New(pc); err != nil {
		return nil, err
	}
	// Said at every start, so that nobody runs on them by oversight.
	if cfg.DevelopmentCA() {
		log.Warn("DEVELOPMENT KEYS: cards are signed by the development CA the station made in " + filepath.Join(cfg.DataDir, "pki") +
			"; no relying party trusts it. Configure ca_cert and ca_key (and production: true) for real cards")
	}
	if cfg.DevelopmentSeal() {
		log.Warn("DEVELOPMENT KEYS: PIN and PUK are sealed to the development age key whose private half is in " +
			filepath.Join(cfg.DataDir, "pki") + "; anyone who can read the data directory can open them. Configure seal_to with the supplier's age recipient")
	}
	if s.printer, err = printer.OpenDriver(cfg.Printer, filepath.Join(cfg.DataDir, "spool")); err != nil {
		return nil, fmt.Errorf("printer %q: %w", cfg.Printer, err)
	}
	s.metrics = NewMetrics(s.store, s.deviceStatus)
	s.ops = newOps(s)
	s.pipeline = NewPipeline(s.store, cfg, log, imaging.CheckPhoto, s.reader, s.chip, s.printer, s.template, s.metrics)
	ok = true
	return s, nil
}

func loadTemplate(path string) (*printer.Template, error) {
	if path == "" {
		return printer.DefaultTemplate(), nil
	}
	t, err := printer.LoadTemplate(path)
	if err != nil {
		return nil, fmt.Errorf("card template %s: %w", path, err)
	}
	return t, nil
}

// EnsureDataDir creates the data directory for the station's user alone:
// it holds the database, keys, photos and the dev token.
func EnsureDataDir(dir string) error { return os.MkdirAll(dir, 0o700) }

// secretPaths are what the station keeps in the data directory besides the
// database (whose modes queue.Open sets) and the spool folder (shared with
// the printer's watcher through the group, see hardware.md).
var secretPaths = []string{"dev-token", "pki", "sim"}

// publicFiles in those are certificates, for anyone to read.
var publicFiles = map[string]bool{"ca.pem": true, "content-signer.pem": true}

// ownerOnly closes the station's secret files and folders to other users
// when an older version, a copy or an admin left them open: new ones are
// created owner-only, but os.WriteFile keeps the mode of a file it reuses.
func ownerOnly(dataDir string, log *slog.Logger) error {
	for _, name := range secretPaths {
		root := filepath.Join(dataDir, name)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return nil
			}
			if err != nil || d.Type()&fs.ModeSymlink != 0 || publicFiles[d.Name()] {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm()&0o077 == 0 {
				return nil
			}
			log.Warn("data file was open to other users; made owner-only", "path", path, "was", fi.Mode().Perm().String())
			return os.Chmod(path, want)
		})
		if err != nil {
			return fmt.Errorf("data directory %s: %w", dataDir, err)
		}
	}
	return nil
}

// lockDataDir makes sure one station owns a data directory: a second one
// would rescue the first one's leases and encode the same order twice.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "station.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another station is already running on %s", dir)
	}
	return f, nil
}

// ensureDevToken creates a development supplier token on first start when
// none is configured, so `station order submit` works out of the box.
func (s *Server) ensureDevToken() error {
	path := s.cfg.DevTokenPath()
	if b, err := os.ReadFile(path); err == nil {
		return s.store.AddToken(context.Background(), "dev", string(trimSpace(b)), []string{"orders"})
	}
	token, err := NewToken()
	if err != nil {
		return err
	}
	if err := s.store.AddToken(context.Background(), "dev", token, []string{"orders"}); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(token + "\n")
	return errors.Join(err, f.Close())
}

// NewToken makes a random bearer token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "st_" + base64.RawURLEncoding.EncodeToString(b), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func (s *Server) deviceStatus() (readerUp, printerUp bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.pipeline.ReaderUp(), s.printer.Status(ctx).Ready
}

// Store exposes the database (CLI verbs, tests).
func (s *Server) Store() *queue.Store { return s.store }

// Handler is the station's HTTP surface.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(recoverer(s.log))
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	r.Get("/v1/openapi.json", serveOpenAPI)
	r.Route("/pki", s.pkiRoutes)
	r.Route("/v1/ops", s.opsRoutes)
	r.With(s.requireScope("orders")).Route("/v1", s.apiRoutes)
	r.Route("/ui", s.uiRoutes)
	return r
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ping(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	if paused, msg := s.pipeline.Paused(); paused {
		writeJSON(w, http.StatusOK, map[string]string{"status": "paused", "message": msg})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
					writeError(w, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the request was not applied"})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// Run serves until ctx ends, then stops taking work, lets the card in hand
// finish (unless cardCtx ends first) and closes. ready receives the address
// once the listener is open.
func (s *Server) Run(ctx, cardCtx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() {
		if s.cfg.TLSCert != "" {
			serveErr <- srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	s.log.Info("station listening", "addr", ln.Addr().String(), "reader", s.cfg.Reader, "printer", s.cfg.Printer)
	if ready != nil {
		ready(ln.Addr().String())
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pipeline.Run(ctx, cardCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.ops.run(ctx)
	}()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	s.log.Info("stopping: finishing the card in hand")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	wg.Wait()
	s.log.Info("stopped")
	return nil
}

// Close releases the database, the devices and the lock.
func (s *Server) Close() error {
	var errs []error
	if s.printer != nil {
		errs = append(errs, s.printer.Close())
	}
	if c, ok := s.reader.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.keys != nil {
		errs = append(errs, s.keys.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}
