package ui

import "net/http"

func (u *UI) uiAudit(w http.ResponseWriter, r *http.Request) {
	log, err := u.store.AuditLog(r.Context(), 300)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "audit", u.newPage(w, r, "nav_audit", map[string]any{"Log": log}))
}
