// Package api is the station's HTTP JSON API: the supplier's orders under
// /v1 (bearer token of scope orders), the operator API under /v1/ops (scope
// operator), health and readiness, and the OpenAPI document that describes
// them all.
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/imaging"
	"id06/lane"
	"id06/order"
	"id06/printer"
	"id06/queue"
)

// Config is what the API is told by the station's configuration.
type Config struct {
	MaxBodyBytes int64
	// Per-supplier rate: sustained requests per second and burst.
	RatePerSecond float64
	RateBurst     int
}

// Store is what the API needs of the database.
type Store interface {
	Ping(ctx context.Context) error
	LookupToken(ctx context.Context, token string) (*queue.Token, error)
	Audit(ctx context.Context, actor, action, detail string) error
	Submit(ctx context.Context, n queue.NewOrder, actor string) (*order.Record, bool, error)
	Get(ctx context.Context, id string) (*order.Record, error)
	SupplierOrder(ctx context.Context, supplier, id string) (*order.Record, error)
	List(ctx context.Context, f queue.Filter) ([]*order.Record, error)
	Events(ctx context.Context, id string) ([]order.Event, error)
	ReplacePhoto(ctx context.Context, id, supplier string, photo []byte, actor string) (*order.Record, error)
	AddApproval(ctx context.Context, id, supplier string, a order.Approval, actor string) (*order.Record, error)
	Cancel(ctx context.Context, id, supplier, actor, note string) (*order.Record, error)
	OverridePhoto(ctx context.Context, id, verdict, actor, reason string, reasons []order.Reason) (*order.Record, error)
	OrderRevocation(ctx context.Context, id string) (*queue.CardRevocation, error)
	Stations(ctx context.Context) ([]queue.StationInfo, error)
}

// Production is the part of the pipeline the API drives: it wakes the
// workers for new work and pauses or resumes the station for operators.
type Production interface {
	Wake()
	Pause(message string)
	Resume()
	Paused() (bool, string)
	SpoilAndFail(ctx context.Context, id, actor, reason string) (*order.Record, error)
	Lanes(ctx context.Context) []lane.Snapshot
	OperateLane(ctx context.Context, name, action, actor, by, reason string) (string, error)
}

// API serves the HTTP JSON API.
type API struct {
	cfg         Config
	store       Store
	pipeline    Production
	revocations Revocations
	template    *printer.Template
	changed     func() // tells the operator page's live views that something changed
	log         *slog.Logger
	now         func() time.Time
	limiter     *rateLimiter
}

// New makes the API. changed is called after every change the API makes, so
// that open operator pages refresh.
func New(cfg Config, store Store, pipeline Production, revocations Revocations, tmpl *printer.Template, changed func(), log *slog.Logger) *API {
	return &API{cfg: cfg, store: store, pipeline: pipeline, revocations: revocations, template: tmpl, changed: changed, log: log, now: time.Now,
		limiter: newRateLimiter(cfg.RatePerSecond, cfg.RateBurst)}
}

// Routes mounts the API on the station's router.
func (a *API) Routes(r chi.Router) {
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", a.readyz)
	r.Get("/v1/openapi.json", serveOpenAPI)
	r.Route("/pki", a.pkiRoutes)
	r.Route("/v1/ops", a.opsRoutes)
	r.With(a.requireScope("orders")).Route("/v1", a.orderRoutes)
}

// Checks are the checks intake applies to an order with a card template:
// `station card render` checks an order file with the same ones.
func Checks(tmpl *printer.Template, now time.Time) order.Checks {
	return order.Checks{Now: now, Photo: imaging.CheckPhotoHeader, Logo: imaging.CheckLogoHeader, PrintName: tmpl.CheckName}
}

// readyz says whether the station can take and make orders: the database
// answers, and production is not paused: neither by an operator nor with
// every lane paused or off (with the reasons when it is). Lanes paused
// while others work are listed beside "ready".
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.store.Ping(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	if paused, msg := a.pipeline.Paused(); paused {
		writeJSON(w, http.StatusOK, map[string]string{"status": "paused", "message": msg})
		return
	}
	var stopped []string
	lanes := a.pipeline.Lanes(r.Context())
	for _, l := range lanes {
		if l.State == lane.Paused || l.State == lane.Off {
			stopped = append(stopped, "lane "+l.Name+": "+cmp.Or(l.Reason, string(l.State)))
		}
	}
	switch {
	case len(stopped) > 0 && len(stopped) == len(lanes):
		writeJSON(w, http.StatusOK, map[string]any{"status": "paused", "message": strings.Join(stopped, "; ")})
	case len(stopped) > 0:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "lanes_stopped": stopped})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// apiError is the one error shape of the API.
type apiError struct {
	Status  int                `json:"-"`
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Fields  []order.FieldError `json:"fields,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]any{"error": e})
}

// errorFor maps what went wrong to a status a client can act on. Messages
// never carry order content (they may reach logs).
func errorFor(err error) *apiError {
	var ae *apiError
	var ve *order.ValidationError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: ve.Error(), Fields: ve.Fields}
	case errors.As(err, &tooBig):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("the request body is larger than %d bytes; send photos of at most 20 MB", tooBig.Limit)}
	case errors.Is(err, queue.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order for this supplier"}
	case errors.Is(err, queue.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict",
			Message: "an order with this id was already submitted with different content; use a new id for a new order"}
	case errors.Is(err, queue.ErrState):
		return &apiError{Status: http.StatusConflict, Code: "wrong_state", Message: err.Error()}
	default:
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the request was not applied"}
	}
}

// handler adapts a function that returns an error to http.Handler.
type handler func(w http.ResponseWriter, r *http.Request) error

func (a *API) h(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			e := errorFor(err)
			if e.Status >= 500 {
				a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, e)
		}
	}
}

// Recoverer answers a panicking handler with a 500 in the API's error
// shape, logged, and keeps the station serving.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
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

func (a *API) audit(ctx context.Context, actor, action, detail string) {
	if err := a.store.Audit(context.WithoutCancel(ctx), actor, action, detail); err != nil {
		a.log.Error("audit entry not written", "action", action, "err", err)
	}
}

func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
}
