package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// doctorCrashPoints are the manager's kill -9 points inside the doctor's
// own repair of a dead master: its failover after the fence, after the
// promotion, once the catalog step (which marks the old master oldmaster)
// is committed, after a slave followed; its rewind of the old master
// before pg_rewind (after the clean shutdown), after pg_rewind, once the
// catalog step took it back.
var doctorCrashPoints = []string{
	"FAILOVER:after fence",
	"FAILOVER:after promote",
	"FAILOVER:journal catalog",
	"FAILOVER:after follow",
	"REWIND:after clean shutdown",
	"REWIND:after pg_rewind",
	"REWIND:journal rejoined",
}

// quickDoctorCrashPoints are those make test goes through: the two sides
// of the failover's promotion and pg_rewind, and the catalog step of the
// failover that must carry the oldmaster mark; with ADBMGR_E2E_TRIALS set
// (make soak) every point is.
var quickDoctorCrashPoints = []string{
	"FAILOVER:after fence",
	"FAILOVER:after promote",
	"FAILOVER:journal catalog",
	"REWIND:after pg_rewind",
}

// TestCrashDuringDoctorRepair kills the manager (SIGKILL, the --crash-at
// hook) at each point of the doctor's failover of a dead master (its
// postmaster and its host's agent killed) and of its rewind of the old
// master, while a client commits every 20 ms directly (a multi-host DSN
// that finds the writable node) and another through a coordinator. The
// manager is restarted without the hook and the doctor started (it stays
// off after an interruption until a DBA starts it), and nobody else acts:
// the doctor must finish the job by itself. Checked: never two writable
// masters (markers written to every node that answers as a primary), the
// catalog ends matching the real roles (every slave streaming from the
// master with the sync state LIST NODE gives it, none left out), both
// writers write again, no acknowledged row is lost on either path, and
// the journal says what was interrupted and what the doctor finished. One
// cluster serves every point, whichever node is master by then.
func TestCrashDuringDoctorRepair(t *testing.T) {
	c, group := newCrashCluster(t)
	c.mustRows(t, time.Minute, "START DOCTOR")
	direct := startLoadWriter("direct", c.directDSN("dn1", "dn1s", "dn1p"), "INSERT INTO load VALUES ($1)", 1)
	defer direct.stop()
	coord := startLoadWriter("coordinator", c.nodeConnString(c.node("cn1")), "INSERT INTO cload VALUES ($1)", 1)
	defer coord.stop()
	points := doctorCrashPoints
	if os.Getenv("ADBMGR_E2E_TRIALS") == "" {
		points = quickDoctorCrashPoints
	}
	for trial := 0; trial < trials(); trial++ {
		for _, point := range points {
			ok := t.Run(strings.NewReplacer(":", "_", " ", "_").Replace(point), func(t *testing.T) {
				c.doctorCrashCase(t, point, group, direct, coord)
			})
			if !ok {
				return // the cluster is in an unknown state
			}
		}
	}
	t.Logf("acknowledged: %d direct, %d through cn1", len(direct.ids()), len(coord.ids()))
}

// doctorCrashCase is one point of TestCrashDuringDoctorRepair.
func (c *testCluster) doctorCrashCase(t *testing.T, point string, group []nodeSpec, writers ...*loadWriter) {
	master, _, _ := c.roles(t, group)
	host := c.node(master).Host
	last := c.journalMax(t)
	c.M.Kill9()
	c.M.Args = []string{"--crash-at", point}
	c.M.Restart()
	c.mustRows(t, time.Minute, "START DOCTOR")
	time.Sleep(time.Second) // both writers on the master
	defer c.watchTwoPrimaries(t, group)()
	c.killNodeAndAgent(t, master, host)
	start := time.Now()
	if strings.HasPrefix(point, "REWIND") {
		waitFor(t, time.Minute, "the doctor's failover of "+master, func() (bool, string) {
			m, _, _ := c.roles(t, group)
			return m != master, "master " + m
		})
		c.mustRows(t, time.Minute, "START AGENT "+host)
	}
	c.waitHook(t, point, 90*time.Second)
	t.Logf("%s died: the manager died at %q %v after the death of %s", master, point, time.Since(start).Round(time.Millisecond), master)
	if p := c.primaries(group...); len(p) > 1 {
		t.Errorf("two writable primaries after the crash: %v", p)
	}
	c.M.Args = nil
	c.M.Restart()
	// Held until START DOCTOR: LIST DOCTOR says so and why, and a DBA's
	// FAILOVER without FORCE of the group is refused meanwhile (the
	// catalog's sync slave may not be the new master's).
	if rows, _ := c.mustRows(t, time.Minute, "LIST DOCTOR"); !strings.Contains(fmt.Sprint(rows), "state held held: the previous manager ended during DOCTOR ") {
		t.Errorf("LIST DOCTOR while held = %q", rows)
	}
	if _, stderr, err := c.psqlRows(time.Minute, "FAILOVER DATANODE "+master); err == nil || !strings.Contains(stderr, "55000") || !strings.Contains(stderr, "START DOCTOR") {
		t.Errorf("FAILOVER DATANODE %s while a doctor switch is interrupted: %v %s", master, err, stderr)
	}
	// Only the doctor acts: a DBA only starts it and the agent.
	c.mustRows(t, time.Minute, "START DOCTOR")
	if _, stderr, err := c.psqlRows(time.Minute, "START AGENT "+host); err != nil {
		t.Logf("START AGENT %s: %v %s", host, err, stderr)
	}
	restarted := time.Now()
	var state string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if p := c.primaries(group...); len(p) > 1 {
			t.Errorf("two writable primaries: %v", p)
		}
		var ok bool
		if ok, state = c.repaired(t, group); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not repaired by the doctor 2 minutes after the restart: %s", state)
		}
	}
	t.Logf("repaired %v after the restart: %s", time.Since(restarted).Round(time.Millisecond), state)
	// MONITOR HA says the same.
	waitFor(t, 10*time.Second, "MONITOR HA shows every slave streaming with its sync state", func() (bool, string) {
		ha := c.monitorHA(t)
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type, sync_state) dn1, dn1s, dn1p")
		for _, r := range rows {
			if strings.HasSuffix(r[1], "slave") && !strings.HasSuffix(ha[r[0]], " streaming "+r[2]) {
				return false, fmt.Sprintf("MONITOR HA %v; LIST NODE %q", ha, rows)
			}
		}
		return true, ""
	})
	for _, w := range writers {
		w.waitWrite(t, time.Now(), 30*time.Second)
	}

	// The journal: the switch interrupted at its step, the doctor's entry
	// finished with what it did.
	rows, _ := c.mustRows(t, time.Minute, fmt.Sprintf("SELECT command, status, step, detail FROM journal WHERE id > %d ORDER BY id", last))
	cmd, _, _ := strings.Cut(point, ":")
	var interrupted, resumed bool
	for _, r := range rows {
		if strings.HasPrefix(r[0], cmd+" ") && r[1] == "interrupted" {
			interrupted = true
			t.Logf("journal: %q", r)
		}
		if strings.HasPrefix(r[0], "DOCTOR "+cmd+" ") && strings.Contains(r[3], "by the manager's end") {
			resumed = true
			t.Logf("journal: %q", r)
		}
	}
	if !interrupted || !resumed {
		t.Errorf("the journal does not say what was interrupted (%s …) and what the doctor finished: %q", cmd, rows)
	}

	master, _, _ = c.roles(t, group)
	c.checkLoad(t, c.node(master), "SELECT id FROM load", writers[0])
	c.checkLoad(t, c.node(master), c.shardsQuery(t, c.node(master), "cload"), writers[1])
}

// watchTwoPrimaries writes markers to every node of group over and over
// (primaries) until the function it returns is called, and fails the test
// whenever two acknowledge at once.
func (c *testCluster) watchTwoPrimaries(t *testing.T, group []nodeSpec) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if p := c.primaries(group...); len(p) > 1 {
				t.Errorf("two writable primaries at %v: %v", time.Now().Format(time.TimeOnly), p)
			}
		}
	}()
	return func() { close(stop); <-done }
}

// waitHook waits until the manager died by the crash hook at point, and
// reaps it.
func (c *testCluster) waitHook(t *testing.T, point string, timeout time.Duration) {
	t.Helper()
	sock := filepath.Join(c.M.Dir, ".s.PGSQL."+strconv.Itoa(c.M.Port))
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		conn, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			c.M.Kill9()
			t.Fatalf("the manager did not die at %q within %v:\n%s", point, timeout, tailLines(c.M.log.String(), 40))
		}
	}
	c.M.Kill9() // reaps it
	if !strings.Contains(c.M.log.String(), "crash test hook") {
		t.Fatalf("the manager did not die by the hook at %q:\n%s", point, tailLines(c.M.log.String(), 30))
	}
}

// repaired says whether the catalog matches the nodes: the master answers
// as a primary, every node of the group is in the cluster and streams
// from it with the sync state LIST NODE gives it.
func (c *testCluster) repaired(t *testing.T, group []nodeSpec) (bool, string) {
	var names []string
	for _, n := range group {
		names = append(names, n.Name)
	}
	rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, sync_state, incluster) "+strings.Join(names, ", "))
	master := ""
	for _, r := range rows {
		if strings.HasSuffix(r[1], "master") {
			master = r[0]
		}
	}
	got := fmt.Sprintf("catalog %q", rows)
	if master == "" || c.recovery(c.node(master)) != "f" {
		return false, got + "; the master does not answer as a primary"
	}
	rep, err := c.replication(c.node(master))
	got += fmt.Sprintf("; streaming from %s: %v %v", master, rep, err)
	if err != nil {
		return false, got
	}
	for _, r := range rows {
		if r[0] == master {
			continue
		}
		if r[2] != master || r[4] != "t" || rep[r[0]] != r[3] || c.recovery(c.node(r[0])) != "t" {
			return false, got
		}
	}
	return true, got
}

// journalMax is the last journal entry's id.
func (c *testCluster) journalMax(t *testing.T) int {
	rows, _ := c.mustRows(t, time.Minute, "SELECT coalesce(max(id), 0) FROM journal")
	n, _ := strconv.Atoi(rows[0][0])
	return n
}

// shardsQuery is a query of every id of distributed table tbl's shards on
// datanode n.
func (c *testCluster) shardsQuery(t *testing.T, n nodeSpec, tbl string) string {
	t.Helper()
	return c.nodeValue(t, n, fmt.Sprintf(`SELECT string_agg(format('SELECT id FROM %%I.%%I', schemaname, tablename), ' UNION ALL ')
		FROM pg_tables WHERE tablename ~ '^%s_[0-9]+$'`, tbl))
}

// checkLoad fails the test when an id w acknowledged is not in what query
// reads on n.
func (c *testCluster) checkLoad(t *testing.T, n nodeSpec, query string, w *loadWriter) {
	t.Helper()
	acked := w.ids()
	have := map[int]bool{}
	for _, r := range c.mustNodeSQL(t, n, query) {
		id, _ := strconv.Atoi(r[0])
		have[id] = true
	}
	var lost []int
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%s writer: %d of %d acknowledged commits are missing on the master %s: %v", w.name, len(lost), len(acked), n.Name, lost)
	} else {
		t.Logf("%s writer: %d acknowledged commits, all on %s", w.name, len(acked), n.Name)
	}
}

// loadWriter commits one row at a time (autocommit INSERTs of ids first,
// first+1, …) every 20 ms over dsn, connecting again after any error,
// and records the ids whose commit was acknowledged. A statement that has
// not ended after 10 s is cancelled and not counted: PostgreSQL reports a
// commit whose wait for its synchronous standby was cancelled as done,
// but it may exist on that node only (docs/HA.md).
type loadWriter struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	acked  []int
	at     time.Time // the last acknowledgement
}

func startLoadWriter(name, dsn, sql string, first int) *loadWriter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &loadWriter{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				conn.Close(context.Background())
			}
		}()
		for id := first; ctx.Err() == nil; id++ {
			if conn == nil {
				cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
				conn, _ = pgx.Connect(cctx, dsn)
				ccancel()
			}
			if conn != nil {
				ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := conn.Exec(ectx, sql, id)
				expired := ectx.Err() != nil
				ecancel()
				if err == nil && !expired {
					w.mu.Lock()
					w.acked = append(w.acked, id)
					w.at = time.Now()
					w.mu.Unlock()
				} else {
					conn.Close(context.Background())
					conn = nil
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

// ids are the acknowledged ids so far.
func (w *loadWriter) ids() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.acked...)
}

// stop ends the writer and returns the acknowledged ids.
func (w *loadWriter) stop() []int {
	w.cancel()
	<-w.done
	return w.ids()
}

// waitWrite waits until w's commits are acknowledged again after from.
func (w *loadWriter) waitWrite(t *testing.T, from time.Time, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, w.name+" writer commits again", func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.at.After(from), fmt.Sprintf("last acknowledged at %v", w.at.Format(time.TimeOnly))
	})
}
