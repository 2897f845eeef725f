// Package stationtest helps tests talk to a station over HTTP as its users
// do: a browser that keeps cookies and shows redirects, the example order
// with a real portrait, and the station's audit trail.
package stationtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"id06/queue"

	"golang.org/x/crypto/bcrypt"
)

// Browser is a cookie-keeping client that does not follow redirects, so
// tests see where the station sends them.
type Browser struct {
	T      testing.TB
	Base   string
	Client *http.Client
}

// NewBrowser returns a browser for the station at base (http://host:port).
func NewBrowser(t testing.TB, base string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Base: base, Client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Response is what the browser got.
type Response struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
}

// Do sends a request.
func (b *Browser) Do(req *http.Request) Response {
	b.T.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return Response{resp.StatusCode, string(body), resp.Header.Get("Location"), resp.Header}
}

// Get fetches a path.
func (b *Browser) Get(path string) Response {
	req, _ := http.NewRequest(http.MethodGet, b.Base+path, nil)
	return b.Do(req)
}

// Post submits a form.
func (b *Browser) Post(path string, form url.Values) Response {
	req, _ := http.NewRequest(http.MethodPost, b.Base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRF reads the form token from a page.
func (b *Browser) CSRF(path string) string {
	b.T.Helper()
	m := csrfField.FindStringSubmatch(b.Get(path).Body)
	if m == nil {
		b.T.Fatalf("no csrf field on %s", path)
	}
	return m[1]
}

// Login posts the login form.
func (b *Browser) Login(user, password string) Response {
	b.T.Helper()
	return b.Post("/ui/login", url.Values{"csrf": {b.CSRF("/ui/login")}, "user": {user}, "password": {password}, "next": {"/ui/"}})
}

// LoggedIn logs in and returns the session's CSRF token.
func (b *Browser) LoggedIn(user, password string) string {
	b.T.Helper()
	if r := b.Login(user, password); r.Status != http.StatusSeeOther || r.Location != "/ui/" {
		b.T.Fatalf("login %s: %d %s", user, r.Status, r.Location)
	}
	return b.CSRF("/ui/")
}

// Password is the test operators' password.
const Password = "correct horse battery"

// Audit returns the station's audit trail as "actor action" lines, newest
// first.
func Audit(t testing.TB, s *queue.Store) []string {
	t.Helper()
	log, err := s.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		out = append(out, e.Actor+" "+e.Action)
	}
	return out
}

// HasAudit reports whether the audit trail has an "actor action" entry.
func HasAudit(t testing.TB, s *queue.Store, entry string) bool {
	for _, a := range Audit(t, s) {
		if a == entry {
			return true
		}
	}
	return false
}

// RepoFile finds a file of the repository, or of the shared test data next
// to it, by walking up from the test's directory.
func RepoFile(t testing.TB, rel ...string) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		for _, base := range []string{d, filepath.Dir(d)} {
			p := filepath.Join(append([]string{base}, rel...)...)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatalf("%s not found above %s", filepath.Join(rel...), dir)
	return ""
}

// Photo reads a portrait of the shared test data (shared/testdata/photos/dev).
func Photo(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(RepoFile(t, "shared", "testdata", "photos", "dev", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ExampleOrder is examples/order.json as a map, with a new id and photo and
// the holder's approval a minute ago.
func ExampleOrder(t testing.TB, id string, photo []byte) map[string]any {
	t.Helper()
	b, err := os.ReadFile(RepoFile(t, "examples", "order.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["id"], doc["photo"] = id, base64.StdEncoding.EncodeToString(photo)
	doc["approvals"] = []map[string]any{{"kind": "holder", "method": "bankid", "at": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}}
	return doc
}

// MustJSON encodes v.
func MustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Post sends a JSON body with a bearer token and decodes the JSON answer.
func Post(t testing.TB, url, token string, body []byte) (int, map[string]any) {
	t.Helper()
	status, out, _ := Call(t, http.MethodPost, url, token, body)
	return status, out
}

// Call sends body (bytes as they are, anything else as JSON, nothing when
// nil) with a bearer token (none when empty) and decodes the JSON answer.
func Call(t testing.TB, method, url, token string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	return Send(t, method, url, token, "application/json", rd)
}

// Send sends a body of a content type with a bearer token (none when
// empty) and decodes the JSON answer.
func Send(t testing.TB, method, url, token, contentType string, body io.Reader) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

// LogBuffer keeps what a running station logged or printed, for checks of
// what it said (and never said); safe for concurrent writers.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// AddUser creates an operator account with a bcrypt hash of password.
func AddUser(t testing.TB, s *queue.Store, name, role, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(context.Background(), name, role, hash); err != nil {
		t.Fatal(err)
	}
}
