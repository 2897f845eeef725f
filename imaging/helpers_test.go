package imaging

import (
	"os"
	"path/filepath"
	"testing"

	"id06/internal/integration"
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
			integration.Missing(t, "portrait test data (../shared/testdata/photos) not found")
			return ""
		}
		dir = parent
	}
}
