package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgctl"
	"google.golang.org/grpc/codes"
)

// Tests of what keeps the root agent from deleting, chmodding or chowning
// outside a node's own directories. Decoys are directories of the test's
// own with a file in them, never system directories.

func testNode(t *testing.T, path string) *node {
	t.Helper()
	needPostgres(t)
	run, err := pgctl.New(pghome, nodeUser(t))
	if err != nil {
		t.Fatal(err)
	}
	return &node{path: path, run: run}
}

// decoy makes a directory holding the file "keep", which must survive.
func decoy(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustKeep(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Errorf("the decoy lost its file: %v", err)
	}
}

func fakeDataDir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(path, "base"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A data directory that is a link, absolute (outside its parent) or
// relative (to a sibling, which os.Root alone would follow), is neither
// emptied nor chmodded, whether by CLEAN or after a failed initdb.
func TestCleanRefusesLinkedDataDir(t *testing.T) {
	base := sharedDir(t)
	outside := decoy(t, filepath.Join(sharedDir(t), "decoy"))
	fakeDataDir(t, outside)
	sibling := decoy(t, filepath.Join(base, "sibling"))
	fakeDataDir(t, sibling)
	os.Chmod(outside, 0o755)
	os.Chmod(sibling, 0o755)

	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, target := range map[string]string{"abs": outside, "rel": "sibling"} {
		path := filepath.Join(base, name)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		n := testNode(t, path)
		if err := n.emptyDir(); err == nil {
			t.Errorf("%s: emptyDir through a link", name)
		}
		if err := n.chmodDir(); err == nil {
			t.Errorf("%s: chmodDir through a link", name)
		}
		_, err := c.CleanDir(ctx, &agentpb.NodeRef{Path: path, Pghome: pghome, User: nodeUser(t)})
		wantCode(t, "CleanDir "+name, err, codes.FailedPrecondition, "symbolic link")
	}
	for _, d := range []string{outside, sibling} {
		mustKeep(t, d)
		if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s chmodded to %v", d, fi.Mode())
		}
	}
}

// Links inside a data directory (tablespaces, or planted by its user) are
// removed, never followed.
func TestEmptyDirKeepsLinkTargets(t *testing.T) {
	base := sharedDir(t)
	outside := decoy(t, filepath.Join(sharedDir(t), "decoy"))
	sibling := decoy(t, filepath.Join(base, "sibling"))
	path := filepath.Join(base, "dn1")
	fakeDataDir(t, path)
	os.MkdirAll(filepath.Join(path, "pg_tblspc"), 0o700)
	for link, target := range map[string]string{
		"pg_tblspc/16384": outside, "abs": outside, "rel": "../sibling", "base/deep": "../../sibling", "file": filepath.Join(outside, "keep"),
	} {
		if err := os.Symlink(target, filepath.Join(path, link)); err != nil {
			t.Fatal(err)
		}
	}
	n := testNode(t, path)
	if err := n.emptyDir(); err != nil {
		t.Fatal(err)
	}
	if empty, err := pgctl.IsEmpty(path); !empty || err != nil {
		t.Errorf("not emptied: %v %v", empty, err)
	}
	mustKeep(t, outside)
	mustKeep(t, sibling)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// The swap race itself: while emptyDir runs again and again, the data
// directory is renamed away and replaced by a link to a decoy, and back.
// Whatever interleaving happens, the decoys keep their files.
func TestEmptyDirSwapRace(t *testing.T) {
	base := sharedDir(t)
	outside := decoy(t, filepath.Join(sharedDir(t), "decoy"))
	sibling := decoy(t, filepath.Join(base, "sibling"))
	path := filepath.Join(base, "dn1")
	moved := filepath.Join(base, "moved")
	fakeDataDir(t, path)
	n := testNode(t, path)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			target := outside
			if i%2 == 0 {
				target = "sibling"
			}
			if os.Rename(path, moved) != nil {
				continue
			}
			os.Symlink(target, path)
			time.Sleep(time.Duration(i%3) * 10 * time.Microsecond)
			os.Remove(path)
			os.Rename(moved, path)
		}
	}()
	for range 2000 {
		os.WriteFile(filepath.Join(moved, "f"), nil, 0o600)
		n.emptyDir()
		n.chmodDir()
	}
	close(stop)
	wg.Wait()
	mustKeep(t, outside)
	mustKeep(t, sibling)
}

// The parent of a data directory must be root's or the node's user's, and
// not writable by others unless sticky.
func TestParentRule(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	n := testNode(t, "/x/y")
	uid := n.run.User().UID
	mk := func(mode os.FileMode, owner int) string {
		dir := filepath.Join(sharedDir(t), "p")
		os.Mkdir(dir, 0)
		os.Chmod(dir, mode)
		os.Chown(dir, owner, -1)
		return filepath.Join(dir, "dn1")
	}
	for _, ok := range []string{mk(0o755, 0), mk(0o755|os.ModeSticky, 0), mk(0o777|os.ModeSticky, 0), mk(0o755, int(uid))} {
		if err := checkParent(ok, uid); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	if err := checkParent("/nonexistent-parent/dn1", uid); err != nil {
		t.Errorf("missing parent: %v", err)
	}
	if err := checkParent("/tmp/dn1", uid); err != nil {
		t.Errorf("/tmp: %v", err)
	}

	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, bad := range []struct {
		path, msg string
	}{
		{mk(0o777, 0), "mode 0777"},
		{mk(0o775, 0), "mode 0775"},
		{mk(0o755, 65534), "belongs to uid 65534"},
		{mk(0o777|os.ModeSticky, 65534), "belongs to uid 65534"},
	} {
		fakeDataDir(t, bad.path)
		decoy(t, bad.path)
		_, err := c.CleanDir(ctx, &agentpb.NodeRef{Path: bad.path, Pghome: pghome, User: nodeUser(t)})
		wantCode(t, "CleanDir under "+bad.msg, err, codes.FailedPrecondition, bad.msg)
		_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: &agentpb.NodeRef{Path: filepath.Join(filepath.Dir(bad.path), "new"), Pghome: pghome, User: nodeUser(t)}})
		wantCode(t, "InitDB under "+bad.msg, err, codes.FailedPrecondition, bad.msg)
		mustKeep(t, bad.path)
	}
}

// InitDB into a link to an empty root-owned directory: refused, and the
// target is not handed to the node's user.
func TestInitDBRefusesLink(t *testing.T) {
	base := sharedDir(t)
	target := filepath.Join(sharedDir(t), "target")
	os.Mkdir(target, 0o755)
	path := filepath.Join(base, "dn1")
	os.Symlink(target, path)
	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	needPostgres(t)
	_, err := c.InitDB(ctx, &agentpb.InitDBRequest{Node: &agentpb.NodeRef{Path: path, Pghome: pghome, User: nodeUser(t)}})
	wantCode(t, "InitDB into a link", err, codes.FailedPrecondition, "symbolic link")
	fi, _ := os.Stat(target)
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() || fi.Mode().Perm() != 0o755 {
		t.Errorf("link target changed: uid %d mode %v", st.Uid, fi.Mode())
	}
}

// fakePostmaster runs a process whose name starts with "postgres", which
// pgctl takes for a live postmaster.
func fakePostmaster(t *testing.T) int {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "postgres")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// tmpSocketDir makes <tmp>/run/<name> (the manager's layout,
// <adbhome>/run/<node>-<hash>, run being root's 0755) owned by uid, with
// this port's socket (a plain file stands in) and lock file naming pid.
func tmpSocketDir(t *testing.T, uid uint32, port, pid int) string {
	t.Helper()
	dir := filepath.Join(runDir(t), "dn-"+strconv.Itoa(port)+"-"+strconv.Itoa(pid))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fillSocketDir(t, dir, port, pid)
	if err := os.Chown(dir, int(uid), -1); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	return dir
}

// runDir makes a fresh <tmp>/run, mode 0755.
func runDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "adbmgr-agenttest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	run := filepath.Join(base, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(run, 0o755)
	return run
}

func fillSocketDir(t *testing.T, dir string, port, pid int) {
	t.Helper()
	sock := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
	if err := os.WriteFile(sock, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock+".lock", []byte(strconv.Itoa(pid)+"\n"+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveSocketDir(t *testing.T) {
	n := testNode(t, "/x/y")
	uid := n.run.User().UID
	const port, dead = 5999, 2147483000
	gone := func(dir string) bool { _, err := os.Lstat(dir); return os.IsNotExist(err) }

	// The manager's kind, stale: emptied and removed, with the secrets
	// the agent wrote there.
	d := tmpSocketDir(t, uid, port, dead)
	for _, f := range []string{PassFileName, ServerCertName, ServerKeyName, RootCertName, ".initdb-pw-123"} {
		if err := os.WriteFile(filepath.Join(d, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removeSocketDir(d, port, uid)
	if !gone(d) {
		t.Errorf("%s with stale files kept", d)
	}
	// No lock file: the socket is stale too.
	d = tmpSocketDir(t, uid, port, dead)
	os.Remove(filepath.Join(d, ".s.PGSQL.5999.lock"))
	removeSocketDir(d, port, uid)
	if !gone(d) {
		t.Errorf("%s without lock file kept", d)
	}

	// A live postmaster's lock: all kept.
	d = tmpSocketDir(t, uid, port, fakePostmaster(t))
	removeSocketDir(d, port, uid)
	if _, err := os.Stat(filepath.Join(d, ".s.PGSQL.5999")); err != nil {
		t.Errorf("live socket removed: %v", err)
	}

	// Another port's files, or anything else: kept, and the directory.
	d = tmpSocketDir(t, uid, port, dead)
	fillSocketDir(t, d, port+1, dead)
	removeSocketDir(d, port, uid)
	if _, err := os.Stat(filepath.Join(d, ".s.PGSQL.6000.lock")); err != nil {
		t.Errorf("another port's lock removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d, ".s.PGSQL.5999")); err == nil {
		t.Errorf("this port's stale socket kept")
	}

	// Not the manager's kind: a shared directory (as /var/run/postgresql),
	// one nested deeper in /tmp, /tmp itself: left alone.
	shared := sharedDir(t)
	fillSocketDir(t, shared, port, dead)
	nested := filepath.Join(shared, "adbmgr-x")
	os.Mkdir(nested, 0o755)
	fillSocketDir(t, nested, port, dead)
	for _, dir := range []string{shared, nested, "/tmp", "/tmp/"} {
		removeSocketDir(dir, port, uid)
	}
	for _, dir := range []string{shared, nested} {
		if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL.5999")); err != nil {
			t.Errorf("%s touched: %v", dir, err)
		}
	}

	// A link named like the manager's to a directory with stale files.
	link := filepath.Join(runDir(t), "dn-link")
	if err := os.Symlink(shared, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	removeSocketDir(link, port, uid)
	if _, err := os.Stat(filepath.Join(shared, ".s.PGSQL.5999")); err != nil {
		t.Errorf("followed a link: %v", err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("link removed: %v", err)
	}

	// In a run directory others may write to: left alone.
	d = tmpSocketDir(t, uid, port, dead)
	os.Chmod(filepath.Dir(d), 0o777)
	removeSocketDir(d, port, uid)
	if gone(d) {
		t.Errorf("%s in a world-writable run directory removed", d)
	}
	os.Chmod(filepath.Dir(d), 0o755)

	// The manager's kind, but another user's.
	if os.Geteuid() == 0 {
		d = tmpSocketDir(t, 65534, port, dead)
		removeSocketDir(d, port, uid)
		if _, err := os.Stat(filepath.Join(d, ".s.PGSQL.5999")); err != nil {
			t.Errorf("another user's directory touched: %v", err)
		}
	}
}

// CleanDir over gRPC removes the node's stale socket directory, and leaves
// a shared one alone.
func TestCleanDirSocketDir(t *testing.T) {
	needPostgres(t)
	usr := nodeUser(t)
	n := testNode(t, "/x/y")
	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := sharedDir(t)
	const port = 5998
	mine := tmpSocketDir(t, n.run.User().UID, port, 2147483000)
	shared := sharedDir(t)
	fillSocketDir(t, shared, port, 2147483000)
	for i, sd := range []string{mine, shared} {
		path := filepath.Join(base, "dn"+strconv.Itoa(i))
		fakeDataDir(t, path)
		if _, err := c.CleanDir(ctx, &agentpb.NodeRef{Path: path, Pghome: pghome, User: usr, Port: port, SocketDir: sd}); err != nil {
			t.Fatalf("CleanDir: %v", err)
		}
	}
	if _, err := os.Lstat(mine); !os.IsNotExist(err) {
		t.Errorf("the node's socket directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(shared, ".s.PGSQL.5998.lock")); err != nil {
		t.Errorf("shared socket directory touched: %v", err)
	}
}

// Before a start, a pre-created /tmp/adbmgr-* socket directory that is not
// the node's user's is refused, and a root-owned one is handed over only
// where a data directory could be.
func TestSocketDirTakeover(t *testing.T) {
	n := testNode(t, filepath.Join(sharedDir(t), "dn1"))
	s := NewServer(Options{Version: "test"})
	if err := s.socketDir(n, "/run"); err == nil {
		t.Error("/run accepted as a socket directory to take over")
	}
	if fi, _ := os.Stat("/run"); fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatal("/run is no longer root's")
	}
	if os.Geteuid() != 0 {
		return
	}
	squat, err := os.MkdirTemp("/tmp", "adbmgr-agenttest-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(squat)
	os.Chmod(squat, 0o777)
	os.Chown(squat, 65534, 65534)
	err = s.socketDir(n, squat)
	wantCode(t, "squatted socket directory", toStatus(err), codes.FailedPrecondition, "belongs to uid 65534")
	os.Chown(squat, int(n.run.User().UID), -1)
	err = s.socketDir(n, squat)
	wantCode(t, "world-writable socket directory", toStatus(err), codes.FailedPrecondition, "mode 0777")
	os.Chmod(squat, 0o755)
	if err := s.socketDir(n, squat); err != nil {
		t.Errorf("the user's own: %v", err)
	}
}

// The agent writes a node's secrets under the names the manager puts into
// postgresql.conf and the connection strings.
func TestSecretFileNames(t *testing.T) {
	for got, want := range map[string]string{PassFileName: cluster.PassFile, ServerCertName: cluster.ServerCert,
		ServerKeyName: cluster.ServerKey, RootCertName: cluster.RootCert} {
		if got != want {
			t.Errorf("agent writes %s, the manager names %s", got, want)
		}
	}
}
