package e2e

// Network partitions on the namespace hosts (issue 9 item 2, docs/HA.md):
// a master cut off from the manager and its slaves, but still running,
// never acknowledges a write after a slave was promoted, is fenced when it
// is seen again (and rewound after the doctor's failover), and a manager
// that sees no host at all fails nothing over.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// nsWriter inserts rows first+1, first+2, … into table load on one node,
// from inside a namespace host's network stack (so that it still reaches
// a node of that host when its link is cut), one psql a row, and records
// the ids whose INSERT psql reported done — the acknowledged ones — with
// when they were.
type nsWriter struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	acked map[int]time.Time
	done  chan struct{}
}

// writerScript is the loop; the node and user come from the environment.
const writerScript = `i=$FIRST
while :; do
	i=$((i+1))
	if psql -X -q -h "$ADDR" -p "$PORT" -U "$DBUSER" -d postgres -c "INSERT INTO load VALUES ($i)" >/dev/null 2>&1; then echo "$i"; fi
	sleep 0.02
done`

// startNSWriter starts a writer in host i's namespace writing to n.
func (c *testCluster) startNSWriter(t *testing.T, i int, n nodeSpec, first int) *nsWriter {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", "adbth"+strconv.Itoa(i), "sh", "-c", writerScript)
	cmd.Env = append(os.Environ(), c.nodeEnv()...)
	cmd.Env = append(cmd.Env, "FIRST="+strconv.Itoa(first), "ADDR="+c.host(n.Host).Addr, "PORT="+strconv.Itoa(n.Port), "DBUSER="+c.dbUser())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &nsWriter{cmd: cmd, acked: map[int]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if id, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				w.mu.Lock()
				w.acked[id] = time.Now()
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// warmUp waits until the writer had n writes acknowledged (at most a
// minute: psql's start is slow on a busy machine), so that a cut proves
// something.
func (w *nsWriter) warmUp(t *testing.T, n int) {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("%d writes acknowledged", n), func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) >= n, fmt.Sprint(len(w.acked))
	})
}

// stop kills the writer (its psql too) and returns the acknowledged ids.
func (w *nsWriter) stop() map[int]time.Time {
	if w.cmd.Process != nil {
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
	w.cmd.Wait()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// checkAcked fails the test when an id acknowledged by the writer is not
// on node n, or was acknowledged later than slack after cut (only sync
// replication's wait stands between a cut-off master and a lost commit).
func (c *testCluster) checkAcked(t *testing.T, acked map[int]time.Time, n nodeSpec, cut time.Time, slack time.Duration) {
	t.Helper()
	if len(acked) < 10 {
		t.Fatalf("only %d writes were acknowledged before the cut; the test proves nothing", len(acked))
	}
	have := map[int]bool{}
	for _, r := range c.mustNodeSQL(t, n, "SELECT id FROM load") {
		id, _ := strconv.Atoi(r[0])
		have[id] = true
	}
	var lost, late []int
	for id, at := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
		if at.After(cut.Add(slack)) {
			late = append(late, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on %s: %v", len(lost), len(acked), n.Name, lost)
	}
	if len(late) > 0 {
		t.Errorf("%d writes were acknowledged more than %v after the master's link was cut: %v", len(late), slack, late)
	}
	t.Logf("%d acknowledged writes, all on %s", len(acked), n.Name)
}

// primaries writes a marker to each of nodes and returns those that
// acknowledged it within two seconds: the nodes that answer as writable
// primaries. A write that waits for a synchronous standby that is gone is
// not acknowledged (the client gives up; PostgreSQL keeps it locally only).
func (c *testCluster) primaries(nodes ...nodeSpec) []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, c.nodeConnString(n))
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(ctx, "INSERT INTO marker VALUES ($1, now())", n.Name); err == nil {
				mu.Lock()
				out = append(out, n.Name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// watchPrimaries writes markers every half second for d and fails the test
// when two nodes acknowledge at once, or when old does at all.
func (c *testCluster) watchPrimaries(t *testing.T, d time.Duration, old nodeSpec, nodes ...nodeSpec) {
	t.Helper()
	seen := map[string]int{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		p := c.primaries(nodes...)
		for _, n := range p {
			seen[n]++
		}
		if len(p) > 1 {
			t.Errorf("two writable primaries at once: %v", p)
		}
	}
	if seen[old.Name] > 0 {
		t.Errorf("the old master %s acknowledged %d marker writes after it was replaced", old.Name, seen[old.Name])
	}
	t.Logf("markers acknowledged: %v", seen)
}

// doctorJournal is the journal's DOCTOR entries' end rows: "command status".
func (c *testCluster) doctorJournal(t *testing.T) []string {
	t.Helper()
	rows, _ := c.mustRows(t, 30*time.Second, "SELECT command, status FROM journal WHERE command LIKE 'DOCTOR%' AND step = 'end' ORDER BY id")
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, " "))
	}
	return out
}

// doctorLines are the doctor's lines of the manager's log, for a failure.
func doctorLines(c *testCluster) string {
	var out []string
	for _, l := range strings.Split(c.M.log.String(), "\n") {
		if strings.Contains(l, "doctor") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serversOf lists coordinator n's foreign servers as name=host:port.
func (c *testCluster) serversOf(t *testing.T, n nodeSpec) string {
	t.Helper()
	return c.nodeValue(t, n, `SELECT string_agg(srvname || '=' ||
		(SELECT option_value FROM pg_options_to_table(srvoptions) WHERE option_name = 'host') || ':' ||
		(SELECT option_value FROM pg_options_to_table(srvoptions) WHERE option_name = 'port'), ' ' ORDER BY srvname) FROM pg_foreign_server`)
}

// TestPartition: three namespace hosts, dn1 (th3) with its sync slave dn1s
// (th1), a coordinator on the cut host too (cn2, th3), the doctor on.
//
//   - Every host's link cut: the manager sees nothing and does nothing.
//   - th3 cut while a client inside th3 writes to dn1: the doctor fails
//     over to dn1s; no write is acknowledged after the cut; markers are
//     never acknowledged by two nodes at once nor by dn1; the link back,
//     dn1 is fenced and rewound into a streaming slave of dn1s, and cn2,
//     which missed the re-point, routes to dn1s; no acknowledged row lost.
//   - The doctor off, th1 (dn1s, now master) cut, a DBA's FAILOVER: the
//     link back, MONITOR ALL and MONITOR HA show two masters; the doctor,
//     started, fences dn1s (kicked out, allowcure off) and leaves it
//     stopped for the DBA's REWIND.
func TestPartition(t *testing.T) {
	c, s := newSSHCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "th2", "")
	c.addNode(t, "coordinator master", "cn1", "", "th2", "")
	c.addNode(t, "coordinator master", "cn2", "", "th3", "")
	c.addNode(t, "datanode master", "dn1", "", "th3", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "th1", "")
	c.addNode(t, "datanode master", "dn2", "", "th2", "")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	dn1, dn1s, cn1, cn2 := c.node("dn1"), c.node("dn1s"), c.node("cn1"), c.node("cn2")
	c.mustNodeSQL(t, dn1, "CREATE TABLE load (id int PRIMARY KEY); CREATE TABLE marker (node text, at timestamptz)")
	c.mustNodeSQL(t, cn1, "CREATE TABLE orders (id int NOT NULL); SELECT adb.create_distributed_table('orders', 'id')")
	c.mustNodeSQL(t, cn1, "INSERT INTO orders SELECT g FROM generate_series(1, 100) g")
	waitFor(t, 30*time.Second, "dn1s replays the tables", func() (bool, string) {
		v, err := c.nodeSQL(dn1s, "SELECT count(*) FROM pg_class WHERE relname IN ('load', 'marker')")
		return err == nil && len(v) == 1 && v[0][0] == "2", fmt.Sprint(v, err)
	})
	c.mustRows(t, time.Minute, "START DOCTOR")
	before := c.listNode(t)

	t.Run("blind manager", func(t *testing.T) {
		var ups []func()
		for i := 1; i <= 3; i++ {
			ups = append(ups, linkDown(t, i))
		}
		// Well past the doctor's failures × interval (3 × 400 ms), the
		// look deadline (1 s) and the looks' own timeouts.
		time.Sleep(12 * time.Second)
		if j := c.doctorJournal(t); len(j) > 0 {
			t.Errorf("the doctor acted while it saw no host: %q", j)
		}
		for _, up := range ups {
			up()
		}
		waitFor(t, 2*time.Minute, "every node answers again", func() (bool, string) {
			mon := c.monitor(t)
			for _, r := range mon {
				if r.Status != "t" {
					return false, fmt.Sprint(mon)
				}
			}
			return true, ""
		})
		time.Sleep(5 * time.Second)
		if j := c.doctorJournal(t); len(j) > 0 {
			t.Errorf("the doctor acted after the links came back: %q", j)
		}
		if got := c.listNode(t); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Errorf("LIST NODE after the blind rounds:\n got %v\nwant %v", got, before)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("doctor failover of a cut-off master", func(t *testing.T) {
		w := c.startNSWriter(t, 3, dn1, 0)
		w.warmUp(t, 15)
		up := linkDown(t, 3)
		cut := time.Now()
		waitFor(t, 2*time.Minute, "the doctor promotes dn1s", func() (bool, string) {
			l := c.listNode(t)
			return l["dn1s"][3] == "" && l["dn1"][3] == "dn1s", fmt.Sprint(l)
		})
		took := time.Since(cut)
		t.Logf("failed over %v after the cut", took.Round(100*time.Millisecond))
		// A round does not wait for a cut host's looks (docs/HA.md,
		// limits): about lookDeadline + failures × interval, and the
		// failover itself, as for a dead master plus a second. Generous,
		// for a busy machine.
		if took > 8*time.Second {
			t.Errorf("the cut-off master was failed over %v after the cut; want a few seconds", took)
		}
		// The catalog says so before the coordinators are re-pointed:
		// wait for the end of the failover.
		waitFor(t, time.Minute, "the doctor's failover ends", func() (bool, string) {
			j := c.doctorJournal(t)
			return contains(j, "DOCTOR FAILOVER dn1 done"), fmt.Sprint(j)
		})
		t.Logf("the doctor's log:\n%s", doctorLines(c))
		c.mustNodeSQL(t, cn1, "INSERT INTO orders SELECT g FROM generate_series(101, 200) g")
		c.watchPrimaries(t, 3*time.Second, dn1, dn1, dn1s)
		up()
		// dn1 comes back running as a primary: fenced, then rewound. It
		// never acknowledges a marker meanwhile.
		c.watchPrimaries(t, 10*time.Second, dn1, dn1, dn1s)
		waitFor(t, 3*time.Minute, "dn1 back as a streaming slave of dn1s", func() (bool, string) {
			rows, _, err := c.psqlRows(30*time.Second, "MONITOR HA dn1")
			l := c.listNode(t)["dn1"]
			return err == nil && len(rows) == 1 && len(rows[0]) > 4 && rows[0][4] == "streaming" && l[2] == "t", fmt.Sprint(rows, l)
		})
		acked := w.stop()
		c.checkAcked(t, acked, dn1s, cut, 2*time.Second)
		j := c.doctorJournal(t)
		t.Logf("doctor journal: %q", j)
		if !contains(j, "DOCTOR FAILOVER dn1 done") || !contains(j, "DOCTOR REWIND dn1 done") {
			t.Errorf("journal: want the doctor's failover and rewind of dn1, got %q", j)
		}
		if v := c.nodeValue(t, dn1, "SELECT pg_is_in_recovery()"); v != "t" {
			t.Errorf("dn1 after the rewind: in recovery = %s", v)
		}
		// cn2 was cut off with dn1 and missed the re-point: the doctor
		// refreshed it, so it routes dn1's slots to dn1s.
		want := "dn1s=" + s.addr(1) + ":" + strconv.Itoa(dn1s.Port)
		waitFor(t, time.Minute, "cn2 routes to dn1s", func() (bool, string) {
			v := c.serversOf(t, cn2)
			return strings.Contains(v, want) && !strings.Contains(v, "dn1="), v
		})
		if v := c.nodeValue(t, cn2, "SELECT count(*) FROM orders"); v != "200" {
			t.Errorf("orders through cn2: %s, want 200", v)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("DBA failover during a cut", func(t *testing.T) {
		c.mustRows(t, time.Minute, "STOP DOCTOR")
		w := c.startNSWriter(t, 1, dn1s, 1000000)
		w.warmUp(t, 15)
		up := linkDown(t, 1)
		cut := time.Now()
		rows, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1s")
		t.Logf("FAILOVER during the cut: %q\n%s", rows, notices)
		c.mustNodeSQL(t, cn2, "INSERT INTO orders SELECT g FROM generate_series(201, 300) g")
		up()
		// The doctor is off: MONITOR says what is wrong.
		waitFor(t, time.Minute, "MONITOR ALL shows two masters", func() (bool, string) {
			r := c.monitor(t)["dn1s"]
			return r.Status == "f" && strings.Contains(r.Desc, "two masters"), fmt.Sprintf("%+v", r)
		})
		rows, _ = c.mustRows(t, 30*time.Second, "MONITOR HA dn1s")
		if len(rows) != 1 || len(rows[0]) < 5 || !strings.Contains(rows[0][4], "runs as a primary but the catalog says it is a slave of dn1") {
			t.Errorf("MONITOR HA dn1s: %q", rows)
		}
		c.watchPrimaries(t, 3*time.Second, dn1s, dn1, dn1s)
		c.mustRows(t, time.Minute, "START DOCTOR")
		waitFor(t, time.Minute, "the doctor fences dn1s", func() (bool, string) {
			j := c.doctorJournal(t)
			return contains(j, "DOCTOR FENCE dn1s done"), fmt.Sprint(j)
		})
		acked := w.stop()
		c.checkAcked(t, acked, dn1, cut, 2*time.Second)
		// Kicked out by a DBA: stopped, and left for the DBA's REWIND.
		time.Sleep(5 * time.Second)
		if r := c.monitor(t)["dn1s"]; r.Status != "f" || !strings.Contains(r.Desc, "not running") {
			t.Errorf("MONITOR ALL dn1s after the fence: %+v", r)
		}
		if l := c.listNode(t)["dn1s"]; l[2] != "f" || l[3] != "dn1" {
			t.Errorf("LIST NODE dn1s after the fence: %v", l)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) FROM orders"); v != "300" {
			t.Errorf("orders through cn1: %s, want 300", v)
		}
	})
}
