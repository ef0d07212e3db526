package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// switchoverRun is a SWITCHOVER run in the background.
type switchoverRun struct {
	done   chan struct{}
	rows   [][]string
	stderr string
	err    error
	start  time.Time
	end    time.Time
}

// switchoverInBackground runs sql (a SWITCHOVER) through psql and returns
// once the manager journaled its start.
func (c *testCluster) switchoverInBackground(t *testing.T, sql, command string) *switchoverRun {
	t.Helper()
	before := c.journalCount(t, command)
	r := &switchoverRun{done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(r.done)
		r.rows, r.stderr, r.err = c.psqlRows(3*time.Minute, sql)
		r.end = time.Now()
	}()
	waitFor(t, 30*time.Second, command+" started", func() (bool, string) {
		n := c.journalCount(t, command)
		return n > before, fmt.Sprint(n)
	})
	return r
}

// running reports whether the switchover still runs.
func (r *switchoverRun) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// journalCount is how many entries of command the journal has.
func (c *testCluster) journalCount(t *testing.T, command string) int {
	t.Helper()
	rows, _ := c.mustRows(t, 30*time.Second, "SELECT count(*) FROM journal WHERE command = '"+command+"' AND step = 'start'")
	var n int
	fmt.Sscan(rows[0][0], &n)
	return n
}

// TestSwitchoverWaitLetsTheDoctorHeal: while a SWITCHOVER waits up to
// maxTrys seconds for a transaction open on its master, the doctor still
// heals the other groups — a master of another group killed with its
// host's agent is failed over within seconds, not when the switchover
// ends; a master that crashed is restarted in place — and the
// coordinators' holds of the switchover do not block the doctor's
// re-point of those coordinators. The switchover then ends as it would
// have: refused after maxTrys, or switched once the transaction ended;
// afterwards the catalog matches the real roles of both groups, and the
// coordinators route to both current masters.
func TestSwitchoverWaitLetsTheDoctorHeal(t *testing.T) {
	c := newTestCluster(t, 4)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h3", "")
	c.addNode(t, "datanode master", "dn2", "", "h4", "")
	c.addNode(t, "datanode slave", "dn2s", "dn2", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE acct (id int NOT NULL, n int); SELECT adb.create_distributed_table('acct', 'id'); INSERT INTO acct SELECT g, 0 FROM generate_series(1, 100) g")
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE d (a int)")
	id1, id2 := c.idOn(t, "cn1", "acct", "dn1"), c.idOn(t, "cn1", "acct", "dn2")
	c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 500, failures = 2)")
	c.mustRows(t, time.Minute, "START DOCTOR")
	ctx := context.Background()
	// open begins a transaction on dn1 itself: the switchover waits for it.
	open := func(t *testing.T, master string) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.nodeConnString(c.node(master)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		if _, err := conn.Exec(ctx, "BEGIN; INSERT INTO d VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	roles := func(t *testing.T, want string) {
		t.Helper()
		rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, type, mastername, incluster) dn1, dn1s, dn2, dn2s")
		sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
		if got := fmt.Sprint(rows); got != want {
			t.Errorf("LIST NODE = %s, want %s", got, want)
		}
	}
	inRecovery := func(t *testing.T, want map[string]string) {
		t.Helper()
		for n, w := range want {
			if v := c.nodeValue(t, c.node(n), "SELECT pg_is_in_recovery()"); v != w {
				t.Errorf("%s: pg_is_in_recovery = %s, want %s", n, v, w)
			}
		}
	}
	// writesGoTo checks a write through cn1 to each id lands on the node
	// named.
	writesGoTo := func(t *testing.T, mark int, want map[string]string) {
		t.Helper()
		for id, node := range want {
			c.mustNodeSQL(t, c.node("cn1"), fmt.Sprintf("INSERT INTO acct VALUES (%s, %d)", id, mark))
			if v := c.nodeValue(t, c.node(node), fmt.Sprintf("SELECT count(*) FROM acct_%s WHERE n = %d", slotOf(t, c, id), mark)); v != "1" {
				t.Errorf("the write of id %s through cn1 is not on %s", id, node)
			}
		}
	}

	t.Run("FailoverDuringTheWaitThenRefused", func(t *testing.T) {
		tx := open(t, "dn1")
		sw := c.switchoverInBackground(t, "SWITCHOVER DATANODE SLAVE dn1s 15", "SWITCHOVER dn1s")
		time.Sleep(500 * time.Millisecond) // the holds locked, the wait begun
		c.killNodeAndAgent(t, "dn2", "h4")
		killed := time.Now()
		waitFor(t, 12*time.Second, "dn2s promoted by the doctor during the switchover's wait", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, type) dn2s")
			return err == nil && fmt.Sprint(rows) == "[[dn2s datanode master]]", fmt.Sprint(rows, err)
		})
		t.Logf("dn2 failed over %.1fs after the kill", time.Since(killed).Seconds())
		if !sw.running() {
			t.Fatalf("the switchover ended before the doctor's failover: %v\n%s", sw.err, sw.stderr)
		}
		<-sw.done
		if sw.err == nil || !strings.Contains(sw.stderr, "there are some active connections on coordinators or datanode masters") {
			t.Fatalf("SWITCHOVER with an open transaction: %v\n%s", sw.err, sw.stderr)
		}
		if d := sw.end.Sub(sw.start); d < 14*time.Second {
			t.Errorf("refused after %v, before maxTrys (15 s)", d)
		}
		rows, _ := c.mustRows(t, 30*time.Second, "SELECT status, step FROM journal WHERE command = 'SWITCHOVER dn1s' ORDER BY id DESC LIMIT 1")
		if fmt.Sprint(rows) != "[[failed quiesce]]" {
			t.Errorf("last journal row of the refused switchover = %q, want failed | quiesce", rows)
		}
		roles(t, "[[dn1 datanode master  t] [dn1s datanode slave dn1 t] [dn2 datanode slave dn2s f] [dn2s datanode master  t]]")
		inRecovery(t, map[string]string{"dn1": "f", "dn1s": "t", "dn2s": "f"})
		if _, err := tx.Exec(ctx, "COMMIT"); err != nil {
			t.Errorf("the open transaction after the refused switchover: %v", err)
		}
		writesGoTo(t, 7, map[string]string{id1: "dn1", id2: "dn2s"})
	})

	t.Run("RestartDuringTheWaitThenSwitched", func(t *testing.T) {
		// The old master is rewound (not while a command waits: it may
		// take long) once its agent is back.
		c.mustRows(t, time.Minute, "START AGENT h4")
		waitFor(t, 60*time.Second, "dn2 rewound by the doctor", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, type, mastername, incluster) dn2")
			return err == nil && fmt.Sprint(rows) == "[[dn2 datanode slave dn2s t]]", fmt.Sprint(rows, err)
		})
		tx := open(t, "dn1")
		sw := c.switchoverInBackground(t, "SWITCHOVER DATANODE SLAVE dn1s 120", "SWITCHOVER dn1s")
		time.Sleep(500 * time.Millisecond)
		pid := postmasterPID(t, c.node("dn2s"))
		syscall.Kill(pid, syscall.SIGKILL)
		waitFor(t, 20*time.Second, "dn2s restarted by the doctor during the switchover's wait", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn2s"), "SELECT pg_is_in_recovery()")
			return err == nil && fmt.Sprint(rows) == "[[f]]", fmt.Sprint(rows, err)
		})
		if p := postmasterPID(t, c.node("dn2s")); p == pid {
			t.Errorf("dn2s's postmaster is still %d", p)
		}
		if !sw.running() {
			t.Fatalf("the switchover ended before the doctor's restart: %v\n%s", sw.err, sw.stderr)
		}
		if _, err := tx.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		<-sw.done
		if sw.err != nil || len(sw.rows) != 1 || strings.Join(sw.rows[0], "|") != "dn1s|t|switchover datanode success" {
			t.Fatalf("SWITCHOVER = %q %v\n%s", sw.rows, sw.err, sw.stderr)
		}
		roles(t, "[[dn1 datanode slave dn1s t] [dn1s datanode master  t] [dn2 datanode slave dn2s t] [dn2s datanode master  t]]")
		inRecovery(t, map[string]string{"dn1": "t", "dn1s": "f", "dn2": "t", "dn2s": "f"})
		waitFor(t, 30*time.Second, "dn1 and dn2 stream from the new masters", func() (bool, string) {
			a, err1 := c.replication(c.node("dn1s"))
			b, err2 := c.replication(c.node("dn2s"))
			return err1 == nil && err2 == nil && a["dn1"] != "" && b["dn2"] != "", fmt.Sprint(a, b, err1, err2)
		})
		writesGoTo(t, 8, map[string]string{id1: "dn1s", id2: "dn2s"})
		rows, _ := c.mustRows(t, 30*time.Second, "SELECT command, status FROM journal WHERE command LIKE 'DOCTOR%' AND step = 'end' ORDER BY id")
		if got := fmt.Sprint(rows); !strings.Contains(got, "DOCTOR FAILOVER dn2 done") || !strings.Contains(got, "DOCTOR REWIND dn2 done") ||
			!strings.Contains(got, "DOCTOR RESTART dn2s done") {
			t.Errorf("the doctor's journal = %s", got)
		}
	})
}
