package mgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/expand"
	"github.com/adbmgr/adbmgr/internal/switches"
	"github.com/google/go-cmp/cmp"
)

// The executors' catalog adapters (switchCatalog, growCatalog) over a real
// SQLite catalog: a state change and its journal row commit together and
// roll back together.

// catalogWorld is a manager whose catalog holds datanode master dn1 with
// sync slave dn1s, initialised, and dn2, added after INIT ALL.
func catalogWorld(t *testing.T) (*Manager, *catalog.SQLite) {
	t.Helper()
	m, cat := newManager(t)
	mustRun(t, m, `ADD HOST h1 (protocol=local, address='127.0.0.2'); ADD HOST h2 (protocol=local, address='127.0.0.3');
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=15432, PATH='/data/dn1s');`)
	markInitialized(t, cat)
	mustRun(t, m, `ADD DATANODE MASTER dn2 (HOST=h2, PORT=15433, PATH='/data/dn2')`)
	return m, cat
}

// journalRows is the journal: "command status step detail" by id.
func journalRows(t *testing.T, cat *catalog.SQLite) []string {
	t.Helper()
	res, err := cat.Query(context.Background(), "SELECT command, status, step, detail FROM journal ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res.Rows {
		var f []string
		for _, v := range r {
			f = append(f, *v)
		}
		out = append(out, strings.TrimSpace(strings.Join(f, " ")))
	}
	return out
}

// nodeRow is a node's row: type, master, sync state, initialized,
// incluster, allowcure.
func nodeRow(t *testing.T, m *Manager, name string) string {
	t.Helper()
	sn, err := switchCatalog{m}.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := sn.State.Node(name)
	return fmt.Sprintf("%s %s %s %v %v %v", n.Type, n.Master, n.SyncState, n.Initialized, n.InCluster, n.AllowCure)
}

func wantRows(t *testing.T, what string, want, got []string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestSwitchCatalogCommit(t *testing.T) {
	m, cat := catalogWorld(t)
	c := switchCatalog{m}
	// Cancelled: the commit records what was done to the nodes all the same.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	j := &switches.Journal{Command: "FAILOVER dn1"}
	allow := func(on bool) func(switches.Snapshot) (cluster.Plan, error) {
		return func(sn switches.Snapshot) (cluster.Plan, error) {
			return cluster.PlanAllowCure(sn.State, on, "dn1"), nil
		}
	}
	if err := c.Commit(ctx, j, switches.Step{Status: "running", Name: "start"}, allow(false)); err != nil {
		t.Fatal(err)
	}
	if j.ID == 0 {
		t.Fatal("the journal entry got no id")
	}
	wantRows(t, "journal after the first commit", []string{"FAILOVER dn1 running start"}, journalRows(t, cat))
	if got := nodeRow(t, m, "dn1"); got != "datanode master   true true false" {
		t.Errorf("dn1 = %q", got)
	}

	// A journal row that cannot be written takes the rows with it.
	err := c.Commit(context.Background(), j, switches.Step{Status: "bogus", Name: "catalog"}, allow(true))
	if err == nil {
		t.Fatal("a journal row with an invalid status was written")
	}
	if got := nodeRow(t, m, "dn1"); got != "datanode master   true true false" {
		t.Errorf("dn1 after a failed commit = %q: the rows did not roll back with the journal", got)
	}
	// A plan that cannot be made writes no journal row.
	boom := errors.New("boom")
	if err := c.Commit(context.Background(), j, switches.Step{Status: "running", Name: "catalog"}, func(switches.Snapshot) (cluster.Plan, error) {
		return cluster.Plan{}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Commit = %v", err)
	}
	wantRows(t, "journal after failed commits", []string{"FAILOVER dn1 running start"}, journalRows(t, cat))

	// The switch's rows and its journal row, together; then the journal alone.
	if err := c.Commit(context.Background(), j, switches.Step{Status: "running", Name: "catalog", Detail: "dn1s"}, func(sn switches.Snapshot) (cluster.Plan, error) {
		return cluster.PlanFailover(sn.State, "dn1", "dn1s"), nil
	}); err != nil {
		t.Fatal(err)
	}
	wantRows(t, "journal after the switch", []string{"FAILOVER dn1 running catalog dn1s"}, journalRows(t, cat))
	if got := nodeRow(t, m, "dn1s") + ", " + nodeRow(t, m, "dn1"); got != "datanode master   true true false, datanode slave dn1s async false false false" {
		t.Errorf("dn1s, dn1 = %q", got)
	}
	if err := c.Commit(context.Background(), j, switches.Step{Status: "done", Name: "end"}, nil); err != nil {
		t.Fatal(err)
	}
	wantRows(t, "journal at the end", []string{"FAILOVER dn1 done end"}, journalRows(t, cat))
}

func TestGrowCatalogCommit(t *testing.T) {
	m, cat := catalogWorld(t)
	c := growCatalog{m}
	j := &expand.Journal{Command: "EXPAND DATANODE MASTER dn1 TO dn2"}
	copied := func(s *cluster.State) (cluster.GrowPlan, error) { return cluster.ExpandCopied(s, "dn1", "dn2") }
	expansions := func() []string {
		sn, err := c.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range sn.Expansions {
			out = append(out, fmt.Sprintf("%s<%s %s", e.Dst, e.Src, e.Phase))
		}
		return out
	}

	// A journal row that cannot be written takes the rows with it.
	bogus := func(s *cluster.State) (cluster.GrowPlan, error) {
		p, err := copied(s)
		p.Journal.Status = "bogus"
		return p, err
	}
	if _, err := c.Commit(context.Background(), j, bogus); err == nil {
		t.Fatal("a journal row with an invalid status was written")
	}
	// A change without its journal row is refused.
	bare := func(s *cluster.State) (cluster.GrowPlan, error) {
		p, err := copied(s)
		p.Journal = cluster.JournalEntry{}
		return p, err
	}
	if _, err := c.Commit(context.Background(), j, bare); err == nil || !strings.Contains(err.Error(), "without its journal row") {
		t.Fatalf("Commit without a journal row = %v", err)
	}
	if j.ID != 0 || len(journalRows(t, cat)) != 0 || len(expansions()) != 0 {
		t.Fatalf("failed commits left journal %q, expansions %q (entry %d)", journalRows(t, cat), expansions(), j.ID)
	}
	if got := nodeRow(t, m, "dn2"); got != "datanode master   false false false" {
		t.Errorf("dn2 after failed commits = %q", got)
	}

	// Cancelled: it commits all the same, rows and journal together.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, err := c.Commit(ctx, j, copied)
	if err != nil {
		t.Fatal(err)
	}
	if p.Result != "streaming from dn1; run EXPAND ACTIVATE" || j.ID == 0 {
		t.Errorf("plan %+v, entry %d", p, j.ID)
	}
	wantRows(t, "journal", []string{"EXPAND DATANODE MASTER dn1 TO dn2 done copy dn1"}, journalRows(t, cat))
	wantRows(t, "expansions", []string{"dn2<dn1 copied"}, expansions())
	if got := nodeRow(t, m, "dn2"); got != "datanode master   true false false" {
		t.Errorf("dn2 = %q", got)
	}
}
