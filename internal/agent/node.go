package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/pgconf"
	"github.com/adbmgr/adbmgr/internal/pgctl"
)

// Default bounds for tools when the caller set no deadline. The manager
// should always set one; these keep a forgotten one from hanging forever.
const (
	initDBTimeout = 10 * time.Minute
	shortTimeout  = time.Minute
	defaultWait   = 60 * time.Second
	maxWait       = time.Hour
)

// node is a checked NodeRef.
type node struct {
	path string
	run  *pgctl.Runner
}

// node checks a NodeRef: the path is confined, pghome holds the tools and
// user is one the agent may run them as.
func (s *Server) node(ref *agentpb.NodeRef) (*node, error) {
	if ref == nil {
		return nil, invalidf("node is required")
	}
	if err := checkDataPath(ref.GetPath(), ref.GetPghome()); err != nil {
		return nil, err
	}
	run, err := pgctl.New(ref.GetPghome(), ref.GetUser())
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", ref.GetPath(), err)
	}
	if err := checkParent(ref.GetPath(), run.User().UID); err != nil {
		return nil, err
	}
	return &node{path: ref.GetPath(), run: run}, nil
}

// owner is who files the agent creates in the data directory must belong
// to: PostgreSQL refuses a data directory it does not own, and must be able
// to rewrite postgresql.auto.conf and remove standby.signal at promotion.
func (n *node) owner() pgconf.Owner {
	uid, gid := n.run.Owner()
	return pgconf.Owner{UID: uid, GID: gid}
}

func (n *node) file(name string) string { return filepath.Join(n.path, name) }

// dirState describes a directory.
type dirState struct {
	exists, empty bool
	pgVersion     string
	hasWAL        bool
}

func stateOf(path string) (dirState, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return dirState{}, nil
	}
	if err != nil {
		return dirState{}, err
	}
	if !fi.IsDir() {
		return dirState{}, preconditionf("%s exists and is not a directory", path)
	}
	st := dirState{exists: true}
	if st.empty, err = pgctl.IsEmpty(path); err != nil {
		return dirState{}, err
	}
	if st.pgVersion, err = pgctl.PGVersion(path); err != nil {
		return dirState{}, err
	}
	if _, err := os.Lstat(filepath.Join(path, "pg_wal")); err == nil {
		st.hasWAL = true
	}
	return st, nil
}

// initialized refuses a directory without PG_VERSION.
func (n *node) initialized() error {
	st, err := stateOf(n.path)
	if err != nil {
		return err
	}
	if st.pgVersion == "" {
		return preconditionf("%s is not an initialized data directory (no PG_VERSION)", n.path)
	}
	return nil
}

// prepareEmpty readies the target of initdb or pg_basebackup: absent (then
// created for the user) or empty. A directory with data is refused, not
// cleaned: the manager decides whether it may be thrown away (CLEAN).
func (n *node) prepareEmpty() error {
	st, err := stateOf(n.path)
	if err != nil {
		return err
	}
	if st.exists && !st.empty {
		if st.pgVersion != "" {
			return preconditionf("%s is already initialized (PG_VERSION %s); clean it first", n.path, st.pgVersion)
		}
		return preconditionf("directory %s is not empty", n.path)
	}
	if _, err := n.run.MakeDataDir(n.path); err != nil {
		return err
	}
	return n.run.CheckTraversable(n.path)
}

// openDataDir opens the data directory path for deleting or chmodding in
// it as root. Paths are not enough: whoever may rename entries in the
// parent (the node's user, when it owns it) could run "mv dn1 x; ln -s
// /etc dn1" between a check and os.RemoveAll, and root would empty /etc.
// So the parent is opened as an os.Root and checked through that handle
// (parentSafe), the data directory is Lstat'ed in it and must be a real
// directory, not a link, and is opened as an os.Root of its own, which must
// be the very directory Lstat saw (a link swapped in between is refused).
// Everything after that goes through the Root, which never leaves the
// directory, and RemoveAll on it removes links without following them.
func (n *node) openDataDir() (*os.Root, error) {
	dir, base := filepath.Dir(n.path), filepath.Base(n.path)
	parent, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	pfi, err := parent.Stat(".")
	if err != nil {
		return nil, err
	}
	if err := parentSafe(dir, pfi, n.run.User().UID); err != nil {
		return nil, err
	}
	fi, err := parent.Lstat(base)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, preconditionf("data directory %s is a symbolic link: the agent does not delete or chmod through links as root (give the node the directory it points to)", n.path)
	case !fi.IsDir():
		return nil, preconditionf("%s exists and is not a directory", n.path)
	}
	root, err := parent.OpenRoot(base)
	if err != nil {
		return nil, err
	}
	if got, err := root.Stat("."); err != nil || !os.SameFile(fi, got) {
		root.Close()
		if err != nil {
			return nil, err
		}
		return nil, preconditionf("data directory %s was replaced while the agent opened it: refusing to touch it", n.path)
	}
	return root, nil
}

// chmodDir sets the data directory's mode 0700, as PostgreSQL wants it,
// through a handle (see openDataDir).
func (n *node) chmodDir() error {
	root, err := n.openDataDir()
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chmod(0o700)
}

// emptyDir removes everything inside the data directory and leaves it mode
// 0700, never following a link at it or inside it (see openDataDir). So
// pg_tblspc's links go but the tablespaces they point to stay: they may
// live on other disks and belong to nodes we were not asked about.
func (n *node) emptyDir() error {
	root, err := n.openDataDir()
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
	}
	return d.Chmod(0o700)
}

// removeCopiedNoise deletes what pg_basebackup and pg_rewind copy from the
// source but belongs to the source alone: its server log (pg_ctl -l
// <datadir>/logfile) and the lock files of its Unix sockets when they live
// in the data directory. A copied .s.PGSQL.<port>.lock names the source's
// live postmaster, and a node on another address with the same port and
// socket directory inside its data directory would refuse to start ("lock
// file already exists"). Deleted through the directory's handle, like
// everything the agent deletes as root (see openDataDir).
func (n *node) removeCopiedNoise(log func(string, ...any)) {
	root, err := n.openDataDir()
	if err != nil {
		log("could not open the data directory to remove files copied from the source", "path", n.path, "error", err)
		return
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		log("could not list the data directory", "path", n.path, "error", err)
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		if name != pgctl.LogFile && !(strings.HasPrefix(name, ".s.PGSQL.") && strings.HasSuffix(name, ".lock")) {
			continue
		}
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log("could not remove a file copied from the source", "file", n.file(name), "error", err)
		}
	}
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func toolResult(res pgctl.Result, already bool) *agentpb.ToolResult {
	return &agentpb.ToolResult{Ok: true, Output: res.Output, Already: already}
}

// InitDB runs initdb into an empty or absent data directory.
func (s *Server) InitDB(ctx context.Context, req *agentpb.InitDBRequest) (*agentpb.ToolResult, error) {
	res, err := s.initDB(ctx, req)
	return res, toStatus(err)
}

func (s *Server) initDB(ctx context.Context, req *agentpb.InitDBRequest) (*agentpb.ToolResult, error) {
	n, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := n.prepareEmpty(); err != nil {
		return nil, err
	}
	if _, err := s.writeSecrets(n, req.GetNode(), req.GetSecrets()); err != nil {
		return nil, err
	}
	var pwFile string
	if pw := req.GetSecrets().GetPassword(); pw != "" {
		// In the socket directory: the node's user's own, which nobody
		// else may write to, and not the data directory initdb fills.
		if pwFile, err = s.pwFile(n, req.GetNode().GetSocketDir(), pw); err != nil {
			return nil, fmt.Errorf("write the password file for initdb: %w", err)
		}
		defer os.Remove(pwFile)
	}
	ctx, cancel := withDefaultTimeout(ctx, initDBTimeout)
	defer cancel()
	res, err := n.run.InitDB(ctx, n.path, pgctl.InitDBOptions{
		Encoding:      req.GetEncoding(),
		Locale:        req.GetLocale(),
		DataChecksums: req.GetDataChecksums(),
		WALSegSizeMB:  int(req.GetWalSegsizeMb()),
		PWFile:        pwFile,
	})
	if err != nil {
		// initdb removes what it wrote when it fails, but not when it is
		// killed; leave the directory empty either way so a retry works.
		if cerr := n.emptyDir(); cerr != nil {
			s.log.Warn("could not empty the data directory after a failed initdb", "path", n.path, "error", cerr)
		}
		return nil, fmt.Errorf("node %s: %w", n.path, err)
	}
	return toolResult(res, false), nil
}

// BaseBackup runs pg_basebackup into an empty or absent data directory,
// streaming its progress reports.
func (s *Server) BaseBackup(req *agentpb.BaseBackupRequest, stream agentpb.Agent_BaseBackupServer) error {
	return toStatus(s.baseBackup(req, stream))
}

func (s *Server) baseBackup(req *agentpb.BaseBackupRequest, stream agentpb.Agent_BaseBackupServer) error {
	ctx := stream.Context()
	n, err := s.node(req.GetNode())
	if err != nil {
		return err
	}
	src := pgctl.Source{
		Host:            req.GetSourceHost(),
		Port:            int(req.GetSourcePort()),
		User:            req.GetSourceUser(),
		ApplicationName: req.GetApplicationName(),
	}
	if err := src.Validate(); err != nil {
		return err
	}
	if req.GetSlot() != "" {
		if err := pgctl.ValidSlot(req.GetSlot()); err != nil {
			return err
		}
	}
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return err
	}
	defer unlock()
	if err := n.prepareEmpty(); err != nil {
		return err
	}
	files, err := s.writeSecrets(n, req.GetNode(), req.GetSecrets())
	if err != nil {
		return err
	}
	src.PassFile, src.SSLRootCert = files.passFile, files.rootCert
	var last agentpb.BaseBackupProgress
	var sendErr error
	progress := func(done, total int64) {
		last.DoneKb, last.TotalKb = done, total
		// A failed Send means the manager is gone; the stream's context is
		// then cancelled too, which kills pg_basebackup.
		if sendErr == nil {
			sendErr = stream.Send(&agentpb.BaseBackupProgress{DoneKb: done, TotalKb: total})
		}
	}
	res, err := n.run.BaseBackup(ctx, n.path, src, req.GetSlot(), progress)
	if err != nil {
		// Leave the directory empty, so that the retry the manager will
		// make finds what it expects.
		if cerr := n.emptyDir(); cerr != nil {
			s.log.Warn("could not empty the data directory after a failed pg_basebackup", "path", n.path, "error", cerr)
		}
		return fmt.Errorf("node %s: %w", n.path, err)
	}
	n.removeCopiedNoise(s.log.Warn)
	return stream.Send(&agentpb.BaseBackupProgress{
		DoneKb:  last.DoneKb,
		TotalKb: last.TotalKb,
		Done:    true,
		Result:  toolResult(res, false),
	})
}

var modes = map[agentpb.PgCtlRequest_Mode]string{
	agentpb.PgCtlRequest_MODE_UNSPECIFIED: pgctl.Fast,
	agentpb.PgCtlRequest_SMART:            pgctl.Smart,
	agentpb.PgCtlRequest_FAST:             pgctl.Fast,
	agentpb.PgCtlRequest_IMMEDIATE:        pgctl.Immediate,
}

// PgCtl starts, stops, restarts, reloads or promotes a node.
func (s *Server) PgCtl(ctx context.Context, req *agentpb.PgCtlRequest) (*agentpb.ToolResult, error) {
	res, err := s.pgCtl(ctx, req)
	return res, toStatus(err)
}

func (s *Server) pgCtl(ctx context.Context, req *agentpb.PgCtlRequest) (*agentpb.ToolResult, error) {
	n, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	mode, ok := modes[req.GetMode()]
	if !ok {
		return nil, invalidf("unknown shutdown mode %v", req.GetMode())
	}
	wait := time.Duration(req.GetWaitSeconds()) * time.Second
	if wait <= 0 {
		wait = defaultWait
	}
	wait = min(wait, maxWait)
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := n.initialized(); err != nil {
		return nil, err
	}
	// pg_ctl's own -t bounds the wait; the context only catches a pg_ctl
	// that hangs beyond it.
	ctx, cancel := withDefaultTimeout(ctx, wait+30*time.Second)
	defer cancel()
	running, err := n.run.Running(ctx, n.path)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.path, err)
	}
	action := req.GetAction()
	if action == agentpb.PgCtlRequest_RESTART || action == agentpb.PgCtlRequest_START && !running {
		if err := n.checkNodeLibrary(); err != nil {
			return nil, err
		}
	}
	if sd := req.GetNode().GetSocketDir(); sd != "" && !running && (action == agentpb.PgCtlRequest_START || action == agentpb.PgCtlRequest_RESTART) {
		if err := s.socketDir(n, sd); err != nil {
			return nil, err
		}
	}
	if _, err := s.writeSecrets(n, req.GetNode(), req.GetSecrets()); err != nil {
		return nil, err
	}
	var res pgctl.Result
	switch action {
	case agentpb.PgCtlRequest_START:
		if running {
			return &agentpb.ToolResult{Ok: true, Output: "server is already running", Already: true}, nil
		}
		res, err = n.run.Start(ctx, n.path, wait)
	case agentpb.PgCtlRequest_STOP:
		if !running {
			return &agentpb.ToolResult{Ok: true, Output: "server is not running", Already: true}, nil
		}
		res, err = n.run.Stop(ctx, n.path, mode, wait)
	case agentpb.PgCtlRequest_RESTART:
		// pg_ctl restart starts a stopped server too (with a warning).
		res, err = n.run.Restart(ctx, n.path, mode, wait)
	case agentpb.PgCtlRequest_RELOAD:
		if !running {
			return nil, preconditionf("node %s is not running: nothing to reload", n.path)
		}
		res, err = n.run.Reload(ctx, n.path)
	case agentpb.PgCtlRequest_PROMOTE:
		if !running {
			return nil, preconditionf("node %s is not running: it cannot be promoted", n.path)
		}
		// A standby has standby.signal (or recovery.signal for targeted
		// recovery) until promotion removes it: no signal file, nothing to
		// promote, which makes a replayed promote harmless.
		if !exists(n.file("standby.signal")) && !exists(n.file("recovery.signal")) {
			return &agentpb.ToolResult{Ok: true, Output: "server is not in standby mode", Already: true}, nil
		}
		res, err = n.run.Promote(ctx, n.path, wait)
	default:
		return nil, invalidf("unknown pg_ctl action %v", action)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.path, err)
	}
	return toolResult(res, false), nil
}

// socketDir makes sure the node's socket directory exists before a start:
// PostgreSQL does not create it and refuses to start without it. Only a
// missing one is created, and only where a data directory could be (an
// existing /var/run/postgresql is fine, creating things in /run is not);
// the same goes for a root-owned one, which MakeSocketDir would hand to
// the node's user. MakeSocketDir refuses one that is a link or that
// another user owns or may write to.
//
// A socket directory inside the data directory is refused, although the
// node would run: pg_rewind, run later against this node as a source,
// copies every non-relation file and fails on the socket ("could not open
// file .s.PGSQL.5432: No such device or address"), and a failover is the
// worst moment to find out.
func (s *Server) socketDir(n *node, dir string) error {
	if err := checkAuxPath("socket directory", dir); err != nil {
		return err
	}
	if within(dir, n.path) {
		return invalidf("socket directory %s is inside the data directory %s: pg_rewind from this node would fail on the socket; use a directory outside it", dir, n.path)
	}
	if fi, err := os.Lstat(dir); (err != nil || ownedByRoot(fi)) && !inOwnRunDir(dir) {
		if err := checkDataPath(dir, n.run.PGHome()); err != nil {
			return invalidf("cannot create or take over socket directory: %v", err)
		}
	}
	return n.run.MakeSocketDir(dir)
}

// inOwnRunDir reports whether dir is a directory of the agent's own
// installation's run directory, <adbhome>/run/<name> (adbhome holding the
// agent's bin/), where the manager puts the nodes' socket directories
// (cluster.SocketDir). It may be created there although adbhome lies in a
// system directory (/usr/local/adbmgr): the installation is root's or the
// host user's and not writable by others (START AGENT checks), so nobody
// else can have planted anything in it.
func inOwnRunDir(dir string) bool {
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	run := filepath.Join(filepath.Dir(filepath.Dir(exe)), "run")
	return filepath.Dir(dir) == run && filepath.Base(dir) != "." && filepath.Base(dir) != ".."
}

func ownedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Rewind runs pg_rewind on a stopped node against a running source.
func (s *Server) Rewind(ctx context.Context, req *agentpb.RewindRequest) (*agentpb.ToolResult, error) {
	res, err := s.rewind(ctx, req)
	return res, toStatus(err)
}

// keptByRewind are the node's own files that pg_rewind would overwrite with
// the source's: it copies every non-relation file, configuration included.
// The node must keep its own port, listen_addresses and socket directory
// (on a shared machine the source's would clash with the source itself),
// and its own access rules. postgresql.auto.conf is taken from the source,
// as pg_basebackup would, with -R's primary_conninfo appended.
var keptByRewind = []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf"}

func (s *Server) rewind(ctx context.Context, req *agentpb.RewindRequest) (*agentpb.ToolResult, error) {
	n, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	src := pgctl.Source{
		Host:            req.GetSourceHost(),
		Port:            int(req.GetSourcePort()),
		User:            req.GetSourceUser(),
		ApplicationName: req.GetApplicationName(),
	}
	if err := src.Validate(); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := n.initialized(); err != nil {
		return nil, err
	}
	if pid, alive, err := pgctl.PostmasterPID(n.path); err != nil {
		return nil, err
	} else if alive {
		return nil, preconditionf("node %s is running (pid %d): stop it before rewinding", n.path, pid)
	}
	files, err := s.writeSecrets(n, req.GetNode(), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	src.PassFile, src.SSLRootCert = files.passFile, files.rootCert
	saved := map[string][]byte{}
	for _, name := range keptByRewind {
		b, err := pgconf.ReadFile(n.file(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		saved[name] = b
	}
	ctx, cancel := withDefaultTimeout(ctx, initDBTimeout)
	defer cancel()
	res, err := n.run.Rewind(ctx, n.path, src, req.GetWriteRecoveryConf())
	// Restore even after a failure: a pg_rewind that stopped half-way has
	// still copied whatever it got to.
	for name, b := range saved {
		if rerr := pgconf.WriteFileAtomic(n.file(name), b, 0o600, n.owner()); rerr != nil && err == nil {
			err = fmt.Errorf("restore %s after pg_rewind: %w", name, rerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.path, err)
	}
	n.removeCopiedNoise(s.log.Warn)
	return toolResult(res, false), nil
}

// ControlData returns pg_controldata's fields.
func (s *Server) ControlData(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.ControlDataResponse, error) {
	res, err := s.controlData(ctx, ref)
	return res, toStatus(err)
}

func (s *Server) controlData(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.ControlDataResponse, error) {
	n, err := s.node(ref)
	if err != nil {
		return nil, err
	}
	if err := n.initialized(); err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, shortTimeout)
	defer cancel()
	fields, err := n.run.ControlData(ctx, n.path)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.path, err)
	}
	return &agentpb.ControlDataResponse{Fields: fields}, nil
}

// EditConf sets and removes parameters in postgresql.conf or
// postgresql.auto.conf.
func (s *Server) EditConf(ctx context.Context, req *agentpb.EditConfRequest) (*agentpb.EditConfResponse, error) {
	res, err := s.editConf(ctx, req)
	return res, toStatus(err)
}

func (s *Server) editConf(ctx context.Context, req *agentpb.EditConfRequest) (*agentpb.EditConfResponse, error) {
	n, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	var name string
	switch req.GetFile() {
	case agentpb.EditConfRequest_FILE_UNSPECIFIED, agentpb.EditConfRequest_POSTGRESQL_CONF:
		name = "postgresql.conf"
	case agentpb.EditConfRequest_POSTGRESQL_AUTO_CONF:
		name = "postgresql.auto.conf"
	default:
		return nil, invalidf("unknown configuration file %v", req.GetFile())
	}
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := n.initialized(); err != nil {
		return nil, err
	}
	// A running server may be writing postgresql.auto.conf (ALTER SYSTEM)
	// at the same time; both sides replace the file by rename, so the file
	// is always whole, and the later writer wins.
	changed, err := pgconf.EditConfFile(n.file(name), req.GetSet(), req.GetRemove(), name == "postgresql.auto.conf", n.owner())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.file(name), err)
	}
	return &agentpb.EditConfResponse{Changed: changed}, nil
}

func rules(lines []*agentpb.HBALine) []pgconf.Rule {
	out := make([]pgconf.Rule, 0, len(lines))
	for _, l := range lines {
		out = append(out, pgconf.Rule{Type: l.GetType(), Database: l.GetDatabase(), User: l.GetUser(), Address: l.GetAddress(), Method: l.GetMethod()})
	}
	return out
}

// EditHBA adds and removes pg_hba.conf rules.
func (s *Server) EditHBA(ctx context.Context, req *agentpb.EditHBARequest) (*agentpb.HBAResponse, error) {
	res, err := s.editHBA(ctx, req)
	return res, toStatus(err)
}

func (s *Server) editHBA(ctx context.Context, req *agentpb.EditHBARequest) (*agentpb.HBAResponse, error) {
	n, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	edit := pgconf.HBAEdit{
		AddManaged:      rules(req.GetAddManaged()),
		AddTail:         rules(req.GetAddTail()),
		Remove:          rules(req.GetRemove()),
		EnsureSeparator: req.GetEnsureSeparator(),
	}
	if err := edit.Validate(); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := n.initialized(); err != nil {
		return nil, err
	}
	lines, _, err := pgconf.EditHBAFile(n.file("pg_hba.conf"), edit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.file("pg_hba.conf"), err)
	}
	return &agentpb.HBAResponse{Lines: lines}, nil
}

// ReadHBA returns pg_hba.conf's rule lines.
func (s *Server) ReadHBA(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.HBAResponse, error) {
	res, err := s.readHBA(ref)
	return res, toStatus(err)
}

func (s *Server) readHBA(ref *agentpb.NodeRef) (*agentpb.HBAResponse, error) {
	n, err := s.node(ref)
	if err != nil {
		return nil, err
	}
	if err := n.initialized(); err != nil {
		return nil, err
	}
	lines, err := pgconf.ReadHBAFile(n.file("pg_hba.conf"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.file("pg_hba.conf"), err)
	}
	return &agentpb.HBAResponse{Lines: lines}, nil
}

// SetStandby creates or removes standby.signal.
func (s *Server) SetStandby(ctx context.Context, req *agentpb.SetStandbyRequest) (*agentpb.SetStandbyResponse, error) {
	res, err := s.setStandby(ctx, req)
	return res, toStatus(err)
}

func (s *Server) setStandby(ctx context.Context, req *agentpb.SetStandbyRequest) (*agentpb.SetStandbyResponse, error) {
	n, err := s.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := n.initialized(); err != nil {
		return nil, err
	}
	// PostgreSQL only checks that the file exists; AntDB wrote
	// "standby_mode = 'on'" into it, a leftover of recovery.conf days.
	changed, err := pgconf.SetFile(n.file("standby.signal"), req.GetStandby(), n.owner())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.file("standby.signal"), err)
	}
	return &agentpb.SetStandbyResponse{Changed: changed}, nil
}

// CheckDir says whether a data directory is absent, empty or holds data.
// Only the path is needed (pghome, when given, is protected from it).
func (s *Server) CheckDir(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.DirStatus, error) {
	res, err := s.checkDir(ref)
	return res, toStatus(err)
}

func (s *Server) checkDir(ref *agentpb.NodeRef) (*agentpb.DirStatus, error) {
	if ref == nil {
		return nil, invalidf("node is required")
	}
	if err := checkDataPath(ref.GetPath(), ref.GetPghome()); err != nil {
		return nil, err
	}
	st, err := stateOf(ref.GetPath())
	if err != nil {
		return nil, err
	}
	return &agentpb.DirStatus{Exists: st.exists, Empty: st.empty, Pgdata: st.pgVersion != "", PgVersion: st.pgVersion}, nil
}

// CleanDir empties a node's data directory.
func (s *Server) CleanDir(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.ToolResult, error) {
	res, err := s.cleanDir(ctx, ref)
	return res, toStatus(err)
}

// removeSocketDir removes the socket directory of a node CLEAN just found
// stopped: the secrets the agent wrote there (NodeSecrets), the stale
// .s.PGSQL.<port> and its lock file that a crash leaves, then the
// directory if that left it empty.
//
// The directory is whatever the request names, and may be shared
// (/var/run/postgresql holds the sockets of every local server), so only
// one laid out as the manager lays them out is touched: a real directory
// (not a link) owned by the node's user, in a directory named "run"
// (<adbhome>/run) that belongs to root or to that user and that nobody else
// may write to. Only this node's port is considered, and only when its lock
// file names no live postmaster (or is missing: PostgreSQL writes it before
// the socket). Everything else in the directory is kept, and so is the
// directory then. It works through an os.Root, so a link swapped in
// meanwhile leads nowhere.
func removeSocketDir(dir string, port int, uid uint32) {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if checkAuxPath("socket directory", dir) != nil || filepath.Base(parent) != "run" {
		return
	}
	run, err := os.OpenRoot(parent)
	if err != nil {
		return
	}
	defer run.Close()
	if pfi, err := run.Stat("."); err != nil || parentSafe(parent, pfi, uid) != nil || pfi.Mode().Perm()&0o022 != 0 {
		return
	}
	fi, err := run.Lstat(base)
	if err != nil || !fi.IsDir() { // a link is not IsDir for Lstat
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid {
		return
	}
	root, err := run.OpenRoot(base)
	if err != nil {
		return
	}
	defer root.Close()
	if got, err := root.Stat("."); err != nil || !os.SameFile(fi, got) {
		return
	}
	if port > 0 && port <= 65535 {
		sock := ".s.PGSQL." + strconv.Itoa(port)
		if _, alive, err := pgctl.LockFilePID(filepath.Join(dir, sock+".lock")); err == nil && !alive {
			root.Remove(sock)
			root.Remove(sock + ".lock")
		} else {
			return // the node runs after all: its secrets stay
		}
	}
	removeSecrets(root)
	run.Remove(base) // fails, harmlessly, when something else is left
}

// RemoveSocketDir implements agentpb.AgentServer.
func (s *Server) RemoveSocketDir(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.ToolResult, error) {
	n, err := s.node(ref)
	if err != nil {
		return nil, toStatus(err)
	}
	dir := ref.GetSocketDir()
	if dir == "" {
		return &agentpb.ToolResult{Ok: true, Output: "no socket directory"}, nil
	}
	removeSocketDir(dir, int(ref.GetPort()), n.run.User().UID)
	if _, err := os.Lstat(dir); err == nil {
		return &agentpb.ToolResult{Ok: false, Output: "kept " + dir + ": the node runs, or something else is in it"}, nil
	}
	return &agentpb.ToolResult{Ok: true, Output: "removed " + dir}, nil
}

func (s *Server) cleanDir(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.ToolResult, error) {
	n, err := s.node(ref)
	if err != nil {
		return nil, err
	}
	res, err := s.emptyNode(ctx, n)
	if err == nil && ref.GetSocketDir() != "" {
		removeSocketDir(ref.GetSocketDir(), int(ref.GetPort()), n.run.User().UID)
	}
	return res, err
}

// emptyNode is CLEAN's work on the data directory: it must hold a stopped
// node (or what a killed initdb or pg_basebackup left), and is emptied.
func (s *Server) emptyNode(ctx context.Context, n *node) (*agentpb.ToolResult, error) {
	unlock, err := s.locks.lock(ctx, n.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := stateOf(n.path)
	if err != nil {
		return nil, err
	}
	switch {
	case !st.exists:
		// CLEAN leaves an empty directory, as AntDB's rm -rf; mkdir -p.
		if _, err := n.run.MakeDataDir(n.path); err != nil {
			return nil, err
		}
		return &agentpb.ToolResult{Ok: true, Output: "created empty directory " + n.path}, nil
	case st.empty:
		if err := n.chmodDir(); err != nil {
			return nil, err
		}
		return &agentpb.ToolResult{Ok: true, Output: "directory is empty", Already: true}, nil
	case st.pgVersion == "" && !st.hasWAL:
		// pg_wal alone also qualifies: pg_basebackup -X stream creates it
		// first, so an agent killed early in a base backup leaves a
		// directory with pg_wal and no PG_VERSION, which must be cleanable.
		return nil, preconditionf("%s is not a PostgreSQL data directory (no PG_VERSION): refusing to empty it", n.path)
	}
	if pid, alive, err := pgctl.PostmasterPID(n.path); err != nil {
		return nil, err
	} else if alive {
		return nil, preconditionf("node %s is running (pid %d): stop it before cleaning", n.path, pid)
	}
	if err := n.emptyDir(); err != nil {
		return nil, fmt.Errorf("clean %s: %w", n.path, err)
	}
	return &agentpb.ToolResult{Ok: true, Output: "emptied " + n.path}, nil
}

// Status says whether a node runs and accepts connections.
func (s *Server) Status(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.NodeStatus, error) {
	res, err := s.status(ctx, ref)
	return res, toStatus(err)
}

func (s *Server) status(ctx context.Context, ref *agentpb.NodeRef) (*agentpb.NodeStatus, error) {
	n, err := s.node(ref)
	if err != nil {
		return nil, err
	}
	// The socket directory is preferred: it reaches the node whatever
	// listen_addresses says.
	host := ref.GetSocketDir()
	if host != "" {
		if err := checkAuxPath("socket directory", host); err != nil {
			return nil, err
		}
	} else if host = ref.GetAddress(); strings.IndexByte(host, 0) >= 0 || len(host) > 255 {
		return nil, invalidf("address %q", host)
	}
	port := int(ref.GetPort())
	if port < 0 || port > 65535 {
		return nil, invalidf("port %d", port)
	}
	st, err := stateOf(n.path)
	if err != nil {
		return nil, err
	}
	out := &agentpb.NodeStatus{Initialized: st.pgVersion != ""}
	pid, alive, err := pgctl.PostmasterPID(n.path)
	if err != nil {
		return nil, err
	}
	out.Running = alive
	if alive {
		out.Pid = int64(pid)
	}
	if port == 0 || host == "" {
		return out, nil
	}
	if !alive {
		// Whatever answers on that port is not this node.
		out.Ready = pgctl.NoResponse
		return out, nil
	}
	ctx, cancel := withDefaultTimeout(ctx, 10*time.Second)
	defer cancel()
	if out.Ready, err = n.run.IsReady(ctx, host, port); err != nil {
		return nil, fmt.Errorf("node %s: %w", n.path, err)
	}
	return out, nil
}

// DescribeConfig lists the server's parameters.
func (s *Server) DescribeConfig(ctx context.Context, req *agentpb.DescribeConfigRequest) (*agentpb.DescribeConfigResponse, error) {
	res, err := s.describeConfig(ctx, req)
	return res, toStatus(err)
}

func (s *Server) describeConfig(ctx context.Context, req *agentpb.DescribeConfigRequest) (*agentpb.DescribeConfigResponse, error) {
	run, err := pgctl.New(req.GetPghome(), req.GetUser())
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, shortTimeout)
	defer cancel()
	params, err := run.DescribeConfig(ctx)
	if err != nil {
		return nil, err
	}
	out := &agentpb.DescribeConfigResponse{Parameters: make([]*agentpb.Parameter, 0, len(params))}
	for _, p := range params {
		out.Parameters = append(out.Parameters, &agentpb.Parameter{
			Name:         p.Name,
			Context:      p.Context,
			Vartype:      p.VarType,
			DefaultValue: p.Default,
			Min:          p.Min,
			Max:          p.Max,
		})
	}
	return out, nil
}
