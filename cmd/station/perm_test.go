package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withUmask runs the station binary under umask 000, the loosest a user
// may have, so only the modes the station asks for protect its files.
func withUmask(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command("sh", append([]string{"-c", `umask 000 && exec "$0" "$@"`, stationBinary(t)}, args...)...)
}

// looseFiles lists what in dir others than the owner may read or enter:
// every file and folder the station makes there holds secrets or personal
// data. Left out: public certificates, the spool folder (handed to the
// printer's watcher through the station's group, see hardware.md) and the
// database files, whose modes queue.Open sets.
func looseFiles(t *testing.T, dir string) []string {
	t.Helper()
	var loose []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case rel == ".":
			return nil
		case rel == "spool" && d.IsDir():
			return filepath.SkipDir
		case strings.HasPrefix(d.Name(), "station.db"):
			return nil
		case strings.HasPrefix(rel, "pki/") && strings.HasSuffix(rel, ".pem") && !strings.Contains(rel, "key"):
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			loose = append(loose, rel+" "+fi.Mode().Perm().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return loose
}

// Whatever the umask, and whether or not the data directory or the dev
// token existed before, the station keeps its secrets and personal data to
// its own user.
func TestDataFilesAreOwnerOnly(t *testing.T) {
	skipShort(t, "runs the real binary")
	t.Run("token create on a fresh directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if out, err := withUmask(t, "token", "create", "--supplier", "acme", "--data", dir).CombinedOutput(); err != nil {
			t.Fatalf("token create: %v\n%s", err, out)
		}
		if loose := looseFiles(t, filepath.Dir(dir)); len(loose) > 0 {
			t.Fatalf("readable by others: %v", loose)
		}
	})
	t.Run("serve on an existing directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Folders and a dev token left by an older station, open to all.
		for _, sub := range []string{"pki", "sim"} {
			if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "dev-token"), []byte("st_left-by-an-older-station\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "dev-token"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := withUmask(t, "serve", "--listen", "127.0.0.1:0", "--data", dir)
		d := startCmd(t, cmd, dir)
		d.submit("perm-1", passPhotos(t)[0])
		d.produced("perm-1", 2*time.Minute)
		d.stop()
		if loose := looseFiles(t, dir); len(loose) > 0 {
			t.Fatalf("readable by others: %v", loose)
		}
	})
}
