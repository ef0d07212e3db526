package pgctl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MakeDataDir makes path usable as the target of initdb or pg_basebackup.
// Both tools run as the node's user and need to write the directory, so an
// absent one is created mode 0700 and owned by that user; missing parents
// are created mode 0755 (owned by the agent's user, which is fine: the node's
// user only needs to traverse them). An existing empty directory owned by
// someone else (typically root, made by an operator) is handed to the user
// the same way; a non-empty one is left alone, the caller refuses it.
func (r *Runner) MakeDataDir(path string) (created bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.IsDir() {
			return false, fmt.Errorf("%w: %s exists and is not a directory", ErrNotPermitted, path)
		}
		uid, gid := r.Owner()
		st, ok := fi.Sys().(*syscall.Stat_t)
		if uid >= 0 && ok && st.Uid != uint32(uid) {
			if empty, err := IsEmpty(path); err != nil || !empty {
				return false, err
			}
			if err := os.Chown(path, uid, gid); err != nil {
				return false, err
			}
			if err := os.Chmod(path, 0o700); err != nil {
				return false, err
			}
		}
		return false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	// PostgreSQL insists on 0700 (or 0750) for a data directory.
	if err := r.makeOwnedDir(path, 0o700); err != nil {
		return false, err
	}
	return true, nil
}

// MakeSocketDir creates a node's Unix socket directory when it is missing:
// mode 0755 (clients of any user may connect through it), owned by the
// node's user, who creates the socket and its lock file there. An existing
// directory is left as it is. A directory under /tmp or /run may vanish at
// reboot, which is why pg_ctl start calls this every time.
func (r *Runner) MakeSocketDir(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%w: socket directory %s exists and is not a directory", ErrNotPermitted, path)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return r.makeOwnedDir(path, 0o755)
}

func (r *Runner) makeOwnedDir(path string, mode os.FileMode) error {
	if err := mkdirParents(filepath.Dir(path)); err != nil {
		return err
	}
	if err := os.Mkdir(path, mode); err != nil {
		return err
	}
	// Mkdir's mode passes through the umask: set it explicitly.
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	if uid, gid := r.Owner(); uid >= 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func mkdirParents(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrNotPermitted, dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirParents(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// CheckTraversable makes sure the node's user can reach path: every
// ancestor must grant it search (x) permission. initdb would fail anyway,
// but with "could not access directory: Permission denied" about a
// directory that looks fine to root; this names the culprit. Only the mode
// bits are read (POSIX ACLs are not): a directory opened to the user by an
// ACL alone is refused.
func (r *Runner) CheckTraversable(path string) error {
	u := r.user
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// MakeDataDir creates missing parents mode 0755.
		case err != nil:
			return err
		case !canSearch(u, fi):
			owner := "?"
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				owner = strconv.FormatUint(uint64(st.Uid), 10)
			}
			return fmt.Errorf("%w: OS user %s cannot reach %s: %s is mode %04o, owner uid %s (make it traversable, e.g. chmod o+x)",
				ErrNotPermitted, u.Name, path, dir, fi.Mode().Perm(), owner)
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

func canSearch(u *User, fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || u.UID == 0 {
		return true
	}
	mode := fi.Mode().Perm()
	if st.Uid == u.UID {
		return mode&0o100 != 0
	}
	if st.Gid == u.GID {
		return mode&0o010 != 0
	}
	for _, g := range u.Groups {
		if g == st.Gid {
			return mode&0o010 != 0
		}
	}
	return mode&0o001 != 0
}

// IsEmpty reports whether the directory has no entries.
func IsEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// PGVersion returns the content of PG_VERSION (e.g. "15"), or "" when the
// directory holds none: PostgreSQL writes it first at initdb and checks it
// at every start, so it is what makes a directory a data directory.
func PGVersion(dir string) (string, error) {
	b, err := readSmall(filepath.Join(dir, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// PostmasterPID returns the pid named by postmaster.pid's first line and
// whether that process is alive, 0 and false when there is no pid file.
//
// A pid file outlives a crashed or killed postmaster, and its pid may since
// have been given to an unrelated process; PostgreSQL itself accepts that
// risk (it only checks that the pid is alive), but for "is this node
// running?" we also ask /proc what the process is, so a recycled pid does
// not make a dead node look alive.
func PostmasterPID(dir string) (pid int, alive bool, err error) {
	b, err := readSmall(filepath.Join(dir, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid == 0 {
		// A pid file being written names nobody yet.
		return 0, false, nil
	}
	// A single-user backend (postgres --single, as pg_rewind runs for crash
	// recovery) writes its pid negated; the directory is just as busy.
	if pid < 0 {
		pid = -pid
	}
	return pid, processAlive(pid), nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		// No /proc (or the process just exited): trust kill(0).
		return !errors.Is(err, fs.ErrNotExist) || !procMounted()
	}
	name := strings.TrimSpace(string(comm))
	return strings.HasPrefix(name, "postgres") || strings.HasPrefix(name, "postmaster")
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/comm")
	return err == nil
}

// readSmall reads a small file without following a symbolic link.
func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, 64<<10))
}
