package personalize

import (
	"bytes"
	"encoding/hex"
	"flag"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFASCN(t *testing.T) {
	tests := []struct {
		name string
		f    fascn
		hex  string
	}{
		// yubico-piv-tool's default CHUID FASC-N: 9999/9999/999999, CS 0,
		// ICI 1, PI 0000000000, OC 3, OI 0000, POA 1.
		{"yubico default", fascn{"9999", "9999", "999999", "0", "1", "0000000000", "3", "0000", "1"},
			"d4e739da739ced39ce739d836858210842108421c84210c3eb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.encode()
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tt.hex {
				t.Errorf("encode = %x, want %s", got, tt.hex)
			}
			back, err := decodeFASCN(got)
			if err != nil {
				t.Fatal(err)
			}
			if back != tt.f {
				t.Errorf("decode = %+v, want %+v", back, tt.f)
			}
		})
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestObjectsGolden pins the byte layout of the deterministic objects; the
// golden files are annotated hex so a reviewer can check them against
// SP 800-73-4 part 1 and SP 800-76-2 table by table.
func TestObjectsGolden(t *testing.T) {
	guid := [16]byte{0x3f, 0x2a, 0x11, 0x90, 0x5c, 0x41, 0x4e, 0x8b, 0x9d, 0x07, 0x6b, 0x21, 0xe4, 0x55, 0x0c, 0xaa}
	valid := time.Date(2029, 11, 23, 0, 0, 0, 0, time.UTC)
	created := time.Date(2026, 11, 23, 5, 4, 3, 0, time.UTC)
	fasc, err := newFASCN("BB-1234-567890")
	if err != nil {
		t.Fatal(err)
	}
	fb, err := fasc.encode()
	if err != nil {
		t.Fatal(err)
	}
	d := CardData{CardNumber: "BB-1234-567890", HolderName: "Åsa Östlund-Wiśniewska", Company: "Bygg & Betong i Växjö AB",
		OrgNumber: "556677-8899", ValidUntil: valid}
	tiny := image.NewGray(image.Rect(0, 0, 8, 10))
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, tiny, &jpeg.Options{Quality: 50}); err != nil {
		t.Fatal(err)
	}
	rec, err := facialRecord(jpg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"fascn", fb},
		{"chuid-signed-part", chuidSigned(fb, guid, valid)},
		{"ccc", buildCCC(guid)},
		{"printed-information", newPrintedInfo(d, "Test Issuer AB").encode()},
		{"cbeff-header", cbeffHeader(len(rec), 700, fb, created, valid)},
		{"facial-record-header", rec[:46]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", tt.name+".hex")
			got := hex.Dump(tt.b)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", tt.name, path, got)
			}
		})
	}
}

func TestParseRoundTrip(t *testing.T) {
	d := CardData{CardNumber: "BB-1234-567890", PrintName: "Łukasz Żółć", Company: "Ström & Söner Entreprenad Aktiebolag",
		OrgNumber: "556677-8899", ValidUntil: time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)}
	pi := newPrintedInfo(d, "Supplier With A Long Name AB")
	got, err := parsePrintedInfo(pi.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got != pi {
		t.Errorf("printed info round trip: %+v, want %+v", got, pi)
	}
	want := printedInfo{Name: "Lukasz Zolc", Affiliation: "Strom & Soner Entrep", Expiry: "2028FEB29",
		CardNumber: "BB-1234-567890", Issuer: "Supplier With A", OrgNumber: "556677-8899"}
	if pi != want {
		t.Errorf("printed info %+v, want %+v", pi, want)
	}
	for _, bad := range [][]byte{nil, {0x01, 0x05, 'a'}, {0x04, 0x09, '2', '0', '2', '8', 'X', 'Y', 'Z', '2', '9'}} {
		if _, err := parsePrintedInfo(bad); err == nil {
			t.Errorf("parsePrintedInfo(%x) accepted", bad)
		}
	}
	if _, err := decodeFASCN(make([]byte, 25)); err == nil {
		t.Error("decodeFASCN accepted all zeros")
	}
}
