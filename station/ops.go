package station

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"id06/imaging"
	"id06/order"
	"id06/queue"
)

// opsRoutes is the operator JSON API for tokens with the operator scope: a
// floor system or a script can do what the page's operator buttons do.
func (s *Server) opsRoutes(r chi.Router) {
	r.Use(s.requireToken, s.requireScope("operator"))
	r.Post("/orders/{id}/photo-verdict", s.h(s.opsPhotoVerdict))
	r.Post("/orders/{id}/spoil", s.h(s.opsSpoil))
	r.Post("/orders/{id}/revoke", s.h(s.opsRevoke))
	r.Post("/pause", s.h(s.opsPause))
	r.Post("/resume", s.h(s.opsResume))
}

// opsActor names the token's owner in the audit trail.
func opsActor(r *http.Request) string { return "api:" + supplierOf(r.Context()) }

func (s *Server) decodeOps(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	body, err := s.readBody(w, r)
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

func (s *Server) opsPhotoVerdict(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
		Code    string `json:"code"`
	}
	if err := s.decodeOps(w, r, &req, `{"verdict": "pass|fail", "reason": "…", "code": "<reason code, for fail>"}`); err != nil {
		return err
	}
	var fields []order.FieldError
	if req.Verdict != "pass" && req.Verdict != "fail" {
		fields = append(fields, order.FieldError{Path: "verdict", Message: "must be pass or fail"})
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 {
		fields = append(fields, order.FieldError{Path: "reason", Message: "give the reason for the override (1 to 500 characters)"})
	}
	if req.Verdict == "fail" && !knownCode(req.Code) {
		fields = append(fields, order.FieldError{Path: "code", Message: "a fail verdict needs one of the photo reason codes: " + strings.Join(imaging.Codes(), ", ")})
	}
	if len(fields) > 0 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the verdict cannot be applied", Fields: fields}
	}
	id := chi.URLParam(r, "id")
	if err := s.overridePhoto(r.Context(), id, req.Verdict, req.Code, req.Reason, opsActor(r)); err != nil {
		if errors.Is(err, queue.ErrNotFound) {
			return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order"}
		}
		return err
	}
	s.log.Info("photo verdict overridden", "order", id, "verdict", req.Verdict, "actor", opsActor(r))
	s.pipeline.Wake()
	s.broadcast()
	o, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusOK, o)
}

// opsSpoil stops an order at the reader or printer: its blank is retired
// with the card number and the order fails.
func (s *Server) opsSpoil(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := s.decodeOps(w, r, &req, `{"reason": "…"}`); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: "the order cannot be stopped without a reason",
			Fields: []order.FieldError{{Path: "reason", Message: "say why the order is stopped (1 to 500 characters)"}}}
	}
	id := chi.URLParam(r, "id")
	if err := s.spoilAndFail(r.Context(), id, opsActor(r), req.Reason); err != nil {
		if errors.Is(err, queue.ErrNotFound) {
			return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such order"}
		}
		return err
	}
	s.log.Info("order stopped and its blank spoiled", "order", id, "actor", opsActor(r))
	s.broadcast()
	o, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return s.writeOrder(w, r, http.StatusOK, o)
}

func knownCode(code string) bool {
	for _, c := range imaging.Codes() {
		if c == code {
			return true
		}
	}
	return false
}

type stationStatus struct {
	Paused  bool   `json:"paused"`
	Message string `json:"message,omitempty"`
}

func (s *Server) opsPause(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Message string `json:"message"`
	}
	if err := s.decodeOps(w, r, &req, `empty or {"message": "…"}`); err != nil {
		return err
	}
	if req.Message == "" {
		req.Message = "Paused by " + opsActor(r)
	}
	s.pipeline.Pause(req.Message)
	s.audit(r.Context(), opsActor(r), "pause", req.Message)
	s.broadcast()
	return s.writeStatus(w)
}

func (s *Server) opsResume(w http.ResponseWriter, r *http.Request) error {
	s.pipeline.Resume()
	s.audit(r.Context(), opsActor(r), "resume", "")
	s.broadcast()
	return s.writeStatus(w)
}

func (s *Server) writeStatus(w http.ResponseWriter) error {
	paused, msg := s.pipeline.Paused()
	writeJSON(w, http.StatusOK, stationStatus{Paused: paused, Message: msg})
	return nil
}
