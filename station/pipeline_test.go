package station

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/printer"
	"id06/queue"
)

// realPhoto reads a portrait that expected.tsv says must pass.
func realPhoto(t testing.TB) []byte {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		for _, c := range []string{filepath.Join(d, "shared"), filepath.Join(filepath.Dir(d), "shared")} {
			if b, err := os.ReadFile(filepath.Join(c, "testdata", "photos", "dev", "pass_london_010_03.jpg")); err == nil {
				return b
			}
		}
	}
	t.Fatal("shared/testdata/photos not found")
	return nil
}

func waitState(t *testing.T, s *Server, id string, want queue.State) *queue.Order {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		o, err := s.store.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if o.State == want {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stuck in %s, want %s", id, o.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A printer fault pauses the station with the operator's message; the card
// waits in printing, and is produced once the fault clears.
func TestPrinterFaultPausesAndResumes(t *testing.T) {
	s, hs, token := testServer(t, func(c *Config) { c.Printer = "sim" })
	sim := s.printer.(*printer.SimDriver)
	sim.SetFault("media-empty")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.pipeline.Run(ctx, context.Background()); close(done) }()
	defer func() { cancel(); <-done }()

	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "fault-1", realPhoto(t)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	waitState(t, s, "fault-1", queue.Printing)
	deadline := time.Now().Add(30 * time.Second)
	for {
		paused, msg := s.pipeline.Paused()
		if paused {
			if !strings.Contains(strings.ToLower(msg), "out of cards") {
				t.Fatalf("pause message %q does not tell the operator the printer is out of cards", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("station did not pause on the printer fault")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if o, _ := s.store.Get(t.Context(), "fault-1"); o.State != queue.Printing {
		t.Fatalf("order left printing during the fault: %s", o.State)
	}
	sim.ClearFault()
	o := waitState(t, s, "fault-1", queue.Produced)
	if paused, _ := s.pipeline.Paused(); paused {
		t.Fatal("station still paused after the fault cleared")
	}
	if jobs := sim.Jobs(); len(jobs) != 1 || jobs[0].CardNumber != o.CardNumber {
		t.Fatalf("printer got %d jobs", len(jobs))
	}
}
