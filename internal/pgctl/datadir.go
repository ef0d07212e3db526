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

// The agent runs as root, and the directories it creates, chmods and chowns
// sit in places other users may write to: a data directory's parent may
// belong to the node's user, a socket directory lives in /tmp under a
// predictable name. A path checked with Stat and then changed with
// Chmod/Chown can be swapped for a symbolic link in between (mv dn1 x;
// ln -s /etc dn1), and root would then hand /etc to the node's user. So
// every such change goes through a descriptor opened with O_NOFOLLOW
// (openDirNoFollow) and fchmod/fchown, and the checks are made on that
// descriptor's fstat: what is checked is what is changed.

// openDirNoFollow opens path, which must be a directory and not a symbolic
// link (its last component; links in its ancestors are followed).
func openDirNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		// Linux says ENOTDIR for a link with O_DIRECTORY|O_NOFOLLOW.
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: %s is a symbolic link: the agent does not chmod or chown through links as root (give the directory it points to)", ErrNotPermitted, path)
		}
		return nil, fmt.Errorf("%w: %s exists and is not a directory", ErrNotPermitted, path)
	}
	return f, err
}

// MakeDataDir makes path usable as the target of initdb or pg_basebackup.
// Both tools run as the node's user and need to write the directory, so an
// absent one is created mode 0700 and owned by that user; missing parents
// are created mode 0755 (owned by the agent's user, which is fine: the node's
// user only needs to traverse them). An existing empty directory owned by
// someone else (typically root, made by an operator) is handed to the user
// the same way; a non-empty one is left alone, the caller refuses it. A
// symbolic link in place of the directory is refused: root would chown
// whatever it points to at the moment of the chown.
func (r *Runner) MakeDataDir(path string) (created bool, err error) {
	_, err = os.Lstat(path)
	switch {
	case err == nil:
		f, err := openDirNoFollow(path)
		if err != nil {
			return false, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return false, err
		}
		uid, gid := r.Owner()
		st, ok := fi.Sys().(*syscall.Stat_t)
		if uid >= 0 && ok && st.Uid != uint32(uid) {
			if empty, err := dirEmpty(f); err != nil || !empty {
				return false, err
			}
			if err := f.Chown(uid, gid); err != nil {
				return false, err
			}
			if err := f.Chmod(0o700); err != nil {
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

// MakeSocketDir makes sure a node's Unix socket directory exists and is the
// node's own. A missing one is created mode 0755 (clients of any user may
// connect through it), owned by the node's user, who creates the socket
// and its lock file there. A directory under /tmp or /run may vanish at
// reboot, which is why pg_ctl start calls this every time.
//
// The names the manager generates (/tmp/adbmgr-<node>-<hash>) are
// predictable, so another local user may have created the directory first,
// to plant a socket clients would trust or to delete the node's. An
// existing directory is therefore accepted only when it is not a symbolic
// link, belongs to the node's user and nobody else can write to it. One
// exception: group write is accepted when the directory belongs to the
// node's user and to its primary group, which is how Debian ships
// /var/run/postgresql (2775 postgres:postgres). A root-owned directory (an
// operator's mkdir) is handed to the user when it is empty and nobody but
// root can write to it; a non-empty one (such as /run) never is.
func (r *Runner) MakeSocketDir(path string) error {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r.makeOwnedDir(path, 0o755)
	}
	if err != nil {
		return err
	}
	f, err := openDirNoFollow(path)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: socket directory %s: no owner information", ErrNotPermitted, path)
	}
	u := r.user
	mode := fi.Mode()
	switch {
	case st.Uid == u.UID:
		if mode&0o002 != 0 || (mode&0o020 != 0 && st.Gid != u.GID) {
			return fmt.Errorf("%w: socket directory %s is mode %04o: other users could replace the node's socket (make it writable by %s only)",
				ErrNotPermitted, path, mode.Perm(), u.Name)
		}
		return nil
	case st.Uid == 0:
		uid, gid := r.Owner()
		if uid < 0 {
			return fmt.Errorf("%w: socket directory %s belongs to root and the agent, not running as root, cannot hand it to %s", ErrNotPermitted, path, u.Name)
		}
		if mode&0o022 != 0 {
			return fmt.Errorf("%w: socket directory %s belongs to root and is mode %04o: refusing to use it (other users could replace the node's socket)",
				ErrNotPermitted, path, mode.Perm())
		}
		if empty, err := dirEmpty(f); err != nil {
			return err
		} else if !empty {
			return fmt.Errorf("%w: socket directory %s belongs to root and is not empty: refusing to hand it to %s", ErrNotPermitted, path, u.Name)
		}
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
		return f.Chmod(0o755)
	default:
		return fmt.Errorf("%w: socket directory %s belongs to uid %d, not to the node's user %s (uid %d): refusing to put the node's socket there",
			ErrNotPermitted, path, st.Uid, u.Name, u.UID)
	}
}

// makeOwnedDir creates path with mode and gives it to the node's user. The
// mode and owner are set through a descriptor: the parent may belong to the
// node's user, who could otherwise swap the new directory for a link
// between the mkdir and the chown.
func (r *Runner) makeOwnedDir(path string, mode os.FileMode) error {
	if err := mkdirParents(filepath.Dir(path)); err != nil {
		return err
	}
	if err := os.Mkdir(path, mode); err != nil {
		return err
	}
	f, err := openDirNoFollow(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Mkdir's mode passes through the umask: set it explicitly.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid, gid := r.Owner(); uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
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
	if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
		return nil // made by someone else meanwhile: not ours to chmod
	} else if err != nil {
		return err
	}
	// Through a descriptor, for the same reason as in makeOwnedDir.
	f, err := openDirNoFollow(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(0o755)
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
	return dirEmpty(f)
}

func dirEmpty(f *os.File) (bool, error) {
	_, err := f.Readdirnames(1)
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
	return LockFilePID(filepath.Join(dir, "postmaster.pid"))
}

// LockFilePID is PostmasterPID for any lock file PostgreSQL writes: the
// data directory's postmaster.pid or a socket's .s.PGSQL.<port>.lock, whose
// first line is the postmaster's pid too.
func LockFilePID(file string) (pid int, alive bool, err error) {
	b, err := readSmall(file)
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
	if !strings.HasPrefix(name, "postgres") && !strings.HasPrefix(name, "postmaster") {
		return false
	}
	// A killed postmaster stays a zombie until its parent (often init,
	// which may take its time) reaps it; it is dead all the same, and a
	// start must not be skipped as "already running".
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return false
		}
	}
	return true
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
