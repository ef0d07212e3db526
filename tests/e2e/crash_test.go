package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// crashPoints are the manager's kill -9 points (adbmgr start --crash-at,
// internal/mgr/crash.go) TestCrashDuringSwitch goes through: the most
// dangerous boundaries of a FAILOVER and a SWITCHOVER — the old master
// stopped, just after the promotion, just after the catalog commit, during
// the re-pointing of the other slaves (follow) and the old master's rejoin.
var crashPoints = []string{
	"FAILOVER:after fence",
	"FAILOVER:after promote",
	"FAILOVER:journal catalog",
	"FAILOVER:after follow",
	"SWITCHOVER:after stop old master",
	"SWITCHOVER:after promote",
	"SWITCHOVER:journal catalog",
	"SWITCHOVER:after rejoin",
}

// trials is how many times the soak tests repeat their case:
// ADBMGR_E2E_TRIALS (make soak sets 50), 1 by default.
func trials() int {
	if n, err := strconv.Atoi(os.Getenv("ADBMGR_E2E_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// TestCrashDuringSwitch kills the manager (SIGKILL, from inside: the
// --crash-at hook) at each point of crashPoints while a client commits
// rows one by one on the datanode master and another through the
// coordinator cn1, restarts it without the hook,
// and checks: the journal entry is interrupted at the step it reached and
// the doctor stays off; never two writable masters; after the DBA's next
// commands (START DOCTOR, and FAILOVER of a master the catalog names but
// which does not answer, REWIND of the nodes left out) the catalog matches
// the nodes' real roles and every acknowledged row, of either client, is
// on the master. One cluster serves every point, whichever node is master
// by then.
func TestCrashDuringSwitch(t *testing.T) {
	c, group := newCrashCluster(t)
	next := 1
	for trial := 0; trial < trials(); trial++ {
		for _, point := range crashPoints {
			ok := t.Run(strings.NewReplacer(":", "_", " ", "_").Replace(point), func(t *testing.T) {
				next = c.crashCase(t, point, group, next)
			})
			if !ok {
				return // the cluster is in an unknown state: the next points would only repeat the failure
			}
		}
	}
}

// newCrashCluster is the crash tests' cluster: gtmcoord gc (h1),
// coordinator cn1 (h2), datanode dn1 (h3) with its sync slave dn1s (h1)
// and potential slave dn1p (h2) — the group returned; table load and
// marker on dn1, the distributed table cload through cn1.
func newCrashCluster(t *testing.T) (*testCluster, []nodeSpec) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h3", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.addNode(t, "datanode slave", "dn1p", "dn1", "h2", "potential")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE load (id int PRIMARY KEY); CREATE TABLE marker (node text, at timestamptz)")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE cload (id int NOT NULL); SELECT adb.create_distributed_table('cload', 'id')")
	return c, []nodeSpec{c.node("dn1"), c.node("dn1s"), c.node("dn1p")}
}

// roles is the catalog's view of the group: master, the slaves in the
// cluster, the nodes left out.
func (c *testCluster) roles(t *testing.T, group []nodeSpec) (master string, slaves, out []string) {
	t.Helper()
	var names []string
	for _, n := range group {
		names = append(names, n.Name)
	}
	rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type, incluster) "+strings.Join(names, ", "))
	for _, r := range rows {
		switch {
		case strings.HasSuffix(r[1], "master"):
			master = r[0]
		case r[2] == "t":
			slaves = append(slaves, r[0])
		default:
			out = append(out, r[0])
		}
	}
	return master, slaves, out
}

// recovery is "f" (primary), "t" (standby) or "" (does not answer).
func (c *testCluster) recovery(n nodeSpec) string {
	rows, err := c.nodeSQL(n, "SELECT pg_is_in_recovery()")
	if err != nil || len(rows) != 1 {
		return ""
	}
	return rows[0][0]
}

// consistent says whether every node the catalog calls master answers as
// a primary and every slave in the cluster as a standby.
func (c *testCluster) consistent(t *testing.T, group []nodeSpec) (bool, string) {
	master, slaves, out := c.roles(t, group)
	got := fmt.Sprintf("catalog: master %s, slaves %v, out %v; real:", master, slaves, out)
	okAll := c.recovery(c.node(master)) == "f"
	for _, n := range group {
		r := c.recovery(n)
		got += " " + n.Name + "=" + r
		if contains(slaves, n.Name) && r != "t" {
			okAll = false
		}
	}
	return okAll, got
}

// crashCase is one crash point; next is the writer's first id, and the
// next one's is returned.
func (c *testCluster) crashCase(t *testing.T, point string, group []nodeSpec, next int) int {
	master, slaves, _ := c.roles(t, group)
	if len(slaves) == 0 {
		t.Fatalf("no slave of %s in the cluster", master)
	}
	// A client commits through the master (synchronous commit) every 20 ms.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(c.node(master)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	acked := make(chan []int, 1)
	go func() {
		var ok []int
		for i := next; ctx.Err() == nil; i++ {
			if _, err := conn.Exec(ctx, "INSERT INTO load VALUES ($1)", i); err != nil {
				break // the master went away: nothing after this is acknowledged
			}
			ok = append(ok, i)
			time.Sleep(20 * time.Millisecond)
		}
		acked <- ok
	}()
	// And one through cn1, which goes on after errors.
	coord := startLoadWriter("coordinator", c.nodeConnString(c.node("cn1")), "INSERT INTO cload VALUES ($1)", next)
	defer coord.stop()
	time.Sleep(300 * time.Millisecond)

	c.M.Kill9()
	c.M.Args = []string{"--crash-at", point}
	c.M.Restart()
	cmd := "FAILOVER DATANODE " + master
	if strings.HasPrefix(point, "SWITCHOVER") {
		cmd = "SWITCHOVER DATANODE SLAVE " + slaves[0] + " 10"
	}
	start := time.Now()
	if _, stderr, err := c.psqlRows(3*time.Minute, cmd); err == nil {
		t.Fatalf("%s ended although the manager was to die at %q:\n%s", cmd, point, stderr)
	}
	c.M.Kill9() // reaps it: the hook killed it already
	if !strings.Contains(c.M.log.String(), "crash test hook") {
		t.Fatalf("the manager did not die by the hook at %q:\n%s", point, tailLines(c.M.log.String(), 30))
	}
	t.Logf("%s: the manager died at %q after %v", cmd, point, time.Since(start).Round(time.Millisecond))
	c.M.Args = nil
	c.M.Restart()

	// The journal says the command was interrupted, and where.
	rows, _ := c.mustRows(t, time.Minute, "SELECT command, status, step FROM journal ORDER BY id DESC LIMIT 1")
	if len(rows) != 1 || rows[0][1] != "interrupted" || !strings.HasPrefix(cmd, strings.Fields(rows[0][0])[0]) {
		t.Errorf("last journal entry after the crash = %q, want %s … interrupted", rows, cmd)
	} else {
		t.Logf("journal: %q", rows[0])
	}
	// Never two writable masters, before anyone acted.
	if p := c.primaries(group...); len(p) > 1 {
		t.Errorf("two writable primaries after the crash: %v", p)
	}
	ok, state := c.consistent(t, group)
	t.Logf("after the restart (doctor off): consistent=%v %s", ok, state)

	// The DBA's next commands: the doctor (kept off until now), a
	// FAILOVER when the catalog's master still does not answer as a
	// primary once the doctor had its chance (grace: well past its
	// failures × interval, 3 × 400 ms, and a look's deadline, 1 s),
	// REWIND of the nodes left out.
	const grace = 5 * time.Second
	c.mustRows(t, time.Minute, "START DOCTOR")
	defer c.mustRows(t, time.Minute, "STOP DOCTOR")
	doctorOn := time.Now()
	deadline := doctorOn.Add(90 * time.Second)
	failedOver := false
	for {
		if p := c.primaries(group...); len(p) > 1 {
			t.Errorf("two writable primaries: %v", p)
		}
		ok, state = c.consistent(t, group)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the catalog does not match the nodes' roles 90 s after the restart: %s", state)
		}
		m, _, _ := c.roles(t, group)
		if !failedOver && c.recovery(c.node(m)) != "f" && time.Since(doctorOn) > grace {
			failedOver = true
			_, stderr, err := c.psqlRows(3*time.Minute, "FAILOVER DATANODE "+m)
			t.Logf("FAILOVER DATANODE %s: %v %s", m, err, stderr)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The doctor re-points the slaves a cut-short switch did not: before
	// the REWINDs, whose last step waits for every slave to stream (and
	// holds the cluster lock, so the doctor could not meanwhile).
	waitFor(t, 30*time.Second, "the slaves in the cluster stream from the master", func() (bool, string) {
		m, slaves, _ := c.roles(t, group)
		rep, err := c.replication(c.node(m))
		for _, s := range slaves {
			if _, ok := rep[s]; !ok || err != nil {
				return false, fmt.Sprintf("streaming from %s: %v %v", m, rep, err)
			}
		}
		return true, ""
	})
	_, _, out := c.roles(t, group)
	for _, n := range out {
		if _, stderr, err := c.psqlRows(3*time.Minute, "REWIND DATANODE SLAVE "+n); err != nil {
			// The doctor may be rewinding it meanwhile (its own failover).
			t.Logf("REWIND DATANODE SLAVE %s: %v %s", n, err, stderr)
		}
	}
	waitFor(t, 90*time.Second, "every node of the group back in the cluster with the right role", func() (bool, string) {
		ok, state := c.consistent(t, group)
		_, _, out := c.roles(t, group)
		return ok && len(out) == 0, state
	})

	// No acknowledged row lost.
	cancel()
	okIDs := <-acked
	master, _, _ = c.roles(t, group)
	got := map[int]bool{}
	for _, r := range c.mustNodeSQL(t, c.node(master), "SELECT id FROM load") {
		id, _ := strconv.Atoi(r[0])
		got[id] = true
	}
	var lost []int
	for _, id := range okIDs {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged commits are missing on the master %s: %v", len(lost), len(okIDs), master, lost)
	}
	t.Logf("%d acknowledged commits, all on %s; %s", len(okIDs), master, state)
	coord.stop()
	c.checkLoad(t, c.node(master), c.shardsQuery(t, c.node(master), "cload"), coord)
	if len(okIDs) > 0 {
		next = okIDs[len(okIDs)-1] + 1
	}
	return next + 1000
}
