package signature

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"event_id":"e1","type":"order.produced"}`)
	good := Sign("secret", now, body)
	tests := []struct {
		name, secret, header string
		body                 []byte
		at                   time.Time
		ok                   bool
	}{
		{"valid", "secret", good, body, now, true},
		{"within tolerance", "secret", good, body, now.Add(4 * time.Minute), true},
		{"wrong secret", "other", good, body, now, false},
		{"body changed", "secret", good, []byte(`{"event_id":"e2","type":"order.produced"}`), now, false},
		{"replayed later", "secret", good, body, now.Add(10 * time.Minute), false},
		{"timestamp changed", "secret", strings.Replace(good, "t=1790000000", "t=1790000001", 1), body, now, false},
		{"malformed", "secret", "sha256=abc", body, now, false},
		{"empty", "secret", "", body, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 2048)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Sign("supplier-secret", now, body)
	}
}

// A receiver that imports this package links nothing of the station: only
// the standard library.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var deps []string
	for _, p := range strings.Fields(string(out)) {
		if p != "id06/webhook/signature" {
			deps = append(deps, p)
		}
	}
	if len(deps) > 0 {
		b, _ := json.Marshal(deps)
		t.Fatalf("the verifier pulls in %s", b)
	}
}
