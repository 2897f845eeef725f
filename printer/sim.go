package printer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"id06/internal/atomicfile"
)

// SimOptions shape a simulated card printer (the printer spec
// "sim:cards=5:jam-after=20:print-time=2s").
type SimOptions struct {
	Cards     int           // blanks the hopper holds; 0 = endless
	JamAfter  int           // cards printed before a card jams; 0 = never
	PrintTime time.Duration // how long each card takes to print
	StateDir  string        // where the printer keeps its state; "" = in memory
}

// SimDriver is a card printer with an inline contact encoder, simulated in
// process: a hopper of blanks, the card path past the encoder to the print
// head, an output hopper and a reject bin, print time and faults. It is
// both a Driver and a Transport. With a StateDir its state (hopper, card
// inside, job history) survives a station restart as a real printer's does:
// a card submitted before a crash goes on printing meanwhile.
type SimDriver struct {
	opt SimOptions
	now func() time.Time

	mu      sync.Mutex
	st      simState
	fault   *Fault // injected with SetFault
	closed  bool
	changed chan struct{} // closed and replaced on every change Wait looks at
}

// simHistory is how many jobs the simulator remembers, like a printer's
// job history: a lane asks only about its own card in hand after a restart.
const simHistory = 100

type simState struct {
	Cards    int                `json:"cards"`     // the hopper size the blanks were counted for
	Blanks   int                `json:"blanks"`    // left in the hopper (when Cards > 0)
	Fed      bool               `json:"fed"`       // a fed blank waits in the card path for its print
	SinceJam int                `json:"since_jam"` // cards printed since the last jam cleared
	Jammed   string             `json:"jammed"`    // the job stuck in the printer, "" none
	BusyTill time.Time          `json:"busy_till"` // when the last accepted card is done
	Seq      int                `json:"seq"`
	Taken    int                `json:"taken"` // blanks taken from the hopper
	Ejected  int                `json:"ejected"`
	Rejected int                `json:"rejected"`
	Jobs     map[string]*simJob `json:"jobs"`
}

type simJob struct {
	OrderID    string    `json:"order_id"`
	CardNumber string    `json:"card_number"`
	SHA256     string    `json:"sha256"`
	Seq        int       `json:"seq"`
	Done       time.Time `json:"done"`      // zero while the card is jammed
	Submitted  int       `json:"submitted"` // more than 1: the card was printed twice
}

const simStateFile = "printer.json"

// NewSimDriver returns a ready simulated printer with an endless hopper,
// instant prints and its state in memory.
func NewSimDriver() *SimDriver {
	s, _ := OpenSimDriver(SimOptions{}) // cannot fail without a StateDir
	return s
}

// OpenSimDriver opens a simulated printer, with the state it left in
// opt.StateDir if any. A changed hopper size counts as a refilled hopper.
func OpenSimDriver(opt SimOptions) (*SimDriver, error) {
	s := &SimDriver{opt: opt, now: time.Now, changed: make(chan struct{}),
		st: simState{Cards: opt.Cards, Blanks: opt.Cards, Jobs: map[string]*simJob{}}}
	if opt.StateDir == "" {
		return s, nil
	}
	b, err := os.ReadFile(filepath.Join(opt.StateDir, simStateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(opt.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("simulated printer: %w", err)
		}
		return s, s.save()
	case err != nil:
		return nil, fmt.Errorf("simulated printer: %w", err)
	}
	var st simState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("simulated printer: the state in %s is unreadable: %w", opt.StateDir, err)
	}
	if st.Jobs == nil {
		st.Jobs = map[string]*simJob{}
	}
	if st.Cards != opt.Cards {
		st.Cards, st.Blanks = opt.Cards, opt.Cards
	}
	s.st = st
	return s, nil
}

// save writes the state (caller holds mu).
func (s *SimDriver) save() error {
	if s.opt.StateDir == "" {
		return nil
	}
	if len(s.st.Jobs) > simHistory {
		ids := make([]string, 0, len(s.st.Jobs))
		for id := range s.st.Jobs {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(s.st.Jobs[a].Seq, s.st.Jobs[b].Seq) })
		for _, id := range ids[:len(ids)-simHistory] {
			delete(s.st.Jobs, id)
		}
	}
	b, err := json.Marshal(&s.st)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.opt.StateDir, simStateFile), b, 0o600); err != nil {
		return fmt.Errorf("simulated printer: saving its state: %w", err)
	}
	return nil
}

// notify wakes Wait (caller holds mu).
func (s *SimDriver) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// SetFault makes the printer report a fault ("offline", "media-empty",
// "media-jam", "marker-supply-empty", "busy", …) until ClearFault.
func (s *SimDriver) SetFault(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = NewFault(code)
	s.notify()
}

// ClearFault takes the injected fault away.
func (s *SimDriver) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
	s.notify()
}

// Recover is an operator's resume at the printer: the hopper is refilled
// and a jammed card freed, which then prints.
func (s *SimDriver) Recover(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Blanks = s.st.Cards
	if j := s.st.Jobs[s.st.Jammed]; j != nil {
		j.Done = s.schedule()
		s.st.SinceJam = 0
	}
	s.st.Jammed = ""
	s.notify()
	return s.save()
}

// schedule books the print head for one card and says when it is done
// (caller holds mu).
func (s *SimDriver) schedule() time.Time {
	start := s.now()
	if s.st.BusyTill.After(start) {
		start = s.st.BusyTill
	}
	s.st.BusyTill = start.Add(s.opt.PrintTime)
	return s.st.BusyTill
}

// stop is the fault that stops the printer now, if any (caller holds mu).
func (s *SimDriver) stop() *Fault {
	if s.fault != nil {
		f := *s.fault
		return &f
	}
	if s.st.Jammed != "" {
		return NewFault(FaultMediaJam)
	}
	return nil
}

// refuse says why the simulator takes no card now: the caller gave up, it
// is closed, or a fault or jam stops it (caller holds mu).
func (s *SimDriver) refuse(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return errors.New("simulated printer is closed")
	}
	if f := s.stop(); f != nil {
		return f
	}
	return nil
}

// takeBlank moves a blank from the hopper into the card path (caller holds mu).
func (s *SimDriver) takeBlank() *Fault {
	if s.st.Cards > 0 {
		if s.st.Blanks == 0 {
			return NewFault(FaultMediaEmpty)
		}
		s.st.Blanks--
	}
	s.st.Taken++
	return nil
}

// Submit takes the card in the card path (or a blank from the hopper when
// none was fed) to the print head. The card that makes jam-after full
// jams: the job stays pending until Recover.
func (s *SimDriver) Submit(ctx context.Context, job Job) error {
	if err := checkJob(job); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refuse(ctx); err != nil {
		return err
	}
	if !s.st.Fed {
		if f := s.takeBlank(); f != nil {
			return f
		}
	}
	s.st.Fed = false
	s.st.Seq++
	sum := sha256.Sum256(job.PDF)
	j := &simJob{OrderID: job.OrderID, CardNumber: job.CardNumber, SHA256: hex.EncodeToString(sum[:]), Seq: s.st.Seq, Submitted: 1}
	if old := s.st.Jobs[job.ID]; old != nil {
		j.Submitted += old.Submitted
	}
	if s.opt.JamAfter > 0 && s.st.SinceJam >= s.opt.JamAfter {
		s.st.Jammed = job.ID
	} else {
		j.Done = s.schedule()
		s.st.SinceJam++
	}
	s.st.Jobs[job.ID] = j
	s.notify()
	return s.save()
}

// Lookup answers from the simulator's job history.
func (s *SimDriver) Lookup(ctx context.Context, jobID string) (JobStatus, error) {
	if err := ctx.Err(); err != nil {
		return JobStatus{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	js, _ := s.jobStatus(jobID)
	return js, nil
}

// jobStatus also says how long a pending card still prints (caller holds mu).
func (s *SimDriver) jobStatus(jobID string) (JobStatus, time.Duration) {
	j := s.st.Jobs[jobID]
	switch {
	case j == nil:
		return JobStatus{State: JobUnknown}, 0
	case j.Done.IsZero():
		return JobStatus{State: JobPending, Fault: NewFault(FaultMediaJam)}, 0
	}
	left := j.Done.Sub(s.now())
	if left <= 0 {
		return JobStatus{State: JobDone}, 0
	}
	return JobStatus{State: JobPending, Fault: s.stop()}, left
}

// Wait sleeps until the card is printed or the printer stops.
func (s *SimDriver) Wait(ctx context.Context, jobID string) (JobStatus, error) {
	for {
		s.mu.Lock()
		js, left := s.jobStatus(jobID)
		ch := s.changed
		s.mu.Unlock()
		if js.State != JobPending || js.Fault != nil {
			return js, nil
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return JobStatus{}, ctx.Err()
		case <-ch:
			t.Stop()
		case <-t.C:
		}
	}
}

// Status reports the injected fault, a jam, or an empty hopper when no fed
// card waits for its print.
func (s *SimDriver) Status(context.Context) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.stop()
	if f == nil && s.st.Cards > 0 && s.st.Blanks == 0 && !s.st.Fed {
		f = NewFault(FaultMediaEmpty)
	}
	if f != nil {
		return Status{Fault: f, Message: f.Message}
	}
	return Status{Ready: true, Message: "Simulated printer ready"}
}

// Jobs returns the cards printed so far, in the order they came out (the
// PDF itself is not kept).
func (s *SimDriver) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	type done struct {
		job Job
		seq int
	}
	var out []done
	for id, j := range s.st.Jobs {
		if !j.Done.IsZero() && !j.Done.After(now) {
			out = append(out, done{Job{ID: id, CardNumber: j.CardNumber, OrderID: j.OrderID}, j.Seq})
		}
	}
	slices.SortFunc(out, func(a, b done) int { return cmp.Compare(a.seq, b.seq) })
	jobs := make([]Job, len(out))
	for i, d := range out {
		jobs[i] = d.job
	}
	return jobs
}

// Submitted says how often a job was submitted: more than once is a card
// printed twice, which PrintOnce exists to prevent.
func (s *SimDriver) Submitted(jobID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.st.Jobs[jobID]; j != nil {
		return j.Submitted
	}
	return 0
}

// Counts are the blanks taken from the hopper and the cards ejected and
// rejected since the simulator's state began.
func (s *SimDriver) Counts() (taken, ejected, rejected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Taken, s.st.Ejected, s.st.Rejected
}

// Feed moves a blank from the hopper to the encoder. A card already fed
// stays where it is (a lane that restarted feeds again).
func (s *SimDriver) Feed(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refuse(ctx); err != nil {
		return err
	}
	if s.st.Fed {
		return nil
	}
	if f := s.takeBlank(); f != nil {
		return f
	}
	s.st.Fed = true
	return s.save()
}

// Eject moves the card in the card path (printed by now) to the output hopper.
func (s *SimDriver) Eject(ctx context.Context) error { return s.cardOut(ctx, &s.st.Ejected) }

// Reject moves the card in the card path to the reject bin.
func (s *SimDriver) Reject(ctx context.Context) error { return s.cardOut(ctx, &s.st.Rejected) }

// cardOut empties the card path into the bin whose count is bin.
func (s *SimDriver) cardOut(ctx context.Context, bin *int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Fed = false
	*bin++
	return s.save()
}

// TransportStatus reports the blanks left and what stops feeding.
func (s *SimDriver) TransportStatus(context.Context) TransportStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := TransportStatus{Blanks: -1, Ejected: s.st.Ejected, Rejected: s.st.Rejected}
	if s.st.Cards > 0 {
		ts.Blanks = s.st.Blanks
	}
	ts.Fault = s.stop()
	if ts.Fault == nil && ts.Blanks == 0 {
		ts.Fault = NewFault(FaultMediaEmpty)
	}
	if ts.Fault != nil {
		ts.Message = ts.Fault.Message
	} else {
		ts.Message = "Card path ready"
	}
	return ts
}

// Close stops accepting cards.
func (s *SimDriver) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
