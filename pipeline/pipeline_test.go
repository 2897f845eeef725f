package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"id06/imaging"
	"id06/lane"
	"id06/order"
	"id06/personalize"
	"id06/personalize/emulator"
	"id06/printer"
	"id06/queue"
	"id06/queue/queuetest"
)

// station is a pipeline over real parts: SQLite on disk, lanes of
// simulated readers with the PIV card emulator, a development PKI, printers.
type station struct {
	store *queue.Store
	p     *Pipeline
	lanes []*lane.Lane
	data  string
	cfg   Config
}

// newStation runs one lane, main, on the simulated reader and printerSpec.
func newStation(t *testing.T, printerSpec string, mutate func(*Config)) *station {
	return newLanes(t, []string{"main=sim," + printerSpec}, mutate)
}

// newLanes builds a station of lanes given as --lane values.
func newLanes(t *testing.T, flags []string, mutate func(*Config)) *station {
	t.Helper()
	cfg := Config{PhotoWorkers: 2, Lease: 30 * time.Second, CardPrefix: "BB", MaxBlanks: 3, Issuer: "ID06 Card Supplier AB", PrinterPatience: time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	st := &station{store: queuetest.Open(t), data: t.TempDir(), cfg: cfg}
	st.open(t, flags)
	return st
}

// testCerts is the test station's certificate profile.
var testCerts = personalize.CertProfile{PKIBaseURL: "http://127.0.0.1:8080"}

// open opens the lanes' devices on the station's data directory (again:
// a restarted station) and a new pipeline over them.
func (st *station) open(t *testing.T, flags []string) {
	t.Helper()
	configs, err := lane.Resolve(lane.Sources{Flags: flags}, st.data)
	if err != nil {
		t.Fatal(err)
	}
	st.lanes = nil
	for _, c := range configs {
		d, err := lane.Open(c, st.data, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		st.lanes = append(st.lanes, lane.New(c, d))
	}
	chip, err := personalize.New(personalize.Config{PKIDir: filepath.Join(st.data, "pki"), Issuer: st.cfg.Issuer, Certs: testCerts})
	if err != nil {
		t.Fatal(err)
	}
	st.p = New(st.store, st.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), imaging.CheckPhoto, chip, st.lanes,
		printer.DefaultTemplate(), nopMetrics{})
}

// wantFace checks that the order's face PDF and both previews are stored.
func (st *station) wantFace(t *testing.T, id string) {
	t.Helper()
	kinds, err := st.store.BlobKinds(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"face_pdf", "face_png", "face_back_png"} {
		if !kinds[k] {
			t.Errorf("%s has no %s", id, k)
		}
	}
}

// reader is the lane's simulated reader; sim its simulated printer.
func (st *station) reader(i int) *emulator.Reader {
	return st.lanes[i].Devices.Reader.(*emulator.Reader)
}
func (st *station) sim(i int) *printer.SimDriver {
	return st.lanes[i].Devices.Printer.(*printer.SimDriver)
}

type nopMetrics struct{}

func (nopMetrics) Stage(string, string, time.Duration) {}
func (nopMetrics) Spoiled(string)                      {}
func (nopMetrics) Produced(string)                     {}
func (nopMetrics) ExpressMissed()                      {}

// run starts the workers until the test ends; stop ends them at once, the
// card in hand aborted as by a crash.
func (st *station) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.p.Run(ctx, ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// submit stores examples/order.json under id with a real portrait, as the
// intake would: the document without its images, the images apart.
func (st *station) submit(t *testing.T, id string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "order.json"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	logo := o.Company.Logo
	o.ID, o.Photo, o.Company.Logo, o.Approvals = id, nil, nil, queuetest.Approved()
	doc, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.store.Submit(t.Context(), queue.NewOrder{ID: id, Supplier: "dev", BodyHash: "h-" + id, Doc: doc, CardType: o.CardType,
		Approvals: o.Approvals, Photo: realPhoto(t), Logo: logo}, "supplier:dev"); err != nil {
		t.Fatal(err)
	}
	st.p.Wake()
}

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

func (st *station) waitState(t *testing.T, id string, want order.State) *order.Record {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		o, err := st.store.Get(t.Context(), id)
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

// waitLane waits until lane i is in state want and returns its snapshot.
func (st *station) waitLane(t *testing.T, i int, want lane.State, what string) lane.Snapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := st.lanes[i].Snapshot(t.Context())
		if s.State == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("lane %s is %s (%s), want %s: %s", s.Name, s.State, s.Reason, want, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// faultyPrinter runs a one-lane station whose simulated printer reports a
// fault; the cards are fed by hand, so the fault shows when printing.
func faultyPrinter(t *testing.T, fault string, mutate func(*Config)) (*station, *printer.SimDriver) {
	st := newLanes(t, []string{"main=sim,sim,manual"}, mutate)
	sim := st.sim(0)
	sim.SetFault(fault)
	st.run(t)
	return st, sim
}

// A printer fault pauses the lane (not the station) with the operator's
// message; the card waits in printing, and is produced once the fault
// clears at the printer.
func TestPrinterFaultPausesTheLane(t *testing.T) {
	st, sim := faultyPrinter(t, "media-empty", nil)
	st.submit(t, "fault-1")
	st.waitState(t, "fault-1", order.Printing)
	s := st.waitLane(t, 0, lane.Paused, "the printer fault")
	if !strings.Contains(strings.ToLower(s.Reason), "out of cards") || s.Fault != "printer" || s.Card == nil || s.Card.Order != "fault-1" {
		t.Fatalf("lane = %+v: want paused for the printer, out of cards, fault-1 in hand", s)
	}
	if paused, msg := st.p.Paused(); paused {
		t.Fatalf("a printer fault paused the whole station: %q", msg)
	}
	if o, _ := st.store.Get(t.Context(), "fault-1"); o.State != order.Printing {
		t.Fatalf("order left printing during the fault: %s", o.State)
	}
	sim.ClearFault()
	o := st.waitState(t, "fault-1", order.Produced)
	if s := st.waitLane(t, 0, lane.Idle, "the fault cleared"); s.CardsThisHour != 1 || s.LastFault == "" {
		t.Fatalf("lane after the fault = %+v", s)
	}
	if jobs := sim.Jobs(); len(jobs) != 1 || jobs[0].CardNumber != o.CardNumber {
		t.Fatalf("printer got %d jobs", len(jobs))
	}
	if o.Lane != "main" || o.PrintJob != printer.JobID("fault-1", o.CardNumber) || o.PrintPrinter != "sim:main" {
		t.Errorf("order records lane %q, print %q on %q", o.Lane, o.PrintJob, o.PrintPrinter)
	}
	st.wantFace(t, "fault-1")
}

// A busy printer will be ready by itself: the card waits without pausing the
// lane. Only a printer busy for longer than the patience pauses it.
func TestBusyPrinterDoesNotPause(t *testing.T) {
	st, sim := faultyPrinter(t, "busy", nil)
	st.submit(t, "busy-1")
	st.waitState(t, "busy-1", order.Printing)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s := st.lanes[0].Snapshot(t.Context()); s.State == lane.Paused {
			t.Fatalf("a busy printer paused the lane: %q", s.Reason)
		}
	}
	sim.ClearFault()
	st.waitState(t, "busy-1", order.Produced)

	st, sim = faultyPrinter(t, "busy", func(c *Config) { c.PrinterPatience = 2 * time.Second })
	st.submit(t, "busy-2")
	if s := st.waitLane(t, 0, lane.Paused, "a printer busy past the patience"); !strings.Contains(s.Reason, "busy") {
		t.Fatalf("lane pause %q does not say the printer is busy", s.Reason)
	}
	sim.ClearFault()
	st.waitState(t, "busy-2", order.Produced)
}

// A card pulled out mid-write is a reader fault, not a spoiled blank: the
// lane pauses with a message, keeps the chip bound to the order, and after
// the operator resumes the lane it finishes the same chip.
func TestCardRemovedMidWriteResumesSameChip(t *testing.T) {
	st := newStation(t, "spool", nil)
	st.reader(0).InjectNext(emulator.Fault{RemoveAfterWrites: 3})
	st.run(t)
	st.submit(t, "pulled-1")
	if s := st.waitLane(t, 0, lane.Paused, "the card pulled"); !strings.Contains(s.Reason, "Card reader") || s.Fault != "reader" {
		t.Fatalf("lane = %+v: the pause does not point at the reader", s)
	}
	o, err := st.store.Get(t.Context(), "pulled-1")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != order.Encoding || o.ChipUID == "" || o.CardNumber == "" {
		t.Fatalf("after the pull: state %s chip %q card %q; want encoding with chip and card kept", o.State, o.ChipUID, o.CardNumber)
	}
	if err := st.p.ResumeLane(t.Context(), "main"); err != nil {
		t.Fatal(err)
	}
	done := st.waitState(t, "pulled-1", order.Produced)
	if done.ChipUID != o.ChipUID || done.CardNumber != o.CardNumber {
		t.Fatalf("produced on chip %s card %s, want the same chip %s and card %s", done.ChipUID, done.CardNumber, o.ChipUID, o.CardNumber)
	}
	if n, _ := st.store.SpoiledCount(t.Context(), time.Time{}); n != 0 {
		t.Fatalf("%d blanks spoiled for a card that was only pulled", n)
	}
}

// A blank that cannot hold the profile is spoiled, its card number retired,
// and the order is produced on the next blank.
func TestFullBlankIsSpoiledAndReplaced(t *testing.T) {
	st := newStation(t, "spool", nil)
	st.reader(0).InjectNext(emulator.Fault{MemoryFull: true})
	st.run(t)
	st.submit(t, "full-1")
	o := st.waitState(t, "full-1", order.Produced)
	numbers, err := st.store.CardNumbers(t.Context(), "full-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(numbers) != 2 || numbers[o.CardNumber] != "produced" {
		t.Fatalf("card numbers %v; want one spoiled and %s produced", numbers, o.CardNumber)
	}
	if n, _ := st.store.SpoiledCount(t.Context(), time.Time{}); n != 1 {
		t.Fatalf("%d spoiled blanks recorded, want 1", n)
	}
}

// An order the printer refuses (here: an id from before the id rule) fails
// at once, visibly, with its blank retired and ejected; it is not retried,
// and the next order is produced on a fresh blank without spoiling any.
func TestPrinterRefusalFailsTheOrderOnce(t *testing.T) {
	st := newStation(t, "sim", nil)
	sim := st.sim(0)
	// Straight into the database, as an older station's intake (before the
	// id rule) may have left it.
	st.submit(t, "..")
	st.run(t)
	o := st.waitState(t, "..", order.Failed)
	events, err := st.store.Events(t.Context(), "..")
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; !strings.Contains(last.Note, "printer refused") {
		t.Fatalf("the failure does not say why: %+v", last)
	}
	numbers, _ := st.store.CardNumbers(t.Context(), "..")
	if len(numbers) != 1 || o.CardNumber != "" {
		t.Fatalf("card numbers %v, order keeps %q; want one, retired", numbers, o.CardNumber)
	}
	for n, state := range numbers {
		if state != "spoiled" {
			t.Fatalf("card %s is %s, want spoiled", n, state)
		}
	}
	st.submit(t, "after-1")
	st.waitState(t, "after-1", order.Produced)
	if n, _ := st.store.SpoiledCount(t.Context(), time.Time{}); n != 1 {
		t.Fatalf("%d blanks spoiled, want only the refused order's", n)
	}
	if got, _ := st.store.Get(t.Context(), ".."); got.State != order.Failed || got.Attempt != o.Attempt {
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
	st := newStation(t, "spool", nil)
	stock := personalize.DefaultStock()
	stock.MaxObject = 700 // not even a thumbnail portrait fits with its header and signature
	chip, err := personalize.New(personalize.Config{PKIDir: t.TempDir(), Stock: stock, Issuer: st.p.cfg.Issuer, Certs: testCerts})
	if err != nil {
		t.Fatal(err)
	}
	st.p.chip = chip
	st.run(t)
	st.submit(t, "big-1")
	st.waitState(t, "big-1", order.Failed)
	events, _ := st.store.Events(t.Context(), "big-1")
	if last := events[len(events)-1]; !strings.Contains(last.Note, "portrait does not fit") {
		t.Fatalf("the failure does not say why: %+v", last)
	}
	if s := st.lanes[0].Snapshot(t.Context()); s.State == lane.Paused {
		t.Fatalf("the lane paused for an order's data: %q", s.Reason)
	}
	if n, _ := st.store.SpoiledCount(t.Context(), time.Time{}); n != 0 {
		t.Fatalf("%d blanks spoiled for data refused before writing", n)
	}
}

// A step that keeps failing (the disk is full, the database is gone) waits
// longer before each retry instead of spinning: with the data directory's
// disk full, the station burned a core and logged hundreds of errors a
// second. A success starts the waits over.
func TestFailingStepBacksOff(t *testing.T) {
	p := New(nil, Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil, nil, nopMetrics{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	p.sleep = func(ctx context.Context, d time.Duration) {
		if waits = append(waits, d); len(waits) == 4 {
			cancel()
		}
	}
	results := []error{errDiskFull, errDiskFull, errDiskFull, nil, errDiskFull}
	calls := 0
	p.loop(ctx, func(context.Context) (bool, error) {
		if calls >= len(results) {
			t.Fatalf("step run %d times", calls+1)
		}
		calls++
		return true, results[calls-1]
	})
	if len(waits) != 4 || waits[0] <= 0 || waits[1] <= waits[0] || waits[2] <= waits[1] || waits[3] != waits[0] {
		t.Fatalf("waits after fail, fail, fail, success, fail: %v; want growing waits after each failure, none after the success, and the first wait again", waits)
	}
}

var errDiskFull = errors.New("database or disk is full")

// flakyFaceStore is a database that fails the card face's first writes and
// reads, as one does while it restarts.
type flakyFaceStore struct {
	Store
	fails atomic.Int32
}

var errUnavailable = errors.New("database unavailable")

func (f *flakyFaceStore) PutBlobs(ctx context.Context, c *queue.Claim, blobs map[string][]byte) error {
	if _, face := blobs["face_pdf"]; face && f.fails.Add(-1) >= 0 {
		return errUnavailable
	}
	return f.Store.PutBlobs(ctx, c, blobs)
}

func (f *flakyFaceStore) Blob(ctx context.Context, id, kind string) ([]byte, error) {
	if kind == "logo" && f.fails.Add(-1) >= 0 {
		return nil, errUnavailable
	}
	return f.Store.Blob(ctx, id, kind)
}

// A database that does not answer while the card face is drawn (the face
// is drawn while the chip is written) never fails the card: the reads and
// the write are retried and the order is produced on its first blank.
func TestFaceSurvivesDatabaseHiccup(t *testing.T) {
	st := newStation(t, "spool", nil)
	flaky := &flakyFaceStore{Store: st.store}
	flaky.fails.Store(3)
	st.p = New(flaky, st.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), imaging.CheckPhoto, st.p.chip, st.lanes,
		printer.DefaultTemplate(), nopMetrics{})
	st.run(t)
	st.submit(t, "hiccup-1")
	st.waitState(t, "hiccup-1", order.Produced)
	if n, _ := st.store.SpoiledCount(t.Context(), time.Time{}); n != 0 {
		t.Fatalf("%d blanks spoiled by a database hiccup", n)
	}
	if flaky.fails.Load() >= 0 {
		t.Fatal("the database never failed: the test proves nothing")
	}
}
