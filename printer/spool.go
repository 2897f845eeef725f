package printer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"id06/internal/atomicfile"
)

// SpoolDriver hands cards to a hot folder that the printer's own software
// watches. The contract (see hardware.md):
//   - DIR/ID.json, the sidecar, appears first; then DIR/ID.pdf. Both are
//     written to a dot-file and renamed, so a watcher never sees a partial file;
//   - the watcher prints ID.pdf and may delete or move both files;
//   - DIR/.sent/ID is the folder's job history: the hand-over of job ID,
//     written before the PDF is renamed into place, so that Lookup answers
//     even after the watcher removed the files;
//   - the watcher may write DIR/printer-status.json
//     ({"ready": false, "code": "media-empty", "message": "…"}) to pause the
//     station; without that file the printer counts as ready.
//
// For a hot folder the hand-over is the completion the station can observe:
// a submitted job is done at once.
type SpoolDriver struct {
	dir string
	now func() time.Time
	mu  sync.Mutex
}

// StatusFile is the file a hot-folder watcher writes to report faults.
const StatusFile = "printer-status.json"

// Sidecar is the JSON file next to each spooled PDF.
type Sidecar struct {
	JobID      string    `json:"job_id"`
	OrderID    string    `json:"order_id"`
	CardNumber string    `json:"card_number"`
	Document   string    `json:"document"`
	Bytes      int       `json:"bytes"`
	SHA256     string    `json:"sha256"`
	SpooledAt  time.Time `json:"spooled_at"`
}

// NewSpoolDriver opens (and creates) the hot folder.
func NewSpoolDriver(dir string) (*SpoolDriver, error) {
	if err := os.MkdirAll(filepath.Join(dir, ".sent"), 0o750); err != nil {
		return nil, fmt.Errorf("spool printer: cannot create the spool folder: %w", err)
	}
	return &SpoolDriver{dir: dir, now: time.Now}, nil
}

// Lookup reads the folder's job history. A hand-over that a crash cut
// between recording it and renaming the PDF into place is finished here.
func (s *SpoolDriver) Lookup(ctx context.Context, jobID string) (JobStatus, error) {
	if err := ctx.Err(); err != nil {
		return JobStatus{}, err
	}
	if !jobIDRE.MatchString(jobID) {
		return JobStatus{}, fmt.Errorf("print job id %q is invalid", jobID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(filepath.Join(s.dir, ".sent", jobID)); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return JobStatus{}, s.ioFault(err)
		}
		// A PDF in place without a record was spooled by an older version
		// of the station, which recorded after the rename.
		if _, err := os.Stat(filepath.Join(s.dir, jobID+".pdf")); err == nil {
			return JobStatus{State: JobDone}, nil
		}
		return JobStatus{State: JobUnknown}, nil
	}
	tmp := filepath.Join(s.dir, "."+jobID+".pdf.tmp")
	if _, err := os.Stat(tmp); err == nil {
		if err := s.place(tmp, jobID+".pdf"); err != nil {
			return JobStatus{}, s.ioFault(err)
		}
	}
	return JobStatus{State: JobDone}, nil
}

// Wait is Lookup: a hand-over never stays pending.
func (s *SpoolDriver) Wait(ctx context.Context, jobID string) (JobStatus, error) {
	return s.Lookup(ctx, jobID)
}

// Submit writes the sidecar, then the PDF beside it under a dot-name,
// records the hand-over, and renames the PDF into place.
func (s *SpoolDriver) Submit(ctx context.Context, job Job) error {
	if err := checkJob(job); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256(job.PDF)
	side, err := json.MarshalIndent(Sidecar{
		JobID: job.ID, OrderID: job.OrderID, CardNumber: job.CardNumber,
		Document: job.ID + ".pdf", Bytes: len(job.PDF), SHA256: hex.EncodeToString(sum[:]),
		SpooledAt: s.now().UTC(),
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, job.ID+".json"), append(side, '\n'), 0o640); err != nil {
		return s.ioFault(err)
	}
	tmp := filepath.Join(s.dir, "."+job.ID+".pdf.tmp")
	if err := atomicfile.Create(tmp, job.PDF, os.O_TRUNC, 0o640); err != nil {
		return s.ioFault(err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, ".sent", job.ID), nil, 0o640); err != nil {
		_ = os.Remove(tmp)
		return s.ioFault(err)
	}
	if err := s.place(tmp, job.ID+".pdf"); err != nil {
		return s.ioFault(err)
	}
	return nil
}

// place renames a written dot-file to its visible name and persists the rename.
func (s *SpoolDriver) place(tmp, name string) error {
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return err
	}
	syncDir(s.dir)
	return nil
}

// ioFault turns an unusable folder (unmounted share, full disk) into a
// retryable offline fault so that the station pauses instead of failing cards.
func (s *SpoolDriver) ioFault(err error) error {
	return &Fault{Code: FaultOffline, Message: fmt.Sprintf("Spool folder %s is not writable: %v", s.dir, err), Retryable: true}
}

// syncDir persists renames in dir; not all file systems support it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Status reads the watcher's status file.
func (s *SpoolDriver) Status(context.Context) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status()
}

func (s *SpoolDriver) status() Status {
	if st, err := os.Stat(s.dir); err != nil || !st.IsDir() {
		f := &Fault{Code: FaultOffline, Message: "Spool folder " + s.dir + " is missing", Retryable: true}
		return Status{Fault: f, Message: f.Message}
	}
	data, err := os.ReadFile(filepath.Join(s.dir, StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Status{Ready: true, Message: "Spool folder " + s.dir + " ready"}
	}
	var rep struct {
		Ready   bool   `json:"ready"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err == nil {
		err = json.Unmarshal(data, &rep)
	}
	if err != nil {
		f := &Fault{Code: FaultPrinterUnknown, Message: fmt.Sprintf("Cannot read %s in the spool folder: %v", StatusFile, err), Retryable: true}
		return Status{Fault: f, Message: f.Message}
	}
	if rep.Ready {
		return Status{Ready: true, Message: "Spool folder " + s.dir + " ready"}
	}
	code := rep.Code
	if code == "" {
		code = FaultPrinterUnknown
	}
	f := NewFault(code)
	if rep.Message != "" {
		f.Message = rep.Message
	}
	return Status{Fault: f, Message: f.Message}
}

// Close releases nothing: the folder stays for the watcher.
func (s *SpoolDriver) Close() error { return nil }
