package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"id06/queue"
)

// runIn runs the CLI in-process with stdin.
func runIn(t testing.TB, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	const pw = "long enough password"
	if _, stderr, code := runIn(t, pw+"\n", "user", "add", "eva", "--role", "operator", "--data", dir); code != 0 {
		t.Fatalf("user add: %d %s", code, stderr)
	}
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"taken name", pw + "\n", []string{"eva", "--role", "qa"}, "exists already"},
		{"unknown role", pw + "\n", []string{"olle", "--role", "root"}, "use operator, qa or admin"},
		{"no role", pw + "\n", []string{"olle"}, "usage"},
		{"short password", "short\n", []string{"olle", "--role", "qa"}, "at least 10 characters"},
		{"no password", "", []string{"olle", "--role", "qa"}, "no password on stdin"},
		{"space in name", pw + "\n", []string{"olle svensson", "--role", "qa"}, "one word"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runIn(t, tc.stdin, append([]string{"user", "add", "--data", dir}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want failure saying %q", code, stderr, tc.want)
			}
		})
	}
	store, err := queue.Open(filepath.Join(dir, "station.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, err := store.User(context.Background(), "eva")
	if err != nil || u.Role != queue.RoleOperator {
		t.Fatalf("user: %+v %v", u, err)
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(pw)) != nil {
		t.Fatal("the stored hash does not match the password")
	}
	if _, err := store.User(context.Background(), "olle"); err == nil {
		t.Fatal("a refused user was stored")
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "station.db"))
	if bytes.Contains(raw, []byte(pw)) {
		t.Fatal("the password is stored in clear")
	}
}

func TestTokenCreateScopes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		scope string
		want  []string
	}{
		{"", []string{"orders"}},
		{"operator", []string{"operator"}},
		{"orders,operator", []string{"orders", "operator"}},
	}
	for _, tc := range tests {
		args := []string{"token", "create", "--supplier", "acme", "--data", dir}
		if tc.scope != "" {
			args = append(args, "--scope", tc.scope)
		}
		out, stderr, code := runIn(t, "", args...)
		if code != 0 {
			t.Fatalf("scope %q: %d %s", tc.scope, code, stderr)
		}
		store, err := queue.Open(filepath.Join(dir, "station.db"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := store.LookupToken(context.Background(), strings.TrimSpace(out))
		store.Close()
		if err != nil || strings.Join(tok.Scopes, ",") != strings.Join(tc.want, ",") {
			t.Fatalf("scope %q: token %+v %v, want scopes %v", tc.scope, tok, err, tc.want)
		}
	}
	if _, stderr, code := runIn(t, "", "token", "create", "--supplier", "acme", "--scope", "admin", "--data", dir); code == 0 || !strings.Contains(stderr, "use orders, operator") {
		t.Fatalf("unknown scope: %d %q", code, stderr)
	}
}
