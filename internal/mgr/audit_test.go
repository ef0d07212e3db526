package mgr

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

func runIn(m *Manager, s *pgwire.Session, q string) (*recorder, error) {
	r := &recorder{}
	return r, m.Query(context.Background(), s, q, r)
}

// Changing statements are audited with user, address, redacted text,
// outcome and duration; reads are not; a refusal is.
func TestAuditRows(t *testing.T) {
	m, _ := newManager(t)
	admin := &pgwire.Session{User: "postgres", RemoteAddr: "@", Params: map[string]string{}}
	for _, q := range []string{
		"ADD HOST h1 (address='127.0.0.2', user=postgres)",
		"CREATE USER bob PASSWORD 'Sup3r-secret'",
		"GRANT list TO bob",
		"LIST HOST",
		"SELECT * FROM node",
		"SHOW server_version",
	} {
		if _, err := runIn(m, admin, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := runIn(m, admin, "DROP HOST nosuch"); err == nil {
		t.Fatal("DROP HOST nosuch succeeded")
	}
	bob := &pgwire.Session{User: "bob", RemoteAddr: "127.0.0.1:40000", Params: map[string]string{}}
	_, err := runIn(m, bob, "ADD HOST h2 (address='127.0.0.3')")
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.InsufficientPrivilege {
		t.Fatalf("bob's ADD HOST: %v", err)
	}
	r := mustRun(t, m, "SELECT user, address, statement, status, outcome, duration_ms IS NOT NULL FROM audit ORDER BY id")
	want := [][]string{
		{"postgres", "[local]", "ADD HOST h1 (address='127.0.0.2', user=postgres)", "ok", "ok", "1"},
		{"postgres", "[local]", "CREATE USER bob PASSWORD '********'", "ok", "ok", "1"},
		{"postgres", "[local]", "GRANT list TO bob", "ok", "ok", "1"},
		{"postgres", "[local]", "DROP HOST nosuch", "error", `42704: host "nosuch" does not exist`, "1"},
		{"bob", "127.0.0.1:40000", "ADD HOST h2 (address='127.0.0.3')", "refused", "42501: permission denied: ADD HOST is for superusers only", "1"},
	}
	if len(r.rows) != len(want) {
		t.Fatalf("audit rows:\n%v\nwant\n%v", r.rows, want)
	}
	for i := range want {
		if strings.Join(r.rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("audit row %d:\n got %v\nwant %v", i, r.rows[i], want[i])
		}
	}
	all := mustRun(t, m, "SELECT * FROM audit")
	for _, row := range all.rows {
		if strings.Contains(strings.Join(row, " "), "Sup3r") {
			t.Errorf("the audit holds the password: %v", row)
		}
	}
	j := mustRun(t, m, "LIST JOURNAL 2")
	if len(j.rows) != 2 || j.rows[1][1] != "bob" || j.rows[0][3] != "DROP HOST nosuch" {
		t.Errorf("LIST JOURNAL 2: %v", j.rows)
	}
}

// A journal entry opened by a statement names it in the journal view.
func TestJournalNamesStatement(t *testing.T) {
	m, cat := newManager(t)
	s := &pgwire.Session{User: "postgres", RemoteAddr: "127.0.0.1:5555", Params: map[string]string{}}
	id, err := cat.Audit(context.Background(), 0, catalog.AuditEntry{User: s.User, Address: "127.0.0.1:5555", Statement: "FLUSH HOST", Status: catalog.AuditRunning})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Journal(catalog.WithAudit(context.Background(), id), 0, "FLUSH HOST", "running", "start", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Journal(context.Background(), 0, "DOCTOR RESTART dn1", "done", "end", ""); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, m, "SELECT command, user, address, statement FROM journal ORDER BY id")
	if got := r.rows; len(got) != 2 || strings.Join(got[0], "|") != "FLUSH HOST|postgres|127.0.0.1:5555|FLUSH HOST" ||
		strings.Join(got[1], "|") != "DOCTOR RESTART dn1|doctor||" {
		t.Errorf("journal: %v", got)
	}
}

// LISTEN doctor queues the doctor's journal rows for the session, sent
// before its next ReadyForQuery; UNLISTEN stops them.
func TestListenDoctor(t *testing.T) {
	m, _ := newManager(t)
	s := &pgwire.Session{User: "postgres", Params: map[string]string{}}
	other := &pgwire.Session{User: "postgres", Params: map[string]string{}}
	if r, err := runIn(m, s, "LISTEN doctor"); err != nil || r.tags[0] != "LISTEN" {
		t.Fatalf("LISTEN: %v %v", r, err)
	}
	m.journaled(7, "DOCTOR RESTART dn1", "done", "end", "")
	m.journaled(8, "FAILOVER DATANODE dn1", "done", "end", "")
	if s.Notifications == nil {
		t.Fatal("no notification hook on the listening session")
	}
	got := s.Notifications()
	if len(got) != 1 || got[0].Channel != "doctor" ||
		got[0].Payload != `{"id":7,"command":"DOCTOR RESTART dn1","status":"done","step":"end","detail":""}` {
		t.Errorf("notifications: %+v", got)
	}
	if other.Notifications != nil {
		t.Error("a session that did not LISTEN got a hook")
	}
	mustRunIn(t, m, s, "UNLISTEN *")
	m.journaled(9, "DOCTOR RESTART dn1", "done", "end", "")
	if got := s.Notifications(); len(got) != 0 {
		t.Errorf("after UNLISTEN: %+v", got)
	}
	// DISCARD ALL stops LISTEN too, as in PostgreSQL.
	mustRunIn(t, m, s, "LISTEN doctor")
	mustRunIn(t, m, s, "DISCARD ALL")
	m.journaled(10, "DOCTOR RESTART dn1", "done", "end", "")
	if got := s.Notifications(); len(got) != 0 {
		t.Errorf("after DISCARD ALL: %+v", got)
	}
}

type doctorCounts map[string]int

func (doctorCounts) Statement(string, time.Duration, error) {}
func (c doctorCounts) DoctorAction(action, outcome string)  { c[action+"/"+outcome]++ }

// The doctor's actions reach a DoctorObserver as they finish, once each:
// not while they run, and not the manager's own commands.
func TestDoctorObserver(t *testing.T) {
	m, _ := newManager(t)
	c := doctorCounts{}
	m.opts.Observer = c
	m.journaled(1, "DOCTOR RESTART dn1", "running", "start", "")
	m.journaled(1, "DOCTOR RESTART dn1", "done", "end", "")
	m.journaled(2, "DOCTOR FAILOVER dn1", "failed", "promote", "")
	m.journaled(3, "FAILOVER DATANODE dn1", "done", "end", "")
	if len(c) != 2 || c["restart/done"] != 1 || c["failover/failed"] != 1 {
		t.Errorf("counted %v", c)
	}
}

func mustRunIn(t *testing.T, m *Manager, s *pgwire.Session, q string) {
	t.Helper()
	if _, err := runIn(m, s, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// CLEAN MONITOR n deletes the samples older than n days; SET MONITOR
// checks its options.
func TestCleanMonitor(t *testing.T) {
	m, cat := newManager(t)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	m.history.now = func() time.Time { return now }
	var samples []catalog.Sample
	for _, age := range []int{0, 1, 3, 10, 20} {
		samples = append(samples, catalog.Sample{Time: now.Add(-time.Duration(age)*24*time.Hour - time.Minute), Node: "dn1",
			NodeType: "datanode master", Host: "h1", Up: true, Role: "primary"})
	}
	if err := cat.AddSamples(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, m, "CLEAN MONITOR 5")
	if r.tags[0] != "CLEAN MONITOR DATA" || len(r.notices) != 1 || !strings.HasPrefix(r.notices[0], "NOTICE: 2 monitor samples") {
		t.Errorf("CLEAN MONITOR 5: %v %v", r.tags, r.notices)
	}
	if r := mustRun(t, m, "SELECT count(*) FROM monitor_history"); r.rows[0][0] != "3" {
		t.Errorf("left %v samples, want 3", r.rows[0][0])
	}
	mustRun(t, m, "CLEAN MONITOR 0")
	if r := mustRun(t, m, "SELECT count(*) FROM monitor_history"); r.rows[0][0] != "0" {
		t.Errorf("CLEAN MONITOR 0 left %v samples", r.rows[0][0])
	}
	if _, err := run(t, m, "SET MONITOR (interval = -1)"); err == nil {
		t.Error("SET MONITOR (interval = -1) accepted")
	}
	if _, err := run(t, m, "SET MONITOR (every = 1)"); err == nil {
		t.Error("SET MONITOR (every = 1) accepted")
	}
	mustRun(t, m, "SET MONITOR (interval = 0, retention = 3)")
	set, _ := cat.Settings(context.Background())
	if c := monitorConfig(set); c.interval != 0 || c.retention != 72*time.Hour {
		t.Errorf("config after SET MONITOR: %+v", c)
	}
}

type statementLog []string

func (o *statementLog) Statement(command string, d time.Duration, err error) {
	*o = append(*o, command+" "+strconv.FormatBool(err == nil && d >= 0))
}

// The Observer hears of every statement, reads and failures included.
func TestObserver(t *testing.T) {
	m, _ := newManager(t)
	var o statementLog
	m.opts.Observer = &o
	mustRun(t, m, "LIST HOST; ADD HOST h1 (address='127.0.0.2')")
	run(t, m, "DROP HOST nosuch")
	if got := strings.Join(o, ", "); got != "LIST HOST true, ADD HOST true, DROP HOST false" {
		t.Errorf("statementLog: %s", got)
	}
}

// A round of the sampler writes one sample per initialised node as
// MONITOR sees it — up or down, role, and a slave's replication state from
// its master — and prunes what the retention no longer keeps.
func TestSampleRound(t *testing.T) {
	m, cat, f := handsRig(t)
	f.Nodes["cn1"].Running = false
	old := catalog.Sample{Time: time.Now().Add(-49 * time.Hour), Node: "dn1", NodeType: "datanode master", Host: "h1", Up: true}
	if err := cat.AddSamples(context.Background(), []catalog.Sample{old}); err != nil {
		t.Fatal(err)
	}
	m.sampleRound(context.Background(), historyConfig{interval: time.Second, retention: 48 * time.Hour})
	r := mustRun(t, m, "SELECT nodename, status, role, sync_state FROM monitor_history ORDER BY nodename")
	got := fmt.Sprint(r.rows)
	if got != "[[cn1 down  ] [dn1 up primary ] [dn1s up standby async]]" {
		t.Errorf("samples: %s", got)
	}
}
