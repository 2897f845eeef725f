package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// token list shows who holds which token, never the token; token revoke
// ends a token at once, also for a station that is running.
func TestTokenListAndRevoke(t *testing.T) {
	skipShort(t, "runs the real binary")
	dir := t.TempDir()
	d := startDaemon(t, dir)
	out, errOut, code := runCLI(t, "token", "create", "--supplier", "acme", "--data", dir)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	id := regexp.MustCompile(`id ([0-9a-f]{12})`).FindStringSubmatch(errOut)
	if id == nil {
		t.Fatalf("token create does not name the token's id: %q", errOut)
	}
	d.token = token
	if code, b, err := d.do(http.MethodGet, "/v1/orders", nil); err != nil || code != http.StatusOK {
		t.Fatalf("new token: %d %s %v", code, b, err)
	}

	list, errOut, code := runCLI(t, "token", "list", "--data", dir)
	if code != 0 {
		t.Fatalf("token list: %d %s", code, errOut)
	}
	if strings.Contains(list, token) || strings.Contains(list, token[3:15]) {
		t.Fatalf("token list shows the token:\n%s", list)
	}
	var acme string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "acme") {
			acme = line
		}
	}
	if !strings.Contains(acme, id[1]) || !strings.Contains(acme, "orders") || !regexp.MustCompile(`20\d\d-\d\d-\d\d`).MatchString(acme) {
		t.Fatalf("token list line for acme %q lacks id %s, scope or creation date:\n%s", acme, id[1], list)
	}
	if !strings.Contains(list, "dev") {
		t.Fatalf("the dev token is not listed:\n%s", list)
	}

	if _, errOut, code := runCLI(t, "token", "revoke", "ffffffffffff", "--data", dir); code == 0 || !strings.Contains(errOut, "no token") {
		t.Fatalf("revoke of an unknown id: %d %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, "token", "revoke", id[1][:4], "--data", dir); code == 0 || !strings.Contains(errOut, "at least") {
		t.Fatalf("revoke by a too short prefix: %d %q", code, errOut)
	}
	if out, errOut, code := runCLI(t, "token", "revoke", id[1], "--data", dir); code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("token revoke: %d %s %s", code, out, errOut)
	}
	if code, b, _ := d.do(http.MethodGet, "/v1/orders", nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d %s, want 401", code, b)
	}
	if list, _, _ := runCLI(t, "token", "list", "--data", dir); strings.Contains(list, id[1]) {
		t.Fatalf("revoked token still listed:\n%s", list)
	}
}
