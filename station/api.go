package station

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/imaging"
	"id06/order"
	"id06/queue"
)

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

func (s *Server) h(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			e := errorFor(err)
			if e.Status >= 500 {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, e)
		}
	}
}

type supplierKey struct{}

func supplierOf(ctx context.Context) string { s, _ := ctx.Value(supplierKey{}).(string); return s }

// requireToken admits requests with a supplier's bearer token.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="station"`)
			writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "send the supplier's API token as 'Authorization: Bearer TOKEN'"})
			return
		}
		t, err := s.store.LookupToken(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="station", error="invalid_token"`)
			writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "the API token is not valid; ask the station administrator for a token (station token create)"})
			return
		}
		if !s.limiter.allow(t.Supplier, w) {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), supplierKey{}, t.Supplier)))
	})
}

func (s *Server) apiRoutes(r chi.Router) {
	r.Use(s.requireToken)
	r.Post("/orders", s.h(s.postOrder))
	r.Get("/orders", s.h(s.listOrders))
	r.Get("/orders/{id}", s.h(s.getOrder))
	r.Put("/orders/{id}/photo", s.h(s.putPhoto))
	r.Post("/orders/{id}/approvals", s.h(s.postApproval))
	r.Post("/orders/{id}/cancel", s.h(s.postCancel))
	r.Post("/orders/{id}/revoke", s.h(s.postRevoke))
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
}

func (s *Server) checks() order.Checks {
	return order.Checks{Now: s.now(), Photo: imaging.CheckPhotoHeader, Logo: imaging.CheckLogoHeader, PrintName: s.template.CheckName}
}

func (s *Server) postOrder(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	o, err := order.Decode(body)
	if err != nil {
		return err
	}
	if err := o.Validate(s.checks()); err != nil {
		return err
	}
	photo, logo := o.Photo, o.Company.Logo
	// The stored document leaves the images to the blob table. The body's
	// identity is the canonical document plus the images' own hashes, so a
	// resubmission is recognised whatever its JSON spacing or key order,
	// without encoding the photo a second time.
	o.Photo, o.Company.Logo = nil, nil
	doc, err := json.Marshal(o)
	if err != nil {
		return err
	}
	photoSum, logoSum := sha256.Sum256(photo), sha256.Sum256(logo)
	sum := sha256.Sum256(append(append(append([]byte(nil), doc...), photoSum[:]...), logoSum[:]...))
	approvals := make([]queue.Approval, len(o.Approvals))
	for i, a := range o.Approvals {
		approvals[i] = queue.Approval{Kind: a.Kind, Method: a.Method, At: a.At}
	}
	stored, created, err := s.store.Submit(r.Context(), queue.NewOrder{
		ID: o.ID, Supplier: supplierOf(r.Context()), BodyHash: hex.EncodeToString(sum[:]), Doc: doc,
		CardType: o.CardType, Express: o.Express, TradeOrgRequired: o.Company.TradeOrgApprovalRequired,
		Approvals: approvals, Photo: photo, Logo: logo,
	}, "supplier:"+supplierOf(r.Context()))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info("order accepted", "order", o.ID, "state", stored.State)
		s.pipeline.Wake()
		s.broadcast()
	}
	return s.writeOrder(w, r, status, stored)
}

// orderView is the JSON of GET /v1/orders/{id}.
type orderView struct {
	ID         string          `json:"id"`
	State      queue.State     `json:"state"`
	CardType   string          `json:"card_type"`
	Express    bool            `json:"express"`
	Deadline   *time.Time      `json:"deadline,omitempty"`
	CardNumber string          `json:"card_number"`
	ChipUID    string          `json:"chip_uid"`
	ValidUntil string          `json:"valid_until"`
	Reasons    []queue.Reason  `json:"reasons"`
	Revoked    *revocationView `json:"revoked,omitempty"` // the card's certificates are on the CRL
	Events     []queue.Event   `json:"events,omitempty"`
}

func view(o *queue.Order, events []queue.Event) orderView {
	v := orderView{ID: o.SupplierOrderID, State: o.State, CardType: o.CardType, Express: o.Express, CardNumber: o.CardNumber,
		ChipUID: o.ChipUID, ValidUntil: o.ValidUntil, Reasons: o.Reasons, Events: events}
	if !o.Deadline.IsZero() {
		d := o.Deadline
		v.Deadline = &d
	}
	if v.Reasons == nil {
		v.Reasons = []queue.Reason{}
	}
	return v
}

func (s *Server) writeOrder(w http.ResponseWriter, r *http.Request, status int, o *queue.Order) error {
	events, err := s.store.Events(r.Context(), o.ID)
	if err != nil {
		return err
	}
	v := view(o, events)
	rev, err := s.store.OrderRevocation(r.Context(), o.ID)
	if err != nil {
		return err
	}
	if rev != nil {
		v.Revoked = &revocationView{Reason: rev.Reason, At: rev.At}
	}
	writeJSON(w, status, v)
	return nil
}

// ownOrder finds the calling supplier's order by the supplier's own id:
// ids are unique per supplier, and another supplier's orders do not exist
// for it.
func (s *Server) ownOrder(r *http.Request) (*queue.Order, error) {
	return s.store.SupplierOrder(r.Context(), supplierOf(r.Context()), chi.URLParam(r, "id"))
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) error {
	o, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusOK, o)
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var fields []order.FieldError
	f := queue.Filter{Supplier: supplierOf(r.Context()), After: q.Get("after"), Limit: 100}
	if st := q.Get("state"); st != "" {
		if !queue.ValidState(st) {
			fields = append(fields, order.FieldError{Path: "state", Message: "unknown state; use one of " + joinStates()})
		}
		f.State = queue.State(st)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			fields = append(fields, order.FieldError{Path: "limit", Message: "limit must be a whole number from 1 to 500"})
		}
		f.Limit = n
	}
	if len(fields) > 0 {
		return &apiError{Status: http.StatusBadRequest, Code: "bad_query", Message: "the query parameters are not valid", Fields: fields}
	}
	orders, err := s.store.List(r.Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Orders []orderView `json:"orders"`
		Next   string      `json:"next,omitempty"`
	}{Orders: []orderView{}}
	for _, o := range orders {
		out.Orders = append(out.Orders, view(o, nil))
	}
	if len(orders) == f.Limit {
		out.Next = orders[len(orders)-1].SupplierOrderID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func joinStates() string {
	names := make([]string, len(queue.States))
	for i, s := range queue.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// putPhoto takes a replacement photo: the raw image (Content-Type image/jpeg
// or image/png, matching the bytes) or JSON {"photo": "<base64>"}.
func (s *Server) putPhoto(w http.ResponseWriter, r *http.Request) error {
	own, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "image/jpeg" && ct != "image/png" && ct != "application/json" {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the photo as Content-Type image/jpeg or image/png (the file itself), or application/json {\"photo\": \"<base64 JPEG or PNG>\"}"}
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	photo := body
	if ct == "application/json" {
		var req struct {
			Photo []byte `json:"photo"`
		}
		if err := order.DecodeStrict(body, &req, "photo upload"); err != nil {
			return err
		}
		photo = req.Photo
	} else if got := imageType(photo); got != "" && got != ct {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the photo cannot be used",
			Fields: []order.FieldError{{Path: "photo", Message: fmt.Sprintf("the file is %s but was sent as %s: send it with Content-Type %s", got, ct, got)}}}
	}
	if err := imaging.CheckPhotoHeader(photo); err != nil {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the photo cannot be used",
			Fields: []order.FieldError{{Path: "photo", Message: err.Error()}}}
	}
	o, err := s.store.ReplacePhoto(r.Context(), own.ID, supplierOf(r.Context()), photo, "supplier:"+supplierOf(r.Context()))
	if err != nil {
		return err
	}
	s.pipeline.Wake()
	s.broadcast()
	return s.writeOrder(w, r, http.StatusOK, o)
}

// imageType names the format of an image by its first bytes: image/jpeg,
// image/png, or "" for anything else (left to CheckPhotoHeader to refuse).
func imageType(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	}
	return ""
}

func (s *Server) postApproval(w http.ResponseWriter, r *http.Request) error {
	own, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	a, err := order.DecodeApproval(body)
	if err != nil {
		return err
	}
	if err := a.Validate(s.now()); err != nil {
		return err
	}
	o, err := s.store.AddApproval(r.Context(), own.ID, supplierOf(r.Context()),
		queue.Approval{Kind: a.Kind, Method: a.Method, At: a.At}, "supplier:"+supplierOf(r.Context()))
	if err != nil {
		return err
	}
	s.pipeline.Wake()
	s.broadcast()
	return s.writeOrder(w, r, http.StatusOK, o)
}

func (s *Server) postCancel(w http.ResponseWriter, r *http.Request) error {
	own, err := s.ownOrder(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := strictBody(body, &req, `empty or {"reason": "…"}`); err != nil {
			return err
		}
	}
	note := "cancelled by the supplier"
	if req.Reason != "" {
		note += ": " + req.Reason
	}
	o, err := s.store.Cancel(r.Context(), own.ID, supplierOf(r.Context()), "supplier:"+supplierOf(r.Context()), note)
	if err != nil {
		if errors.Is(err, queue.ErrState) {
			return &apiError{Status: http.StatusConflict, Code: "too_late",
				Message: "the order can no longer be cancelled: production has started (" + err.Error() + ")"}
		}
		return err
	}
	s.broadcast()
	return s.writeOrder(w, r, http.StatusOK, o)
}
