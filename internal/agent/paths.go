package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
// owner of a parent directory) is not prevented here; the file operations
// themselves refuse to follow links in their last component.
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
