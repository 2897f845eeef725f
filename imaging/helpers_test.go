package imaging

import (
	"os"
	"path/filepath"
	"testing"
)

// photosDir finds ../shared/testdata/photos by walking up from the package
// directory; the photos are personal data and never live in the repository.
func photosDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		for _, c := range []string{"shared/testdata/photos", "../shared/testdata/photos"} {
			p := filepath.Join(dir, c)
			if st, err := os.Stat(filepath.Join(p, "expected.tsv")); err == nil && !st.IsDir() {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			requireOrSkip(t, "portrait test data (../shared/testdata/photos) not found")
			return ""
		}
		dir = parent
	}
}

// requireOrSkip skips a test that needs something from outside the repo,
// unless CI demands it with STATION_REQUIRE_INTEGRATION=1.
func requireOrSkip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("STATION_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}
