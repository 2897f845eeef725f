package lane

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"id06/printer"
)

func TestParseFlag(t *testing.T) {
	tests := []struct {
		in   string
		want Config
		err  string
	}{
		{"a=sim,sim", Config{Name: "a", Reader: "sim", Printer: "sim"}, ""},
		{"b=sim:apdu-delay=15ms,sim:cards=5:print-time=2s", Config{Name: "b", Reader: "sim:apdu-delay=15ms", Printer: "sim:cards=5:print-time=2s"}, ""},
		{"c=pcsc:Virtual PCD 00 00,ipp:http://localhost:8631/ipp/print", Config{Name: "c", Reader: "pcsc:Virtual PCD 00 00", Printer: "ipp:http://localhost:8631/ipp/print"}, ""},
		{"d=pcsc:Evolis 00 00,ipp:ipp://cups/printers/d,evolis:/dev/usb/lp0", Config{Name: "d", Reader: "pcsc:Evolis 00 00", Printer: "ipp:ipp://cups/printers/d", Transport: "evolis:/dev/usb/lp0"}, ""},
		{" e = sim , spool:/srv/e ", Config{Name: "e", Reader: "sim", Printer: "spool:/srv/e"}, ""},
		{"a", Config{}, "want NAME=READER,PRINTER[,TRANSPORT]"},
		{"a=sim", Config{}, "want NAME=READER,PRINTER[,TRANSPORT]"},
		{"a=sim,sim,sim,x", Config{}, "want NAME=READER,PRINTER[,TRANSPORT]"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFlag(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseFlag(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFlag(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	data := "/data"
	tests := []struct {
		name string
		src  Sources
		want string // the lanes as NAME=READER,PRINTER,TRANSPORT joined by ';'
		err  []string
	}{
		{name: "defaults make lane main",
			src:  Sources{Reader: "sim", Printer: "spool"},
			want: "main=sim,spool,manual"},
		{name: "reader and printer alone make lane main",
			src:  Sources{Reader: "pcsc:Evolis 00 00", Printer: "sim:cards=5", Explicit: true},
			want: "main=pcsc:Evolis 00 00,sim:cards=5,sim"},
		{name: "flags",
			src:  Sources{Flags: []string{"a=sim,sim", "b=sim,sim:cards=5", "c=sim,sim"}, Reader: "sim", Printer: "spool"},
			want: "a=sim,sim,sim;b=sim,sim:cards=5,sim;c=sim,sim,sim"},
		{name: "flags win over the environment and the file",
			src:  Sources{Flags: []string{"a=sim,sim"}, Env: "b=sim,sim", File: []Config{{Name: "c", Reader: "sim", Printer: "sim"}}},
			want: "a=sim,sim,sim"},
		{name: "environment, separated by semicolons",
			src:  Sources{Env: "a=sim,sim; b=pcsc:R1,ipp:http://p1/ipp/print ;", File: []Config{{Name: "c", Reader: "sim", Printer: "sim"}}},
			want: "a=sim,sim,sim;b=pcsc:R1,ipp:http://p1/ipp/print,manual"},
		{name: "config file",
			src:  Sources{File: []Config{{Name: "x", Reader: "pcsc:R1", Printer: "ipp:http://p1/ipp/print", Transport: "evolis:tcp:p1:9100"}, {Name: "y", Reader: "sim", Printer: "sim"}}},
			want: "x=pcsc:R1,ipp:http://p1/ipp/print,evolis:tcp:p1:9100;y=sim,sim,sim"},
		{name: "lanes with an explicit reader",
			src: Sources{Flags: []string{"a=sim,sim"}, Reader: "pcsc", Printer: "spool", Explicit: true},
			err: []string{"lanes come from --lane, but a reader or printer is also set on its own"}},
		{name: "same reader",
			src: Sources{Flags: []string{"a=pcsc:R1,sim", "b=pcsc:R2,sim", "c=pcsc:R1,sim"}},
			err: []string{`lanes "a" and "c" both use the reader pcsc:R1`}},
		{name: "same printer, spelled differently",
			src: Sources{Env: "a=sim,ipp:ipp://p1/ipp/print;b=sim,http://p1:631/ipp/print"},
			err: []string{`lanes "a" and "b" both use the printer ipp://p1:631/ipp/print`}},
		{name: "same hot folder",
			src: Sources{File: []Config{{Name: "a", Reader: "sim", Printer: "spool:/srv/hot/"}, {Name: "b", Reader: "sim", Printer: "spool:/srv/hot"}}},
			err: []string{`lanes "a" and "b" both use the printer spool:/srv/hot`}},
		{name: "same transport device",
			src: Sources{File: []Config{{Name: "a", Reader: "pcsc:R1", Printer: "ipp:http://p1/ipp/print", Transport: "evolis:/dev/usb/lp0"},
				{Name: "b", Reader: "pcsc:R2", Printer: "ipp:http://p2/ipp/print", Transport: "evolis:/dev/usb/lp0"}}},
			err: []string{`lanes "a" and "b" both use the transport evolis:/dev/usb/lp0`}},
		{name: "bare spool gets a folder per lane",
			src:  Sources{Flags: []string{"a=sim,spool", "main=sim,spool"}},
			want: "a=sim,spool,manual;main=sim,spool,manual"},
		{name: "several problems at once, each named",
			src: Sources{Flags: []string{"A=sim,sim", "b=pcsc,sim", "c=sim,laser", "d=sim,spool,sim", "b=sim,sim", "e=sim:apdu-delay=5s,sim:cards=0"}},
			err: []string{`lane name "A": use 1-32 lower-case letters`,
				`lane b: reader "pcsc" takes whichever reader holds a card`,
				`lane c: printer "laser": unknown kind`,
				`lane d: transport sim is the simulated printer's own card path, but the printer is "spool"`,
				`two lanes are called "b"`,
				`lane e: personalize: reader "sim:apdu-delay=5s"`,
				`lane e: printer "sim:cards=0"`}},
		{name: "bad flag",
			src: Sources{Flags: []string{"a=sim"}},
			err: []string{`lane "a=sim": want NAME=READER,PRINTER[,TRANSPORT]`}},
		{name: "bad environment",
			src: Sources{Env: "a=sim,sim;oops"},
			err: []string{`STATION_LANES: lane "oops"`}},
		{name: "unknown transport",
			src: Sources{Flags: []string{"a=sim,sim,belt"}},
			err: []string{`lane a: transport "belt"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lanes, err := Resolve(tc.src, data)
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatalf("Resolve = %+v, want errors %q", lanes, tc.err)
				}
				for _, e := range tc.err {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q does not say %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lanes {
				got = append(got, l.Name+"="+l.Reader+","+l.Printer+","+l.Transport)
			}
			if g := strings.Join(got, ";"); g != tc.want {
				t.Errorf("Resolve = %s, want %s", g, tc.want)
			}
		})
	}
	if err := Check(nil, data); err == nil {
		t.Error("no lanes at all passed the check")
	}
}

func TestDirs(t *testing.T) {
	if d := (Config{Name: Main}).dirs("/data"); d != (laneDirs{"/data/sim", "/data/sim/printer", "/data/spool"}) {
		t.Errorf("lane main dirs = %+v: a one-lane station's files must stay where they were", d)
	}
	if d := (Config{Name: "b"}).dirs("/data"); d != (laneDirs{"/data/sim/lanes/b", "/data/sim/lanes/b/printer", "/data/lanes/b/spool"}) {
		t.Errorf("lane b dirs = %+v", d)
	}
}

// Open gives each lane its own simulated devices, with state on disk: a
// new Open (a restarted station) finds the hopper as it was.
func TestOpen(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	lanes, err := Resolve(Sources{Flags: []string{"a=sim,sim:cards=2", "b=sim,spool"}}, data)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(lanes[0], data, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Transport.Feed(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Transport.(*printer.SimDriver); !ok || any(a.Transport) != any(a.Printer) {
		t.Errorf("lane a's transport %T is not its simulated printer", a.Transport)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a2, err := Open(lanes[0], data, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := a2.Transport.TransportStatus(ctx).Blanks; n != 1 {
		t.Errorf("lane a after a restart has %d blanks, want 1", n)
	}
	b, err := Open(lanes[1], data, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.Transport.(printer.ManualTransport); !ok {
		t.Errorf("lane b's transport is %T, want manual", b.Transport)
	}
	job := printer.Job{ID: "b-1", PDF: []byte("%PDF-1.4")}
	if err := printer.PrintOnce(ctx, b.Printer, job); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(data, "lanes", "b", "spool", "b-1.pdf")); len(m) != 1 {
		t.Error("lane b's bare spool printer does not write to DATA/lanes/b/spool")
	}
	if r := a2.Reader.Name(); r == "" {
		t.Error("lane a has no reader")
	}
	if _, err := Open(Config{Name: "x", Reader: "sim", Printer: "sim", Transport: "belt"}, data, ""); err == nil {
		t.Error("a lane with an unknown transport opened")
	}
}
