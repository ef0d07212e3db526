package mgr

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fstrust"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Why these checks: the manager runs as root and a host's adbhome and
// pghome are just strings a DBA typed. Without them any local user who
// could reach the manager could ADD HOST with adbhome='/tmp/evil' and have
// START AGENT run their script as root, or point pghome at their own
// initdb and have it run as the nodes' user (a database superuser).

// hostUID is the uid the files of a host may belong to besides root: its
// user's. A user unknown on this machine gets none (root only): the agent
// will refuse it anyway.
func hostUID(name string) uint32 {
	u, err := user.Lookup(name)
	if err != nil {
		return 0
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(uid)
}

// vetHost runs decide (cluster.AddHost or AlterHost) on the current
// catalog, as a dry run, and checks the files of the host it would write,
// so that the file-system checks (I/O) stay out of the pure rules and out
// of the catalog transaction. The caller holds the catalog lock, so the
// transaction decides the same; sameFiles there makes sure of it. A
// refusal by decide is left to the transaction, which reports it.
func (m *Manager) vetHost(ctx context.Context, decide func(*cluster.State) (cluster.Plan, error)) (*cluster.Host, error) {
	s, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := decide(s)
	if err != nil {
		return nil, nil
	}
	h := plan.InsertHost
	if plan.UpdateHost != nil {
		h = plan.UpdateHost
		if old, ok := s.Host(h.Name); ok && sameFiles(old, *h) {
			// Nothing the check depends on changes: an ALTER of the
			// agent port of a host whose directories later became
			// unsafe is not the place to find out (START AGENT and the
			// agent check again).
			return h, nil
		}
	}
	if h == nil || h.Protocol != cluster.ProtocolLocal {
		// ssh hosts (not built yet) are another machine: their agent
		// checks its own files.
		return h, nil
	}
	check := m.opts.CheckHostFiles
	if check == nil {
		check = checkHostFiles
	}
	return h, check(*h)
}

// sameFiles reports whether two versions of a host agree on what the file
// checks depend on.
func sameFiles(a, b cluster.Host) bool {
	return a.Protocol == b.Protocol && a.User == b.User && a.ADBHome == b.ADBHome && a.PGHome == b.PGHome
}

// changedUnderUs is the transaction's answer when the host it is about to
// write is not the one vetHost checked (the catalog changed in between,
// which the catalog lock should prevent).
func changedUnderUs(vetted, h *cluster.Host) error {
	if h == nil || vetted != nil && sameFiles(*vetted, *h) {
		return nil
	}
	return pgerror.New(pgerror.SerializationFailure, `host "%s" changed while its files were checked`, h.Name).WithHint("Run the command again.")
}

// checkHostFiles checks a local host's adbhome and pghome on this machine
// (a local host is this machine): each must exist and, with every
// directory above it, belong to root or the host's user and not be
// writable by group or others (fstrust).
func checkHostFiles(h cluster.Host) error {
	uid := hostUID(h.User)
	for _, f := range []struct{ field, path string }{{"adbhome", h.ADBHome}, {"pghome", h.PGHome}} {
		if err := fstrust.Dir(f.path, uid); err != nil {
			return &cluster.FieldError{Field: f.field, Err: untrusted(h, f.field, f.path, err)}
		}
	}
	// pghome's bin may be a link elsewhere, and each tool one too: the
	// agent checks them again before every run, but a DBA should hear it
	// now. Tools that are not there are the agent's to report, and so is
	// adbmgr's node library (adb.so): it may be installed after ADD HOST,
	// a node may load it from elsewhere (dynamic_library_path), and the
	// agent refuses to start a node whose host lacks it (58P01).
	for _, tool := range pgTools {
		p := filepath.Join(h.PGHome, "bin", tool)
		if err := fstrust.Executable(p, uid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &cluster.FieldError{Field: "pghome", Err: untrusted(h, "pghome", p, err)}
		}
	}
	return nil
}

// pgTools are the programs the agent runs from pghome/bin.
var pgTools = []string{"initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_rewind", "pg_controldata"}

// untrusted turns an fstrust refusal of one of h's paths into the DBA's
// error: 58P01 when it does not exist, otherwise 55000 (PostgreSQL's code
// for a data directory with the wrong owner or mode).
func untrusted(h cluster.Host, what, path string, err error) *pgerror.Error {
	if errors.Is(err, fs.ErrNotExist) {
		return pgerror.New(pgerror.UndefinedFile, `%s "%s" of host "%s" does not exist: %v`, what, path, h.Name, err).
			WithHint("A host with protocol local is this machine: install there first, or give the right path.")
	}
	var ue *fstrust.UnsafeError
	if errors.As(err, &ue) {
		owner := "root or " + h.User
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s "%s" of host "%s" is not safe: %s %s`, what, path, h.Name, ue.Culprit, ue.Reason).
			WithDetail("The agent runs as root and runs the programs under %s; whoever can change them or a directory above them would run code as root or as %s.", what, h.User).
			WithHint("Make %s and every directory above it owned by %s and not writable by group or others (a root-owned sticky directory such as /tmp is fine above it).", ue.Culprit, owner)
	}
	return pgerror.New(pgerror.ObjectNotInPrereqState, `%s "%s" of host "%s" cannot be checked: %v`, what, path, h.Name, err)
}

// openAgent returns the manager's own adbagent, open and verified, for
// START AGENT on the local hosts: every host's <adbhome>/bin/adbagent must
// be safe (fstrust) and have the same SHA-256 as it, or nothing starts.
//
// What runs is the manager's copy, through the descriptor hashed here
// (/proc/self/fd/N), never the host's file: a host's file may belong to the
// host's user, who could rewrite it between our hash and the exec, and a
// path may be swapped between any check and exec. The manager's copy lives
// beside bin/adbmgr and must belong to root (the manager's user) alone, so
// its content is the manager's build; the host's file only has to prove
// that it is that build too. The caller closes the file after starting.
func (m *Manager) openAgent(hosts []cluster.Host) (*os.File, error) {
	own := m.opts.AgentBinary
	if own == "" {
		return nil, pgerror.New(pgerror.ObjectNotInPrereqState, "the manager does not know its own adbagent, so it starts no agent")
	}
	euid := uint32(os.Geteuid())
	if err := fstrust.Executable(own, euid); err != nil {
		return nil, pgerror.New(pgerror.ObjectNotInPrereqState, "the manager's own adbagent %s cannot be trusted: %v", own, err).
			WithHint("Install adbmgr and adbagent in a directory that only root can write.")
	}
	f, sum, err := openVerified(own, euid)
	if err != nil {
		return nil, pgerror.New(pgerror.ObjectNotInPrereqState, "the manager's own adbagent %s cannot be trusted: %v", own, err)
	}
	for _, h := range hosts {
		if err := checkHostAgent(h, own, sum); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// checkHostAgent checks h's <adbhome>/bin/adbagent against the manager's
// build.
func checkHostAgent(h cluster.Host, own string, want []byte) error {
	bin := filepath.Join(h.ADBHome, "bin", "adbagent")
	uid := hostUID(h.User)
	if err := fstrust.Executable(bin, uid); err != nil {
		return untrusted(h, "adbagent", bin, err)
	}
	g, sum, err := openVerified(bin, uid)
	if err != nil {
		return untrusted(h, "adbagent", bin, err)
	}
	g.Close()
	if string(sum) != string(want) {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `adbagent "%s" of host "%s" is not this manager's build: nothing was started`, bin, h.Name).
			WithDetail("Its SHA-256 is %x; the manager's own %s has %x. The manager starts only its own agent build, since the agent runs as root.", sum, own, want).
			WithHint("Install the adbagent shipped with this adbmgr in %s.", filepath.Dir(bin))
	}
	return nil
}

// openVerified opens path, checks the open file's owner and mode (the
// path was checked before; this closes the gap to the open) and returns it
// with its SHA-256.
func openVerified(path string, uid uint32) (*os.File, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if err := fstrust.File(f, uid); err != nil {
		f.Close()
		return nil, nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, h.Sum(nil), nil
}

// procFD is the path that executes exactly the open file f.
func procFD(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens its own that way, but the manager may have inherited others
// without the flag (from a shell, a service manager, a test harness), and
// those would pass to every agent it starts, which outlives it as root.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC)
	}
}

// agentOutput opens what an agent gets as stdin (/dev/null) and as stdout
// and stderr (its own log file, appended to, so that a crash's trace lands
// where its log is), never the manager's own.
func agentOutput(logFile string) (stdin, out *os.File, err error) {
	stdin, err = os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	out, err = os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		stdin.Close()
		return nil, nil, err
	}
	return stdin, out, nil
}
