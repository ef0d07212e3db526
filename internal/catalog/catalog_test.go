package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

func open(t *testing.T) *SQLite {
	t.Helper()
	c, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func apply(t *testing.T, c *SQLite, p cluster.Plan) error {
	t.Helper()
	return c.Update(context.Background(), func(tx Tx) error { return tx.Apply(p) })
}

func host(name, addr string) *cluster.Host {
	return &cluster.Host{Name: name, User: "postgres", Port: 22, Protocol: "local", AgentPort: 5430, Address: addr, ADBHome: "/opt", PGHome: "/usr"}
}

func node(name, host string, port int, path string) *cluster.Node {
	return &cluster.Node{Name: name, Host: host, Type: cluster.DatanodeMaster, Port: port, Path: path, Zone: "local", CureStatus: "normal"}
}

// The schema itself refuses duplicates, so a race between two sessions that
// both passed the Go checks cannot create them.
func TestSchemaConstraints(t *testing.T) {
	c := open(t)
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, c, cluster.Plan{InsertNode: node("d1", "h1", 5432, "/d/1")}); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]cluster.Plan{
		"same address":      {InsertHost: host("h2", "127.0.0.2")},
		"same node name":    {InsertNode: node("d1", "h1", 5433, "/d/2")},
		"same host port":    {InsertNode: node("d2", "h1", 5432, "/d/2")},
		"same host path":    {InsertNode: node("d2", "h1", 5433, "/d/1")},
		"unknown host":      {InsertNode: node("d2", "nohost", 5433, "/d/2")},
		"drop host in use":  {DeleteHosts: []string{"h1"}},
		"relative path":     {InsertNode: node("d2", "h1", 5433, "d/2")},
		"second gtm master": {InsertNode: func() *cluster.Node { n := node("g2", "h1", 7000, "/g2"); n.Type = cluster.GtmcoordMaster; return n }()},
	} {
		if name == "second gtm master" {
			g := node("g1", "h1", 6999, "/g1")
			g.Type = cluster.GtmcoordMaster
			if err := apply(t, c, cluster.Plan{InsertNode: g}); err != nil {
				t.Fatal(err)
			}
		}
		if err := apply(t, c, p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if _, ok := pgerror.As(err); !ok {
			t.Errorf("%s: error %v is not a user-facing error", name, err)
		}
	}
}

func TestConcurrentUpdatesSerialise(t *testing.T) {
	c := open(t)
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Update(context.Background(), func(tx Tx) error {
				s, err := tx.State()
				if err != nil {
					return err
				}
				p, err := cluster.AddNode(s, cluster.AddNodeRequest{Name: "d1", Type: cluster.DatanodeMaster,
					Spec: cluster.NodeSpec{Host: ptr("h1"), Port: ptr(5432), Path: ptr("/d/1")}, CurrentZone: "local"})
				if err != nil {
					return err
				}
				return tx.Apply(p)
			})
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d sessions added the same node, want exactly 1", ok)
	}
	var s *cluster.State
	c.View(context.Background(), func(tx ReadTx) (err error) { s, err = tx.State(); return err })
	if len(s.Nodes) != 1 {
		t.Errorf("catalog holds %d nodes", len(s.Nodes))
	}
}

func ptr[T any](v T) *T { return &v }

func TestQueryIsReadOnly(t *testing.T) {
	c := open(t)
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Query(context.Background(), "SELECT name, port FROM host")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || *res.Rows[0][0] != "h1" || !res.Columns[1].Integer {
		t.Errorf("result = %+v", res)
	}
	if _, err := c.Query(context.Background(), "DELETE FROM mgr_host"); err == nil {
		t.Error("DELETE through Query succeeded")
	}
	if _, err := c.Query(context.Background(), "SELECT 1; DELETE FROM mgr_host"); err == nil {
		// Some drivers only run the first statement; either way nothing may be deleted.
		t.Log("multi-statement query accepted; checking nothing was deleted")
	}
	res, err = c.Query(context.Background(), "SELECT count(*) FROM mgr_host")
	if err != nil || *res.Rows[0][0] != "1" {
		t.Errorf("host rows after write attempts: %v %v", res, err)
	}
	res, err = c.Query(context.Background(), "SELECT version()")
	if err != nil || *res.Rows[0][0] != Version {
		t.Errorf("version() = %v %v", res, err)
	}
}

func TestDefaultGUCs(t *testing.T) {
	c := open(t)
	var gucs []cluster.GUC
	c.View(context.Background(), func(tx ReadTx) (err error) { gucs, err = tx.GUCs(); return err })
	byName := map[string]cluster.GUC{}
	for _, g := range gucs {
		byName[g.Name] = g
	}
	if g := byName["archive_mode"]; g.VarType != "enum" || len(g.EnumValues) != 3 || g.Context != "postmaster" {
		t.Errorf("archive_mode = %+v", g)
	}
	if g := byName["wal_keep_size"]; g.Unit != "MB" || g.Context != "sighup" {
		t.Errorf("wal_keep_size = %+v", g)
	}
	if len(gucs) < 300 {
		t.Errorf("only %d parameters", len(gucs))
	}
}

// The catalog and its -wal and -shm files are 0600, also when an earlier
// version left them 0644; Private makes a whole data directory private.
func TestFileModes(t *testing.T) {
	dir := t.TempDir()
	check := func(when string) {
		t.Helper()
		for _, f := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Errorf("%s: %v", when, err)
			} else if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s is %#o, want 0600", when, f, fi.Mode().Perm())
			}
		}
	}
	c, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	check("new catalog")
	c.Close()

	os.Chmod(filepath.Join(dir, FileName), 0o644)
	c, err = Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(t, c, cluster.Plan{InsertHost: host("h2", "127.0.0.3")}); err != nil {
		t.Fatal(err)
	}
	check("catalog of an earlier version (0644)")
	c.Close()

	os.MkdirAll(filepath.Join(dir, "agents", "h1"), 0o755)
	os.WriteFile(filepath.Join(dir, "agents", "h1", "agent.key"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(dir, "adbmgr.pid"), []byte("1\n"), 0o600)
	os.Chmod(filepath.Join(dir, "adbmgr.pid"), 0o664) // past the umask
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, nil, 0o644)
	os.Symlink(outside, filepath.Join(dir, "link"))
	os.Chmod(dir, 0o755)
	changed, err := Private(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		dir + ": 0755 -> 0700",
		filepath.Join(dir, "adbmgr.pid") + ": 0664 -> 0600",
		filepath.Join(dir, "agents") + ": 0755 -> 0700",
		filepath.Join(dir, "agents", "h1") + ": 0755 -> 0700",
		filepath.Join(dir, "agents", "h1", "agent.key") + ": 0644 -> 0600",
	}
	if diff := cmp.Diff(want, changed); diff != "" {
		t.Errorf("Private (-want +got):\n%s", diff)
	}
	if changed, _ := Private(dir); len(changed) != 0 {
		t.Errorf("Private again changed %q", changed)
	}
	if fi, _ := os.Stat(outside); fi == nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("Private followed a symbolic link out of the directory")
	}
}

// A runaway recursive SELECT is interrupted inside SQLite when its context
// ends, and while four of them hold every connection for user SQL the
// commands' snapshots still answer at once.
func TestStreamRunawayInterrupted(t *testing.T) {
	c := open(t)
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	const runaway = `WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM r) SELECT count(*) FROM r, host`
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, userConns)
	for range userConns {
		go func() {
			_, err := c.Query(ctx, runaway)
			errs <- err
		}()
	}
	// Give the runaways time to take every user connection.
	time.Sleep(200 * time.Millisecond)
	vctx, vcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer vcancel()
	if err := c.View(vctx, func(tx ReadTx) error {
		_, err := tx.State()
		return err
	}); err != nil {
		t.Fatalf("View while user SQL runs away: %v", err)
	}
	cancel()
	for range userConns {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("runaway query: got %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a runaway query was not interrupted within 5s of its cancel")
		}
	}
	// The connections went back to the pool and work.
	res, err := c.Query(context.Background(), `SELECT count(*) FROM host`)
	if err != nil || len(res.Rows) != 1 || *res.Rows[0][0] != "1" {
		t.Fatalf("after the cancel: %v %v", res, err)
	}
}

func TestStreamValueLengthLimit(t *testing.T) {
	c := open(t)
	_, err := c.Query(context.Background(), `SELECT length(zeroblob(100000000))`)
	if pe, ok := pgerror.As(err); !ok || pe.Code != "54000" {
		t.Fatalf("a 100 MB value: got %v, want 54000", err)
	}
	if _, err := c.Query(context.Background(), `SELECT length(zeroblob(1000000))`); err != nil {
		t.Fatalf("a 1 MB value: %v", err)
	}
}

type countSink struct {
	cols []Column
	rows int
	stop int
}

var errStop = errors.New("stop")

func (s *countSink) Columns(cols []Column) error { s.cols = cols; return nil }
func (s *countSink) Row([]*string) error {
	s.rows++
	if s.rows == s.stop {
		return errStop
	}
	return nil
}

// Stream hands rows over as they are read: a sink that stops early stops an
// endless result, and undeclared integer columns are recognised from the
// first rows.
func TestStreamRows(t *testing.T) {
	c := open(t)
	s := &countSink{stop: 5000}
	n, err := c.Stream(context.Background(), `WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM r) SELECT x, 'a' || x FROM r`, s)
	if !errors.Is(err, errStop) || n != 5000 {
		t.Fatalf("Stream: n=%d err=%v", n, err)
	}
	if len(s.cols) != 2 || !s.cols[0].Integer || s.cols[1].Integer {
		t.Fatalf("columns: %+v", s.cols)
	}
}

// A data directory whose name holds URI syntax keeps its catalog inside.
func TestOpenOddDirectoryName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%41")
	c, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("catalog not in %s: %v", dir, err)
	}
}

// Users' SQL reads the views, never the tables behind them: mgr_user's
// verifiers above all.
func TestUserSQLOnlyViews(t *testing.T) {
	c := open(t)
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateUsers(context.Background(), func(tx UserTx) error {
		return tx.PutUser(User{Name: "postgres", Verifier: "SCRAM-SHA-256$secret", Superuser: true})
	}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Query(context.Background(), "SELECT name FROM host"); err != nil || len(r.Rows) != 1 {
		t.Fatalf("SELECT FROM host: %v %v", r, err)
	}
	for _, q := range []string{
		"SELECT * FROM mgr_user",
		"SELECT verifier FROM mgr_user",
		"SELECT (SELECT verifier FROM mgr_user LIMIT 1) FROM host",
		"WITH u AS (SELECT * FROM mgr_user) SELECT * FROM u",
		"SELECT * FROM mgr_setting",
		"SELECT * FROM pragma_table_info('mgr_user')",
	} {
		_, err := c.Query(context.Background(), q)
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != pgerror.InsufficientPrivilege {
			t.Errorf("%s: %v, want 42501", q, err)
		}
	}
}
