package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The manager's data directory holds the catalog, the CA's key and every
// agent's key: nothing in it is for other OS users, as PostgreSQL insists
// for PGDATA. Files are created 0600 and directories 0700; Private fixes
// what an earlier version (catalog.db was 0644) or a careless copy left.

// createPrivate creates file empty and 0600 unless it exists, so that
// SQLite, which gives its -wal and -shm files the database file's mode,
// never makes any of the three readable by others.
func createPrivate(file string) error {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// Private makes dir and everything under it private to its owner:
// directories 0700, files without any group or other permission (0600 for
// the usual 0644). Symbolic links and special files are left alone (a
// link could point outside). It returns one line per change, for the log.
func Private(dir string) (changed []string, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (a temporary file)
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || !(d.IsDir() || d.Type().IsRegular()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		mode := fi.Mode().Perm()
		want := mode &^ 0o077
		if d.IsDir() {
			want = 0o700
		}
		if mode == want {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return fmt.Errorf("make %s private: %w", path, err)
		}
		changed = append(changed, fmt.Sprintf("%s: %#o -> %#o", path, mode, want))
		return nil
	})
	return changed, err
}
