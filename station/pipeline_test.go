package station

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/order"
	"id06/personalize"
	"id06/personalize/emulator"
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
	runPipeline(t, s)

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

// runPipeline starts the station's workers until the test ends.
func runPipeline(t *testing.T, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.pipeline.Run(ctx, context.Background()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A card pulled out mid-write is a reader fault, not a spoiled blank: the
// station pauses with a message, keeps the chip bound to the order, and
// after the operator resumes it finishes the same chip.
func TestCardRemovedMidWriteResumesSameChip(t *testing.T) {
	s, hs, token := testServer(t, nil)
	s.reader.(*emulator.Reader).InjectNext(emulator.Fault{RemoveAfterWrites: 3})
	runPipeline(t, s)
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "pulled-1", realPhoto(t)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if paused, msg := s.pipeline.Paused(); paused {
			if !strings.Contains(msg, "Card reader") {
				t.Fatalf("pause message %q does not point at the reader", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("station did not pause when the card was pulled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	o, err := s.store.Get(t.Context(), "pulled-1")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != queue.Encoding || o.ChipUID == "" || o.CardNumber == "" {
		t.Fatalf("after the pull: state %s chip %q card %q; want encoding with chip and card kept", o.State, o.ChipUID, o.CardNumber)
	}
	if s.pipeline.ReaderUp() {
		t.Fatal("reader reported up after the card was pulled")
	}
	s.pipeline.Resume()
	done := waitState(t, s, "pulled-1", queue.Produced)
	if !s.pipeline.ReaderUp() {
		t.Fatal("reader still reported down after a card was written")
	}
	if done.ChipUID != o.ChipUID || done.CardNumber != o.CardNumber {
		t.Fatalf("produced on chip %s card %s, want the same chip %s and card %s", done.ChipUID, done.CardNumber, o.ChipUID, o.CardNumber)
	}
	if n, _ := s.store.SpoiledCount(t.Context(), time.Time{}); n != 0 {
		t.Fatalf("%d blanks spoiled for a card that was only pulled", n)
	}
}

// A blank that cannot hold the profile is spoiled, its card number retired,
// and the order is produced on the next blank.
func TestFullBlankIsSpoiledAndReplaced(t *testing.T) {
	s, hs, token := testServer(t, nil)
	s.reader.(*emulator.Reader).InjectNext(emulator.Fault{MemoryFull: true})
	runPipeline(t, s)
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "full-1", realPhoto(t)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	o := waitState(t, s, "full-1", queue.Produced)
	numbers, err := s.store.CardNumbers(t.Context(), "full-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(numbers) != 2 || numbers[o.CardNumber] != "produced" {
		t.Fatalf("card numbers %v; want one spoiled and %s produced", numbers, o.CardNumber)
	}
	if n, _ := s.store.SpoiledCount(t.Context(), time.Time{}); n != 1 {
		t.Fatalf("%d spoiled blanks recorded, want 1", n)
	}
}

// submitStored puts an order straight into the database, as an older
// station's intake (before the id rule) may have left it.
func submitStored(t *testing.T, s *Server, id string) {
	t.Helper()
	o, err := order.Decode(mustJSON(t, exampleOrder(t, "placeholder", realPhoto(t))))
	if err != nil {
		t.Fatal(err)
	}
	photo := o.Photo
	o.ID, o.Photo = id, nil
	doc := mustJSON(t, o)
	_, _, err = s.store.Submit(t.Context(), queue.NewOrder{ID: id, Supplier: "dev", BodyHash: id, Doc: doc, CardType: o.CardType,
		Approvals: []queue.Approval{{Kind: "holder", Method: "bankid", At: time.Now().Add(-time.Minute)}}, Photo: photo}, "test")
	if err != nil {
		t.Fatal(err)
	}
}

// An order the printer refuses (here: an id from before the id rule) fails
// at once, visibly, with its blank retired and ejected; it is not retried,
// and the next order is produced on a fresh blank without spoiling any.
func TestPrinterRefusalFailsTheOrderOnce(t *testing.T) {
	s, hs, token := testServer(t, func(c *Config) { c.Printer = "sim" })
	sim := s.printer.(*printer.SimDriver)
	submitStored(t, s, "..")
	runPipeline(t, s)
	o := waitState(t, s, "..", queue.Failed)
	events, err := s.store.Events(t.Context(), "..")
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; !strings.Contains(last.Note, "printer refused") {
		t.Fatalf("the failure does not say why: %+v", last)
	}
	numbers, _ := s.store.CardNumbers(t.Context(), "..")
	if len(numbers) != 1 || o.CardNumber != "" {
		t.Fatalf("card numbers %v, order keeps %q; want one, retired", numbers, o.CardNumber)
	}
	for n, st := range numbers {
		if st != "spoiled" {
			t.Fatalf("card %s is %s, want spoiled", n, st)
		}
	}
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "after-1", realPhoto(t)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	waitState(t, s, "after-1", queue.Produced)
	if n, _ := s.store.SpoiledCount(t.Context(), time.Time{}); n != 1 {
		t.Fatalf("%d blanks spoiled, want only the refused order's", n)
	}
	if got, _ := s.store.Get(t.Context(), ".."); got.State != queue.Failed || got.Attempt != o.Attempt {
		t.Fatalf("the refused order was taken up again: %s attempt %d (was %d)", got.State, got.Attempt, o.Attempt)
	}
	if len(sim.Jobs()) != 1 {
		t.Fatalf("printer got %d jobs, want the good order's only", len(sim.Jobs()))
	}
}

// Card data the chip cannot take (here: a portrait too large for the card
// stock) fails the order with the reason before any blank is touched; it
// is neither a reader fault that pauses the station nor retried.
func TestCardDataTheChipRefusesFailsTheOrder(t *testing.T) {
	s, hs, token := testServer(t, nil)
	stock := personalize.DefaultStock()
	stock.MaxObject = 700 // not even a thumbnail portrait fits with its header and signature
	chip, err := personalize.New(personalize.Config{PKIDir: filepath.Join(s.cfg.DataDir, "pki"), Stock: stock, Issuer: s.cfg.Issuer, Certs: s.cfg.CertProfile()})
	if err != nil {
		t.Fatal(err)
	}
	s.pipeline.chip = chip
	runPipeline(t, s)
	if status, out := post(t, hs.URL+"/v1/orders", token, mustJSON(t, exampleOrder(t, "big-1", realPhoto(t)))); status != 201 {
		t.Fatalf("%d %v", status, out)
	}
	waitState(t, s, "big-1", queue.Failed)
	events, _ := s.store.Events(t.Context(), "big-1")
	if last := events[len(events)-1]; !strings.Contains(last.Note, "portrait does not fit") {
		t.Fatalf("the failure does not say why: %+v", last)
	}
	if paused, msg := s.pipeline.Paused(); paused || !s.pipeline.ReaderUp() {
		t.Fatalf("the station paused for an order's data: %q", msg)
	}
	if n, _ := s.store.SpoiledCount(t.Context(), time.Time{}); n != 0 {
		t.Fatalf("%d blanks spoiled for data refused before writing", n)
	}
}
