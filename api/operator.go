package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/order"
	"id06/pipeline"
	"id06/queue"
)

// opsRoutes is the operator JSON API for tokens with the operator scope: a
// floor system or a script can do what the page's operator buttons do.
func (a *API) opsRoutes(r chi.Router) {
	r.Use(a.requireToken, a.requireScope("operator"))
	r.Post("/orders/{id}/photo-verdict", a.h(a.opsPhotoVerdict))
	r.Post("/orders/{id}/spoil", a.h(a.opsSpoil))
	r.Post("/orders/{id}/revoke", a.h(a.opsRevoke))
	r.Post("/pause", a.h(a.opsPause))
	r.Post("/resume", a.h(a.opsResume))
	r.Get("/stations", a.h(a.opsStations))
	r.Get("/lanes", a.h(a.opsLanes))
	for _, action := range []string{"pause", "resume", "drain", "spoil"} {
		r.Post("/lanes/{name}/"+action, a.h(a.opsLaneAction(action)))
	}
}

// stationJSON is one station of the fleet as GET /v1/ops/stations shows it.
type stationJSON struct {
	Name       string          `json:"name"`
	Live       bool            `json:"live"` // reported within the last 10 s
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"started_at"`
	LastSeen   time.Time       `json:"last_seen"`
	Lanes      json.RawMessage `json:"lanes"`
	CardInHand string          `json:"card_in_hand"` // order ids of the lanes' cards in hand, comma-separated
}

// opsStations lists every station sharing the database: on SQLite the one.
func (a *API) opsStations(w http.ResponseWriter, r *http.Request) error {
	list, err := a.store.Stations(r.Context())
	if err != nil {
		return err
	}
	now := a.now()
	out := []stationJSON{}
	for _, st := range list {
		lanes := json.RawMessage(st.Lanes)
		if !json.Valid(lanes) {
			lanes = json.RawMessage("[]")
		}
		out = append(out, stationJSON{Name: st.Name, Live: st.Live(now), Status: st.Status, StartedAt: st.StartedAt,
			LastSeen: st.LastSeen, Lanes: lanes, CardInHand: st.CardInHand})
	}
	writeJSON(w, http.StatusOK, map[string]any{"stations": out})
	return nil
}

// opsActor names the token's owner in the audit trail.
func opsActor(r *http.Request) string { return "api:" + supplierOf(r.Context()) }

func (a *API) decodeOps(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	body, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	return strictBody(body, v, shape)
}

// strictBody decodes a small JSON body, naming the field at fault (an
// unknown one included) and the shape the body must have.
func strictBody(body []byte, v any, shape string) error {
	var ve *order.ValidationError
	if err := order.DecodeStrict(body, v, "request"); errors.As(err, &ve) {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the body must be " + shape, Fields: ve.Fields}
	} else if err != nil {
		return err
	}
	return nil
}

func (a *API) opsPhotoVerdict(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
		Code    string `json:"code"`
	}
	if err := a.decodeOps(w, r, &req, `{"verdict": "pass|fail", "reason": "…", "code": "<reason code, for fail>"}`); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	o, err := pipeline.OverridePhoto(r.Context(), a.store, id, pipeline.PhotoVerdict{Verdict: req.Verdict, Code: req.Code, Reason: req.Reason}, opsActor(r))
	if errors.Is(err, queue.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order"}
	}
	if err != nil {
		return err
	}
	a.log.Info("photo verdict overridden", "order", id, "verdict", req.Verdict, "actor", opsActor(r))
	a.pipeline.Wake()
	a.changed()
	return a.writeOrder(w, r, http.StatusOK, o)
}

// opsSpoil stops an order at the reader or printer: its blank is retired
// with the card number and the order fails.
func (a *API) opsSpoil(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := a.decodeOps(w, r, &req, `{"reason": "…"}`); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the order cannot be stopped without a reason",
			Fields: []order.FieldError{{Path: "reason", Message: "say why the order is stopped (1 to 500 characters)"}}}
	}
	id := chi.URLParam(r, "id")
	o, err := a.pipeline.SpoilAndFail(r.Context(), id, opsActor(r), req.Reason)
	if errors.Is(err, queue.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order"}
	}
	if err != nil {
		return err
	}
	a.log.Info("order stopped and its blank spoiled", "order", id, "actor", opsActor(r))
	a.changed()
	return a.writeOrder(w, r, http.StatusOK, o)
}

type stationStatus struct {
	Paused  bool   `json:"paused"`
	Message string `json:"message,omitempty"`
}

func (a *API) opsPause(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Message string `json:"message"`
	}
	if err := a.decodeOps(w, r, &req, `empty or {"message": "…"}`); err != nil {
		return err
	}
	if req.Message == "" {
		req.Message = "Paused by " + opsActor(r)
	}
	a.pipeline.Pause(req.Message)
	a.audit(r.Context(), opsActor(r), "pause", req.Message)
	a.changed()
	return a.writeStatus(w)
}

func (a *API) opsResume(w http.ResponseWriter, r *http.Request) error {
	a.pipeline.Resume()
	a.audit(r.Context(), opsActor(r), "resume", "")
	a.changed()
	return a.writeStatus(w)
}

func (a *API) writeStatus(w http.ResponseWriter) error {
	paused, msg := a.pipeline.Paused()
	writeJSON(w, http.StatusOK, stationStatus{Paused: paused, Message: msg})
	return nil
}

// opsLanes lists the production lanes: state, card in hand, counters.
func (a *API) opsLanes(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"lanes": a.pipeline.Lanes(r.Context())})
	return nil
}

// opsLaneAction pauses, resumes, drains a lane or spoils the card in its
// hand, and answers with the lane.
func (a *API) opsLaneAction(action string) handler {
	return func(w http.ResponseWriter, r *http.Request) error { return a.laneAction(w, r, action) }
}

func (a *API) laneAction(w http.ResponseWriter, r *http.Request, action string) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := a.decodeOps(w, r, &req, `empty or {"reason": "…"} (required to spoil)`); err != nil {
		return err
	}
	ctx, name, actor := r.Context(), chi.URLParam(r, "name"), opsActor(r)
	reason, err := a.pipeline.OperateLane(ctx, name, action, actor, actor, req.Reason)
	if errors.Is(err, pipeline.ErrSpoilReason) {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the card cannot be spoiled without a reason",
			Fields: []order.FieldError{{Path: "reason", Message: err.Error()}}}
	}
	if errors.Is(err, queue.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	}
	if err != nil {
		return err
	}
	a.audit(ctx, actor, "lane_"+action, strings.TrimSpace(name+" "+reason))
	a.log.Info("lane action", "lane", name, "action", action, "actor", actor)
	a.pipeline.Wake()
	a.changed()
	for _, l := range a.pipeline.Lanes(ctx) {
		if l.Name == name {
			writeJSON(w, http.StatusOK, l)
		}
	}
	return nil
}
