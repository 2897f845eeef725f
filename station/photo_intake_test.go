package station

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A photo cut short in transfer used to be accepted (201) and printed with a
// grey block from the cut down. Both ways a photo comes in refuse it with
// 422 naming the photo, and nothing is stored.
func TestIntakeRefusesIncompletePhoto(t *testing.T) {
	s, hs, token := testServer(t, nil)
	good := noisyJPEG(t, 600, 800)
	cut := good[:len(good)*7/10]
	status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "cut-1", cut)))
	wantIncompletePhoto(t, status, out)
	if orders, err := s.store.List(t.Context(), queueFilterAll()); err != nil || len(orders) != 0 {
		t.Fatalf("the refused order was stored: %d (%v)", len(orders), err)
	}

	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "cut-2", good))); status != http.StatusCreated {
		t.Fatalf("good order: %d %v", status, out)
	}
	req, _ := http.NewRequest(http.MethodPut, hs.URL+"/v1/orders/cut-2/photo", bytes.NewReader(cut))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out = nil
	json.NewDecoder(resp.Body).Decode(&out)
	wantIncompletePhoto(t, resp.StatusCode, out)
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
