package printer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"id06/printer"
	"id06/printer/evolissim"
	"id06/printer/ippetest"
	"id06/printer/printertest"
)

func TestConformanceSpool(t *testing.T) {
	printertest.Run(t, func(t *testing.T) *printertest.Printer {
		dir := filepath.Join(t.TempDir(), "hot")
		taken := filepath.Join(t.TempDir(), "printed")
		if err := os.Mkdir(taken, 0o700); err != nil {
			t.Fatal(err)
		}
		status := filepath.Join(dir, printer.StatusFile)
		n := 0
		return &printertest.Printer{
			Open: func(t *testing.T) printer.Driver { return must(printer.Open("spool:"+dir, printer.Dirs{})) },
			// The watcher: it takes each PDF (with its sidecar) away to print it.
			Received: func(t *testing.T, jobID string) int {
				pdfs, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
				for _, p := range pdfs {
					n++
					if err := os.Rename(p, filepath.Join(taken, fmt.Sprintf("%d-%s", n, filepath.Base(p)))); err != nil {
						t.Fatal(err)
					}
					_ = os.Remove(strings.TrimSuffix(p, ".pdf") + ".json")
				}
				got, _ := filepath.Glob(filepath.Join(taken, "*-"+jobID+".pdf"))
				return len(got)
			},
			Empty: func(t *testing.T, _ printer.Driver) {
				writeFile(t, status, `{"ready": false, "code": "media-empty"}`)
			},
			Refill: func(t *testing.T, _ printer.Driver) { writeFile(t, status, `{"ready": true}`) },
		}
	})
}

func TestConformanceSim(t *testing.T) {
	printertest.Run(t, func(t *testing.T) *printertest.Printer {
		// A small hopper, every second card jams, and prints take a moment,
		// so that a card can be caught printing.
		opt := printer.SimOptions{Cards: 3, JamAfter: 1, PrintTime: 20 * time.Millisecond, StateDir: t.TempDir()}
		var last *printer.SimDriver
		open := func(t *testing.T) printer.Driver {
			last = must(printer.OpenSimDriver(opt))
			return last
		}
		return &printertest.Printer{
			Open:     open,
			Received: func(t *testing.T, jobID string) int { return last.Submitted(jobID) },
			Empty: func(t *testing.T, d printer.Driver) {
				drainHopper(t, d.(*printer.SimDriver))
			},
			Refill: func(t *testing.T, d printer.Driver) { recoverSim(t, d) },
			// jam-after=1: one card prints, the next one jams.
			Stall: func(t *testing.T, d printer.Driver) {
				if err := printer.PrintOnce(t.Context(), d, printer.Job{ID: "filler", PDF: []byte("%PDF-filler")}); err != nil {
					t.Fatal(err)
				}
			},
			Unstall: func(t *testing.T, d printer.Driver) { recoverSim(t, d) },
		}
	})
}

func TestConformanceIPPEve(t *testing.T) {
	printertest.Run(t, func(t *testing.T) *printertest.Printer {
		e := ippetest.Start(t)
		return &printertest.Printer{
			Open: func(t *testing.T) printer.Driver { return must(printer.Open("ipp:"+e.URI, printer.Dirs{})) },
			// ippeveprinter keeps each document as JOBID-JOBNAME.pdf.
			Received: func(t *testing.T, jobID string) int {
				n := 0
				for _, f := range e.Received(t) {
					if strings.HasSuffix(filepath.Base(f), "-"+jobID+".pdf") {
						n++
					}
				}
				return n
			},
			Empty:   func(t *testing.T, _ printer.Driver) { e.SetCards(t, 0) },
			Refill:  func(t *testing.T, _ printer.Driver) { e.SetCards(t, 100) },
			Stall:   func(t *testing.T, _ printer.Driver) { writeFile(t, e.JamFlag, "") },
			Unstall: func(t *testing.T, _ printer.Driver) { os.Remove(e.JamFlag) },
		}
	})
}

func TestTransportConformanceSim(t *testing.T) {
	printertest.RunTransport(t, func(t *testing.T) *printertest.Transport {
		opt := printer.SimOptions{Cards: 4, JamAfter: 1, StateDir: t.TempDir()}
		var last *printer.SimDriver
		return &printertest.Transport{
			Open: func(t *testing.T) printer.Transport {
				last = must(printer.OpenSimDriver(opt))
				return must(printer.OpenTransport("", last))
			},
			Counts: func(t *testing.T) (int, int, int) { return last.Counts() },
			Empty:  func(t *testing.T, tr printer.Transport) { drainHopper(t, tr.(*printer.SimDriver)) },
			Refill: func(t *testing.T, tr printer.Transport) { recoverSim(t, tr) },
			// jam-after=1: the second card printed jams the card path.
			Jam: func(t *testing.T, tr printer.Transport) {
				s := tr.(*printer.SimDriver)
				for i := range 2 {
					if err := s.Submit(t.Context(), printer.Job{ID: fmt.Sprint("jam-", i), PDF: []byte("%PDF-")}); err != nil {
						t.Fatal(err)
					}
				}
			},
			Unjam: func(t *testing.T, tr printer.Transport) { recoverSim(t, tr) },
		}
	})
}

func TestTransportConformanceEvolis(t *testing.T) {
	for _, via := range []string{"pipe", "tcp"} {
		t.Run(via, func(t *testing.T) {
			printertest.RunTransport(t, func(t *testing.T) *printertest.Transport {
				p := evolissim.New(3)
				open := func(t *testing.T) printer.Transport {
					tr := printer.NewEvolis("evolis:sim", p.Pipe)
					if via == "tcp" {
						addr, stop, err := p.Listen()
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(stop)
						tr = must(printer.OpenTransport("evolis:tcp:"+addr, nil)).(*printer.EvolisTransport)
					}
					t.Cleanup(func() { tr.Close() })
					return tr
				}
				recoverEvolis := func(t *testing.T, tr printer.Transport) {
					if err := tr.(*printer.EvolisTransport).Recover(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				return &printertest.Transport{
					Open:   open,
					Counts: func(t *testing.T) (int, int, int) { return p.Counts() },
					Empty:  func(t *testing.T, _ printer.Transport) { p.Refill(0) },
					Refill: func(t *testing.T, tr printer.Transport) { p.Refill(3); recoverEvolis(t, tr) },
					Jam:    func(t *testing.T, _ printer.Transport) { p.JamNext() },
					Unjam:  func(t *testing.T, tr printer.Transport) { p.ClearJam(); recoverEvolis(t, tr) },
				}
			})
		})
	}
}

// drainHopper feeds blanks into the reject bin until the hopper is empty.
func drainHopper(t *testing.T, s *printer.SimDriver) {
	t.Helper()
	for range 1000 {
		err := s.Feed(t.Context())
		if f, ok := printer.AsFault(err); ok && f.Code == printer.FaultMediaEmpty {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Reject(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the simulator's hopper never ran out")
}

func recoverSim(t *testing.T, v any) {
	t.Helper()
	if err := v.(*printer.SimDriver).Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
