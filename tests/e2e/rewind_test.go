package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRewindAfterSwitchoverAndCrash is issue 9's known failure: a node made
// master by a SWITCHOVER and killed moments later, then failed over, must
// come back with REWIND. PostgreSQL 15's pg_rewind takes the target's
// timeline from its last checkpoint; a promotion does not wait for one, so
// without a CHECKPOINT after every promotion the killed node's control file
// still names the timeline before its promotion and pg_rewind reads WAL
// where it has none ("could not find previous WAL record"). Several rounds,
// each on another node.
func TestRewindAfterSwitchoverAndCrash(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addNode(t, "datanode slave", "dn1p", "dn1", "h3", "potential")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE r (a int)")

	master, rows := "dn1", 0
	nodes := []string{"dn1s", "dn1p", "dn1"}
	for round := 0; round < 4; round++ {
		// A slave of the current master, each round another node.
		x := nodes[round%3]
		if x == master {
			x = nodes[(round+1)%3]
		}
		t.Logf("round %d: SWITCHOVER to %s, kill it, FAILOVER, REWIND it", round+1, x)
		c.mustRows(t, 3*time.Minute, "SWITCHOVER DATANODE SLAVE "+x)
		c.mustNodeSQL(t, c.node(x), fmt.Sprintf("INSERT INTO r SELECT generate_series(1, 100); INSERT INTO r VALUES (%d)", round))
		rows += 101
		syscall.Kill(postmasterPID(t, c.node(x)), syscall.SIGKILL)
		res, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE "+x)
		if len(res) != 1 {
			t.Fatalf("FAILOVER rows = %q\n%s", res, notices)
		}
		master = res[0][0]
		res, notices = c.mustRows(t, 3*time.Minute, "REWIND DATANODE SLAVE "+x)
		if len(res) != 1 || strings.Join(res[0], "|") != x+"|t|rewind success" {
			t.Fatalf("REWIND rows = %q\n%s", res, notices)
		}
		c.mustNodeSQL(t, c.node(master), "INSERT INTO r VALUES (-1)")
		rows++
		want := fmt.Sprint(rows)
		waitFor(t, 30*time.Second, x+" streaming from "+master+" with every row", func() (bool, string) {
			got, err := c.nodeSQL(c.node(x), "SELECT pg_is_in_recovery(), count(*) FROM r")
			return err == nil && len(got) == 1 && got[0][0] == "t" && got[0][1] == want, fmt.Sprint(got, err)
		})
	}
}
