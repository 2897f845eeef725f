package station

import (
	"bytes"
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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/queue"
)

// testServer opens a real station (SQLite on disk, simulated reader, spool
// printer) and serves its handler; the pipeline is not started.
func testServer(t testing.TB, mutate func(*Config)) (*Server, *httptest.Server, string) {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	tok, err := os.ReadFile(cfg.DevTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	return s, hs, strings.TrimSpace(string(tok))
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

// exampleOrder is examples/order.json as a map, with a new id and a photo
// that passes the header checks.
func exampleOrder(t testing.TB, id string, photo []byte) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "order.json"))
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

func post(t testing.TB, url, token string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	status, out, _ := send(t, req)
	return status, out
}

// send makes a request and reads the JSON answer.
func send(t testing.TB, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every kind of bad input gets a clear 4xx naming the field, nothing is
// stored, and the station keeps serving.
func TestIntakeRefusesBadInput(t *testing.T) {
	s, hs, token := testServer(t, func(c *Config) { c.MaxBodyBytes = 4 << 20 })
	photo := grayPNG(t, 300, 410)
	now := time.Now().UTC()
	tooLate := now.AddDate(5, 0, 2).Format(time.DateOnly)
	base := func() map[string]any { return exampleOrder(t, "bad-1", photo) }
	for _, tc := range []struct {
		name   string
		body   []byte
		token  string
		status int
		field  string // a field path the answer must name ("" = none required)
	}{
		{"malformed JSON", []byte(`{"id": "x",`), token, 422, ""},
		{"id dot dot", mustJSON(t, set(base(), "id", "..")), token, 422, "id"},
		{"id dot", mustJSON(t, set(base(), "id", ".")), token, 422, "id"},
		{"id dash", mustJSON(t, set(base(), "id", "-")), token, 422, "id"},
		{"id underscore first", mustJSON(t, set(base(), "id", "_x")), token, 422, "id"},
		{"wrong type", mustJSON(t, set(base(), "express", "yes")), token, 422, "express"},
		{"missing field", mustJSON(t, set(base(), "holder.last_name", nil)), token, 422, "holder.last_name"},
		{"unknown field", mustJSON(t, set(base(), "holder.shoe_size", 44)), token, 422, "holder.shoe_size"},
		{"personnummer check digit", mustJSON(t, set(base(), "holder.id_number", "19850412-1231")), token, 422, "holder.id_number"},
		{"samordningsnummer check digit", mustJSON(t, set(set(base(), "holder.id_number", "19850472-1231"), "holder.birth_date", "1985-04-12")), token, 422, "holder.id_number"},
		{"org number check digit", mustJSON(t, set(base(), "company.org_number", "556677-8898")), token, 422, "company.org_number"},
		{"PESEL check digit", mustJSON(t, set(set(base(), "holder.nationality", "PL"), "holder.id_number", "85041212345")), token, 422, "holder.id_number"},
		{"nationality does not match id", mustJSON(t, set(base(), "holder.nationality", "PL")), token, 422, "holder.id_number"},
		{"valid_until over 5 years", mustJSON(t, set(base(), "valid_until", tooLate)), token, 422, "valid_until"},
		{"valid_until in the past", mustJSON(t, set(base(), "valid_until", "2020-01-01")), token, 422, "valid_until"},
		{"photo not an image", mustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString([]byte("hello, not a photo")))), token, 422, "photo"},
		{"photo too many pixels", mustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString(pngHeaderOnly(10000, 10000)))), token, 422, "photo"},
		{"photo too small", mustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString(grayPNG(t, 200, 260)))), token, 422, "photo"},
		{"logo too small", mustJSON(t, set(base(), "company.logo", base64.StdEncoding.EncodeToString(grayPNG(t, 300, 100)))), token, 422, "company.logo"},
		{"name does not fit the card", mustJSON(t, set(base(), "holder.print_name", strings.Repeat("Wolfeschlegelsteinhausen ", 8))), token, 422, "holder.print_name"},
		{"body over the limit", mustJSON(t, set(base(), "photo", base64.StdEncoding.EncodeToString(make([]byte, 5<<20)))), token, 413, ""},
		{"no token", mustJSON(t, base()), "", 401, ""},
		{"bad token", mustJSON(t, base()), "st_forged", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, hs.URL+"/v1/orders", tc.token, tc.body)
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
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, base())); status != http.StatusCreated {
		t.Fatalf("good order after bad ones: %d %v", status, out)
	}
}

func TestSuppliersSeeOnlyTheirOrders(t *testing.T) {
	s, hs, token := testServer(t, nil)
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "mine-1", grayPNG(t, 300, 410)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	if err := s.store.AddToken(t.Context(), "other", "st_other", []string{"orders"}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/orders/mine-1", nil)
	req.Header.Set("Authorization", "Bearer st_other")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another supplier read the order: %d", resp.StatusCode)
	}
}

// Order ids are unique per supplier: a supplier using an id another one
// used gets its own order (not 409), finds it by that id, and never sees or
// touches the other supplier's. Operators see both, told apart.
func TestOrderIDsArePerSupplier(t *testing.T) {
	s, hs, devToken := testServer(t, nil)
	opUser(t, s, "eva", queue.RoleOperator, opPassword)
	bygg := opToken(t, s, "bygg", "orders")
	photo := grayPNG(t, 300, 410)
	if status, out := post(t, hs.URL+"/v1/orders", devToken, mustJSON(t, exampleOrder(t, "po-1", photo))); status != 201 {
		t.Fatalf("dev: %d %v", status, out)
	}
	theirs := set(exampleOrder(t, "po-1", photo), "express", true)
	status, out := post(t, hs.URL+"/v1/orders", bygg, mustJSON(t, theirs))
	if status != http.StatusCreated || out["id"] != "po-1" || out["express"] != true {
		t.Fatalf("bygg with dev's id: %d %v, want 201 for its own order", status, out)
	}
	if status, _ := post(t, hs.URL+"/v1/orders", bygg, mustJSON(t, theirs)); status != http.StatusOK {
		t.Fatalf("bygg resubmits: %d, want 200", status)
	}
	for token, express := range map[string]bool{devToken: false, bygg: true} {
		st, o, _ := opAPI(t, "GET", hs.URL+"/v1/orders/po-1", token, nil)
		if st != http.StatusOK || o["id"] != "po-1" || o["express"] != express {
			t.Fatalf("GET po-1 (express %v): %d %v", express, st, o)
		}
		st, list, _ := opAPI(t, "GET", hs.URL+"/v1/orders", token, nil)
		if orders, _ := list["orders"].([]any); st != http.StatusOK || len(orders) != 1 || orders[0].(map[string]any)["id"] != "po-1" {
			t.Fatalf("list: %d %v", st, list)
		}
	}
	if st, o, _ := opAPI(t, "POST", hs.URL+"/v1/orders/po-1/cancel", bygg, nil); st != http.StatusOK || o["state"] != "cancelled" {
		t.Fatalf("bygg cancels its po-1: %d %v", st, o)
	}
	if st, o, _ := opAPI(t, "GET", hs.URL+"/v1/orders/po-1", devToken, nil); st != http.StatusOK || o["state"] == "cancelled" {
		t.Fatalf("dev's po-1 after bygg's cancel: %d %v", st, o)
	}
	// The operator page lists both, each with its supplier.
	b := newOpBrowser(t, hs.URL)
	b.loggedIn("eva", opPassword)
	page := b.get("/ui/orders?q=po-1").body
	if strings.Count(page, `href="/ui/orders/po-1`) != 2 || !strings.Contains(page, "bygg") || !strings.Contains(page, "dev") {
		t.Fatalf("the operator list does not show both po-1 with their suppliers:\n%s", page)
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
		bodies[i] = mustJSON(b, exampleOrder(b, fmt.Sprintf("bench-%09d", i), photo))
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

// PUT /v1/orders/{id}/photo takes a JPEG or PNG labelled as what it is, or
// JSON naming any field it does not know; anything else gets a clear 4xx.
func TestPutPhotoChecksTheContentType(t *testing.T) {
	_, hs, token := testServer(t, nil)
	jpg, png := noisyJPEG(t, 600, 800), grayPNG(t, 300, 410)
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "photo-1", png))); status != 201 {
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
			req, _ := http.NewRequest(http.MethodPut, hs.URL+"/v1/orders/photo-1/photo", bytes.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+token)
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			status, out, _ := send(t, req)
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
