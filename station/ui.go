package station

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // the page shows Swedish time even on a host without zoneinfo

	"github.com/go-chi/chi/v5"

	"id06/imaging"
	"id06/personalize"
	"id06/printer"
	"id06/queue"
)

//go:embed ui
var uiFiles embed.FS

// opsState is what the operator page, its logins and the webhook deliverer
// keep between requests.
type opsState struct {
	pages      map[string]*template.Template
	throttle   *loginThrottle
	sessionTTL time.Duration
	deliverer  *Deliverer
	poll       time.Duration // how often an event stream looks for changes
	loc        *time.Location
	stopping   chan struct{} // closed when the station stops: event streams end so shutdown need not wait for them
}

// run delivers webhooks until ctx ends, then ends the open event streams.
func (o *opsState) run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.deliverer.Run(ctx)
	}()
	<-ctx.Done()
	close(o.stopping)
	<-done
}

var pageNames = []string{"login", "dashboard", "orders", "order", "needsfix", "shipments", "webhooks", "qa", "audit", "error", "revocations"}

func newOps(s *Server) *opsState {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		loc = time.UTC
	}
	o := &opsState{pages: map[string]*template.Template{}, throttle: newLoginThrottle(time.Now),
		sessionTTL: defaultSessionTT, poll: time.Second, loc: loc, stopping: make(chan struct{}),
		deliverer: NewDeliverer(s.store, s.cfg.Suppliers, s.log, s.metrics)}
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
		o.pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", "ui/"+name+".html"))
	}
	return o
}

// uiRoutes is the operator page.
func (s *Server) uiRoutes(r chi.Router) {
	r.Use(securityHeaders)
	static, _ := fs.Sub(uiFiles, "ui/static")
	files := http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))
	r.Get("/static/*", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	r.Get("/login", s.uiLoginPage)
	r.Post("/login", s.uiLogin)
	r.Group(func(r chi.Router) {
		r.Use(s.requireSession, s.checkCSRF)
		r.Get("/", s.uiDashboard)
		r.Get("/events", s.uiEvents)
		r.Post("/logout", s.uiLogout)
		r.Get("/orders", s.uiOrders)
		r.Get("/orders/{id}", s.uiOrder)
		r.Get("/orders/{id}/files/{kind}", s.uiBlob)
		r.Get("/needs-fix", s.uiNeedsFix)
		r.Get("/shipments", s.uiShipments)
		r.Get("/shipments/{id}/packing-list.pdf", s.uiPackingList)
		r.Get("/webhooks", s.uiWebhooks)
		r.Get("/qa", s.uiQA)
		r.Get("/revocations", s.uiRevocations)
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole("produce"))
			r.Post("/pause", s.uiPause)
			r.Post("/resume", s.uiResume)
			r.Post("/orders/{id}/override", s.uiOverride)
			r.Post("/orders/{id}/retry", s.uiRetry)
			r.Post("/orders/{id}/reproduce", s.uiReproduce)
			r.Post("/orders/{id}/cancel", s.uiCancel)
			r.Post("/orders/{id}/spoil", s.uiSpoil)
			r.Post("/orders/{id}/revoke", s.uiRevoke)
			r.Post("/shipments", s.uiPack)
			r.Post("/shipments/{id}/shipped", s.uiShipped)
			r.Post("/notices/{id}/redeliver", s.uiRedeliver)
		})
		r.With(s.requireRole("qa")).Post("/qa/verify", s.uiVerify)
		r.With(s.requireRole("admin")).Get("/audit", s.uiAudit)
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
	hooked   map[string]SupplierConfig
}

// Hooked reports whether a supplier has a webhook to deliver to.
func (p *page) Hooked(supplier string) bool { _, ok := p.hooked[supplier]; return ok }

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
func (p *page) State(st queue.State) string { return p.T("state_" + string(st)) }

// Reason gives a reason's message in the page's language.
func (p *page) Reason(r queue.Reason) string {
	if p.Lang == "sv" && r.MessageSV != "" {
		return r.MessageSV
	}
	return r.MessageEN
}

func (s *Server) lang(w http.ResponseWriter, r *http.Request) string {
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

func (s *Server) newPage(w http.ResponseWriter, r *http.Request, title string, data any) *page {
	sess := sessionOf(r.Context())
	p := &page{Lang: s.lang(w, r), Title: title, Path: r.URL.Path, Session: sess, Data: data,
		Can:  map[string]bool{"produce": may(sess, "produce"), "qa": may(sess, "qa"), "admin": may(sess, "admin")},
		Live: sess != nil && r.Method == http.MethodGet, hooked: s.ops.deliverer.suppliers}
	if done := r.URL.Query().Get("done"); labels["done_"+done] != [2]string{} {
		p.Notice = done
	}
	p.Paused, p.PauseMsg = s.pipeline.Paused()
	if p.Live {
		p.Version = s.liveVersion(r.Context())
	}
	return p
}

// liveVersion fingerprints what the live pages show, so that the event
// stream can tell a page when it is out of date.
func (s *Server) liveVersion(ctx context.Context) string {
	c, _ := s.store.Changes(ctx)
	paused, msg := s.pipeline.Paused()
	return fmt.Sprintf("%s|%v|%s", c, paused, msg)
}

// render writes a page, or only its live part when the page's script asks
// for a refresh.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	tmpl := s.ops.pages[name]
	entry := "layout"
	if r.Header.Get("X-Partial") != "" {
		entry = "live"
	}
	var buf strings.Builder
	if err := tmpl.ExecuteTemplate(&buf, entry, p); err != nil {
		s.log.Error("operator page failed to render", "page", name, "err", err)
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, buf.String())
}

func (s *Server) uiError(w http.ResponseWriter, r *http.Request, status int, key string) {
	s.uiErrorText(w, r, status, key, "")
}

func (s *Server) uiErrorText(w http.ResponseWriter, r *http.Request, status int, key, detail string) {
	p := s.newPage(w, r, "error", map[string]any{"Key": key, "Detail": detail, "Status": status})
	s.render(w, r, status, "error", p)
}

// fail shows what went wrong with an action in words an operator can act
// on; database failures are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		s.uiError(w, r, http.StatusNotFound, "err_not_found")
	case errors.Is(err, queue.ErrState):
		s.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
	case errors.As(err, new(uiStateError)):
		s.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
	default:
		s.log.Error("operator action failed", "path", r.URL.Path, "err", err)
		s.uiError(w, r, http.StatusInternalServerError, "err_internal")
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

func (s *Server) uiLoginPage(w http.ResponseWriter, r *http.Request) {
	token := randomToken()
	s.setCookie(w, r, loginCSRFCookie, token, 3600)
	p := s.newPage(w, r, "login", map[string]any{"CSRF": token, "Next": safeNext(r.URL.Query().Get("next")), "Why": r.URL.Query().Get("why")})
	s.render(w, r, http.StatusOK, "login", p)
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || c.Value == "" || r.PostFormValue("csrf") != c.Value {
		s.audit(r.Context(), "anonymous", "csrf_refused", "POST /ui/login")
		s.uiError(w, r, http.StatusForbidden, "err_csrf")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	_, cookie, err := s.login(r.Context(), strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"), clientIP(r))
	var th *throttled
	switch {
	case errors.As(err, &th):
		w.Header().Set("Retry-After", fmt.Sprint(int(th.wait.Seconds())+1))
		s.loginAgain(w, r, http.StatusTooManyRequests, "err_throttled", next)
		return
	case errors.Is(err, errBadLogin):
		s.loginAgain(w, r, http.StatusUnauthorized, "err_login", next)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.setCookie(w, r, loginCSRFCookie, "", -1)
	s.setCookie(w, r, sessionCookie, cookie, int(s.ops.sessionTTL.Seconds()))
	// Not http.Redirect: it cleans the path, and cleaning is what turned
	// /ui/../\host into /\host, which browsers follow to another host.
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
}

// safeNext is where to go after logging in: next when it is a page of the
// operator page (a path under /ui/, as the login link wrote it), else /ui/.
// Refused: a scheme or host, a backslash (browsers read it as a slash), an
// empty or dot segment (// is a host to a browser, .. climbs out of /ui/),
// escaped or not, and anything url.Parse refuses (control characters).
func safeNext(next string) string {
	const home = "/ui/"
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || strings.Contains(next, `\`) {
		return home
	}
	if !strings.HasPrefix(u.Path, home) || strings.Contains(u.Path, `\`) {
		return home
	}
	for _, seg := range strings.Split(strings.TrimSuffix(u.Path[len(home):], "/"), "/") {
		if seg == "." || seg == ".." || seg == "" && u.Path != home {
			return home
		}
	}
	if u.RawQuery != "" {
		return u.EscapedPath() + "?" + u.RawQuery
	}
	return u.EscapedPath()
}

func (s *Server) loginAgain(w http.ResponseWriter, r *http.Request, status int, key, next string) {
	token := randomToken()
	s.setCookie(w, r, loginCSRFCookie, token, 3600)
	p := s.newPage(w, r, "login", map[string]any{"CSRF": token, "Next": next, "Error": key})
	s.render(w, r, status, "login", p)
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.store.DeleteSession(r.Context(), c.Value)
	}
	s.audit(r.Context(), actorOf(r.Context()), "logout", "")
	s.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// uiEvents streams "change" events to the page: from the hub for changes
// made through the API, and by polling the database's change fingerprint
// for what the pipeline and the deliverer do.
func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ch, cancel := s.hub.subscribe()
	defer cancel()
	fingerprint := func() string { return s.liveVersion(r.Context()) }
	last := fingerprint()
	tick := time.NewTicker(s.ops.poll)
	defer tick.Stop()
	idle := 0
	send := func(msg string) bool {
		// The server's WriteTimeout would cut a long stream; each write
		// gets its own deadline instead.
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprint(w, msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The page was rendered before this stream opened: if anything changed
	// in between (the page says what it saw), start with a refresh.
	hello := "retry: 2000\n\n"
	if r.URL.Query().Get("v") != last {
		hello += "event: change\ndata: missed\n\n"
	}
	if !send(hello) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ops.stopping:
			return
		case <-ch:
			last = fingerprint()
			if !send("event: change\ndata: api\n\n") {
				return
			}
		case <-tick.C:
			if now := fingerprint(); now != last {
				last, idle = now, 0
				if !send("event: change\ndata: station\n\n") {
					return
				}
			} else if idle++; idle*int(s.ops.poll/time.Millisecond) >= 15000 {
				idle = 0
				if !send(": keep-alive\n\n") {
					return
				}
			}
		}
	}
}

// dashboard is the live summary of the floor.
type dashboard struct {
	Counts        []stateCount
	Express       []expressRow
	ProducedToday int
	SpoiledToday  int
	Reader        string
	PrinterReady  bool
	PrinterMsg    string
	Hooks         int  // suppliers with a webhook
	Pending, Dead int  // their notices
	DevCA         bool // cards signed by the development CA
	DevSeal       bool // PIN/PUK sealed to the development age key
}

type stateCount struct {
	State queue.State
	N     int
}

type expressRow struct {
	ID       string
	State    queue.State
	Deadline time.Time
	Left     string
	Overdue  bool
}

func (s *Server) uiDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := dashboard{Reader: s.reader.Name(), DevCA: s.cfg.DevelopmentCA(), DevSeal: s.cfg.DevelopmentSeal()}
	counts, err := s.store.CountByState(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, st := range queue.States {
		d.Counts = append(d.Counts, stateCount{st, counts[st]})
	}
	now := s.now()
	express, err := s.store.ExpressOpen(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, o := range express {
		left := o.Deadline.Sub(now)
		d.Express = append(d.Express, expressRow{ID: o.ID, State: o.State, Deadline: o.Deadline, Left: fmtLeft(left), Overdue: left < 0})
	}
	y, m, day := now.In(s.ops.loc).Date()
	midnight := time.Date(y, m, day, 0, 0, 0, 0, s.ops.loc)
	if d.ProducedToday, err = s.store.ProducedSince(ctx, midnight); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.SpoiledToday, err = s.store.SpoiledCount(ctx, midnight); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.Hooks = len(s.ops.deliverer.suppliers); d.Hooks > 0 {
		names := make([]string, 0, d.Hooks)
		for name := range s.ops.deliverer.suppliers {
			names = append(names, name)
		}
		if d.Pending, d.Dead, err = s.store.OutboxCounts(ctx, names...); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st := s.printer.Status(sctx)
	cancel()
	d.PrinterReady, d.PrinterMsg = st.Ready, st.Message
	s.render(w, r, http.StatusOK, "dashboard", s.newPage(w, r, "nav_dashboard", d))
}

func fmtLeft(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%s%d:%02d", sign, int(d.Hours()), int(d.Minutes())%60)
}

type orderRow struct {
	*queue.Order
	Holder string
}

// holderOf reads the holder's name from the stored order document.
func holderOf(doc []byte) (name string, delivery deliveryDoc) {
	var d struct {
		Holder struct {
			FirstName string `json:"first_name"`
			LastName  string `json:"last_name"`
			PrintName string `json:"print_name"`
		} `json:"holder"`
		Delivery deliveryDoc `json:"delivery"`
	}
	json.Unmarshal(doc, &d)
	name = d.Holder.PrintName
	if name == "" {
		name = strings.TrimSpace(d.Holder.FirstName + " " + d.Holder.LastName)
	}
	return name, d.Delivery
}

type deliveryDoc struct {
	Name       string `json:"name"`
	Street     string `json:"street"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	Country    string `json:"country"`
	CostCenter string `json:"cost_center"`
	Department string `json:"department"`
}

func rows(orders []*queue.Order) []orderRow {
	out := make([]orderRow, len(orders))
	for i, o := range orders {
		name, _ := holderOf(o.Doc)
		out[i] = orderRow{o, name}
	}
	return out
}

func (s *Server) uiOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := queue.Filter{Search: strings.TrimSpace(q.Get("q")), After: q.Get("after"), Limit: 100}
	if st := q.Get("state"); queue.ValidState(st) {
		f.State = queue.State(st)
	}
	orders, err := s.store.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	next := ""
	if len(orders) == f.Limit {
		next = orders[len(orders)-1].ID
	}
	s.render(w, r, http.StatusOK, "orders", s.newPage(w, r, "nav_orders", map[string]any{
		"Q": f.Search, "State": string(f.State), "States": queue.States, "Orders": rows(orders), "Next": next}))
}

func (s *Server) uiNeedsFix(w http.ResponseWriter, r *http.Request) {
	orders, err := s.store.List(r.Context(), queue.Filter{State: queue.NeedsFix, After: r.URL.Query().Get("after"), Limit: 200})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "needsfix", s.newPage(w, r, "nav_needs_fix", map[string]any{"Orders": rows(orders), "Codes": imaging.Codes()}))
}

func (s *Server) uiOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	o, err := s.store.Get(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events, err := s.store.Events(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	notices, err := s.store.OrderNotices(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	files, err := s.store.BlobKinds(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	revoked, err := s.store.OrderRevocation(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name, delivery := holderOf(o.Doc)
	s.render(w, r, http.StatusOK, "order", s.newPage(w, r, "order", map[string]any{
		"O": o, "Holder": name, "Delivery": delivery, "Events": events, "Notices": notices, "Files": files, "Codes": imaging.Codes(),
		"Revoked": revoked, "RevokeReasons": personalize.Reasons(),
		"CanRevoke": revoked == nil && (o.State == queue.Produced || o.State == queue.Shipped),
		"CanRetry":  o.State == queue.Failed, "CanReproduce": o.State == queue.Produced,
		"CanOverridePass": o.State == queue.NeedsFix, "CanOverrideFail": o.State == queue.Queued || o.State == queue.Ready,
		"CanCancel": queue.Cancellable(o.State), "CanSpoil": queue.InDevice(o.State),
	}))
}

// blobTypes are the files the page may show, with their content types.
var blobTypes = map[string]string{"photo": "", "portrait": "image/png", "face_png": "image/png", "face_back_png": "image/png", "face_pdf": "application/pdf"}

func (s *Server) uiBlob(w http.ResponseWriter, r *http.Request) {
	kind := chi.URLParam(r, "kind")
	ct, ok := blobTypes[kind]
	if !ok {
		s.uiError(w, r, http.StatusNotFound, "err_not_found")
		return
	}
	data, err := s.store.Blob(r.Context(), chi.URLParam(r, "id"), kind)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	w.Header().Set("Content-Type", ct)
	w.Write(data)
}

func (s *Server) uiPause(w http.ResponseWriter, r *http.Request) {
	msg := strings.TrimSpace(r.PostFormValue("message"))
	if msg == "" {
		msg = "Paused by " + sessionOf(r.Context()).User
	}
	s.pipeline.Pause(msg)
	s.audit(r.Context(), actorOf(r.Context()), "pause", msg)
	s.log.Info("station paused by an operator", "actor", actorOf(r.Context()))
	s.broadcast()
	back(w, r, "/ui/", "paused")
}

func (s *Server) uiResume(w http.ResponseWriter, r *http.Request) {
	s.pipeline.Resume()
	s.audit(r.Context(), actorOf(r.Context()), "resume", "")
	s.log.Info("station resumed by an operator", "actor", actorOf(r.Context()))
	s.broadcast()
	back(w, r, "/ui/", "resumed")
}

// orderAction runs an operator action on an order and returns to its page.
func (s *Server) orderAction(w http.ResponseWriter, r *http.Request, done string, fn func(ctx context.Context, id, actor string) error) {
	id := chi.URLParam(r, "id")
	if err := fn(r.Context(), id, actorOf(r.Context())); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("operator action", "order", id, "action", done, "actor", actorOf(r.Context()))
	s.pipeline.Wake()
	s.broadcast()
	http.Redirect(w, r, "/ui/orders/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
}

// reasonField reads the free-text reason an action requires.
func (s *Server) reasonField(w http.ResponseWriter, r *http.Request) (string, bool) {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" || len(reason) > 500 {
		s.uiError(w, r, http.StatusUnprocessableEntity, "err_reason")
		return "", false
	}
	return reason, true
}

func (s *Server) uiOverride(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonField(w, r)
	if !ok {
		return
	}
	verdict, code := r.PostFormValue("verdict"), r.PostFormValue("code")
	s.orderAction(w, r, "overridden", func(ctx context.Context, id, actor string) error {
		return s.overridePhoto(ctx, id, verdict, code, reason, actor)
	})
}

// overridePhoto is shared by the page and the operator API.
func (s *Server) overridePhoto(ctx context.Context, id, verdict, code, reason, actor string) error {
	var reasons []queue.Reason
	if verdict == "fail" {
		if code == "" {
			return fmt.Errorf("%w: a fail verdict needs a reason code", queue.ErrState)
		}
		rs := imaging.ReasonFor(code)
		reasons = []queue.Reason{{Code: rs.Code, MessageEN: rs.MessageEN, MessageSV: rs.MessageSV}}
	}
	_, err := s.store.OverridePhoto(ctx, id, verdict, actor, reason, reasons)
	return err
}

func (s *Server) uiRetry(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonField(w, r)
	if !ok {
		return
	}
	s.orderAction(w, r, "retried", func(ctx context.Context, id, actor string) error {
		_, err := s.store.Retry(ctx, id, actor, reason)
		return err
	})
}

func (s *Server) uiReproduce(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonField(w, r)
	if !ok {
		return
	}
	s.orderAction(w, r, "reproduced", func(ctx context.Context, id, actor string) error {
		_, err := s.store.Reproduce(ctx, id, actor, reason)
		if err == nil {
			s.metrics.spoiled.Inc()
		}
		return err
	})
}

func (s *Server) uiCancel(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonField(w, r)
	if !ok {
		return
	}
	s.orderAction(w, r, "cancelled", func(ctx context.Context, id, actor string) error {
		_, err := s.store.Cancel(ctx, id, "", actor, "cancelled by the station: "+reason)
		return err
	})
}

func (s *Server) uiSpoil(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonField(w, r)
	if !ok {
		return
	}
	s.orderAction(w, r, "spoiled", func(ctx context.Context, id, actor string) error {
		return s.spoilAndFail(ctx, id, actor, reason)
	})
}

// spoilAndFail stops an order at the devices (page and operator API).
func (s *Server) spoilAndFail(ctx context.Context, id, actor, reason string) error {
	_, err := s.store.SpoilAndFail(ctx, id, actor, "stopped by an operator: "+reason)
	if err == nil {
		s.metrics.spoiled.Inc()
	}
	return err
}

// shipmentDoc is the addressing of a parcel as stored with it.
type shipmentDoc struct {
	Orderer    string   `json:"orderer"`
	Address    []string `json:"address"`
	CostCenter string   `json:"cost_center"`
	Department string   `json:"department"`
}

type shipmentRow struct {
	*queue.Shipment
	shipmentDoc
	Cards []orderRow
}

func (s *Server) uiShipments(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	list, err := s.store.Shipments(ctx, 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var out []shipmentRow
	for _, sh := range list {
		_, orders, err := s.store.Shipment(ctx, sh.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		row := shipmentRow{Shipment: sh, Cards: rows(orders)}
		json.Unmarshal(sh.Doc, &row.shipmentDoc)
		out = append(out, row)
	}
	unshipped, err := s.store.Unshipped(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "shipments", s.newPage(w, r, "nav_shipments", map[string]any{"Shipments": out, "Unshipped": len(unshipped)}))
}

// uiPack groups the produced, unpacked cards into parcels by delivery
// address; each express card is a parcel of its own.
func (s *Server) uiPack(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orders, err := s.store.Unshipped(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cards := make([]printer.ProducedCard, len(orders))
	for i, o := range orders {
		name, d := holderOf(o.Doc)
		cards[i] = printer.ProducedCard{CardNumber: o.CardNumber, HolderName: name, OrderID: o.ID, Express: o.Express,
			Orderer: d.Name, Address: []string{d.Name, d.Street, strings.TrimSpace(d.PostalCode + " " + d.City), d.Country},
			CostCenter: d.CostCenter, Department: d.Department}
	}
	for _, sh := range printer.GroupShipments(cards, s.now()) {
		doc, err := json.Marshal(shipmentDoc{Orderer: sh.Orderer, Address: sh.Address, CostCenter: sh.CostCenter, Department: sh.Department})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ids := make([]string, len(sh.Cards))
		for i, c := range sh.Cards {
			ids[i] = c.OrderID
		}
		if err := s.store.CreateShipment(ctx, queue.Shipment{ID: sh.ID, Express: sh.Express, Doc: doc}, ids, actorOf(ctx)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.audit(ctx, actorOf(ctx), "pack", fmt.Sprintf("%d cards packed", len(cards)))
	s.broadcast()
	http.Redirect(w, r, "/ui/shipments?done=packed", http.StatusSeeOther)
}

func (s *Server) uiPackingList(w http.ResponseWriter, r *http.Request) {
	sh, orders, err := s.store.Shipment(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var d shipmentDoc
	json.Unmarshal(sh.Doc, &d)
	ps := printer.Shipment{ID: sh.ID, Express: sh.Express, Orderer: d.Orderer, Address: d.Address,
		CostCenter: d.CostCenter, Department: d.Department, CreatedAt: sh.CreatedAt}
	for _, row := range rows(orders) {
		ps.Cards = append(ps.Cards, printer.ShipmentCard{CardNumber: row.CardNumber, HolderName: row.Holder, OrderID: row.ID})
	}
	pdf, err := printer.PackingList(ps)
	if err != nil {
		s.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `inline; filename="`+sh.ID+`.pdf"`)
	w.Write(pdf)
}

func (s *Server) uiShipped(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	n, err := s.store.MarkShipped(r.Context(), id, actorOf(r.Context()))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.Context(), actorOf(r.Context()), "shipped", fmt.Sprintf("%s: %d cards", id, n))
	s.ops.deliverer.Wake()
	s.broadcast()
	http.Redirect(w, r, "/ui/shipments?done=shipped", http.StatusSeeOther)
}

func (s *Server) uiWebhooks(w http.ResponseWriter, r *http.Request) {
	notices, err := s.store.RecentNotices(r.Context(), 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "webhooks", s.newPage(w, r, "nav_webhooks", map[string]any{"Notices": notices}))
}

func (s *Server) uiRedeliver(w http.ResponseWriter, r *http.Request) {
	var id int64
	if _, err := fmt.Sscan(chi.URLParam(r, "id"), &id); err != nil {
		s.uiError(w, r, http.StatusNotFound, "err_not_found")
		return
	}
	if err := s.store.Redeliver(r.Context(), id); err != nil {
		s.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
		return
	}
	s.audit(r.Context(), actorOf(r.Context()), "redeliver", fmt.Sprintf("notice %d", id))
	s.ops.deliverer.Wake()
	back(w, r, "/ui/webhooks", "redelivered")
}

func (s *Server) uiQA(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "qa", s.newPage(w, r, "nav_qa", map[string]any{"Reader": s.reader.Name()}))
}

// uiVerify runs the read-only chip checks on the card in the reader. The
// reader is the encoder's, so the station must be paused first: QA never
// races the device worker for the card.
func (s *Server) uiVerify(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Reader": s.reader.Name()}
	if paused, _ := s.pipeline.Paused(); !paused {
		data["Error"] = s.newPage(w, r, "", nil).T("err_qa_running")
		s.render(w, r, http.StatusConflict, "qa", s.newPage(w, r, "nav_qa", data))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	report, err := s.verifyCard(ctx, r.PostFormValue("pin"))
	if err != nil {
		s.audit(r.Context(), actorOf(r.Context()), "qa_verify", "no card could be read: "+err.Error())
		data["Error"] = err.Error()
		s.render(w, r, http.StatusOK, "qa", s.newPage(w, r, "nav_qa", data))
		return
	}
	data["Report"] = report
	if report.CardNumber != "" {
		if orders, err := s.store.List(ctx, queue.Filter{Search: report.CardNumber, Limit: 1}); err == nil && len(orders) == 1 {
			data["Order"] = orders[0].ID
		}
	}
	s.audit(r.Context(), actorOf(r.Context()), "qa_verify", fmt.Sprintf("card %s chip %s ok=%v", report.CardNumber, report.UID, report.OK))
	s.render(w, r, http.StatusOK, "qa", s.newPage(w, r, "nav_qa", data))
}

func (s *Server) verifyCard(ctx context.Context, pin string) (*personalize.Report, error) {
	card, err := s.reader.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	return s.chip.Verifier(s.crlSource).Verify(ctx, card, pin)
}

func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request) {
	log, err := s.store.AuditLog(r.Context(), 300)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "audit", s.newPage(w, r, "nav_audit", map[string]any{"Log": log}))
}
