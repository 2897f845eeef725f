package imaging

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type expectedPhoto struct {
	file    string
	verdict string // PASS or FAIL
	codes   []string
}

// readExpected parses expected.tsv; the reasons column is prose that starts
// with the reason codes.
func readExpected(t *testing.T, dir string) []expectedPhoto {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]bool{}
	for _, c := range Codes() {
		known[c] = true
	}
	var out []expectedPhoto
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		cols := strings.Split(sc.Text(), "\t")
		if first || len(cols) < 2 {
			continue
		}
		e := expectedPhoto{file: cols[0], verdict: cols[1]}
		if len(cols) > 2 {
			for _, w := range strings.FieldsFunc(cols[2], func(r rune) bool { return r == ',' || r == ' ' || r == '(' }) {
				if known[w] {
					e.codes = append(e.codes, w)
				}
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExpectedPhotos runs the stage over every photo in expected.tsv: every
// PASS photo must pass and every FAIL photo must fail. Reason codes that
// differ from the expected ones are logged (the verdict is the contract).
func TestExpectedPhotos(t *testing.T) {
	dir := photosDir(t)
	exp := readExpected(t, dir)
	if len(exp) == 0 {
		t.Fatal("expected.tsv lists no photos")
	}
	var tp, tn, fp, fn, codeMatch int
	var table []string
	for _, e := range exp {
		data, err := os.ReadFile(filepath.Join(dir, e.file))
		if err != nil {
			t.Fatal(err)
		}
		res := CheckPhoto(data)
		var got []string
		for _, r := range res.Reasons {
			got = append(got, r.Code)
		}
		pass := res.Verdict == VerdictPass
		switch {
		case e.verdict == "PASS" && pass:
			tp++
		case e.verdict == "PASS":
			fn++
			t.Errorf("%s: expected PASS, got %s %v", e.file, res.Verdict, got)
		case !pass:
			tn++
		default:
			fp++
			t.Errorf("%s: expected FAIL %v, got pass", e.file, e.codes)
		}
		if sameSet(got, e.codes) {
			codeMatch++
		}
		table = append(table, fmt.Sprintf("%-48s %-4s %-10s got=%-40s want=%-40s %s",
			e.file, e.verdict, res.Verdict, strings.Join(got, ","), strings.Join(e.codes, ","), fmtMetrics(res.Metrics)))
		if res.Verdict != VerdictUnreadable && res.Portrait == nil {
			t.Errorf("%s: decoded but no portrait", e.file)
		}
	}
	for _, l := range table {
		t.Log(l)
	}
	t.Logf("confusion (expected rows x got columns):\n"+
		"              got PASS  got FAIL\n"+
		"  want PASS   %8d  %8d\n"+
		"  want FAIL   %8d  %8d\n"+
		"reason codes identical to expected.tsv: %d of %d", tp, fn, fp, tn, codeMatch, len(exp))
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func fmtMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%g ", k, m[k])
	}
	return b.String()
}
