// Package atomicfile replaces files so that a crash at any moment leaves
// either the old file or the new one, never half of one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data: it writes a hidden temporary file in the
// same directory, syncs it, gives it perm, renames it over path and syncs
// the directory so the rename itself survives a power cut.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not every file system can sync a directory; the rename is done either way
		d.Close()
	}
	return nil
}

// Create writes data to path, opened with flag (os.O_EXCL never to replace
// a file, os.O_TRUNC to rewrite a temporary one) and perm, and syncs it; on
// failure it removes what it wrote. It is for writers that guard or place
// the file themselves.
func Create(path string, data []byte, flag int, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
