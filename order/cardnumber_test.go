package order

import "testing"

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
