package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"id06/printer/ippetest"
)

// The station printing through a real IPP Everywhere printer (ippeveprinter):
// out of cards, the station pauses with the operator's message and the card
// waits; after a refill it is printed once and the order is produced.
func TestStationPrintsOverIPP(t *testing.T) {
	skipShort(t, "runs ippeveprinter and the real binary")
	eve := ippetest.Start(t)
	eve.SetCards(t, 0)
	d := startDaemon(t, t.TempDir(), "--printer", "ipp:"+eve.URI)
	d.submit("ipp-1", passPhotos(t)[5])
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, b, err := d.do(http.MethodGet, "/readyz", nil)
		if err != nil {
			t.Fatal(err)
		}
		var ready struct{ Status, Message string }
		json.Unmarshal(b, &ready)
		if ready.Status == "paused" {
			if !strings.Contains(ready.Message, "Out of cards") {
				t.Fatalf("paused with %q, want the out-of-cards message", ready.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("station never paused for the empty printer:\n%s", d.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if o, err := d.order("ipp-1"); err != nil || o.State != "printing" {
		t.Fatalf("order during the fault: %v %+v", err, o)
	}
	if n := len(eve.Received(t)); n != 0 {
		t.Fatalf("the empty printer received %d documents", n)
	}
	eve.SetCards(t, 100)
	if o := d.waitFinal([]string{"ipp-1"}, 2*time.Minute)["ipp-1"]; o.State != "produced" {
		t.Fatalf("after the refill: %s\n%s", o.State, d.stderr.String())
	}
	if n := len(eve.Received(t)); n != 1 {
		t.Fatalf("printer received %d documents, want 1\n%s", n, eve.LogText())
	}
	d.stop()
}
