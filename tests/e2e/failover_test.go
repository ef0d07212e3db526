package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestFailoverAndRewind: FAILOVER DATANODE keeps every acknowledged commit,
// leaves one master, re-points the other slave and the coordinators;
// REWIND brings the old master back as a slave; SWITCHOVER swaps back
// without losing anything.
func TestFailoverAndRewind(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addNode(t, "datanode slave", "dn1p", "dn1", "h3", "potential")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	// Every commit below is acknowledged by a sync standby before psql
	// returns: these rows must survive the failover.
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE f (a int); INSERT INTO f SELECT generate_series(1, 1000)")
	for i := 0; i < 20; i++ {
		c.mustNodeSQL(t, c.node("dn1"), fmt.Sprintf("INSERT INTO f VALUES (%d)", 2000+i))
	}
	listNode := func(t *testing.T) map[string]string {
		t.Helper()
		rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, type, mastername, sync_state, initialized, incluster)")
		out := map[string]string{}
		for _, r := range rows {
			out[r[0]] = strings.Join(r[1:], " ")
		}
		return out
	}
	replication := func(n string) map[string]string {
		out := map[string]string{}
		rows, err := c.nodeSQL(c.node(n), "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'")
		if err == nil {
			for _, r := range rows {
				out[r[0]] = r[1]
			}
		}
		return out
	}

	t.Run("Failover", func(t *testing.T) {
		rows, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1")
		if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1s|t|failover datanode success" {
			t.Fatalf("FAILOVER rows = %q\n%s", rows, notices)
		}
		for _, w := range []string{"have the best wal lsn", "was successfully promoted", "kicked out", "successfully completed"} {
			if !strings.Contains(notices, w) {
				t.Errorf("NOTICEs lack %q:\n%s", w, notices)
			}
		}
		got := listNode(t)
		want := map[string]string{
			"dn1s": "datanode master   t t",
			"dn1p": "datanode slave dn1s sync t t",
			"dn1":  "datanode slave dn1s async f f",
		}
		for n, w := range want {
			if got[n] != w {
				t.Errorf("LIST NODE %s = %q, want %q", n, got[n], w)
			}
		}
		if v := c.nodeValue(t, c.node("dn1s"), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("dn1s in recovery after the failover: %s", v)
		}
		if v := c.nodeValue(t, c.node("dn1s"), "SELECT count(*) FROM f"); v != "1020" {
			t.Errorf("dn1s holds %s rows of the 1020 acknowledged ones", v)
		}
		if _, err := c.nodeSQL(c.node("dn1"), "SELECT 1"); err == nil {
			t.Error("the old master dn1 still answers: two masters")
		}
		waitFor(t, 30*time.Second, "dn1p streaming from dn1s as sync", func() (bool, string) {
			r := replication("dn1s")
			return r["dn1p"] == "sync", fmt.Sprint(r)
		})
		c.mustNodeSQL(t, c.node("dn1s"), "INSERT INTO f VALUES (3000)")
		waitFor(t, 30*time.Second, "the new row on dn1p", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1p"), "SELECT count(*) FROM f WHERE a = 3000")
			return err == nil && len(rows) == 1 && rows[0][0] == "1", fmt.Sprint(rows, err)
		})
		srv := c.mustNodeSQL(t, c.node("cn1"), "SELECT srvname, array_to_string(srvoptions, ',') FROM pg_foreign_server")
		if len(srv) != 1 || srv[0][0] != "dn1s" || !strings.Contains(srv[0][1], fmt.Sprintf("port=%d", c.node("dn1s").Port)) {
			t.Errorf("cn1's foreign servers = %q, want dn1 renamed to dn1s with its port", srv)
		}
		if v := c.nodeValue(t, c.node("cn1"), "SELECT type FROM adb.node WHERE name = 'dn1s'"); v != "datanode master" {
			t.Errorf("adb.node on cn1 says dn1s is %q", v)
		}
	})

	t.Run("Rewind", func(t *testing.T) {
		rows, notices := c.mustRows(t, 3*time.Minute, "REWIND DATANODE SLAVE dn1")
		if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1|t|rewind success" {
			t.Fatalf("REWIND rows = %q\n%s", rows, notices)
		}
		if got := listNode(t)["dn1"]; got != "datanode slave dn1s potential t t" {
			t.Errorf("LIST NODE dn1 = %q", got)
		}
		waitFor(t, 30*time.Second, "dn1 streaming from dn1s as potential", func() (bool, string) {
			r := replication("dn1s")
			return r["dn1"] == "potential" && r["dn1p"] == "sync", fmt.Sprint(r)
		})
		waitFor(t, 30*time.Second, "the rows written after the failover on dn1", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1"), "SELECT count(*) FROM f")
			return err == nil && len(rows) == 1 && rows[0][0] == "1021", fmt.Sprint(rows, err)
		})
		if v := c.nodeValue(t, c.node("dn1"), "SELECT pg_is_in_recovery()"); v != "t" {
			t.Errorf("dn1 is not a standby after REWIND")
		}
	})

	t.Run("Switchover", func(t *testing.T) {
		// Back to dn1 as the master, planned: nothing lost, no rewind.
		rows, notices := c.mustRows(t, 3*time.Minute, "SWITCHOVER DATANODE SLAVE dn1")
		if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1|t|switchover datanode success" {
			t.Fatalf("SWITCHOVER rows = %q\n%s", rows, notices)
		}
		if !strings.Contains(notices, "dn1s has followed dn1 success") {
			t.Errorf("the old master did not follow:\n%s", notices)
		}
		got := listNode(t)
		for n, w := range map[string]string{
			"dn1":  "datanode master   t t",
			"dn1s": "datanode slave dn1 potential t t",
			"dn1p": "datanode slave dn1 sync t t",
		} {
			if got[n] != w {
				t.Errorf("LIST NODE %s = %q, want %q", n, got[n], w)
			}
		}
		if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM f"); v != "1021" {
			t.Errorf("dn1 holds %s rows after the switchover, want 1021", v)
		}
		waitFor(t, 30*time.Second, "dn1s and dn1p streaming from dn1", func() (bool, string) {
			r := replication("dn1")
			return r["dn1p"] == "sync" && r["dn1s"] == "potential", fmt.Sprint(r)
		})
		c.mustNodeSQL(t, c.node("dn1"), "INSERT INTO f VALUES (4000)")
		waitFor(t, 30*time.Second, "the new row on dn1s", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1s"), "SELECT count(*) FROM f WHERE a = 4000")
			return err == nil && len(rows) == 1 && rows[0][0] == "1", fmt.Sprint(rows, err)
		})
		if _, stderr, err := c.psqlRows(time.Minute, "SWITCHOVER DATANODE MASTER dn1"); err == nil || !strings.Contains(stderr, "no need switchover") {
			t.Errorf("SWITCHOVER of a master: %v\n%s", err, stderr)
		}
	})

	t.Run("RefusedWithoutSyncSlave", func(t *testing.T) {
		// dn1p is dn1s's sync slave; with it down, a commit acknowledged
		// only by it could be lost: refused, and nothing changes.
		c.mustRows(t, time.Minute, "STOP DATANODE SLAVE dn1p MODE immediate")
		_, stderr, err := c.psqlRows(3*time.Minute, "FAILOVER DATANODE dn1")
		if err == nil || !strings.Contains(stderr, "55000") || !strings.Contains(stderr, "dn1p failed") {
			t.Fatalf("FAILOVER with the sync slave down: %v\n%s", err, stderr)
		}
		if v := c.nodeValue(t, c.node("dn1"), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("dn1 is no longer a running master after a refused failover")
		}
		if got := listNode(t)["dn1"]; got != "datanode master   t t" {
			t.Errorf("LIST NODE dn1 after a refused failover = %q", got)
		}
		if _, stderr, err := c.psqlRows(time.Minute, "FAILOVER DATANODE dn1p"); err == nil || !strings.Contains(stderr, "42704") {
			t.Errorf("FAILOVER of a slave: %v\n%s", err, stderr)
		}
	})
}

// TestFailoverUnderLoad is DESIGN §6's first invariant under fire: a client
// commits rows one by one on the master while FAILOVER runs; every row whose
// COMMIT the client saw acknowledged is on the new master.
func TestFailoverUnderLoad(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addNode(t, "datanode slave", "dn1a", "dn1", "h3", "async")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE load (id int PRIMARY KEY)")

	dn1 := c.node("dn1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(dn1))
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan []int, 1)
	go func() {
		var ok []int
		for i := 1; ctx.Err() == nil; i++ {
			if _, err := conn.Exec(ctx, "INSERT INTO load VALUES ($1)", i); err != nil {
				break // the master went away: nothing after this is acknowledged
			}
			ok = append(ok, i)
		}
		acked <- ok
	}()
	time.Sleep(1500 * time.Millisecond)
	rows, notices := c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1")
	cancel()
	ok := <-acked
	if len(ok) < 10 {
		t.Fatalf("only %d commits were acknowledged before the failover; the test proves nothing", len(ok))
	}
	newMaster := c.node(rows[0][0])
	got := map[int]bool{}
	for _, r := range c.mustNodeSQL(t, newMaster, "SELECT id FROM load") {
		var id int
		fmt.Sscan(r[0], &id)
		got[id] = true
	}
	var lost []int
	for _, id := range ok {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged commits are missing on the new master %s: %v\n%s", len(lost), len(ok), newMaster.Name, lost, notices)
	}
	t.Logf("%d acknowledged commits, all on %s", len(ok), newMaster.Name)
}

// TestFailoverGtmcoord: the gtmcoord master (the primary coordinator) fails
// over to its slave, which then holds the cluster's node list.
func TestFailoverGtmcoord(t *testing.T) {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "gtmcoord slave", "gcs", "gc", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	rows, notices := c.mustRows(t, 3*time.Minute, "FAILOVER GTMCOORD gc")
	if len(rows) != 1 || strings.Join(rows[0], "|") != "gcs|t|failover gtmcoord success" {
		t.Fatalf("FAILOVER GTMCOORD rows = %q\n%s", rows, notices)
	}
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, initialized, incluster) gc, gcs")
	if fmt.Sprint(rows) != "[[gcs gtmcoord master t t] [gc gtmcoord slave f f]]" {
		t.Errorf("LIST NODE = %q", rows)
	}
	if v := c.nodeValue(t, c.node("gcs"), "SELECT type FROM adb.node WHERE name = 'gcs'"); v != "gtmcoord master" {
		t.Errorf("adb.node on gcs says gcs is %q", v)
	}
	if v := c.nodeValue(t, c.node("gcs"), "SELECT srvname FROM pg_foreign_server"); v != "dn1" {
		t.Errorf("foreign servers on gcs: %q", v)
	}
	if _, stderr, err := c.psqlRows(time.Minute, "ADD GTMCOORD MASTER gc2 (HOST=h1, PORT=1, PATH='/tmp/x/gc2')"); err == nil || !strings.Contains(stderr, "Only one gtm coordinator master") {
		t.Errorf("a second gtmcoord master after the failover: %v\n%s", err, stderr)
	}
	c.mustRows(t, 3*time.Minute, "REWIND GTMCOORD SLAVE gc")
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, sync_state, incluster) gc")
	if fmt.Sprint(rows) != "[[gc gtmcoord slave gcs sync t]]" {
		t.Errorf("LIST NODE gc after REWIND = %q", rows)
	}
}
