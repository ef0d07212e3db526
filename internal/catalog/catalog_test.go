package catalog

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

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
