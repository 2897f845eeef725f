package queue

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestCardNumberFormat(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		seq    int64
		want   string
		err    bool
	}{
		{"BB", 1, "BB-0000-000018", false},
		{"NX", 123456789, "NX-1234-567897", false},
		{"bb", 1, "", true},
		{"BB", 0, "", true},
		{"BB", 1_000_000_000, "", true},
	} {
		got, err := FormatCardNumber(tc.prefix, tc.seq)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("FormatCardNumber(%q, %d) = %q, %v; want %q", tc.prefix, tc.seq, got, err, tc.want)
		}
		if !tc.err && !ValidCardNumber(got) {
			t.Errorf("%s does not validate", got)
		}
	}
	for _, bad := range []string{"BB-0000-000019", "BB-0000-00001", "B1-0000-000018", "BB00000000018"} {
		if ValidCardNumber(bad) {
			t.Errorf("%s validated", bad)
		}
	}
}

// Every migration exists for both databases, so neither falls behind.
func TestMigrationsForEveryDialect(t *testing.T) {
	var versions [2][]string
	for i, d := range []string{"sqlite", "postgres"} {
		names, err := migrationNames(d)
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: %v %v", d, names, err)
		}
		for _, n := range names {
			versions[i] = append(versions[i], filepath.Base(n))
		}
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Fatalf("sqlite migrations %v, postgres %v: add the missing one to the other", versions[0], versions[1])
	}
}

func TestPlaceholdersNumberedForPostgres(t *testing.T) {
	d := newPostgresDialect()
	if got := d.q(`UPDATE t SET a = ?, b = ? WHERE c IN (?, ?)`); got != `UPDATE t SET a = $1, b = $2 WHERE c IN ($3, $4)` {
		t.Fatal(got)
	}
	if got := newSQLiteDialect().q(`SELECT ?`); got != `SELECT ?` {
		t.Fatal(got)
	}
}

// One rule says which states may still be cancelled and which are at the
// devices; the two never overlap and the final states are in neither.
func TestCancellableAndDeviceStates(t *testing.T) {
	for _, st := range States {
		c, d := Cancellable(st), InDevice(st)
		if c && d {
			t.Errorf("%s is both cancellable and in the device", st)
		}
		final := st == Produced || st == Shipped || st == Failed || st == Cancelled
		if final && (c || d) {
			t.Errorf("final state %s offers cancel %v or stop %v", st, c, d)
		}
	}
	if !Cancellable(Ready) || Cancellable(Encoding) || !InDevice(Encoding) || !InDevice(Printing) {
		t.Error("ready must be cancellable; encoding and printing are at the devices")
	}
}
