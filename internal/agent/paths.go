package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxPathLen is below PATH_MAX with room for the files PostgreSQL creates
// inside a data directory.
const maxPathLen = 1000

// systemDirs are never data directories, nor is anything inside them: the
// agent runs as root and CleanDir empties directories, so a typo or a
// confused manager must not be able to reach the operating system.
var systemDirs = []string{
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
	"/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/usr",
	"/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/rpm", "/var/lib/yum",
	"/var/log", "/var/mail", "/var/run", "/var/spool",
}

// checkDataPath confines a node's path. It must be absolute, already clean
// (so that the string the manager stores is the directory we act on), free
// of NUL, shorter than maxPathLen, at least two levels deep (so never /,
// /home, /tmp, /data…), outside every system directory, and must neither be
// nor contain nor lie inside the PostgreSQL installation or the agent's own
// directory. When symbolic links lead elsewhere (a data directory on a
// mounted disk is often linked), the resolved path must pass the same
// checks, so a link cannot smuggle /etc in.
//
// A link swapped in between this check and the operation (a race by the
// owner of the parent directory) is not prevented here: checkParent limits
// who that owner may be, and whatever deletes, chmods or chowns as root in
// a data directory does it through handles that never follow a link at the
// data directory or inside it (openDataDir, pgctl's openDirNoFollow).
func checkDataPath(path, pghome string) error {
	switch {
	case path == "":
		return invalidf("the node's data directory is empty")
	case strings.IndexByte(path, 0) >= 0:
		return invalidf("data directory %q contains a NUL byte", path)
	case len(path) >= maxPathLen:
		return invalidf("data directory is longer than %d bytes", maxPathLen-1)
	case !filepath.IsAbs(path):
		return invalidf("data directory %q is not an absolute path", path)
	case filepath.Clean(path) != path:
		return invalidf("data directory %q is not clean (did you mean %q?)", path, filepath.Clean(path))
	}
	if err := checkPlace(path, pghome); err != nil {
		return err
	}
	resolved, err := resolveExisting(path)
	if err != nil {
		return invalidf("data directory %s: %v", path, err)
	}
	if resolved != path {
		if err := checkPlace(resolved, pghome); err != nil {
			return invalidf("data directory %s resolves to %s: %v", path, resolved, err)
		}
	}
	return nil
}

func checkPlace(path, pghome string) error {
	if path == "/" || filepath.Dir(path) == "/" {
		return invalidf("data directory %s is too close to / (it must be at least two levels deep)", path)
	}
	for _, sys := range systemDirs {
		if within(path, sys) {
			return invalidf("data directory %s is in the system directory %s", path, sys)
		}
	}
	var protected []string
	if pghome != "" {
		protected = append(protected, pghome)
		if r, err := filepath.EvalSymlinks(pghome); err == nil {
			protected = append(protected, r)
		}
	}
	if exe, err := os.Executable(); err == nil {
		protected = append(protected, filepath.Dir(exe))
	}
	for _, p := range protected {
		if within(path, p) || within(p, path) {
			return invalidf("data directory %s overlaps %s", path, p)
		}
	}
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// resolveExisting resolves symbolic links in the part of path that exists
// and appends the rest.
func resolveExisting(path string) (string, error) {
	rest := ""
	for cur := path; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return path, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// checkAuxPath checks a socket directory given for Status: absolute and
// clean, no NUL. It is only passed to pg_isready, never written to.
func checkAuxPath(what, path string) error {
	if strings.IndexByte(path, 0) >= 0 || len(path) >= maxPathLen || !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return invalidf("%s %q must be an absolute, clean path", what, path)
	}
	return nil
}

// checkParent refuses a data directory whose immediate parent someone
// other than root and the node's user (uid) could rename entries in. The
// agent deletes and chowns in data directories as root; whoever can rename
// in the parent can swap the data directory for a link to /etc between the
// agent's check and its action. openDataDir and pgctl's descriptors make
// such a swap harmless, and this keeps strangers out of the parent in the
// first place:
//
//   - the parent must belong to root or to the node's user (the node's own
//     user swapping its own directory only hurts its own data, once the
//     operations refuse links);
//   - it must not be writable by group or others, unless it has the sticky
//     bit (like /tmp): then others may add entries but not rename or delete
//     the node's, which is what matters.
//
// Only the immediate parent is checked: /tmp/x/dn1 with /tmp/x root 0755 is
// fine although /tmp is world-writable, since nobody but root can rename x.
// A missing parent is fine too: the agent creates it, root's, mode 0755.
func checkParent(path string, uid uint32) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return parentSafe(dir, fi, uid)
}

// parentSafe is checkParent's rule applied to fi, the parent directory dir.
func parentSafe(dir string, fi fs.FileInfo, uid uint32) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return preconditionf("parent directory %s: no owner information", dir)
	}
	if !fi.IsDir() {
		return preconditionf("parent %s of the data directory is not a directory", dir)
	}
	if st.Uid != 0 && st.Uid != uid {
		return preconditionf("the data directory's parent %s belongs to uid %d, neither root nor the node's user (uid %d): its owner could swap the data directory for a link while the agent works on it as root; use a parent owned by root or by the node's user",
			dir, st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return preconditionf("the data directory's parent %s is mode %04o: other users could swap the data directory for a link while the agent works on it as root; remove group and other write permission (or set the sticky bit)",
			dir, fi.Mode().Perm())
	}
	return nil
}
