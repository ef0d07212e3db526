package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgconf"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeLibrary is adbmgr's library that every node preloads
// (shared_preload_libraries, cluster.ServerParams).
const NodeLibrary = "adb"

// MissingLibraryType marks, in a FailedPrecondition status's
// PreconditionFailure detail, a node that would not start because a
// library it preloads is not on its host: the manager reports it as 58P01
// naming the host, with the hint to install the library.
const MissingLibraryType = "NODE_LIBRARY"

// missingLibrary is a node whose configuration preloads the node library
// where the host does not have it.
type missingLibrary struct {
	node  string   // the data directory
	tried []string // the files looked for, in PostgreSQL's order
}

func (e *missingLibrary) Error() string {
	missing := e.tried[0] + " does not exist"
	if len(e.tried) > 1 {
		missing = "none of " + strings.Join(e.tried, ", ") + " exists (dynamic_library_path)"
	}
	return fmt.Sprintf(`node %s preloads the library "%s" (shared_preload_libraries), but %s`, e.node, NodeLibrary, missing)
}

// status is e as the manager gets it: FailedPrecondition with a
// PreconditionFailure detail of MissingLibraryType whose subject is the
// first file looked for.
func (e *missingLibrary) status() error {
	st := status.New(codes.FailedPrecondition, e.Error())
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
		Type: MissingLibraryType, Subject: e.tried[0], Description: e.Error(),
	}}}); err == nil {
		st = d
	}
	return st.Err()
}

// checkNodeLibrary refuses to start a node whose configuration preloads
// the node library when the host does not have it: PostgreSQL would stop
// at once with "could not access file "adb"" in a server log, which is a
// poor way for a DBA to learn that a host misses a package. Only that
// library is checked, in the configuration files the manager writes
// (postgresql.auto.conf over postgresql.conf, include files are not
// followed); anything this check cannot read is left for PostgreSQL to
// report.
func (n *node) checkNodeLibrary() error {
	settings := map[string]string{}
	for _, f := range []string{"postgresql.conf", "postgresql.auto.conf"} {
		b, err := pgconf.ReadFile(n.file(f))
		if err != nil {
			continue
		}
		for k, v := range pgconf.Effective(b) {
			settings[k] = v
		}
	}
	if !preloads(settings["shared_preload_libraries"], NodeLibrary) {
		return nil
	}
	tried := LibraryFiles(n.run.PGHome(), settings["dynamic_library_path"], NodeLibrary)
	for _, p := range tried {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	return &missingLibrary{node: n.path, tried: tried}
}

// preloads reports whether the shared_preload_libraries value list names
// lib: by its bare name or file name, or by a path ending in either. The
// list is comma-separated; an element may be double-quoted.
func preloads(list, lib string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		e = strings.TrimSuffix(strings.TrimPrefix(e, `"`), `"`)
		if b := filepath.Base(e); b == lib || b == lib+".so" {
			return true
		}
	}
	return false
}

// LibraryFiles are the files PostgreSQL would load for lib, in its order,
// given the node's pghome and its dynamic_library_path (empty: the
// default, $libdir): lib.so in each absolute directory of the path, with
// $libdir the installation's lib directory (LibDir). Components that
// PostgreSQL would refuse (empty, relative) are left out.
func LibraryFiles(pghome, dynamicLibraryPath, lib string) []string {
	if dynamicLibraryPath == "" {
		dynamicLibraryPath = "$libdir"
	}
	libdir := LibDir(pghome)
	var out []string
	for _, dir := range strings.Split(dynamicLibraryPath, ":") {
		if dir == "$libdir" || strings.HasPrefix(dir, "$libdir/") {
			dir = libdir + strings.TrimPrefix(dir, "$libdir")
		}
		if !filepath.IsAbs(dir) {
			continue
		}
		out = append(out, filepath.Join(dir, lib+".so"))
	}
	if len(out) == 0 {
		out = append(out, filepath.Join(libdir, lib+".so"))
	}
	return out
}

// LibDir is PostgreSQL's $libdir for the installation in pghome: lib
// beside the directory of the postgres binary, after symbolic links, as
// PostgreSQL finds it relative to its own executable (so a bin/postgres
// linked into another installation uses that one's lib); <pghome>/lib
// when the binary cannot be resolved.
func LibDir(pghome string) string {
	exe, err := filepath.EvalSymlinks(filepath.Join(pghome, "bin", "postgres"))
	if err != nil {
		return filepath.Join(pghome, "lib")
	}
	return filepath.Join(filepath.Dir(filepath.Dir(exe)), "lib")
}
