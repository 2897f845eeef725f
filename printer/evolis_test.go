package printer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"id06/printer"
	"id06/printer/evolissim"
)

// The bytes on the wire: ESC, command, CR; the setup comes first, once.
func TestEvolisWire(t *testing.T) {
	station, dev := net.Pipe()
	var wire bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, err := dev.Read(buf)
			if err != nil {
				return
			}
			wire.Write(buf[:n])
			if bytes.HasSuffix(buf[:n], []byte{'\r'}) {
				_, _ = dev.Write([]byte{0x00, 0x06}) // NUL padding, then ACK
			}
		}
	}()
	tr := printer.NewEvolis("evolis:test", func() (io.ReadWriteCloser, error) { return station, nil })
	ctx := context.Background()
	if err := tr.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Eject(ctx); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	<-done
	want := "\x1bPem;4\r\x1bPem;2\r\x1bSis\r\x1bSe\r"
	if got := wire.String(); got != want {
		t.Errorf("wire = %q, want %q", got, want)
	}
}

func TestEvolisNAK(t *testing.T) {
	tests := []struct {
		code     byte
		wantCode string // "" = an error that is not a fault
		wantMsg  string
	}{
		{'T', printer.FaultMediaJam, "Card jam"},
		{'C', printer.FaultCoverOpen, "cover open"},
		{'F', printer.FaultMediaEmpty, "Out of cards"},
		{'R', printer.FaultRibbonEmpty, "Ribbon"},
		{'K', printer.FaultPrinterUnknown, `error "K"`},
		{'1', "", "refused Sis (command error)"},
		{'2', "", "refused Sis (parameter error)"},
	}
	for _, tc := range tests {
		t.Run(string(tc.code), func(t *testing.T) {
			tr := printer.NewEvolis("evolis:test", answering(func(cmd string) []byte {
				if cmd == "Sis" {
					return []byte{0x15, tc.code}
				}
				return []byte{0x06}
			}))
			err := tr.Feed(context.Background())
			f, isFault := printer.AsFault(err)
			switch {
			case tc.wantCode == "" && (isFault || err == nil):
				t.Fatalf("Feed = %v, want a plain error", err)
			case tc.wantCode != "" && (!isFault || f.Code != tc.wantCode):
				t.Fatalf("Feed = %v, want fault %s", err, tc.wantCode)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Feed = %q, want it to say %q", err, tc.wantMsg)
			}
		})
	}
}

// answering is a device that answers each command with reply(cmd).
func answering(reply func(cmd string) []byte) func() (io.ReadWriteCloser, error) {
	return func() (io.ReadWriteCloser, error) {
		station, dev := net.Pipe()
		go func() {
			defer dev.Close()
			var cmd []byte
			buf := make([]byte, 1)
			for {
				if _, err := dev.Read(buf); err != nil {
					return
				}
				switch buf[0] {
				case 0x1B:
					cmd = cmd[:0]
				case '\r':
					if _, err := dev.Write(reply(string(cmd))); err != nil {
						return
					}
				default:
					cmd = append(cmd, buf[0])
				}
			}
		}()
		return station, nil
	}
}

// A printer switched off and on forgets the ACK/NACK mode: the command
// gets no answer, the lane sees the printer offline, and the operator's
// resume sets the printer up again.
func TestEvolisPowerCycle(t *testing.T) {
	p := evolissim.New(-1)
	tr := printer.NewEvolis("evolis:sim", p.Pipe)
	tr.Timeout = 50 * time.Millisecond
	ctx := context.Background()
	if err := tr.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if !p.HostErrors() {
		t.Error("the station did not take over error management (Pem;2)")
	}
	p.PowerCycle()
	err := tr.Eject(ctx)
	if f, ok := printer.AsFault(err); !ok || f.Code != printer.FaultOffline || !strings.Contains(f.Message, "does not answer") {
		t.Fatalf("Eject after a power cycle = %v, want offline", err)
	}
	if st := tr.TransportStatus(ctx); st.Fault == nil || st.Fault.Code != printer.FaultOffline {
		t.Fatalf("TransportStatus = %+v", st)
	}
	if err := tr.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tr.TransportStatus(ctx); st.Fault != nil {
		t.Fatalf("TransportStatus after the resume = %+v", st)
	}
	// The card waited under the contact station all along.
	if err := tr.Eject(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ejected, _ := p.Counts(); ejected != 1 || p.CardInside() {
		t.Errorf("ejected %d, card inside %v: %v", ejected, p.CardInside(), p)
	}
}

func TestEvolisGarbledAnswer(t *testing.T) {
	tr := printer.NewEvolis("evolis:test", answering(func(string) []byte { return []byte("OK\r") }))
	err := tr.Feed(context.Background())
	if _, isFault := printer.AsFault(err); err == nil || isFault || !strings.Contains(err.Error(), "neither ACK nor NAK") {
		t.Fatalf("Feed with a garbled answer = %v", err)
	}
}

func TestEvolisCancel(t *testing.T) {
	silent := func() (io.ReadWriteCloser, error) {
		station, dev := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, dev) }()
		return station, nil
	}
	tr := printer.NewEvolis("evolis:test", silent)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := tr.Feed(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Feed past the context = %v, want the context's error", err)
	}
	unreachable := printer.NewEvolis("evolis:test", func() (io.ReadWriteCloser, error) { return nil, errors.New("no such device") })
	if f, ok := printer.AsFault(unreachable.Feed(context.Background())); !ok || f.Code != printer.FaultOffline {
		t.Fatalf("Feed with no device = %v, want offline", f)
	}
}

func TestOpenTransport(t *testing.T) {
	sim := printer.NewSimDriver()
	spool, err := printer.NewSpoolDriver(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec    string
		prn     printer.Driver
		want    string // type, or error substring
		wantErr bool
	}{
		{"", sim, "*printer.SimDriver", false},
		{"", spool, "printer.ManualTransport", false},
		{"manual", sim, "printer.ManualTransport", false},
		{"sim", sim, "*printer.SimDriver", false},
		{"sim", spool, `"sim" is the simulated printer's own card path`, true},
		{"evolis:/dev/usb/lp0", spool, "*printer.EvolisTransport", false},
		{"evolis:tcp:printer.local:9100", spool, "*printer.EvolisTransport", false},
		{"evolis:tcp:printer.local", spool, "want tcp:HOST:PORT", true},
		{"evolis", spool, "no device given", true},
		{"conveyor", spool, `transport "conveyor": use manual, sim or evolis:DEVICE`, true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			tr, err := printer.OpenTransport(tc.spec, tc.prn)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("OpenTransport(%q) = %v, want %q", tc.spec, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := typeOf(tr); got != tc.want {
				t.Errorf("OpenTransport(%q) = %s, want %s", tc.spec, got, tc.want)
			}
		})
	}
	var m printer.ManualTransport
	ctx := context.Background()
	if m.Feed(ctx) != nil || m.Eject(ctx) != nil || m.Reject(ctx) != nil || m.TransportStatus(ctx).Blanks != -1 {
		t.Error("the manual transport is not a no-op that knows no count")
	}
}

func typeOf(v any) string {
	switch v.(type) {
	case *printer.SimDriver:
		return "*printer.SimDriver"
	case printer.ManualTransport:
		return "printer.ManualTransport"
	case *printer.EvolisTransport:
		return "*printer.EvolisTransport"
	}
	return "?"
}

func TestIdentity(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"sim", ""},
		{"sim:cards=5", ""},
		{"spool:/var/spool/cards/", "spool:/var/spool/cards"},
		{"spool", "spool:/data/spool"},
		{"ipp:ipp://printer.local/ipp/print", "ipp://printer.local:631/ipp/print"},
		{"http://printer.local:631/ipp/print", "ipp://printer.local:631/ipp/print"},
	}
	for _, tc := range tests {
		got, err := printer.Identity(tc.spec, "/data/spool")
		if err != nil || got != tc.want {
			t.Errorf("Identity(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
		}
	}
	if _, err := printer.Identity("sim:cards=none", ""); err == nil {
		t.Error("a bad spec has an identity")
	}
}
