package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"id06/imaging"
	"id06/order"
	"id06/personalize"
	"id06/pipeline"
	"id06/queue"
)

type orderRow struct {
	*order.Record
	Holder string
}

// rows reads the holder's name of each order from its stored document.
func rows(orders []*order.Record) ([]orderRow, error) {
	out := make([]orderRow, len(orders))
	for i, o := range orders {
		doc, err := o.Document()
		if err != nil {
			return nil, err
		}
		out[i] = orderRow{o, doc.HolderName()}
	}
	return out, nil
}

// list finds orders and reads their holders' names; next is the id to page
// on from when the page is full.
func (u *UI) list(ctx context.Context, f queue.Filter) (list []orderRow, next string, err error) {
	orders, err := u.store.List(ctx, f)
	if err != nil {
		return nil, "", err
	}
	if len(orders) == f.Limit {
		next = orders[len(orders)-1].ID
	}
	list, err = rows(orders)
	return list, next, err
}

func (u *UI) uiOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := queue.Filter{Search: strings.TrimSpace(q.Get("q")), After: q.Get("after"), Limit: 100}
	if st := q.Get("state"); order.ValidState(st) {
		f.State = order.State(st)
	}
	list, next, err := u.list(r.Context(), f)
	u.show(w, r, err, "orders", "nav_orders", map[string]any{
		"Q": f.Search, "State": string(f.State), "States": order.States, "Orders": list, "Next": next})
}

func (u *UI) uiNeedsFix(w http.ResponseWriter, r *http.Request) {
	list, _, err := u.list(r.Context(), queue.Filter{State: order.NeedsFix, After: r.URL.Query().Get("after"), Limit: 200})
	u.show(w, r, err, "needsfix", "nav_needs_fix", map[string]any{"Orders": list, "Codes": imaging.Codes()})
}

func (u *UI) uiOrder(w http.ResponseWriter, r *http.Request) {
	data, err := u.order(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "order", u.newPage(w, r, "order", data))
}

// order reads what the order page shows: the order and its document, its
// timeline, the notices sent about it, its files, and the actions its
// state allows.
func (u *UI) order(ctx context.Context, id string) (map[string]any, error) {
	o, err := u.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	doc, err := o.Document()
	if err != nil {
		return nil, err
	}
	data := map[string]any{"O": o, "Holder": doc.HolderName(), "Delivery": doc.Delivery, "Codes": imaging.Codes(),
		"CanRetry": o.State.Retryable(), "CanReproduce": o.State.Reproducible(),
		"CanOverridePass": o.State.PhotoPassable(), "CanOverrideFail": o.State.PhotoRefusable(),
		"CanCancel": o.State.Cancellable(), "CanSpoil": o.State.InDevice(),
	}
	revoked, err := u.store.OrderRevocation(ctx, id)
	if err != nil {
		return nil, err
	}
	data["Revoked"], data["RevokeReasons"] = revoked, personalize.Reasons()
	data["CanRevoke"] = revoked == nil && (o.State == order.Produced || o.State == order.Shipped)
	if data["Events"], err = u.store.Events(ctx, id); err != nil {
		return nil, err
	}
	if data["Notices"], err = u.store.OrderNotices(ctx, id); err != nil {
		return nil, err
	}
	data["Files"], err = u.store.BlobKinds(ctx, id)
	return data, err
}

// blobTypes are the files the page may show, with their content types.
var blobTypes = map[string]string{"photo": "", "portrait": "image/png", "face_png": "image/png", "face_back_png": "image/png", "face_pdf": "application/pdf"}

func (u *UI) uiBlob(w http.ResponseWriter, r *http.Request) {
	kind := chi.URLParam(r, "kind")
	ct, ok := blobTypes[kind]
	if !ok {
		u.uiError(w, r, http.StatusNotFound, "err_not_found")
		return
	}
	data, err := u.store.Blob(r.Context(), chi.URLParam(r, "id"), kind)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	w.Header().Set("Content-Type", ct)
	w.Write(data)
}

// orderAction is an operator action on an order that needs a reason: it
// reads the reason, runs the action and returns to the order's page with a
// note of what was done.
func (u *UI) orderAction(done string, fn func(ctx context.Context, r *http.Request, id, actor, reason string) (*order.Record, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if reason == "" || len(reason) > 500 {
			u.uiError(w, r, http.StatusUnprocessableEntity, "err_reason")
			return
		}
		id := chi.URLParam(r, "id")
		if _, err := fn(r.Context(), r, id, actorOf(r.Context()), reason); err != nil {
			u.fail(w, r, err)
			return
		}
		u.log.Info("operator action", "order", id, "action", done, "actor", actorOf(r.Context()))
		u.pipeline.Wake()
		u.Changed()
		http.Redirect(w, r, "/ui/orders/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	}
}

func (u *UI) override(ctx context.Context, r *http.Request, id, actor, reason string) (*order.Record, error) {
	v := pipeline.PhotoVerdict{Verdict: r.PostFormValue("verdict"), Code: r.PostFormValue("code"), Reason: reason}
	return pipeline.OverridePhoto(ctx, u.store, id, v, actor)
}

func (u *UI) retry(ctx context.Context, _ *http.Request, id, actor, reason string) (*order.Record, error) {
	return u.store.Retry(ctx, id, actor, reason)
}

func (u *UI) reproduce(ctx context.Context, _ *http.Request, id, actor, reason string) (*order.Record, error) {
	return u.pipeline.Reproduce(ctx, id, actor, reason)
}

func (u *UI) cancel(ctx context.Context, _ *http.Request, id, actor, reason string) (*order.Record, error) {
	return u.store.Cancel(ctx, id, "", actor, "cancelled by the station: "+reason)
}

func (u *UI) spoil(ctx context.Context, _ *http.Request, id, actor, reason string) (*order.Record, error) {
	return u.pipeline.SpoilAndFail(ctx, id, actor, reason)
}
