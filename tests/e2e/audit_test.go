package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestAuditTrail (issue 11): changing statements of two users — the
// superuser over the Unix socket (peer) and a SCRAM user over TCP — are in
// the audit with user, address, redacted text, outcome and duration; a
// refused statement too; reads are not; LIST JOURNAL shows them; no
// password reaches the audit, the journal or LIST JOURNAL.
func TestAuditTrail(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, "CREATE USER ops PASSWORD 'ops-Pass-1'; ADD HOST h1 (protocol=local, address='127.0.0.2', agentport=5430); GRANT add, list TO ops")
	m.MustExec(t, "LIST HOST; SELECT * FROM node; SHOW server_version")
	ops := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-U", "ops", "-d", "postgres"}
	env := []string{"PGPASSWORD=ops-Pass-1", "PGSSLMODE=require"}
	if out, err := psqlAs(t, "", env, ops, "ADD DATANODE MASTER dn1 (host=h1, port=25432, path='/tmp/adbmgr-e2e-audit-dn1')"); err != nil {
		t.Fatalf("ops: ADD DATANODE MASTER: %v\n%s", err, out)
	}
	if out, err := psqlAs(t, "", env, ops, "DROP HOST h1"); err == nil || !strings.Contains(out, "42501") {
		t.Fatalf("ops: DROP HOST h1 was not refused: %v\n%s", err, out)
	}
	if out, err := psqlAs(t, "", env, ops, "ALTER USER ops PASSWORD 'ops-Pass-2'"); err != nil {
		t.Fatalf("ops: ALTER USER: %v\n%s", err, out)
	}

	rows := m.Rows(t, "SELECT user, address, statement, outcome, duration_ms >= 0 FROM audit ORDER BY id")
	tcp := regexp.MustCompile(`^127\.0\.0\.1:[0-9]+$`)
	want := [][]string{
		{"postgres", "[local]", "CREATE USER ops PASSWORD '********'", "ok"},
		{"postgres", "[local]", "ADD HOST h1 (protocol=local, address='127.0.0.2', agentport=5430)", "ok"},
		{"postgres", "[local]", "GRANT add, list TO ops", "ok"},
		{"ops", "tcp", "ADD DATANODE MASTER dn1 (host=h1, port=25432, path='/tmp/adbmgr-e2e-audit-dn1')", "ok"},
		{"ops", "tcp", "DROP HOST h1", `42501: permission denied: user "ops" lacks the drop privilege for DROP HOST`},
		{"ops", "tcp", "ALTER USER ops PASSWORD '********'", "ok"},
	}
	if len(rows) != len(want) {
		t.Fatalf("audit:\n%q\nwant %d rows like\n%q", rows, len(want), want)
	}
	for i, w := range want {
		r := rows[i]
		addrOK := r[1] == w[1] || (w[1] == "tcp" && tcp.MatchString(r[1]))
		if r[0] != w[0] || !addrOK || r[2] != w[2] || r[3] != w[3] || r[4] != "1" {
			t.Errorf("audit row %d = %q, want %q", i, r, w)
		}
	}
	journal := m.MustExec(t, "LIST JOURNAL")
	for _, s := range []string{"DROP HOST h1", "42501", "ops"} {
		if !strings.Contains(journal, s) {
			t.Errorf("LIST JOURNAL lacks %q:\n%s", s, journal)
		}
	}
	for _, out := range []string{journal, m.MustExec(t, "SELECT * FROM audit"), m.MustExec(t, "SELECT * FROM journal")} {
		if strings.Contains(out, "ops-Pass") {
			t.Errorf("a password reached the audit:\n%s", out)
		}
	}
}

// TestCleanMonitor: CLEAN MONITOR n deletes the samples older than n days
// (written here into the catalog as a manager running long ago would
// have), as the spec's CLEAN MONITOR 15.
func TestCleanMonitor(t *testing.T) {
	m := StartManager(t, "")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Dir, "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	for _, age := range []int{0, 3, 16, 30} {
		at := now.Add(-time.Duration(age)*24*time.Hour - time.Hour).Format("2006-01-02T15:04:05.000Z07:00")
		if _, err := db.Exec(`INSERT INTO mgr_monitor (at, nodename, nodetype, host, status, role) VALUES (?, 'dn1', 'datanode master', 'h1', 'up', 'primary')`, at); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-c", "CLEAN MONITOR 15")
	if err != nil || !strings.Contains(out, "CLEAN MONITOR DATA") || !strings.Contains(errOut, "NOTICE:  2 monitor samples taken before") {
		t.Fatalf("CLEAN MONITOR 15: %v\n%s\n%s", err, out, errOut)
	}
	if rows := m.Rows(t, "SELECT count(*) FROM monitor_history"); fmt.Sprint(rows) != "[[2]]" {
		t.Errorf("samples left after CLEAN MONITOR 15: %v", rows)
	}
	m.MustExec(t, "CLEAN MONITOR 0")
	if rows := m.Rows(t, "SELECT count(*) FROM monitor_history"); fmt.Sprint(rows) != "[[0]]" {
		t.Errorf("samples left after CLEAN MONITOR 0: %v", rows)
	}
}

// syncBuffer is a bytes.Buffer safe for a reader and a writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDoctorEventsAndHistory: a psql session that ran LISTEN doctor is
// told of the doctor's restart of a killed master (psql prints
// "Asynchronous notification "doctor" with payload … received" after its
// next command); the restart is in LIST JOURNAL as the doctor's; the
// monitor history samples every node each second (SET MONITOR) with its
// role, timeline, sessions and, for the slave, its lag.
func TestDoctorEventsAndHistory(t *testing.T) {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustRows(t, time.Minute, "SET MONITOR (interval = 1, retention = 2)")

	waitFor(t, 30*time.Second, "the monitor history samples every node", func() (bool, string) {
		rows, _, err := c.psqlRows(10*time.Second, `SELECT nodename, status, role, timeline, connections >= 0, sync_state, lag_bytes >= 0
			FROM monitor_history WHERE time = (SELECT max(time) FROM monitor_history) ORDER BY nodename`)
		got := fmt.Sprint(rows)
		return err == nil && got == "[[dn1 up primary 1 1  ] [dn1s up standby 1 1 sync 1] [gc up primary 1 1  ]]", got
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listener := exec.CommandContext(ctx, "psql", "-X", "-h", c.M.Dir, "-p", strconv.Itoa(c.M.Port), "-U", "postgres", "-d", "postgres")
	stdin, err := listener.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	listener.Stdout, listener.Stderr = &out, &out
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cancel()
		listener.Wait()
	}()
	io.WriteString(stdin, "LISTEN doctor;\n")
	waitFor(t, 10*time.Second, "LISTEN answered", func() (bool, string) {
		return strings.Contains(out.String(), "LISTEN"), out.String()
	})

	c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 500, failures = 2)")
	c.mustRows(t, time.Minute, "START DOCTOR")
	syscall.Kill(postmasterPID(t, c.node("dn1")), syscall.SIGKILL)
	waitFor(t, 60*time.Second, "the listening session told of the doctor's restart of dn1", func() (bool, string) {
		io.WriteString(stdin, "SELECT 1;\n")
		got := out.String()
		return strings.Contains(got, `Asynchronous notification "doctor" with payload "{"id":`) &&
			strings.Contains(got, `"command":"DOCTOR RESTART dn1","status":"done","step":"end"`), got
	})
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "Asynchronous notification") {
			t.Log(line)
		}
	}
	rows, _ := c.mustRows(t, time.Minute, "LIST JOURNAL")
	found := false
	for _, r := range rows {
		if len(r) == 6 && r[1] == "doctor" && r[3] == "DOCTOR RESTART dn1" && r[4] == "ok" {
			found = true
		}
	}
	if !found {
		t.Errorf("LIST JOURNAL has no doctor's restart of dn1:\n%q", rows)
	}
	// The DBA's statements name themselves in the journal of operations.
	rows, _ = c.mustRows(t, time.Minute, "SELECT user, statement FROM journal WHERE command LIKE 'INIT%' ORDER BY id LIMIT 1")
	if fmt.Sprint(rows) != "[[postgres INIT ALL]]" {
		t.Errorf("journal of INIT ALL = %q", rows)
	}
}
