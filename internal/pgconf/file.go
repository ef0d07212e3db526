package pgconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrInvalid marks errors caused by the request rather than by the file
// system: a malformed parameter name, a value PostgreSQL cannot represent,
// a pg_hba field that would change the meaning of the line.
var ErrInvalid = errors.New("invalid")

// ErrNotRegular is returned for a configuration file that is a symbolic link,
// a directory or a device. The agent reads and writes these files as root
// inside directories their owner controls; following a link planted there
// would let the owner read or overwrite any file on the host.
var ErrNotRegular = errors.New("not a regular file")

// maxFileSize bounds what ReadFile loads: configuration files are a few
// kilobytes, and a huge one is a mistake or an attack, not a config.
const maxFileSize = 16 << 20

// Owner is the user and group a newly created file is given when the caller
// runs as root. UID -1 means "leave it to the process" (no chown).
type Owner struct {
	UID, GID int
}

// NoOwner asks for no chown.
var NoOwner = Owner{UID: -1, GID: -1}

// ReadFile reads a regular file without following a symbolic link in its
// last component. A missing file is reported with an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO planted under the expected name must not
	// hang the agent; it is refused below as not regular.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: %w (symbolic link)", path, ErrNotRegular)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is too large for a configuration file", path, fi.Size())
	}
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}

// WriteFileAtomic replaces path with data so that readers (a PostgreSQL
// reload, a crash) see either the old or the new content, never a mix:
// temporary file in the same directory, fsync, rename, fsync of the
// directory. An existing file keeps its permission bits and, when the
// process runs as root, its owner; a new file gets perm and owner.
//
// Renaming over a symbolic link replaces the link itself, never its target,
// but the caller is refused anyway so that a planted link is noticed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode, owner Owner) error {
	mode := perm.Perm()
	uid, gid := owner.UID, owner.GID
	fi, err := os.Lstat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: %w", path, ErrNotRegular)
		}
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	dir, base := filepath.Split(path)
	tmp, err := os.CreateTemp(dir, "."+base+".adbagent-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	// CreateTemp makes the file 0600 whatever the umask; set the mode
	// explicitly so a 0644 pg_hba.conf stays 0644.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	// Only root can give a file away; a non-root agent writes files as its
	// own user, which is then also the nodes' user.
	if os.Geteuid() == 0 && uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return err
	}
	done = true
	return syncDir(dir)
}

// syncDir makes a rename durable: without it a power loss can bring back
// the old directory entry even though the new file's data reached the disk.
func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// editFile applies edit to the content of path and writes the result back
// when it differs. missingOK lets a file that does not exist start empty
// (postgresql.auto.conf), created with perm and owner.
func editFile(path string, missingOK bool, header []byte, perm os.FileMode, owner Owner, edit func([]byte) ([]byte, bool, error)) (bool, error) {
	old, err := ReadFile(path)
	switch {
	case err == nil:
	case missingOK && errors.Is(err, fs.ErrNotExist):
		old = nil
	default:
		return false, err
	}
	content := old
	if old == nil && header != nil {
		content = header
	}
	out, changed, err := edit(content)
	if err != nil {
		return false, err
	}
	if !changed {
		// Also for a missing file: nothing to add, so leave it absent.
		return false, nil
	}
	if err := WriteFileAtomic(path, out, perm, owner); err != nil {
		return false, err
	}
	return true, nil
}
