package printer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phin1x/go-ipp"
)

// ippEve is a running ippeveprinter (cups-ipp-utils) with a private D-Bus.
type ippEve struct {
	uri     string // http://localhost:PORT/ipp/print
	web     string // http://localhost:PORT
	spool   string // -d: where -k keeps the received documents
	jamFlag string // while this file exists the job command reports a jam
	log     string // ippeveprinter's stdout and stderr
}

// startIPPEve starts ippeveprinter the way the issue found works here:
// private dbus-daemon, -n localhost, -r off, PDF accepted, -k -d, and a -c
// command that finishes at once (or reports media-jam while jamFlag exists).
func startIPPEve(t testing.TB) *ippEve {
	t.Helper()
	eve := needTool(t, "ippeveprinter")
	dbus := needTool(t, "dbus-daemon")
	dir, err := os.MkdirTemp("", "ippeve") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &ippEve{spool: filepath.Join(dir, "spool"), jamFlag: filepath.Join(dir, "jam")}
	if err := os.Mkdir(e.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "print.sh")
	// ippeveprinter reads "STATE: +/-keyword" lines from the command's stderr
	// into printer-state-reasons, as CUPS does for filters.
	body := fmt.Sprintf("#!/bin/sh\nwhile [ -f %q ]; do\n  echo 'STATE: +media-jam-error' >&2\n  sleep 0.05\ndone\necho 'STATE: -media-jam-error' >&2\nexit 0\n", e.jamFlag)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "dbus.sock")
	startProc(t, exec.Command(dbus, "--session", "--address=unix:path="+sock, "--nofork"))
	waitFor(t, func() bool { _, err := os.Stat(sock); return err == nil })

	// Another test on the machine may take the free port first: retry.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("ippeveprinter-%d.log", attempt)))
		if err != nil {
			t.Fatal(err)
		}
		e.log = logf.Name()
		c := exec.Command(eve, "-2", "-n", "localhost", "-p", fmt.Sprint(port), "-r", "off", "-k", "-d", e.spool,
			"-f", "application/pdf,image/png,image/pwg-raster", "-c", script, "ID06 Test Card Printer")
		c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+sock)
		c.Stdout, c.Stderr = logf, logf
		p := startProc(t, c)
		logf.Close() // the child keeps its own descriptor
		e.web = fmt.Sprintf("http://localhost:%d", port)
		e.uri = e.web + "/ipp/print"
		up := false
		deadline := time.Now().Add(10 * time.Second)
		for !up && time.Now().Before(deadline) {
			select {
			case <-p.exited:
				deadline = time.Time{}
				continue
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("localhost:%d", port)); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if up {
			return e
		}
		if attempt == 3 {
			t.Fatalf("ippeveprinter did not come up:\n%s", e.logText())
		}
	}
}

// logText is ippeveprinter's log, for failure messages.
func (e *ippEve) logText() string {
	b, _ := os.ReadFile(e.log)
	return string(b)
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProc starts a helper process and stops it (SIGTERM, then SIGKILL)
// when the test ends.
func startProc(t testing.TB, c *exec.Cmd) *proc {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("start %s: %v", c.Path, err)
	}
	p := &proc{cmd: c, exited: make(chan struct{})}
	go func() { _ = c.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// setCards fills or empties ippeveprinter's trays through its media web form
// (a GET form meant for testing), which sets or clears media-empty.
func (e *ippEve) setCards(t testing.TB, n int) {
	t.Helper()
	q := fmt.Sprintf("size1=iso_a4_210x297mm&type1=cardstock&level1=%d&size3=iso_a4_210x297mm&level3=%d", n, min(n, 25))
	resp, err := http.Get(e.web + "/media?" + q)
	if err != nil {
		t.Fatal(err)
	}
	// ippeveprinter sends the headers first and applies the form before the
	// page body; reading the body to the end waits for the change.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("media form: HTTP %d", resp.StatusCode)
	}
}

// received lists the documents ippeveprinter kept (-k).
func (e *ippEve) received(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(e.spool, "*.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestIPPEveRoundTrip(t *testing.T) {
	e := startIPPEve(t)
	// -2: the printer does duplex, as a card printer with a flipper does.
	d, err := OpenDriver("ipp:"+e.uri+"?sides=two-sided-long-edge", "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if st := d.Status(ctx); !st.Ready {
		t.Fatalf("ippeveprinter not ready: %+v\n%s", st, e.logText())
	}
	face, err := Render(DefaultTemplate(), goldenCard())
	if err != nil {
		t.Fatal(err)
	}
	job := Job{ID: "sup-2026-000123.1", CardNumber: "BB-1234-567890", OrderID: "sup-2026-000123", PDF: face.PDF}
	if err := d.Print(ctx, job); err != nil {
		t.Fatalf("Print: %v\n%s", err, e.logText())
	}
	files := e.received(t)
	if len(files) != 1 {
		t.Fatalf("printer received %v, want one PDF", files)
	}
	// ippeveprinter names the file JOBID-JOBNAME with '.' made '_'.
	if !strings.Contains(filepath.Base(files[0]), "sup-2026-000123") {
		t.Errorf("spooled file %s does not carry the job name %s", files[0], job.ID)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, face.PDF) {
		t.Errorf("the printer received %d bytes that differ from the %d-byte card PDF", len(got), len(face.PDF))
	}

	// The printer took the job as duplex: one card, front and back.
	ippd := d.(*IPPDriver)
	req := ippd.request(ipp.OperationGetJobAttributes)
	req.OperationAttributes[ipp.AttributeJobID] = ippd.jobs[job.ID]
	req.OperationAttributes[ipp.AttributeRequestedAttributes] = []string{"sides"}
	resp, err := ippd.send(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strAttr(resp.JobAttributes[0], "sides"); got != "two-sided-long-edge" {
		t.Errorf("printer job sides = %q, want two-sided-long-edge", got)
	}

	// The same job again (a retry after a station crash): no second card.
	if err := d.Print(ctx, job); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDriver("ipp:"+e.uri, "") // a restarted station, empty memory
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Print(ctx, job); err != nil {
		t.Fatal(err)
	}
	if n := len(e.received(t)); n != 1 {
		t.Errorf("printing the same job ID again made %d documents, want 1", n)
	}
}

// TestIPPEveOutOfCards empties the tray: the station sees "out of cards",
// submits nothing, and prints once the hopper is refilled.
func TestIPPEveOutOfCards(t *testing.T) {
	e := startIPPEve(t)
	d, err := NewIPPDriver(e.uri)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.setCards(t, 0)
	st := d.Status(ctx)
	if st.Ready || st.Fault == nil || st.Fault.Code != FaultMediaEmpty || st.Message != "Out of cards: refill the card hopper" {
		t.Fatalf("Status with an empty tray = %+v, want out of cards", st)
	}
	job := Job{ID: "ord-7.1", PDF: testPDF}
	err = d.Print(ctx, job)
	if f, ok := AsFault(err); !ok || f.Code != FaultMediaEmpty || f.Retryable {
		t.Fatalf("Print with an empty tray = %v, want an out-of-cards fault for the operator", err)
	}
	if n := len(e.received(t)); n != 0 {
		t.Fatalf("%d documents sent to a printer without cards", n)
	}
	e.setCards(t, 100)
	if st := d.Status(ctx); !st.Ready {
		t.Fatalf("Status after refill = %+v", st)
	}
	if err := d.Print(ctx, job); err != nil {
		t.Fatalf("Print after refill: %v", err)
	}
	if n := len(e.received(t)); n != 1 {
		t.Errorf("%d documents after refill, want 1", n)
	}
}

// TestIPPEveJamWhilePrinting: the printer reports media-jam while the card
// is in it. Print returns the jam; the job stays at the printer; after the
// jam is cleared the same job completes without a second submission.
func TestIPPEveJamWhilePrinting(t *testing.T) {
	e := startIPPEve(t)
	d, err := NewIPPDriver(e.uri)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := os.WriteFile(e.jamFlag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	job := Job{ID: "ord-8.1", PDF: testPDF}
	err = d.Print(ctx, job)
	if f, ok := AsFault(err); !ok || f.Code != FaultMediaJam || f.Message != "Card jam: open the printer and remove the stuck card" {
		t.Fatalf("Print during a jam = %v, want a media-jam fault", err)
	}
	if err := os.Remove(e.jamFlag); err != nil {
		t.Fatal(err)
	}
	// The station stays paused until the printer reports ready again.
	waitFor(t, func() bool { return d.Status(ctx).Ready })
	if err := d.Print(ctx, job); err != nil {
		t.Fatalf("Print after the jam was cleared: %v\n%s", err, e.logText())
	}
	if n := len(e.received(t)); n != 1 {
		t.Errorf("%d documents at the printer, want 1: the retry must follow the jammed job", n)
	}
	if st := d.Status(ctx); !st.Ready {
		t.Errorf("Status after the jam = %+v, want ready", st)
	}
}
