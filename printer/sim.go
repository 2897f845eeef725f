package printer

import (
	"context"
	"fmt"
	"sync"
)

// SimDriver is an in-process printer for development and tests: it keeps
// printed jobs in memory and fails with an injected fault until cleared.
type SimDriver struct {
	mu     sync.Mutex
	fault  *Fault
	jobs   []Job
	byID   map[string]bool
	closed bool
}

// NewSimDriver returns a ready simulated printer.
func NewSimDriver() *SimDriver {
	return &SimDriver{byID: map[string]bool{}}
}

// SetFault makes the printer report a fault ("offline", "media-empty",
// "media-jam", "marker-supply-empty", "busy", …) until ClearFault.
func (s *SimDriver) SetFault(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = NewFault(code)
}

// ClearFault makes the printer ready again.
func (s *SimDriver) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

// Print records the job once per ID, or returns the injected fault.
func (s *SimDriver) Print(ctx context.Context, job Job) error {
	if err := checkJob(job); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("simulated printer is closed")
	}
	if s.fault != nil {
		f := *s.fault
		return &f
	}
	if s.byID[job.ID] {
		return nil
	}
	s.byID[job.ID] = true
	job.PDF = append([]byte(nil), job.PDF...)
	s.jobs = append(s.jobs, job)
	return nil
}

// Status reports ready or the injected fault.
func (s *SimDriver) Status(context.Context) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault != nil {
		f := *s.fault
		return Status{Fault: &f, Message: f.Message}
	}
	return Status{Ready: true, Message: "Simulated printer ready"}
}

// Jobs returns the jobs printed so far, in order.
func (s *SimDriver) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Job(nil), s.jobs...)
}

// Close stops accepting jobs.
func (s *SimDriver) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
