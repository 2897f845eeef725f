package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

func (a *API) orderRoutes(r chi.Router) {
	r.Use(a.requireToken)
	r.Post("/orders", a.h(a.postOrder))
	r.Get("/orders", a.h(a.listOrders))
	r.Get("/orders/{id}", a.h(a.getOrder))
	r.Put("/orders/{id}/photo", a.h(a.putPhoto))
	r.Post("/orders/{id}/approvals", a.h(a.postApproval))
	r.Post("/orders/{id}/cancel", a.h(a.postCancel))
	r.Post("/orders/{id}/revoke", a.h(a.postRevoke))
}

func (a *API) postOrder(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	o, err := order.Decode(body)
	if err != nil {
		return err
	}
	if err := o.Validate(Checks(a.template, a.now())); err != nil {
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
	stored, created, err := a.store.Submit(r.Context(), queue.NewOrder{
		ID: o.ID, Supplier: supplierOf(r.Context()), BodyHash: hex.EncodeToString(sum[:]), Doc: doc,
		CardType: o.CardType, Express: o.Express, TradeOrgRequired: o.Company.TradeOrgApprovalRequired,
		HolderNames: o.HolderNames(), Approvals: o.Approvals, Photo: photo, Logo: logo,
	}, "supplier:"+supplierOf(r.Context()))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		a.log.Info("order accepted", "order", o.ID, "state", stored.State)
		a.pipeline.Wake()
		a.changed()
	}
	return a.writeOrder(w, r, status, stored)
}

// orderView is the JSON of GET /v1/orders/{id}.
type orderView struct {
	ID         string          `json:"id"`
	State      order.State     `json:"state"`
	CardType   string          `json:"card_type"`
	Express    bool            `json:"express"`
	Deadline   *time.Time      `json:"deadline,omitempty"`
	CardNumber string          `json:"card_number"`
	ChipUID    string          `json:"chip_uid"`
	ValidUntil string          `json:"valid_until"`
	Lane       string          `json:"lane,omitempty"` // the production lane that holds or made the card
	Reasons    []order.Reason  `json:"reasons"`
	Revoked    *revocationView `json:"revoked,omitempty"` // the card's certificates are on the CRL
	Events     []order.Event   `json:"events,omitempty"`
}

func view(o *order.Record, events []order.Event) orderView {
	v := orderView{ID: o.SupplierOrderID, State: o.State, CardType: o.CardType, Express: o.Express, CardNumber: o.CardNumber,
		ChipUID: o.ChipUID, ValidUntil: o.ValidUntil, Lane: o.Lane, Reasons: o.Reasons, Events: events}
	if !o.Deadline.IsZero() {
		d := o.Deadline
		v.Deadline = &d
	}
	if v.Reasons == nil {
		v.Reasons = []order.Reason{}
	}
	return v
}

func (a *API) writeOrder(w http.ResponseWriter, r *http.Request, status int, o *order.Record) error {
	events, err := a.store.Events(r.Context(), o.ID)
	if err != nil {
		return err
	}
	v := view(o, events)
	rev, err := a.store.OrderRevocation(r.Context(), o.ID)
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
func (a *API) ownOrder(r *http.Request) (*order.Record, error) {
	return a.store.SupplierOrder(r.Context(), supplierOf(r.Context()), chi.URLParam(r, "id"))
}

// ownOrderBody finds the calling supplier's order and reads the request's
// body about it.
func (a *API) ownOrderBody(w http.ResponseWriter, r *http.Request) (*order.Record, []byte, error) {
	own, err := a.ownOrder(r)
	if err != nil {
		return nil, nil, err
	}
	body, err := a.readBody(w, r)
	return own, body, err
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) error {
	o, err := a.ownOrder(r)
	if err != nil {
		return err
	}
	return a.writeOrder(w, r, http.StatusOK, o)
}

func (a *API) listOrders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var fields []order.FieldError
	f := queue.Filter{Supplier: supplierOf(r.Context()), After: q.Get("after"), Limit: 100}
	if st := q.Get("state"); st != "" {
		if !order.ValidState(st) {
			fields = append(fields, order.FieldError{Path: "state", Message: "unknown state; use one of " + joinStates()})
		}
		f.State = order.State(st)
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
	orders, err := a.store.List(r.Context(), f)
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
	names := make([]string, len(order.States))
	for i, s := range order.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// putPhoto takes a replacement photo: the raw image (Content-Type image/jpeg
// or image/png, matching the bytes) or JSON {"photo": "<base64>"}.
func (a *API) putPhoto(w http.ResponseWriter, r *http.Request) error {
	own, err := a.ownOrder(r)
	if err != nil {
		return err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "image/jpeg" && ct != "image/png" && ct != "application/json" {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the photo as Content-Type image/jpeg or image/png (the file itself), or application/json {\"photo\": \"<base64 JPEG or PNG>\"}"}
	}
	body, err := a.readBody(w, r)
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
	o, err := a.store.ReplacePhoto(r.Context(), own.ID, supplierOf(r.Context()), photo, "supplier:"+supplierOf(r.Context()))
	if err != nil {
		return err
	}
	a.pipeline.Wake()
	a.changed()
	return a.writeOrder(w, r, http.StatusOK, o)
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

func (a *API) postApproval(w http.ResponseWriter, r *http.Request) error {
	own, body, err := a.ownOrderBody(w, r)
	if err != nil {
		return err
	}
	ap, err := order.DecodeApproval(body)
	if err != nil {
		return err
	}
	if err := ap.Validate(a.now()); err != nil {
		return err
	}
	o, err := a.store.AddApproval(r.Context(), own.ID, supplierOf(r.Context()),
		*ap, "supplier:"+supplierOf(r.Context()))
	if err != nil {
		return err
	}
	a.pipeline.Wake()
	a.changed()
	return a.writeOrder(w, r, http.StatusOK, o)
}

func (a *API) postCancel(w http.ResponseWriter, r *http.Request) error {
	own, body, err := a.ownOrderBody(w, r)
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
	o, err := a.store.Cancel(r.Context(), own.ID, supplierOf(r.Context()), "supplier:"+supplierOf(r.Context()), note)
	if err != nil {
		if errors.Is(err, queue.ErrState) {
			return &apiError{Status: http.StatusConflict, Code: "too_late",
				Message: "the order can no longer be cancelled: production has started (" + err.Error() + ")"}
		}
		return err
	}
	a.changed()
	return a.writeOrder(w, r, http.StatusOK, o)
}
