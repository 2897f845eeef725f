// Package station puts the parts together. From a configuration and the
// parts cmd/station opened (the store, the lanes with their readers,
// printers and card transports, the chip writer, the card template) it
// builds the pipeline, the webhook delivery,
// the metrics, the API and the operator page, serves them on one HTTP
// surface and runs the background loops until stopped.
package station

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/api"
	"id06/imaging"
	"id06/lane"
	"id06/metrics"
	"id06/personalize"
	"id06/personalize/apdu"
	"id06/pipeline"
	"id06/printer"
	"id06/queue"
	"id06/revocation"
	"id06/ui"
	"id06/webhook"
)

// Parts are what the station runs on, opened by its caller, who also closes
// them.
type Parts struct {
	Store    *queue.Store
	Lanes    []*lane.Lane
	Chip     *personalize.Personalizer
	Template *printer.Template
}

// Station is the assembled station.
type Station struct {
	Parts
	Config      Config
	Pipeline    *pipeline.Pipeline
	Deliverer   *webhook.Deliverer
	Revocations *revocation.Service
	Metrics     *metrics.Metrics
	API         *api.API
	UI          *ui.UI
	log         *slog.Logger
}

// New assembles a station from its configuration and opened parts.
func New(cfg Config, parts Parts, log *slog.Logger) *Station {
	s := &Station{Parts: parts, Config: cfg, log: log}
	names := make([]string, len(parts.Lanes))
	for i, l := range parts.Lanes {
		names[i] = l.Config.Name
	}
	s.Metrics = metrics.New(parts.Store, names, s.laneMetrics)
	s.Pipeline = pipeline.New(parts.Store, pipeline.Config{PhotoWorkers: cfg.PhotoWorkers, Lease: cfg.Lease, CardPrefix: cfg.CardPrefix,
		MaxBlanks: cfg.MaxBlanks, Issuer: cfg.Issuer, PrinterPatience: cfg.PrinterPatience},
		log, imaging.CheckPhoto, parts.Chip, parts.Lanes, parts.Template, s.Metrics)
	s.Deliverer = webhook.New(parts.Store, cfg.Suppliers, log, s.Metrics)
	s.Revocations = revocation.New(parts.Store, parts.Chip, log)
	qa := qaChip{parts.Chip, s.Revocations.Source}
	// QA reads cards in the first lane's encoder (with the station paused).
	s.UI = ui.New(parts.Store, s.Pipeline, s.Revocations, s.Deliverer, ui.Devices{Reader: parts.Lanes[0].Devices.Reader, Chip: qa},
		ui.Keys{DevelopmentCA: cfg.DevelopmentCA(), DevelopmentSeal: cfg.DevelopmentSeal()}, log)
	s.API = api.New(api.Config{MaxBodyBytes: cfg.MaxBodyBytes, RatePerSecond: cfg.RatePerSecond, RateBurst: cfg.RateBurst},
		parts.Store, s.Pipeline, s.Revocations, parts.Template, s.UI.Changed, log)
	return s
}

// qaChip is the QA page's check: the station's verifier with its own CRL.
type qaChip struct {
	chip *personalize.Personalizer
	crl  personalize.CRLSource
}

func (q qaChip) Verify(ctx context.Context, card apdu.Card, pin string) (*personalize.Report, error) {
	return q.chip.Verifier(q.crl).Verify(ctx, card, pin)
}

// laneMetrics reads each lane for /metrics: its state, whether its reader
// is free of a fault and whether its printer says it is ready.
func (s *Station) laneMetrics() []metrics.Lane {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	snaps := s.Pipeline.Lanes(ctx)
	out := make([]metrics.Lane, len(snaps))
	for i, l := range snaps {
		out[i] = metrics.Lane{Name: l.Name, State: string(l.State), ReaderUp: l.Fault != "reader",
			PrinterUp: s.Lanes[i].Devices.Printer.Status(ctx).Ready, Blanks: l.Blanks}
	}
	return out
}

// Handler is the station's HTTP surface: the API, the metrics and the
// operator page.
func (s *Station) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(api.Recoverer(s.log))
	s.API.Routes(r)
	r.Handle("/metrics", s.Metrics.Handler())
	r.Route("/ui", s.UI.Routes)
	return r
}

// Run serves until ctx ends, then stops taking work, lets the card in hand
// finish (unless cardCtx ends first) and returns. ready receives the address
// once the listener is open.
func (s *Station) Run(ctx, cardCtx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", s.Config.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() {
		if s.Config.TLSCert != "" {
			serveErr <- srv.ServeTLS(ln, s.Config.TLSCert, s.Config.TLSKey)
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	for _, l := range s.Lanes {
		c := l.Config
		s.log.Info("lane", "name", c.Name, "reader", c.Reader, "printer", c.Printer, "transport", c.Transport)
	}
	s.log.Info("station listening", "addr", ln.Addr().String(), "lanes", len(s.Lanes))
	if ready != nil {
		ready(ln.Addr().String())
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.Pipeline.Run(ctx, cardCtx) })
	wg.Go(func() { s.Deliverer.Run(ctx) })
	wg.Go(func() { s.heartbeat(ctx) })
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	s.log.Info("stopping: each lane finishes the card in hand")
	s.UI.Stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	wg.Wait()
	s.log.Info("stopped")
	return nil
}
