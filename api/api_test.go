package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"id06/metrics"
	"id06/personalize"
	"id06/pipeline"
	"id06/printer"
	"id06/queue"
	"id06/queue/queuetest"
	"id06/revocation"
	"id06/station/stationtest"
)

// server is the API over a real store (SQLite on disk) and a pipeline that
// is not started: what the API changes is in the store, what it asks of the
// pipeline (pause, resume) is in the pipeline.
type server struct {
	store    *queue.Store
	pipeline *pipeline.Pipeline
}

// testServer serves the API of a new station with the station's default
// limits; token is a supplier token of "dev" with scope orders.
func testServer(t testing.TB, mutate func(*Config)) (*server, *httptest.Server, string) {
	t.Helper()
	cfg := Config{MaxBodyBytes: 32 << 20, RatePerSecond: 100, RateBurst: 500}
	if mutate != nil {
		mutate(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &server{store: queuetest.Open(t)}
	s.pipeline = pipeline.New(s.store, pipeline.Config{}, log, nil, nil, nil, nil, metrics.New(s.store, nil, func() []metrics.Lane { return nil }))
	r := chi.NewRouter()
	chip, err := personalize.New(personalize.Config{PKIDir: t.TempDir(), Issuer: "ID06 Card Supplier AB", Certs: personalize.CertProfile{PKIBaseURL: "http://127.0.0.1:8080"}})
	if err != nil {
		t.Fatal(err)
	}
	New(cfg, s.store, s.pipeline, revocation.New(s.store, chip, log), printer.DefaultTemplate(), func() {}, log).Routes(r)
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.AddToken(context.Background(), "dev", token, []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	return s, hs, token
}

func grayPNG(t testing.TB, w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: uint8(200 - (x+y)%50)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeaderOnly is a PNG whose header claims w x h: enough for a header
// check, which must refuse it without decoding (or allocating) the pixels.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func set(doc map[string]any, path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	if v == nil {
		delete(m, parts[len(parts)-1])
	} else {
		m[parts[len(parts)-1]] = v
	}
	return doc
}

// Every kind of bad input gets a clear 4xx naming the field, nothing is
// stored, and the station keeps serving.
func TestIntakeRefusesBadInput(t *testing.T) {
	s, hs, token := testServer(t, func(c *Config) { c.MaxBodyBytes = 4 << 20 })
	photo := grayPNG(t, 300, 410)
	now := time.Now().UTC()
	tooLate := now.AddDate(5, 0, 2).Format(time.DateOnly)
	base := func() map[string]any { return stationtest.ExampleOrder(t, "bad-1", photo) }
	for _, tc := range []struct {
		name   string
		body   []byte
		token  string
		status int
		field  string // a field path the answer must name ("" = none required)
	}{
		{"malformed JSON", []byte(`{"id": "x",`), token, 422, ""},
		{"id dot dot", stationtest.MustJSON(t, set(base(), "id", "..")), token, 422, "id"},
		{"id dot", stationtest.MustJSON(t, set(base(), "id", ".")), token, 422, "id"},
		{"id dash", stationtest.MustJSON(t, set(base(), "id", "-")), token, 422, "id"},
		{"id underscore first", stationtest.MustJSON(t, set(base(), "id", "_x")), token, 422, "id"},
		{"wrong type", stationtest.MustJSON(t, set(base(), "express", "yes")), token, 422, "express"},
		{"missing field", stationtest.MustJSON(t, set(base(), "holder.last_name", nil)), token, 422, "holder.last_name"},
		{"unknown field", stationtest.MustJSON(t, set(base(), "holder.shoe_size", 44)), token, 422, "holder.shoe_size"},
		{"personnummer check digit", stationtest.MustJSON(t, set(base(), "holder.id_number", "19850412-1231")), token, 422, "holder.id_number"},
		{"samordningsnummer check digit", stationtest.MustJSON(t, set(set(base(), "holder.id_number", "19850472-1231"), "holder.birth_date", "1985-04-12")), token, 422, "holder.id_number"},
		{"org number check digit", stationtest.MustJSON(t, set(base(), "company.org_number", "556677-8898")), token, 422, "company.org_number"},
		{"PESEL check digit", stationtest.MustJSON(t, set(set(base(), "holder.nationality", "PL"), "holder.id_number", "85041212345")), token, 422, "holder.id_number"},
		{"nationality does not match id", stationtest.MustJSON(t, set(base(), "holder.nationality", "PL")), token, 422, "holder.id_number"},
		{"valid_until over 5 years", stationtest.MustJSON(t, set(base(), "valid_until", tooLate)), token, 422, "valid_until"},
		{"valid_until in the past", stationtest.MustJSON(t, set(base(), "valid_until", "2020-01-01")), token, 422, "valid_until"},
		{"photo not an image", stationtest.MustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString([]byte("hello, not a photo")))), token, 422, "photo"},
		{"photo too many pixels", stationtest.MustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString(pngHeaderOnly(10000, 10000)))), token, 422, "photo"},
		{"photo too small", stationtest.MustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString(grayPNG(t, 200, 260)))), token, 422, "photo"},
		{"logo too small", stationtest.MustJSON(t, set(base(), "company.logo", base64.StdEncoding.EncodeToString(grayPNG(t, 300, 100)))), token, 422, "company.logo"},
		{"name does not fit the card", stationtest.MustJSON(t, set(base(), "holder.print_name", strings.Repeat("Wolfeschlegelsteinhausen ", 8))), token, 422, "holder.print_name"},
		{"body over the limit", stationtest.MustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString(make([]byte, 5<<20)))), token, 413, ""},
		{"no token", stationtest.MustJSON(t, base()), "", 401, ""},
		{"bad token", stationtest.MustJSON(t, base()), "st_forged", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := stationtest.Post(t, hs.URL+"/v1/orders", tc.token, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["message"] == "" || e["code"] == "" {
				t.Fatalf("no error message: %v", out)
			}
			if tc.field != "" {
				found := false
				fields, _ := e["fields"].([]any)
				for _, f := range fields {
					if f.(map[string]any)["path"] == tc.field && f.(map[string]any)["message"] != "" {
						found = true
					}
				}
				if !found {
					t.Fatalf("answer does not name %s: %v", tc.field, e)
				}
			}
			// Never echo personal data back in errors (they reach logs).
			if strings.Contains(fmt.Sprint(out), "19850412") {
				t.Fatalf("error message carries the personnummer: %v", out)
			}
		})
	}
	orders, err := s.store.List(t.Context(), queueFilterAll())
	if err != nil || len(orders) != 0 {
		t.Fatalf("bad input stored %d orders (%v)", len(orders), err)
	}
	// Still serving: a good order goes in.
	if status, out := stationtest.Post(t, hs.URL+"/v1/orders", token, stationtest.MustJSON(t, base())); status != http.StatusCreated {
		t.Fatalf("good order after bad ones: %d %v", status, out)
	}
}

func TestSuppliersSeeOnlyTheirOrders(t *testing.T) {
	s, hs, token := testServer(t, nil)
	if status, out := stationtest.Post(t, hs.URL+"/v1/orders", token, stationtest.MustJSON(t, stationtest.ExampleOrder(t, "mine-1", grayPNG(t, 300, 410)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	if err := s.store.AddToken(t.Context(), "other", "st_other", []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := stationtest.Call(t, http.MethodGet, hs.URL+"/v1/orders/mine-1", "st_other", nil); status != http.StatusNotFound {
		t.Fatalf("another supplier read the order: %d", status)
	}
}

// noisyJPEG makes a w x h JPEG of noise, which compresses badly: 1200x1600
// comes to about 300 KB, a typical phone upload after resizing.
func noisyJPEG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(150 + r.IntN(60))
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 64}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// BenchmarkIntake measures orders accepted per second through the HTTP API
// with a ~300 KB photo, each committed to disk (synchronous=FULL) before the
// answer.
func BenchmarkIntake(b *testing.B) {
	// The rate limit protects a live station; here the station itself is measured.
	_, hs, token := testServer(b, func(c *Config) { c.RatePerSecond, c.RateBurst = 1e9, 1e9 })
	photo := noisyJPEG(b, 1200, 1600) // about 300 KB
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = stationtest.MustJSON(b, stationtest.ExampleOrder(b, fmt.Sprintf("bench-%09d", i), photo))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	b.ResetTimer()
	var next = make(chan int, b.N)
	for i := range b.N {
		next <- i
	}
	close(next)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := <-next
			req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/orders", bytes.NewReader(bodies[i]))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64(len(photo))/1024, "photo-KB")
}

func queueFilterAll() queue.Filter { return queue.Filter{Limit: 500} }
func newToken(t *testing.T, s *server, supplier string, scopes ...string) string {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.AddToken(context.Background(), supplier, tok, scopes); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOperatorAPIScopes(t *testing.T) {
	s, hs, _ := testServer(t, nil)
	orders := newToken(t, s, "acme", "orders")
	operator := newToken(t, s, "floor", "operator")
	both := newToken(t, s, "ops-and-orders", "orders", "operator")
	queuetest.NeedsFix(t, s.store, "nf-1")

	if st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/pause", orders, nil); st != http.StatusForbidden || !strings.Contains(errMessage(body), "--scope operator") {
		t.Fatalf("orders token on /v1/ops: %d %v", st, body)
	}
	if paused, _ := s.pipeline.Paused(); paused {
		t.Fatal("an orders-scope token paused the station")
	}
	if st, _, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders", operator, nil); st != http.StatusForbidden {
		t.Fatalf("operator token on the supplier API: %d, want 403", st)
	}
	if st, _, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/pause", "", nil); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	if st, _, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders", both, nil); st != http.StatusOK {
		t.Fatalf("two-scope token on the supplier API: %d", st)
	}
	if !stationtest.HasAudit(t, s.store, "token:acme forbidden") {
		t.Fatalf("refusal not audited: %v", stationtest.Audit(t, s.store))
	}

	st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/pause", operator, map[string]string{"message": "Card stock low"})
	if st != http.StatusOK || body["paused"] != true || body["message"] != "Card stock low" {
		t.Fatalf("pause: %d %v", st, body)
	}
	if st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/resume", operator, nil); st != http.StatusOK || body["paused"] != false {
		t.Fatalf("resume: %d %v", st, body)
	}
	if !stationtest.HasAudit(t, s.store, "api:floor pause") || !stationtest.HasAudit(t, s.store, "api:floor resume") {
		t.Fatalf("audit: %v", stationtest.Audit(t, s.store))
	}

	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"unknown verdict", map[string]string{"verdict": "maybe", "reason": "x"}, "verdict"},
		{"no reason", map[string]string{"verdict": "pass"}, "reason"},
		{"fail without code", map[string]string{"verdict": "fail", "reason": "x"}, "code"},
		{"fail with unknown code", map[string]string{"verdict": "fail", "reason": "x", "code": "ugly"}, "code"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, tc.body)
			if st != http.StatusUnprocessableEntity || !strings.Contains(asJSON(body), `"path":"`+tc.field+`"`) {
				t.Fatalf("%d %v, want 422 naming %s", st, body, tc.field)
			}
		})
	}
	if st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, map[string]any{"verdict": "pass", "reason": "x", "extra": 1}); st != http.StatusUnprocessableEntity || !strings.Contains(asJSON(body), `"path":"extra"`) {
		t.Fatalf("unknown field: %d %v, want 422 naming extra", st, body)
	}
	st, body, _ = stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, map[string]string{"verdict": "pass", "reason": "checked by hand"})
	if st != http.StatusOK || body["state"] != "queued" {
		t.Fatalf("pass verdict: %d %v", st, body)
	}
	st, body, _ = stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nf-1/photo-verdict", operator, map[string]string{"verdict": "fail", "reason": "cap", "code": "head_cut_off"})
	if st != http.StatusOK || body["state"] != "needs_fix" || !strings.Contains(asJSON(body), "head_cut_off") {
		t.Fatalf("fail verdict: %d %v", st, body)
	}
	events, _ := s.store.Events(context.Background(), "nf-1")
	if a := events[len(events)-1].Actor; a != "api:floor" {
		t.Fatalf("verdict recorded as %q", a)
	}
	if st, _, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nope/photo-verdict", operator, map[string]string{"verdict": "pass", "reason": "x"}); st != http.StatusNotFound {
		t.Fatalf("unknown order: %d", st)
	}
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s, hs, _ := testServer(t, func(c *Config) { c.RatePerSecond, c.RateBurst = 0.5, 3 })
	tok := newToken(t, s, "acme", "orders")
	other := newToken(t, s, "other", "orders")
	for i := 0; i < 3; i++ {
		if st, _, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders", tok, nil); st != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, st)
		}
	}
	st, body, h := stationtest.Call(t, "GET", hs.URL+"/v1/orders", tok, nil)
	if st != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d", st)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q: want 1-2 s at 0.5 requests/s", h.Get("Retry-After"))
	}
	if errMessage(body) == "" {
		t.Fatal("429 without an error message")
	}
	if st, _, _ := stationtest.Call(t, "GET", hs.URL+"/v1/orders", other, nil); st != http.StatusOK {
		t.Fatalf("another supplier was limited too: %d", st)
	}
}

// An order stuck at the printer (or reader) cannot be cancelled, but an
// operator can stop it through the operator API: the blank's card number is
// retired as spoiled, the order fails with who and why.
func TestOperatorStopsAnOrderAtTheDevices(t *testing.T) {
	s, hs, _ := testServer(t, nil)
	ctx := context.Background()
	operator := newToken(t, s, "floor", "operator")
	o := queuetest.Printing(t, s.store, "stuck-2")
	if st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/stuck-2/spoil", operator, map[string]string{}); st != http.StatusUnprocessableEntity || !strings.Contains(asJSON(body), `"path":"reason"`) {
		t.Fatalf("no reason: %d %v", st, body)
	}
	st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/stuck-2/spoil", operator, map[string]string{"reason": "encoder keeps failing"})
	if st != http.StatusOK || body["state"] != "failed" || body["card_number"] != "" {
		t.Fatalf("stop: %d %v", st, body)
	}
	if numbers, _ := s.store.CardNumbers(ctx, "stuck-2"); numbers[o.CardNumber] != "spoiled" {
		t.Fatalf("card %s: %q", o.CardNumber, numbers[o.CardNumber])
	}
	events, _ := s.store.Events(ctx, "stuck-2")
	if a := events[len(events)-1].Actor; a != "api:floor" {
		t.Fatalf("stop recorded as %q", a)
	}
	queuetest.NeedsFix(t, s.store, "nf-1")
	if st, body, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nf-1/spoil", operator, map[string]string{"reason": "x"}); st != http.StatusConflict {
		t.Fatalf("stop of a needs_fix order: %d %v, want 409", st, body)
	}
	if st, _, _ := stationtest.Call(t, "POST", hs.URL+"/v1/ops/orders/nope/spoil", operator, map[string]string{"reason": "x"}); st != http.StatusNotFound {
		t.Fatalf("unknown order: %d", st)
	}
}

// A photo cut short in transfer used to be accepted (201) and printed with a
// grey block from the cut down. Both ways a photo comes in refuse it with
// 422 naming the photo, and nothing is stored.
func TestIntakeRefusesIncompletePhoto(t *testing.T) {
	s, hs, token := testServer(t, nil)
	good := noisyJPEG(t, 600, 800)
	cut := good[:len(good)*7/10]
	status, out := stationtest.Post(t, hs.URL+"/v1/orders", token, stationtest.MustJSON(t, stationtest.ExampleOrder(t, "cut-1", cut)))
	wantIncompletePhoto(t, status, out)
	if orders, err := s.store.List(t.Context(), queueFilterAll()); err != nil || len(orders) != 0 {
		t.Fatalf("the refused order was stored: %d (%v)", len(orders), err)
	}

	if status, out := stationtest.Post(t, hs.URL+"/v1/orders", token, stationtest.MustJSON(t, stationtest.ExampleOrder(t, "cut-2", good))); status != http.StatusCreated {
		t.Fatalf("good order: %d %v", status, out)
	}
	status, out, _ = stationtest.Send(t, http.MethodPut, hs.URL+"/v1/orders/cut-2/photo", token, "image/jpeg", bytes.NewReader(cut))
	wantIncompletePhoto(t, status, out)
}

func wantIncompletePhoto(t *testing.T, status int, out map[string]any) {
	t.Helper()
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %v", status, out)
	}
	e, _ := out["error"].(map[string]any)
	fields, _ := e["fields"].([]any)
	for _, f := range fields {
		if m := f.(map[string]any); m["path"] == "photo" && strings.Contains(m["message"].(string), "the file is incomplete or damaged") {
			return
		}
	}
	t.Fatalf("the answer does not say the photo is incomplete: %v", out)
}

// PUT /v1/orders/{id}/photo takes a JPEG or PNG labelled as what it is, or
// JSON naming any field it does not know; anything else gets a clear 4xx.
func TestPutPhotoChecksTheContentType(t *testing.T) {
	_, hs, token := testServer(t, nil)
	jpg, png := noisyJPEG(t, 600, 800), grayPNG(t, 300, 410)
	if status, out := stationtest.Post(t, hs.URL+"/v1/orders", token, stationtest.MustJSON(t, stationtest.ExampleOrder(t, "photo-1", png))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	jsonBody := func(extra string) []byte {
		return []byte(`{"photo":"` + base64.StdEncoding.EncodeToString(png) + `"` + extra + `}`)
	}
	for _, tc := range []struct {
		name, ct string
		body     []byte
		status   int
		field    string // a field the answer must name
	}{
		{"jpeg", "image/jpeg", jpg, 200, ""},
		{"png", "image/png", png, 200, ""},
		{"json", "application/json; charset=utf-8", jsonBody(""), 200, ""},
		{"no content type", "", jpg, 415, ""},
		{"text", "text/plain", jpg, 415, ""},
		{"gif", "image/gif", []byte("GIF89a\x01\x00\x01\x00"), 415, ""},
		{"form", "application/x-www-form-urlencoded", []byte("photo=x"), 415, ""},
		{"png labelled jpeg", "image/jpeg", png, 422, "photo"},
		{"jpeg labelled png", "image/png", jpg, 422, "photo"},
		{"text labelled jpeg", "image/jpeg", []byte("hello, not a photo"), 422, "photo"},
		{"json with an unknown field", "application/json", jsonBody(`,"caption":"me"`), 422, "caption"},
		{"json not base64", "application/json", []byte(`{"photo":"@@@"}`), 422, "photo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out, _ := stationtest.Send(t, http.MethodPut, hs.URL+"/v1/orders/photo-1/photo", token, tc.ct, bytes.NewReader(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			if tc.status >= 400 {
				e, _ := out["error"].(map[string]any)
				if e == nil || e["message"] == "" {
					t.Fatalf("no error message: %v", out)
				}
				named := false
				fields, _ := e["fields"].([]any)
				for _, f := range fields {
					named = named || f.(map[string]any)["path"] == tc.field
				}
				if tc.field != "" && !named {
					t.Fatalf("answer does not name %s: %v", tc.field, e)
				}
			}
		})
	}
}

// HTTP authentication schemes are case-insensitive: clients
// that send "bearer" or "BEARER" get in, on the supplier and operator APIs.
func TestBearerSchemeAnyCase(t *testing.T) {
	s, hs, token := testServer(t, nil)
	operator := newToken(t, s, "floor", "operator")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		for _, c := range []struct{ method, path, token string }{
			{"GET", "/v1/orders", token},
			{"POST", "/v1/ops/resume", operator},
		} {
			req, err := http.NewRequest(c.method, hs.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", scheme+" "+c.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s with %q: %d, want 200", c.method, c.path, scheme, resp.StatusCode)
			}
		}
	}
}
