package mgr

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// recorder is a pgwire.ResultWriter that keeps what it is given.
type recorder struct {
	notices []string
	cols    []pgwire.Column
	rows    [][]string
	tags    []string
}

func (r *recorder) Notice(sev, msg string)          { r.notices = append(r.notices, sev+": "+msg) }
func (r *recorder) Columns(c []pgwire.Column) error { r.cols = c; return nil }
func (r *recorder) Complete(tag string) error       { r.tags = append(r.tags, tag); return nil }
func (r *recorder) EmptyQuery() error               { r.tags = append(r.tags, "EMPTY"); return nil }
func (r *recorder) Row(vals []*string) error {
	row := make([]string, len(vals))
	for i, v := range vals {
		if v != nil {
			row[i] = *v
		}
	}
	r.rows = append(r.rows, row)
	return nil
}

func newManager(t *testing.T) (*Manager, *catalog.SQLite) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if err := cat.UpdateUsers(context.Background(), func(tx catalog.UserTx) error {
		return tx.PutUser(catalog.User{Name: "postgres", Superuser: true})
	}); err != nil {
		t.Fatal(err)
	}
	return New(cat, Options{InstallDir: "/opt/adbmgr", Resolve: func(context.Context, string) (string, error) { return "", context.Canceled },
		// /opt/adbmgr need not exist here: trust_test.go tests the checks.
		CheckHostFiles: func(cluster.Host) error { return nil }}), cat
}

func run(t *testing.T, m *Manager, q string) (*recorder, error) {
	t.Helper()
	r := &recorder{}
	err := m.Query(context.Background(), &pgwire.Session{User: "postgres", Params: map[string]string{}}, q, r)
	return r, err
}

func mustRun(t *testing.T, m *Manager, q string) *recorder {
	t.Helper()
	r, err := run(t, m, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// markInitialized sets initialized and incluster on every node, as INIT ALL
// will: the after-init rules are tested through the executor before INIT exists.
func markInitialized(t *testing.T, cat *catalog.SQLite) {
	t.Helper()
	err := cat.Update(context.Background(), func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		var p cluster.Plan
		for _, n := range s.Nodes {
			n.Initialized, n.InCluster = true, true
			p.UpdateNodes = append(p.UpdateNodes, n)
		}
		return tx.Apply(p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAfterInitRules(t *testing.T) {
	m, cat := newManager(t)
	mustRun(t, m, `ADD HOST h1 (protocol=local, address='127.0.0.2'); ADD HOST h2 (protocol=local, address='127.0.0.3');
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=15432, PATH='/data/dn1s');`)
	markInitialized(t, cat)
	for _, tt := range []struct{ sql, code, msg string }{
		{`ALTER DATANODE MASTER dn1 (HOST=h2, PORT=15499)`, pgerror.ObjectNotInPrereqState, "its host cannot be changed"},
		{`ALTER DATANODE SLAVE dn1s (PATH='/elsewhere')`, pgerror.ObjectNotInPrereqState, "its path cannot be changed"},
		{`ALTER DATANODE SLAVE dn1s (ZONE=z2)`, pgerror.ObjectNotInPrereqState, "its zone cannot be changed"},
		{`DROP DATANODE SLAVE dn1s`, pgerror.ObjectInUse, "has been initialized in the cluster, cannot be dropped"},
		{`ALTER HOST h1 (user=other)`, pgerror.ObjectInUse, "its user cannot be changed"},
		// Allowed by the rules and applied to the running nodes, which needs
		// their agents: refused with nothing changed when they are down.
		{`ALTER DATANODE SLAVE dn1s (SYNC_STATE=async)`, pgerror.ObjectNotInPrereqState, `the agent on host "h1" of datanode master "dn1" is not running`},
		{`ALTER DATANODE MASTER dn1 (PORT=15499)`, pgerror.ObjectNotInPrereqState, `the agent on host "h1" is not running`},
	} {
		_, err := run(t, m, tt.sql)
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != tt.code || !strings.Contains(pe.Message, tt.msg) {
			t.Errorf("%s: %v, want %s %q", tt.sql, err, tt.code, tt.msg)
		}
	}
	r := mustRun(t, m, `LIST NODE (name, port, sync_state, initialized)`)
	want := [][]string{{"dn1", "15432", "", "t"}, {"dn1s", "15432", "sync", "t"}}
	if len(r.rows) != 2 || strings.Join(r.rows[0], ",") != strings.Join(want[0], ",") || strings.Join(r.rows[1], ",") != strings.Join(want[1], ",") {
		t.Errorf("rows = %v, want %v", r.rows, want)
	}
	// AntDB's rule: the address may change, with a WARNING; until FLUSH
	// HOST moves the nodes, commands that act on them are refused, and
	// the record of the move goes with the host.
	r = mustRun(t, m, `ALTER HOST h1 (address='127.0.0.9')`)
	if len(r.notices) != 1 || !strings.HasPrefix(r.notices[0], "WARNING: ") || !strings.Contains(r.notices[0], "run FLUSH HOST") {
		t.Errorf("address change of a host with initialized nodes: notices %q", r.notices)
	}
	for _, sql := range []string{`INIT ALL`, `CLEAN ALL`, `SET DATANODE ALL (work_mem='8MB')`, `ALTER DATANODE MASTER dn1 (PORT=15499)`} {
		_, err := run(t, m, sql)
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != pgerror.ObjectNotInPrereqState || !strings.Contains(pe.Message, `the address of host "h1" (its nodes still use 127.0.0.2) changed`) ||
			!strings.Contains(pe.Hint, "FLUSH HOST") {
			t.Errorf("%s before FLUSH HOST: %v", sql, err)
		}
	}
	if _, err := run(t, m, `ALTER HOST h1 (user=other)`); err == nil || !strings.Contains(err.Error(), "its user cannot be changed") {
		t.Errorf("user change after the address change: %v", err)
	}
	// FLUSH HOST needs the agents: refused with nothing changed.
	if _, err := run(t, m, `FLUSH HOST`); err == nil || !strings.Contains(err.Error(), `the agent on host "h2" is not running`) {
		t.Errorf("FLUSH HOST without agents: %v", err)
	}
	if _, err := run(t, m, `INIT ALL`); err == nil || !strings.Contains(err.Error(), "FLUSH HOST") && !strings.Contains(err.Error(), "changed") {
		t.Errorf("INIT ALL after a refused FLUSH HOST: %v", err)
	}
	// A mistake undone: back at the address the nodes use, nothing to flush.
	r = mustRun(t, m, `ALTER HOST h1 (address='127.0.0.2')`)
	if len(r.notices) != 1 || !strings.Contains(r.notices[0], "nothing to flush") {
		t.Errorf("ALTER HOST back to the nodes' address: notices %q", r.notices)
	}
	if _, err := run(t, m, `INIT ALL`); err == nil || strings.Contains(err.Error(), "changed") {
		t.Errorf("INIT ALL once the address is back: %v", err)
	}
}

func TestErrorPositions(t *testing.T) {
	m, _ := newManager(t)
	q := `ADD HOST h1 (address='127.0.0.2'); ADD HOST h2 (address='127.0.0.2')`
	_, err := run(t, m, q)
	pe, _ := pgerror.As(err)
	if pe == nil || pe.Position != strings.LastIndex(q, "'127.0.0.2'")+1 {
		t.Errorf("error %v at %d, want the second address at %d", err, pe.Position, strings.LastIndex(q, "'127.0.0.2'")+1)
	}
	q = `ADD HOST h3 (address='127.0.0.3'); ADD DATANODE MASTER d (HOST=h3, PORT=1, PATH='/d', colour=red)`
	_, err = run(t, m, q)
	if pe, _ = pgerror.As(err); pe == nil || pe.Position != strings.Index(q, "colour")+1 || pe.Code != pgerror.SyntaxError {
		t.Errorf("unknown option: %v", err)
	}
	r, err := run(t, m, "  -- nothing\n ")
	if err != nil || len(r.tags) != 1 || r.tags[0] != "EMPTY" {
		t.Errorf("empty query: %v %v", r.tags, err)
	}
}

func TestSessionParameters(t *testing.T) {
	m, _ := newManager(t)
	s := &pgwire.Session{User: "postgres", Params: map[string]string{}}
	r := &recorder{}
	if err := m.Query(context.Background(), s, `SET mgr_zone = 'z2'; SHOW mgr_zone`, r); err != nil {
		t.Fatal(err)
	}
	if len(r.rows) != 1 || r.rows[0][0] != "z2" {
		t.Errorf("SHOW mgr_zone = %v", r.rows)
	}
	// Masters must be added in the current zone.
	mustRun(t, m, `ADD HOST h1 (address='127.0.0.2')`)
	r = &recorder{}
	err := m.Query(context.Background(), s, `ADD DATANODE MASTER d1 (HOST=h1, PORT=1, PATH='/d1')`, r)
	if err != nil {
		t.Fatal(err)
	}
	r = &recorder{}
	m.Query(context.Background(), s, `LIST NODE (zone) d1`, r)
	if len(r.rows) != 1 || r.rows[0][0] != "z2" {
		t.Errorf("zone of a master added with mgr_zone=z2: %v", r.rows)
	}
	_, err = run(t, m, `ADD DATANODE MASTER d2 (HOST=h1, PORT=2, PATH='/d2', ZONE=z2)`)
	if pe, ok := pgerror.As(err); !ok || !strings.Contains(pe.Message, "should be in the current zone") {
		t.Errorf("master outside the current zone: %v", err)
	}
}

// The spec's SET examples, before INIT: stored in the catalog and listed.
func TestSetParamSpecExamples(t *testing.T) {
	m, _ := newManager(t)
	mustRun(t, m, `ADD HOST h1 (address='127.0.0.2');
		ADD DATANODE MASTER dm0 (HOST=h1, PORT=15432, PATH='/data/dm0');
		ADD DATANODE SLAVE dm0s FOR dm0 (HOST=h1, PORT=15433, PATH='/data/dm0s');`)
	for _, q := range []string{
		`SET DATANODE ALL (wal_log_hints=on, full_page_writes=on);`,
		`SET DATANODE master ALL (archive_mode = "on");`,
		`SET DATANODE master dm0 (archive_command = "rsync -a %p /data2/antdb/data/arch/dm0/%f");`,
		`SET DATANODE ALL (wal_sender_timeout = 0);`,
		`SET DATANODE master ALL (wal_keep_size = 102400);`,
	} {
		mustRun(t, m, q)
	}
	r := mustRun(t, m, `LIST PARAM`)
	var got []string
	for _, row := range r.rows {
		got = append(got, strings.Join(row, "|"))
	}
	for _, want := range []string{
		"*|datanode master|slave|wal_log_hints|on",
		"*|datanode master|archive_mode|on",
		"dm0|datanode master|archive_command|rsync -a %p /data2/antdb/data/arch/dm0/%f",
		"*|datanode master|slave|wal_sender_timeout|0",
		"*|datanode master|wal_keep_size|102400",
	} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("LIST PARAM lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, tt := range []struct{ q, code string }{
		{`SET DATANODE ALL (port = 5)`, pgerror.InsufficientPrivilege},
		{`SET DATANODE ALL (no_such_param = 5)`, pgerror.UndefinedObject},
		{`SET DATANODE ALL (archive_mode = sometimes)`, pgerror.InvalidParameterValue},
		{`SET DATANODE master nobody (work_mem = '4MB')`, pgerror.UndefinedObject},
	} {
		_, err := run(t, m, tt.q)
		if pe, ok := pgerror.As(err); !ok || pe.Code != tt.code {
			t.Errorf("%s: %v, want %s", tt.q, err, tt.code)
		}
	}
	mustRun(t, m, `SET DATANODE ALL (no_such_param = 5) FORCE`)
	mustRun(t, m, `RESET DATANODE master ALL (archive_mode)`)
	r = mustRun(t, m, `LIST PARAM DATANODE MASTER ALL archive`)
	for _, row := range r.rows {
		if row[2] == "archive_mode" {
			t.Errorf("archive_mode still listed after RESET: %v", row)
		}
	}
}
