package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rewindCluster is a gtmcoord master gc and a datanode master dn1 with a
// sync slave dn1s and a potential one dn1p, on three hosts, initialised;
// sql has run on dn1.
func rewindCluster(t *testing.T, sql string) *testCluster {
	t.Helper()
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addNode(t, "datanode slave", "dn1p", "dn1", "h3", "potential")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("dn1"), sql)
	return c
}

// TestRewindAfterSwitchoverAndCrash is issue 9's known failure: a node made
// master by a SWITCHOVER and killed moments later, then failed over, must
// come back with REWIND. PostgreSQL 15's pg_rewind takes the target's
// timeline from its last checkpoint; a promotion does not wait for one, so
// without a CHECKPOINT after every promotion the killed node's control file
// still names the timeline before its promotion and pg_rewind reads WAL
// where it has none ("could not find previous WAL record"). Several rounds,
// each on another node.
func TestRewindAfterSwitchoverAndCrash(t *testing.T) {
	c := rewindCluster(t, "CREATE TABLE r (a int)")

	master, rows, k := "dn1", 0, 0
	nodes := []string{"dn1s", "dn1p", "dn1"}
	for round := 0; round < 4; round++ {
		// A slave of the current master, in turn.
		for nodes[k%3] == master {
			k++
		}
		x := nodes[k%3]
		k++
		// Every other round its host's agent dies too, as in the doctor's
		// failover of a master that cannot be restarted.
		agent := round%2 == 1
		t.Logf("round %d: SWITCHOVER to %s, kill it (and its agent: %v), FAILOVER, REWIND it", round+1, x, agent)
		c.mustRows(t, 3*time.Minute, "SWITCHOVER DATANODE SLAVE "+x)
		c.mustNodeSQL(t, c.node(x), fmt.Sprintf("INSERT INTO r SELECT generate_series(1, 100); INSERT INTO r VALUES (%d)", round))
		rows += 101
		h := c.host(c.node(x).Host)
		if agent {
			syscall.Kill(c.agentPID(h), syscall.SIGKILL)
		}
		syscall.Kill(postmasterPID(t, c.node(x)), syscall.SIGKILL)
		res, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE "+x)
		if len(res) != 1 {
			t.Fatalf("FAILOVER rows = %q\n%s", res, notices)
		}
		if agent {
			c.mustRows(t, time.Minute, "START AGENT "+h.Name)
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

// TestRewindSeedOrderAndBaseBackup: after a FAILOVER the old master comes
// back in the seed's order (DROP, ADD … FOR the new master, REWIND); a node
// pg_rewind cannot bring back is refused with pg_rewind's own lines as the
// DETAIL and REWIND … BASEBACKUP in the HINT, and that form brings it back.
func TestRewindSeedOrderAndBaseBackup(t *testing.T) {
	c := rewindCluster(t, "CREATE TABLE b (a int); INSERT INTO b SELECT generate_series(1, 1000)")
	count := 1000
	// rejoins runs REWIND node (with form), which must answer desc, and
	// checks node is a slave of master in the catalog, streaming every row.
	rejoins := func(t *testing.T, node, master, form, desc string) {
		t.Helper()
		res, notices := c.mustRows(t, 3*time.Minute, "REWIND DATANODE SLAVE "+node+form)
		if len(res) != 1 || strings.Join(res[0], "|") != node+"|t|"+desc {
			t.Fatalf("REWIND rows = %q\n%s", res, notices)
		}
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, initialized, incluster) "+node)
		if want := fmt.Sprintf("[[%s datanode slave %s t t]]", node, master); fmt.Sprint(rows) != want {
			t.Errorf("LIST NODE %s = %q, want %q", node, rows, want)
		}
		c.mustNodeSQL(t, c.node(master), "INSERT INTO b VALUES (0)")
		count++
		want := fmt.Sprint(count)
		waitFor(t, 30*time.Second, node+" streaming from "+master+" with every row", func() (bool, string) {
			got, err := c.nodeSQL(c.node(node), "SELECT pg_is_in_recovery(), count(*) FROM b")
			return err == nil && len(got) == 1 && got[0][0] == "t" && got[0][1] == want, fmt.Sprint(got, err)
		})
	}

	t.Run("SeedOrder", func(t *testing.T) {
		res, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1 TO dn1s")
		if len(res) != 1 || res[0][0] != "dn1s" {
			t.Fatalf("FAILOVER rows = %q\n%s", res, notices)
		}
		dn1 := c.node("dn1")
		c.mustRows(t, time.Minute, "DROP DATANODE SLAVE dn1")
		c.mustRows(t, time.Minute, fmt.Sprintf("ADD DATANODE SLAVE dn1 FOR dn1s (HOST=h1, PORT=%d, PATH='%s')", dn1.Port, dn1.Path))
		rejoins(t, "dn1", "dn1s", "", "rewind success")
	})

	t.Run("BaseBackup", func(t *testing.T) {
		res, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1s TO dn1p")
		if len(res) != 1 || res[0][0] != "dn1p" {
			t.Fatalf("FAILOVER rows = %q\n%s", res, notices)
		}
		// dn1s's WAL is gone: pg_rewind cannot read its last checkpoint.
		wal, err := filepath.Glob(filepath.Join(c.node("dn1s").Path, "pg_wal", "0000*"))
		if err != nil || len(wal) == 0 {
			t.Fatalf("dn1s's WAL files: %v %v", wal, err)
		}
		for _, f := range wal {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		_, stderr, err := c.psqlRows(3*time.Minute, "REWIND DATANODE SLAVE dn1s")
		if err == nil || !strings.Contains(stderr, "55000: rewind dn1s: pg_rewind failed") ||
			!strings.Contains(stderr, "DETAIL:  pg_rewind") || !strings.Contains(stderr, "HINT:  REWIND DATANODE SLAVE dn1s BASEBACKUP") {
			t.Fatalf("REWIND of a node without its WAL: %v\n%s", err, stderr)
		}
		t.Logf("REWIND of a node without its WAL:\n%s", stderr)
		rejoins(t, "dn1s", "dn1p", " BASEBACKUP", "rewind by base backup success")
		rows, _ := c.mustRows(t, time.Minute, "SELECT status, step, detail FROM journal WHERE command = 'REWIND dn1s' ORDER BY id DESC LIMIT 1")
		if len(rows) != 1 || strings.Join(rows[0], "|") != "done|end|by base backup" {
			t.Errorf("journal = %q", rows)
		}
	})
}
