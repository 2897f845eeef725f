package printer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock is the simulator's clock, moved by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func openSim(t *testing.T, opt SimOptions, clock *fakeClock) *SimDriver {
	t.Helper()
	s, err := OpenSimDriver(opt)
	if err != nil {
		t.Fatal(err)
	}
	if clock != nil {
		s.now = clock.now
	}
	return s
}

func lookup(t *testing.T, d Driver, id string) JobStatus {
	t.Helper()
	st, err := d.Lookup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A card takes print-time; a station that dies meanwhile finds it printed
// (or still printing) when it comes back, as with a real printer.
func TestSimPrintTimeAcrossRestart(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	opt := SimOptions{PrintTime: 2 * time.Second, StateDir: t.TempDir()}
	s := openSim(t, opt, clock)
	for _, id := range []string{"a", "b"} {
		if err := s.Submit(ctx, Job{ID: id, OrderID: "o-" + id, CardNumber: "BB-" + id, PDF: testPDF}); err != nil {
			t.Fatal(err)
		}
	}
	if st := lookup(t, s, "a"); st.State != JobPending || st.Fault != nil {
		t.Fatalf("a just submitted: %+v, want pending", st)
	}
	if st := s.Status(ctx); !st.Ready {
		t.Fatalf("a printing printer is not a fault: %+v", st)
	}
	// The station crashes; 3 s later a new one opens the same printer.
	clock.advance(3 * time.Second)
	s2 := openSim(t, opt, clock)
	if st := lookup(t, s2, "a"); st.State != JobDone {
		t.Errorf("a after 3 s = %+v, want done (2 s per card)", st)
	}
	if st := lookup(t, s2, "b"); st.State != JobPending {
		t.Errorf("b after 3 s = %+v, want pending: cards print one after another", st)
	}
	clock.advance(time.Second)
	if st := lookup(t, s2, "b"); st.State != JobDone {
		t.Errorf("b after 4 s = %+v, want done", st)
	}
	if jobs := s2.Jobs(); len(jobs) != 2 || jobs[0].ID != "a" || jobs[1].CardNumber != "BB-b" {
		t.Errorf("Jobs = %+v", jobs)
	}
}

// Wait sleeps for the print time on the real clock and wakes for a fault.
func TestSimWait(t *testing.T) {
	ctx := context.Background()
	s := openSim(t, SimOptions{PrintTime: 30 * time.Millisecond}, nil)
	if err := s.Submit(ctx, Job{ID: "a", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Wait(ctx, "a"); err != nil || st.State != JobDone {
		t.Fatalf("Wait = %+v, %v; want done", st, err)
	}
	s.opt.PrintTime = time.Hour
	if err := s.Submit(ctx, Job{ID: "b", PDF: testPDF}); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(10 * time.Millisecond); s.SetFault(FaultCoverOpen) }()
	st, err := s.Wait(ctx, "b")
	if err != nil || st.State != JobPending || st.Fault == nil || st.Fault.Code != FaultCoverOpen {
		t.Fatalf("Wait while the cover opens = %+v, %v; want pending with cover-open", st, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	s.ClearFault()
	if _, err := s.Wait(cctx, "b"); err != context.DeadlineExceeded {
		t.Errorf("Wait past the context = %v", err)
	}
}

// jam-after=N: every (N+1)th card jams and waits for the operator; the
// jammed card then prints, once.
func TestSimJamAfter(t *testing.T) {
	ctx := context.Background()
	s := openSim(t, SimOptions{JamAfter: 2}, nil)
	var jammed []string
	for i := range 7 {
		j := Job{ID: "c" + string(rune('0'+i)), PDF: testPDF}
		err := PrintOnce(ctx, s, j)
		if f, ok := AsFault(err); ok && f.Code == FaultMediaJam {
			jammed = append(jammed, j.ID)
			if st := s.Status(ctx); st.Fault == nil || st.Fault.Code != FaultMediaJam {
				t.Fatalf("Status after a jam = %+v", st)
			}
			if err := s.Feed(ctx); err == nil {
				t.Fatal("a blank was fed into a jammed printer")
			}
			if err := s.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			err = PrintOnce(ctx, s, j)
		}
		if err != nil {
			t.Fatalf("%s: %v", j.ID, err)
		}
		if n := s.Submitted(j.ID); n != 1 {
			t.Fatalf("%s submitted %d times", j.ID, n)
		}
	}
	if strings.Join(jammed, " ") != "c2 c5" {
		t.Errorf("jammed cards %v, want c2 c5 (after every 2 printed)", jammed)
	}
	if n := len(s.Jobs()); n != 7 {
		t.Errorf("%d cards printed, want 7", n)
	}
}

// cards=N: the hopper runs out; a card already fed still prints; the
// operator's resume refills.
func TestSimHopper(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSim(t, SimOptions{Cards: 2, StateDir: dir}, nil)
	for range 2 {
		if err := s.Feed(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Feed(ctx); err != nil { // feeding again keeps the card in place
			t.Fatal(err)
		}
		if err := s.Eject(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ts := s.TransportStatus(ctx); ts.Blanks != 0 || ts.Fault == nil || ts.Fault.Code != FaultMediaEmpty {
		t.Fatalf("TransportStatus with an empty hopper = %+v", ts)
	}
	if err := s.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	// The last blank is fed: the hopper is empty, but the card inside prints.
	if err := s.Eject(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(ctx); !st.Ready {
		t.Fatalf("printer Status with a fed card and an empty hopper = %+v, want ready", st)
	}
	if err := PrintOnce(ctx, s, Job{ID: "last", PDF: testPDF}); err != nil {
		t.Fatalf("printing the fed card: %v", err)
	}
	if st := s.Status(ctx); st.Fault == nil || st.Fault.Code != FaultMediaEmpty {
		t.Fatalf("Status after the last card = %+v, want out of cards", st)
	}
	if taken, ejected, rejected := s.Counts(); taken != 4 || ejected != 3 || rejected != 0 {
		t.Errorf("Counts = %d, %d, %d", taken, ejected, rejected)
	}
	// The hopper's count survives a restart; a new hopper size is a refill.
	if s2 := openSim(t, SimOptions{Cards: 2, StateDir: dir}, nil); s2.TransportStatus(ctx).Blanks != 0 {
		t.Errorf("blanks after a restart = %d, want 0", s2.TransportStatus(ctx).Blanks)
	}
	if s3 := openSim(t, SimOptions{Cards: 5, StateDir: dir}, nil); s3.TransportStatus(ctx).Blanks != 5 {
		t.Errorf("blanks with a new hopper size = %d, want 5", s3.TransportStatus(ctx).Blanks)
	}
}

func TestSimState(t *testing.T) {
	dir := t.TempDir()
	s := openSim(t, SimOptions{StateDir: dir}, nil)
	for i := range simHistory + 5 {
		if err := s.Submit(context.Background(), Job{ID: fmt.Sprint("j-", i), PDF: testPDF}); err != nil {
			t.Fatal(err)
		}
	}
	s2 := openSim(t, SimOptions{StateDir: dir}, nil)
	if n := len(s2.st.Jobs); n != simHistory {
		t.Errorf("history holds %d jobs, want the newest %d", n, simHistory)
	}
	if st := lookup(t, s2, "j-0"); st.State != JobUnknown {
		t.Errorf("the oldest job is still remembered: %+v", st)
	}
	if err := os.WriteFile(filepath.Join(dir, simStateFile), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSimDriver(SimOptions{StateDir: dir}); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("a broken state file: %v", err)
	}
}
