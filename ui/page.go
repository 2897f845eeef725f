// Package ui is the operator page under /ui/: server-rendered pages in
// English and Swedish with live updates over server-sent events, behind a
// login with roles. page.go has what every page shares, session.go the
// login, live.go the event stream; the other files are one part of the page
// each (dashboard, orders, shipments, webhooks, QA, audit).
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // the page shows Swedish time even on a host without zoneinfo

	"github.com/go-chi/chi/v5"

	"id06/lane"
	"id06/order"
	"id06/personalize"
	"id06/personalize/apdu"
	"id06/queue"
)

//go:embed templates static
var files embed.FS

// Store is what the operator page needs of the database.
type Store interface {
	// accounts and the station's audit trail
	User(ctx context.Context, name string) (*queue.User, error)
	CreateSession(ctx context.Context, cookie, user, csrf string, ttl time.Duration) (*queue.Session, error)
	LookupSession(ctx context.Context, cookie string) (*queue.Session, error)
	DeleteSession(ctx context.Context, cookie string) error
	Audit(ctx context.Context, actor, action, detail string) error
	AuditLog(ctx context.Context, limit int) ([]queue.AuditEntry, error)
	// the floor's figures
	Changes(ctx context.Context) (string, error)
	CountByState(ctx context.Context) (map[order.State]int, error)
	ExpressOpen(ctx context.Context) ([]*order.Record, error)
	ProducedSince(ctx context.Context, t time.Time) (int, error)
	SpoiledCount(ctx context.Context, since time.Time) (int, error)
	OutboxCounts(ctx context.Context, suppliers ...string) (pending, dead int, err error)
	Stations(ctx context.Context) ([]queue.StationInfo, error)
	// orders
	List(ctx context.Context, f queue.Filter) ([]*order.Record, error)
	Get(ctx context.Context, id string) (*order.Record, error)
	Events(ctx context.Context, id string) ([]order.Event, error)
	BlobKinds(ctx context.Context, id string) (map[string]bool, error)
	Blob(ctx context.Context, id, kind string) ([]byte, error)
	OverridePhoto(ctx context.Context, id, verdict, actor, reason string, reasons []order.Reason) (*order.Record, error)
	Retry(ctx context.Context, id, actor, note string) (*order.Record, error)
	Cancel(ctx context.Context, id, supplier, actor, note string) (*order.Record, error)
	// shipments
	Unshipped(ctx context.Context) ([]*order.Record, error)
	CreateShipments(ctx context.Context, shipments []order.Shipment, actor string) error
	Shipments(ctx context.Context, limit int) ([]*order.Shipment, error)
	ShipmentOrders(ctx context.Context, ids []string) ([]*order.Record, error)
	Shipment(ctx context.Context, id string) (*order.Shipment, []*order.Record, error)
	MarkShipped(ctx context.Context, id, actor string) (int, error)
	// webhook notices
	OrderNotices(ctx context.Context, orderID string) ([]*queue.Notice, error)
	RecentNotices(ctx context.Context, limit int) ([]*queue.Notice, error)
	Redeliver(ctx context.Context, id int64) error
	// revoked cards
	OrderRevocation(ctx context.Context, id string) (*queue.CardRevocation, error)
	RevokedCards(ctx context.Context, limit int) ([]queue.CardRevocation, error)
}

// Production is the part of the pipeline the page shows and drives.
type Production interface {
	Wake()
	Pause(message string)
	Resume()
	Paused() (bool, string)
	Lanes(ctx context.Context) []lane.Snapshot
	OperateLane(ctx context.Context, name, action, actor, by, reason string) (string, error)
	Reproduce(ctx context.Context, id, actor, reason string) (*order.Record, error)
	SpoilAndFail(ctx context.Context, id, actor, reason string) (*order.Record, error)
}

// Deliverer is the webhook delivery the page shows and wakes.
type Deliverer interface {
	Hooked(supplier string) bool
	Suppliers() []string
	Wake()
}

// Devices are the reader and chip writer of the QA check (the first
// lane's encoder, used while the station is paused).
type Devices struct {
	Reader interface {
		Name() string
		Connect(ctx context.Context) (apdu.Card, error)
	}
	Chip interface {
		Verify(ctx context.Context, card apdu.Card, pin string) (*personalize.Report, error)
	}
}

// Keys says which of the station's keys are development keys; the
// dashboard warns while any is.
type Keys struct {
	DevelopmentCA   bool // cards signed by the development CA
	DevelopmentSeal bool // PIN and PUK sealed to the development age key
}

// UI serves the operator page.
type UI struct {
	keys        Keys
	store       Store
	pipeline    Production
	revocations Revocations
	deliverer   Deliverer
	devices     Devices
	log         *slog.Logger
	now         func() time.Time
	pages       map[string]*template.Template
	throttle    *loginThrottle
	sessionTTL  time.Duration
	poll        time.Duration // how often an event stream looks for changes
	loc         *time.Location
	hub         *hub
	stopping    chan struct{} // closed by Stop: event streams end so shutdown need not wait for them
}

var pageNames = []string{"login", "dashboard", "orders", "order", "needsfix", "shipments", "webhooks", "qa", "audit", "error", "revocations"}

// New makes the operator page.
func New(store Store, pipeline Production, revocations Revocations, deliverer Deliverer, devices Devices, keys Keys, log *slog.Logger) *UI {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		loc = time.UTC
	}
	u := &UI{keys: keys, store: store, pipeline: pipeline, revocations: revocations, deliverer: deliverer, devices: devices, log: log, now: time.Now,
		pages: map[string]*template.Template{}, throttle: newLoginThrottle(time.Now),
		sessionTTL: defaultSessionTT, poll: time.Second, loc: loc, hub: newHub(), stopping: make(chan struct{})}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("2006-01-02 15:04:05")
		},
		"withNotices": func(p *page, n []*queue.Notice) any {
			return struct {
				P *page
				N []*queue.Notice
			}{p, n}
		},
	}
	for _, name := range pageNames {
		u.pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	return u
}

// Stop ends the open event streams, so that a browser left on a page does
// not hold up the station's shutdown.
func (u *UI) Stop() { close(u.stopping) }

// Routes mounts the operator page under /ui.
func (u *UI) Routes(r chi.Router) {
	r.Use(securityHeaders)
	static, _ := fs.Sub(files, "static")
	statics := http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))
	r.Get("/static/*", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		statics.ServeHTTP(w, r)
	})
	r.Get("/login", u.uiLoginPage)
	r.Post("/login", u.uiLogin)
	r.Group(func(r chi.Router) {
		r.Use(u.requireSession, u.checkCSRF)
		r.Get("/", u.uiDashboard)
		r.Get("/events", u.uiEvents)
		r.Post("/logout", u.uiLogout)
		r.Get("/orders", u.uiOrders)
		r.Get("/orders/{id}", u.uiOrder)
		r.Get("/orders/{id}/files/{kind}", u.uiBlob)
		r.Get("/needs-fix", u.uiNeedsFix)
		r.Get("/shipments", u.uiShipments)
		r.Get("/shipments/{id}/packing-list.pdf", u.uiPackingList)
		r.Get("/webhooks", u.uiWebhooks)
		r.Get("/qa", u.uiQA)
		r.Get("/revocations", u.uiRevocations)
		r.Group(func(r chi.Router) {
			r.Use(u.requireRole("produce"))
			r.Post("/pause", u.uiPause)
			r.Post("/resume", u.uiResume)
			r.Post("/lanes/{name}/{action}", u.uiLaneAction)
			r.Post("/orders/{id}/override", u.orderAction("overridden", u.override))
			r.Post("/orders/{id}/retry", u.orderAction("retried", u.retry))
			r.Post("/orders/{id}/reproduce", u.orderAction("reproduced", u.reproduce))
			r.Post("/orders/{id}/cancel", u.orderAction("cancelled", u.cancel))
			r.Post("/orders/{id}/spoil", u.orderAction("spoiled", u.spoil))
			r.Post("/orders/{id}/revoke", u.orderAction("revoked", u.revoke))
			r.Post("/shipments", u.uiPack)
			r.Post("/shipments/{id}/shipped", u.uiShipped)
			r.Post("/notices/{id}/redeliver", u.uiRedeliver)
		})
		r.With(u.requireRole("qa")).Post("/qa/verify", u.uiVerify)
		r.With(u.requireRole("admin")).Get("/audit", u.uiAudit)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		// Pages show holders' names and photos: keep them out of caches.
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Lang     string
	Title    string
	Path     string
	Session  *queue.Session
	Paused   bool
	PauseMsg string
	Can      map[string]bool
	Notice   string // a one-line result of the last action
	Live     bool   // the page can refresh itself: a logged-in GET
	Version  string // liveVersion when the page was made
	Data     any
	hooked   func(supplier string) bool
}

// Hooked reports whether a supplier has a webhook to deliver to.
func (p *page) Hooked(supplier string) bool { return p.hooked(supplier) }

// T translates a label key into the page's language.
func (p *page) T(key string) string {
	if l, ok := labels[key]; ok {
		if p.Lang == "sv" {
			return l[1]
		}
		return l[0]
	}
	return key
}

// State translates a state name.
func (p *page) State(st order.State) string { return p.T("state_" + string(st)) }

// Reason gives a reason's message in the page's language.
func (p *page) Reason(r order.Reason) string {
	if p.Lang == "sv" && r.MessageSV != "" {
		return r.MessageSV
	}
	return r.MessageEN
}

func (u *UI) lang(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "sv" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: "station_lang", Value: l, Path: "/ui/", MaxAge: 365 * 24 * 3600,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		return l
	}
	if c, err := r.Cookie("station_lang"); err == nil && (c.Value == "sv" || c.Value == "en") {
		return c.Value
	}
	if strings.HasPrefix(r.Header.Get("Accept-Language"), "sv") {
		return "sv"
	}
	return "en"
}

func (u *UI) newPage(w http.ResponseWriter, r *http.Request, title string, data any) *page {
	sess := sessionOf(r.Context())
	p := &page{Lang: u.lang(w, r), Title: title, Path: r.URL.Path, Session: sess, Data: data,
		Can:  map[string]bool{"produce": may(sess, "produce"), "qa": may(sess, "qa"), "admin": may(sess, "admin")},
		Live: sess != nil && r.Method == http.MethodGet, hooked: u.deliverer.Hooked}
	if done := r.URL.Query().Get("done"); labels["done_"+done] != [2]string{} {
		p.Notice = done
	}
	p.Paused, p.PauseMsg = u.pipeline.Paused()
	if p.Live {
		p.Version = u.liveVersion(r.Context())
	}
	return p
}

// render writes a page, or only its live part when the page's script asks
// for a refresh.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	tmpl := u.pages[name]
	entry := "layout"
	if r.Header.Get("X-Partial") != "" {
		entry = "live"
	}
	var buf strings.Builder
	if err := tmpl.ExecuteTemplate(&buf, entry, p); err != nil {
		u.log.Error("operator page failed to render", "page", name, "err", err)
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, buf.String())
}

func (u *UI) uiError(w http.ResponseWriter, r *http.Request, status int, key string) {
	u.uiErrorText(w, r, status, key, "")
}

func (u *UI) uiErrorText(w http.ResponseWriter, r *http.Request, status int, key, detail string) {
	p := u.newPage(w, r, "error", map[string]any{"Key": key, "Detail": detail, "Status": status})
	u.render(w, r, status, "error", p)
}

// show renders page name with the data read from the store, or the error
// the read failed with.
func (u *UI) show(w http.ResponseWriter, r *http.Request, err error, name, title string, data map[string]any) {
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, name, u.newPage(w, r, title, data))
}

// fail shows what went wrong with an action in words an operator can act
// on; database failures are logged, not shown.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *order.ValidationError
	switch {
	case errors.As(err, &invalid):
		u.uiErrorText(w, r, http.StatusUnprocessableEntity, "err_invalid", invalid.Error())
	case errors.Is(err, queue.ErrNotFound):
		u.uiError(w, r, http.StatusNotFound, "err_not_found")
	case errors.Is(err, queue.ErrState), errors.Is(err, queue.ErrRevoked):
		u.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
	default:
		u.log.Error("operator action failed", "path", r.URL.Path, "err", err)
		u.uiError(w, r, http.StatusInternalServerError, "err_internal")
	}
}

// back redirects to where an action came from, with a note of what was done.
func back(w http.ResponseWriter, r *http.Request, fallback, done string) {
	target := fallback
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && strings.HasPrefix(ref.Path, "/ui/") {
		target = ref.Path
	}
	http.Redirect(w, r, target+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}
