package ui

import "net/http"

func (u *UI) uiAudit(w http.ResponseWriter, r *http.Request) {
	log, err := u.store.AuditLog(r.Context(), 300)
	u.show(w, r, err, "audit", "nav_audit", map[string]any{"Log": log})
}
