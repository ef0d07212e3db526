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
// on node n, or was acknowledged later than slack after cut and is not on
// n either (only sync replication's wait stands between a cut-off master
// and a lost commit; a late answer for a write that reached the standby
// before the cut is logged).
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
	// A write acknowledged late but found on n had reached its standby
	// before the cut; only the standby's answer was held up by the cut
	// (it came once the link was back): no write of the cut-off master
	// alone.
	var lost, late, lateKept []int
	for id, at := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
		if at.After(cut.Add(slack)) {
			if have[id] {
				lateKept = append(lateKept, id)
			} else {
				late = append(late, id)
			}
		}
	}
	if len(lateKept) > 0 {
		t.Logf("%d writes were acknowledged more than %v after the cut, all of them on %s: %v", len(lateKept), slack, n.Name, lateKept)
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

// TestPartition: four namespace hosts, dn1 (th3) with its sync slave dn1s
// (th1), a coordinator on the cut host too (cn2, th3), the doctor on; on
// th4 dn3 with a sync and a potential slave, and the async-only dn4 and
// dn5 (partitionTh4).
//
//   - Every host's link cut: the manager sees nothing and does nothing.
//   - th4 cut: see partitionTh4.
//   - th3 cut while a client inside th3 writes to dn1 and another through
//     cn1 (th2) into a distributed table: the doctor fails over to dn1s;
//     no write is acknowledged after the cut; cn1 takes writes again at
//     once and sends dn1's slots to dn1s, never to dn1; markers are never
//     acknowledged by two nodes at once nor by dn1; the link back, dn1 is
//     fenced and rewound into a streaming slave of dn1s, and cn2, which
//     missed the re-point, routes to dn1s; no acknowledged row lost, on
//     either path.
//   - The doctor off, th1 (dn1s, now master) cut, a DBA's FAILOVER: the
//     link back, MONITOR ALL and MONITOR HA show two masters; the doctor,
//     started, fences dn1s (kicked out, allowcure off) and leaves it
//     stopped for the DBA's REWIND.
func TestPartition(t *testing.T) {
	c, s := newSSHCluster(t, 4)
	c.addNode(t, "gtmcoord master", "gc", "", "th2", "")
	c.addNode(t, "coordinator master", "cn1", "", "th2", "")
	c.addNode(t, "coordinator master", "cn2", "", "th3", "")
	c.addNode(t, "datanode master", "dn1", "", "th3", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "th1", "")
	c.addNode(t, "datanode master", "dn2", "", "th2", "")
	// th4: dn3 with a sync and a potential slave; dn4 and dn5 async-only
	// (one async slave each). Their slaves are on th2, which no subtest
	// cuts.
	c.addNode(t, "datanode master", "dn3", "", "th4", "")
	c.addNode(t, "datanode slave", "dn3s", "dn3", "th2", "")
	c.addNode(t, "datanode slave", "dn3p", "dn3", "th2", "potential")
	c.addNode(t, "datanode master", "dn4", "", "th4", "")
	c.addNode(t, "datanode slave", "dn4a", "dn4", "th2", "async")
	c.addNode(t, "datanode master", "dn5", "", "th4", "")
	c.addNode(t, "datanode slave", "dn5a", "dn5", "th2", "async")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	dn1, dn1s, cn1, cn2 := c.node("dn1"), c.node("dn1s"), c.node("cn1"), c.node("cn2")
	for _, m := range []string{"dn1", "dn3", "dn4", "dn5"} {
		c.mustNodeSQL(t, c.node(m), "CREATE TABLE load (id int PRIMARY KEY); CREATE TABLE marker (node text, at timestamptz)")
	}
	c.mustNodeSQL(t, cn1, "CREATE TABLE orders (id int NOT NULL); SELECT adb.create_distributed_table('orders', 'id')")
	c.mustNodeSQL(t, cn1, "CREATE TABLE corders (id int NOT NULL); SELECT adb.create_distributed_table('corders', 'id')")
	c.mustNodeSQL(t, cn1, "INSERT INTO orders SELECT g FROM generate_series(1, 100) g")
	// Every slave replayed all of its master's WAL, the tables and the
	// rows of orders too (the async ones as well: dn5a is failed over to
	// with FORCE).
	for _, sl := range []string{"dn1s", "dn3s", "dn3p", "dn4a", "dn5a"} {
		sl := c.node(sl)
		lsn := c.nodeValue(t, c.node(sl.Master), "SELECT pg_current_wal_lsn()")
		waitFor(t, 30*time.Second, sl.Name+" replays its master's WAL", func() (bool, string) {
			v, err := c.nodeSQL(sl, "SELECT pg_last_wal_replay_lsn() >= '"+lsn+"'::pg_lsn")
			return err == nil && len(v) == 1 && v[0][0] == "t", fmt.Sprint(v, err)
		})
	}
	c.mustRows(t, time.Minute, "START DOCTOR")
	before := c.listNode(t)

	t.Run("blind manager", func(t *testing.T) {
		var ups []func()
		for i := 1; i <= 4; i++ {
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

	t.Run("two slaves and async-only masters cut off", func(t *testing.T) {
		c.partitionTh4(t)
	})
	if t.Failed() {
		return
	}

	t.Run("doctor failover of a cut-off master", func(t *testing.T) {
		w := c.startNSWriter(t, 3, dn1, 0)
		// A client through cn1 (th2, not cut) into a distributed table.
		cw := startLoadWriter("coordinator", c.nodeConnString(cn1), "INSERT INTO corders VALUES ($1)", 1)
		defer cw.stop()
		w.warmUp(t, 15)
		waitFor(t, time.Minute, "20 writes through cn1 acknowledged", func() (bool, string) {
			return len(cw.ids()) >= 20, fmt.Sprint(len(cw.ids()))
		})
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
		failedOver := time.Now()
		c.routesToNewMaster(t, cn1, dn1, dn1s, 3)
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
		// The client through cn1 writes again (a statement of it that
		// hung on dn1 during the cut ends by its timeout, 10 s).
		cw.waitWrite(t, failedOver, 5*time.Second)
		// The rewind's entry ends once the sync names and coordinators
		// are written again, after dn1 streams.
		waitFor(t, 30*time.Second, "the journal has the doctor's failover and rewind of dn1", func() (bool, string) {
			j := c.doctorJournal(t)
			return contains(j, "DOCTOR FAILOVER dn1 done") && contains(j, "DOCTOR REWIND dn1 done"), fmt.Sprint(j)
		})
		t.Logf("doctor journal: %q", c.doctorJournal(t))
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
		cw.stop()
		c.checkLoad(t, cn1, "SELECT id FROM corders", cw)
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

// partitionTh4 cuts th4 off, where dn3 (a sync slave dn3s and a potential
// one dn3p), dn4 and dn5 (async-only) are masters, while a client inside
// th4 writes to dn3 and another to dn4:
//
//   - the doctor promotes the slave of dn3 with every acknowledged commit,
//     the other follows it, and dn3 rejoins as a slave once the link is
//     back; nothing is acknowledged by dn3 after the cut;
//   - dn4 is not failed over (docs/HA.md rule 1a): it still is the master
//     when the link is back, its writes go on, and nothing is lost;
//   - a DBA's FAILOVER … FORCE of dn5 during the cut: once the link is
//     back the doctor fences dn5 and leaves it stopped, and it never
//     acknowledges a write after that.
func (c *testCluster) partitionTh4(t *testing.T) {
	dn3, dn4, dn4a, dn5, dn5a := c.node("dn3"), c.node("dn4"), c.node("dn4a"), c.node("dn5"), c.node("dn5a")
	w3 := c.startNSWriter(t, 4, dn3, 0)
	w4 := c.startNSWriter(t, 4, dn4, 0)
	w3.warmUp(t, 15)
	w4.warmUp(t, 15)
	up := linkDown(t, 4)
	cut := time.Now()
	var promoted, other string
	waitFor(t, 2*time.Minute, "the doctor promotes a slave of dn3", func() (bool, string) {
		l := c.listNode(t)
		for _, pair := range [][2]string{{"dn3s", "dn3p"}, {"dn3p", "dn3s"}} {
			if l[pair[0]][3] == "" && l["dn3"][3] == pair[0] {
				promoted, other = pair[0], pair[1]
				return true, ""
			}
		}
		return false, fmt.Sprint(l)
	})
	t.Logf("dn3 failed over to %s %v after the cut", promoted, time.Since(cut).Round(100*time.Millisecond))
	waitFor(t, time.Minute, "the doctor's failover of dn3 ends", func() (bool, string) {
		j := c.doctorJournal(t)
		return contains(j, "DOCTOR FAILOVER dn3 done"), fmt.Sprint(j)
	})
	newM, otherS := c.node(promoted), c.node(other)
	if l := c.listNode(t)[other]; l[3] != promoted {
		t.Errorf("LIST NODE %s after the failover: %v, want a slave of %s", other, l, promoted)
	}

	// The doctor's own actions hold the cluster lock for moments (its
	// refused failovers of dn4 and dn5 too): a DBA then gets 55006 and
	// tries again.
	var rows [][]string
	var notices string
	waitFor(t, time.Minute, "FAILOVER DATANODE dn5 FORCE runs", func() (bool, string) {
		var err error
		rows, notices, err = c.psqlRows(3*time.Minute, "FAILOVER DATANODE dn5 FORCE")
		if err != nil && !strings.Contains(notices, "55006") {
			t.Fatalf("FAILOVER DATANODE dn5 FORCE: %v\n%s", err, notices)
		}
		return err == nil, notices
	})
	t.Logf("FAILOVER DATANODE dn5 FORCE during the cut: %q\n%s", rows, notices)
	if l := c.listNode(t); l["dn5a"][3] != "" || l["dn5"][2] != "f" {
		t.Errorf("LIST NODE after FAILOVER DATANODE dn5 FORCE: dn5a %v, dn5 %v", l["dn5a"], l["dn5"])
	}
	c.watchPrimaries(t, 2*time.Second, dn3, dn3, c.node("dn3s"), c.node("dn3p"))
	// The doctor saw dn4 as lost as long as dn3 (and longer, by now): an
	// async-only master is not failed over.
	c.notFailedOver(t, "dn4")
	if l := c.listNode(t); l["dn4"][3] != "" || l["dn4a"][3] != "dn4" {
		t.Errorf("LIST NODE during the cut: dn4 %v, dn4a %v; want dn4 still the master", l["dn4"], l["dn4a"])
	}
	w4.mu.Lock()
	during := 0
	for _, at := range w4.acked {
		if at.After(cut.Add(time.Second)) {
			during++
		}
	}
	w4.mu.Unlock()
	if during == 0 {
		t.Errorf("dn4, async-only, acknowledged no write during the cut")
	}

	up()
	back := time.Now()
	// dn5 runs as a primary behind the link that came back: the doctor
	// fences it. Markers show who acknowledges until then.
	var dn5Acks int
	waitFor(t, 30*time.Second, "the doctor fences dn5", func() (bool, string) {
		p := c.primaries(dn5, dn5a)
		if contains(p, "dn5") {
			dn5Acks++
		}
		j := c.doctorJournal(t)
		return contains(j, "DOCTOR FENCE dn5 done"), fmt.Sprint(p, j)
	})
	t.Logf("dn5 fenced %v after the link came back; it acknowledged %d marker rounds before", time.Since(back).Round(100*time.Millisecond), dn5Acks)
	// Measured 1.3–8.1 s: a look begun during the cut must end first.
	if took := time.Since(back); took > 20*time.Second {
		t.Errorf("dn5 was fenced %v after the link came back; want a few seconds", took)
	}
	c.watchPrimaries(t, 3*time.Second, dn5, dn5, dn5a)
	waitFor(t, 3*time.Minute, "dn3 back as a streaming slave of "+promoted, func() (bool, string) {
		rows, _, err := c.psqlRows(30*time.Second, "MONITOR HA dn3")
		l := c.listNode(t)["dn3"]
		return err == nil && len(rows) == 1 && len(rows[0]) > 4 && rows[0][4] == "streaming" && l[2] == "t" && l[3] == promoted, fmt.Sprint(rows, l)
	})
	acked3 := w3.stop()
	c.checkAcked(t, acked3, newM, cut, 2*time.Second)
	// The other slave follows the new master: a row written there
	// reaches it, and dn3 too; it has every acknowledged row.
	c.mustNodeSQL(t, newM, "INSERT INTO marker VALUES ('followed', now())")
	for _, n := range []nodeSpec{otherS, dn3} {
		waitFor(t, 30*time.Second, n.Name+" replays "+promoted+"'s writes", func() (bool, string) {
			v, err := c.nodeSQL(n, "SELECT count(*) FROM marker WHERE node = 'followed'")
			return err == nil && len(v) == 1 && v[0][0] == "1", fmt.Sprint(v, err)
		})
	}
	c.checkAcked(t, acked3, otherS, cut, 2*time.Second)
	if rows, _ := c.mustRows(t, 30*time.Second, "MONITOR HA "+other); len(rows) != 1 || len(rows[0]) < 5 || rows[0][4] != "streaming" {
		t.Errorf("MONITOR HA %s: %q", other, rows)
	}

	// dn4: still the master, writable, with every acknowledged row, and
	// its slave catches up.
	w4.waitAck(t, back, 30*time.Second)
	acked4 := w4.stop()
	c.checkAcked(t, acked4, dn4, cut, time.Hour)
	c.mustNodeSQL(t, dn4, "INSERT INTO marker VALUES ('after', now())")
	waitFor(t, 30*time.Second, "dn4a replays dn4's writes", func() (bool, string) {
		v, err := c.nodeSQL(dn4a, "SELECT count(*) FROM marker WHERE node = 'after'")
		return err == nil && len(v) == 1 && v[0][0] == "1", fmt.Sprint(v, err)
	})
	c.checkAcked(t, acked4, dn4a, cut, time.Hour)
	c.notFailedOver(t, "dn4")
	// dn5, fenced after a DBA's failover, stays kicked out and stopped.
	if r := c.monitor(t)["dn5"]; r.Status != "f" || !strings.Contains(r.Desc, "not running") {
		t.Errorf("MONITOR ALL dn5 after the fence: %+v", r)
	}
	if l := c.listNode(t)["dn5"]; l[2] != "f" || l[3] != "dn5a" {
		t.Errorf("LIST NODE dn5 after the fence: %v", l)
	}
	t.Logf("doctor journal: %q", c.doctorJournal(t))
}

// notFailedOver fails the test when the journal has an entry (any step)
// naming async-only master node other than a failover the doctor tried
// and the switch refused for want of a synchronous standby (docs/HA.md
// rule 1a); those it logs.
func (c *testCluster) notFailedOver(t *testing.T, node string) {
	t.Helper()
	// An attempt may be under way (it takes tens of milliseconds, every
	// few seconds while the master is lost): judge it once it ended.
	var rows [][]string
	waitFor(t, 10*time.Second, "no entry of "+node+" running", func() (bool, string) {
		rows, _ = c.mustRows(t, 30*time.Second, "SELECT command, status, step, detail FROM journal WHERE command LIKE '%"+node+"%' ORDER BY id")
		for _, r := range rows {
			if contains(strings.Fields(r[0]), node) && r[1] == "running" {
				return false, fmt.Sprint(r)
			}
		}
		return true, ""
	})
	refused := 0
	for _, r := range rows {
		if !contains(strings.Fields(r[0]), node) {
			continue
		}
		if r[0] == "DOCTOR FAILOVER "+node && r[1] == "failed" && strings.Contains(r[3], "Can't find a Synchronous standby node") {
			refused++
			continue
		}
		t.Errorf("journal entry of the async-only master %s: %q", node, r)
	}
	if l := c.listNode(t); l[node][3] != "" {
		t.Errorf("LIST NODE %s: %v, want a master", node, l[node])
	}
	t.Logf("the doctor's failovers of %s refused for want of a sync standby: %d", node, refused)
}

// waitAck waits until the writer had a write acknowledged after from.
func (w *nsWriter) waitAck(t *testing.T, from time.Time, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "a write acknowledged again", func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, at := range w.acked {
			if at.After(from) {
				return true, ""
			}
		}
		return false, fmt.Sprint(len(w.acked), " acknowledged, none after ", from.Format(time.TimeOnly))
	})
}

// routesToNewMaster checks, right after old's failover to new while old's
// host (namespace host i) is still cut off, that coordinator cn takes
// writes again within a few seconds and sends those of old's slots to new,
// never to old: a batch of markers written through cn lands partly on new
// and not at all on old (read from inside host i).
func (c *testCluster) routesToNewMaster(t *testing.T, cn, old, new nodeSpec, i int) {
	t.Helper()
	const batch = "INSERT INTO corders SELECT g FROM generate_series(900001, 900040) g"
	start := time.Now()
	var err error
	for time.Since(start) < 20*time.Second {
		if err = c.execTimeout(cn, batch, 3*time.Second); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	if err != nil {
		t.Fatalf("writes through %s after the failover: %v", cn.Name, err)
	}
	t.Logf("%s took writes %v after the failover ended", cn.Name, took.Round(100*time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("%s took writes only %v after the failover ended; want a few seconds", cn.Name, took)
	}
	shards := c.shardsQuery(t, new, "corders")
	count := "SELECT count(*) FROM (" + shards + ") s WHERE id > 900000"
	if v := c.nodeValue(t, cn, "SELECT count(*) FROM corders WHERE id > 900000"); v != "40" {
		t.Errorf("markers through %s: %s, want 40", cn.Name, v)
	}
	if v := c.nodeValue(t, new, count); v == "0" {
		t.Errorf("none of the 40 markers written through %s after the failover is on the new master %s", cn.Name, new.Name)
	} else {
		t.Logf("%s of the 40 markers are on %s", v, new.Name)
	}
	if v, err := c.nsNodeValue(i, old, count); err != nil || v != "0" {
		t.Errorf("markers written through %s after the failover on the old master %s: %q (%v), want 0", cn.Name, old.Name, v, err)
	}
}

// execTimeout runs sql on node n in a session of its own, giving up after
// d.
func (c *testCluster) execTimeout(n nodeSpec, sql string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(n))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// nsNodeValue runs a one-value query on node n from inside namespace host
// i (which reaches n when i is n's host and cut off).
func (c *testCluster) nsNodeValue(i int, n nodeSpec, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", "adbth"+strconv.Itoa(i), "psql", "-X", "-h", c.host(n.Host).Addr,
		"-p", strconv.Itoa(n.Port), "-U", c.dbUser(), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-c", sql)
	cmd.Env = append(os.Environ(), c.nodeEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql on %s from th%d: %w: %s", n.Name, i, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
