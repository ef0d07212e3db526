package catalog

import (
	"context"
	"sync"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
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
