// Package fstrust decides whether a root process may rely on a file or
// directory it is about to execute (or execute from) on behalf of an OS
// user, as OpenSSH's StrictModes does for authorized_keys: the file itself
// and every directory on the way to it, symbolic links followed, must
// belong to root or to that user and must not be writable by group or
// others. Whoever else could write any of them could replace what root
// runs, and so become root (or the user).
//
// One exception, for ancestors only: a directory owned by root with the
// sticky bit (like /tmp, mode 1777) may be writable by everyone, because
// others may add entries there but neither rename nor remove an entry they
// do not own. The final directory or file gets no such exception: a
// program looked up by a fixed name in a sticky directory could be
// created there by anyone before it exists.
//
// The check is a snapshot. What keeps it true until the file is used is the
// rule itself: only root and the user can change anything on the path, and
// the user changing what runs as the user gains nothing. Where the program
// runs as root, the caller must also make sure the user cannot change it
// (the manager verifies the agent's checksum and runs its own copy).
package fstrust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxLinks is how many symbolic links one check follows, as the kernel's
// ELOOP limit.
const maxLinks = 40

// UnsafeError is a path that cannot be trusted, and why.
type UnsafeError struct {
	// Path is the path checked.
	Path string
	// Culprit is the file or directory at fault: Path itself, an ancestor,
	// or something a symbolic link on the way led to.
	Culprit string
	// Reason says what is wrong with Culprit.
	Reason string
}

func (e *UnsafeError) Error() string {
	if e.Culprit == e.Path {
		return e.Path + " " + e.Reason
	}
	return fmt.Sprintf("%s is not safe: %s %s", e.Path, e.Culprit, e.Reason)
}

// Dir checks that path is a directory that root and uid alone control.
func Dir(path string, uid uint32) error {
	fi, err := check(path, uid)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UnsafeError{Path: path, Culprit: path, Reason: "is not a directory"}
	}
	return nil
}

// Executable checks that path is a regular file that root and uid alone
// control.
func Executable(path string, uid uint32) error {
	fi, err := check(path, uid)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &UnsafeError{Path: path, Culprit: path, Reason: "is not a regular file"}
	}
	return nil
}

// File checks an open file the way Executable checks its path's last
// element: a regular file owned by root or uid, not writable by group or
// others. Checking the descriptor that will be read or run closes the gap
// between checking a path and opening it.
func File(f *os.File, uid uint32) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &UnsafeError{Path: f.Name(), Culprit: f.Name(), Reason: "is not a regular file"}
	}
	w := walker{path: f.Name(), uid: uid}
	return w.judge(f.Name(), fi, true)
}

// check walks path from / and returns what it finally names.
func check(path string, uid uint32) (fs.FileInfo, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || strings.IndexByte(path, 0) >= 0 {
		return nil, fmt.Errorf("%q is not an absolute, clean path", path)
	}
	w := walker{path: path, uid: uid}
	_, fi, err := w.walk(path, true)
	return fi, err
}

type walker struct {
	path  string // the path checked, for messages
	uid   uint32
	links int
}

// walk checks every directory from / to p and p itself (final says whether
// p is what the caller asked about, which gets no sticky exception), and
// returns p with its links resolved and its information.
func (w *walker) walk(p string, final bool) (string, fs.FileInfo, error) {
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", nil, err
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if p == "/" {
		parts = nil
	}
	if err := w.judge(cur, fi, final && len(parts) == 0); err != nil {
		return "", nil, err
	}
	for i, name := range parts {
		last := final && i == len(parts)-1
		next := filepath.Join(cur, name)
		fi, err = os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("%s does not exist: %w", next, fs.ErrNotExist)
		}
		if err != nil {
			return "", nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// The link itself is safe: it lies in cur, already checked,
			// and a link's own mode means nothing. Where it leads is
			// checked from / again, as the kernel resolves it.
			if w.links++; w.links > maxLinks {
				return "", nil, &UnsafeError{Path: w.path, Culprit: next, Reason: "leads through too many symbolic links"}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", nil, err
			}
			if !filepath.IsAbs(target) {
				// cur has no links left in it, so ".." in target is
				// resolved lexically exactly as the kernel would.
				target = filepath.Join(cur, target)
			}
			if next, fi, err = w.walk(filepath.Clean(target), last); err != nil {
				return "", nil, err
			}
		} else if err := w.judge(next, fi, last); err != nil {
			return "", nil, err
		}
		if !last && !fi.IsDir() {
			return "", nil, &UnsafeError{Path: w.path, Culprit: next, Reason: "is not a directory"}
		}
		cur = next
	}
	return cur, fi, nil
}

// judge applies the rule to one file or directory.
func (w *walker) judge(p string, fi fs.FileInfo, final bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &UnsafeError{Path: w.path, Culprit: p, Reason: "has no owner information"}
	}
	if st.Uid != 0 && st.Uid != w.uid {
		allowed := "not root"
		if w.uid != 0 {
			allowed = "neither root nor " + who(w.uid)
		}
		return &UnsafeError{Path: w.path, Culprit: p, Reason: fmt.Sprintf(
			"is owned by %s, %s: its owner could replace what runs", who(st.Uid), allowed)}
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 {
		return nil
	}
	if !final && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 && st.Uid == 0 {
		return nil
	}
	by := "group and others"
	switch {
	case perm&0o022 == 0o020:
		by = "group"
	case perm&0o022 == 0o002:
		by = "others"
	}
	reason := fmt.Sprintf("is writable by %s (mode %04o): they could replace what runs", by, perm)
	if !final && fi.IsDir() {
		reason += "; only a root-owned sticky directory such as /tmp may be"
	}
	return &UnsafeError{Path: w.path, Culprit: p, Reason: reason}
}

// who names a uid for messages: "uid 65534 (nobody)".
func who(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}
