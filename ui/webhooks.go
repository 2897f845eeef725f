package ui

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (u *UI) uiWebhooks(w http.ResponseWriter, r *http.Request) {
	notices, err := u.store.RecentNotices(r.Context(), 200)
	u.show(w, r, err, "webhooks", "nav_webhooks", map[string]any{"Notices": notices})
}

func (u *UI) uiRedeliver(w http.ResponseWriter, r *http.Request) {
	var id int64
	if _, err := fmt.Sscan(chi.URLParam(r, "id"), &id); err != nil {
		u.uiError(w, r, http.StatusNotFound, "err_not_found")
		return
	}
	if err := u.store.Redeliver(r.Context(), id); err != nil {
		u.uiErrorText(w, r, http.StatusConflict, "err_state", err.Error())
		return
	}
	u.audit(r.Context(), actorOf(r.Context()), "redeliver", fmt.Sprintf("notice %d", id))
	u.deliverer.Wake()
	back(w, r, "/ui/webhooks", "redelivered")
}
