package ui

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"id06/personalize"
	"id06/queue"
)

func (u *UI) uiQA(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "qa", u.newPage(w, r, "nav_qa", map[string]any{"Reader": u.devices.Reader.Name()}))
}

// uiVerify runs the read-only chip checks on the card in the reader. The
// reader is the encoder's, so the station must be paused first: QA never
// races the device worker for the card.
func (u *UI) uiVerify(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"Reader": u.devices.Reader.Name()}
	if paused, _ := u.pipeline.Paused(); !paused {
		data["Error"] = u.newPage(w, r, "", nil).T("err_qa_running")
		u.render(w, r, http.StatusConflict, "qa", u.newPage(w, r, "nav_qa", data))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	report, err := u.verifyCard(ctx, r.PostFormValue("pin"))
	if err != nil {
		u.audit(r.Context(), actorOf(r.Context()), "qa_verify", "no card could be read: "+err.Error())
		data["Error"] = err.Error()
		u.render(w, r, http.StatusOK, "qa", u.newPage(w, r, "nav_qa", data))
		return
	}
	data["Report"] = report
	if report.CardNumber != "" {
		if orders, err := u.store.List(ctx, queue.Filter{Search: report.CardNumber, Limit: 1}); err == nil && len(orders) == 1 {
			data["Order"] = orders[0].ID
		}
	}
	u.audit(r.Context(), actorOf(r.Context()), "qa_verify", fmt.Sprintf("card %s chip %s ok=%v", report.CardNumber, report.UID, report.OK))
	u.render(w, r, http.StatusOK, "qa", u.newPage(w, r, "nav_qa", data))
}

func (u *UI) verifyCard(ctx context.Context, pin string) (*personalize.Report, error) {
	card, err := u.devices.Reader.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	return u.devices.Chip.Verify(ctx, card, pin)
}
