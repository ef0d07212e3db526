package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAppendRemove grows a running cluster with APPEND — a slave, a
// datanode master on a host new to the cluster, a coordinator cloned with
// the distributed tables — and shrinks it with REMOVE.
func TestAppendRemove(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE items (id int NOT NULL); SELECT adb.create_distributed_table('items', 'id'); INSERT INTO items SELECT generate_series(1, 100)")

	t.Run("AppendSlave", func(t *testing.T) {
		c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
		rows, notices := c.mustRows(t, 3*time.Minute, "APPEND DATANODE SLAVE dn1s")
		if fmt.Sprint(rows) != "[[dn1s t success]]" {
			t.Fatalf("APPEND rows = %q\n%s", rows, notices)
		}
		if v := c.nodeValue(t, c.node("dn1"), "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'dn1s'"); v != "sync" {
			t.Errorf("dn1s on dn1's pg_stat_replication: %q", v)
		}
		rows, _ = c.mustRows(t, time.Minute, "LIST NODE (initialized, incluster) dn1s")
		if fmt.Sprint(rows) != "[[t t]]" {
			t.Errorf("LIST NODE dn1s = %q", rows)
		}
		if _, stderr, err := c.psqlRows(time.Minute, "APPEND DATANODE SLAVE dn1s"); err == nil || !strings.Contains(stderr, "already exists in cluster") {
			t.Errorf("APPEND twice: %v\n%s", err, stderr)
		}
	})

	t.Run("AppendDatanodeMaster", func(t *testing.T) {
		c.addNode(t, "datanode master", "dn2", "", "h3", "")
		rows, notices := c.mustRows(t, 3*time.Minute, "APPEND DATANODE MASTER dn2")
		if fmt.Sprint(rows) != "[[dn2 t success]]" {
			t.Fatalf("APPEND rows = %q\n%s", rows, notices)
		}
		if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM pg_foreign_server WHERE srvname = 'dn2'"); v != "1" {
			t.Errorf("cn1 has no foreign server for dn2")
		}
		// The new host is trusted by the old nodes: dn2 reaches dn1.
		if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM pg_hba_file_rules WHERE address = '127.0.0.4'"); v == "0" {
			t.Errorf("dn1's pg_hba.conf does not trust the new host 127.0.0.4")
		}
	})

	t.Run("AppendCoordinator", func(t *testing.T) {
		c.addNode(t, "coordinator master", "cn2", "", "h3", "")
		rows, notices := c.mustRows(t, 3*time.Minute, "APPEND COORDINATOR MASTER cn2")
		if fmt.Sprint(rows) != "[[cn2 t success]]" {
			t.Fatalf("APPEND rows = %q\n%s", rows, notices)
		}
		if v := c.nodeValue(t, c.node("cn2"), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("cn2 is a standby, not a coordinator")
		}
		if v := c.nodeValue(t, c.node("cn2"), "SELECT count(*) FROM items"); v != "100" {
			t.Errorf("items from cn2: %s rows", v)
		}
		c.mustNodeSQL(t, c.node("cn2"), "INSERT INTO items VALUES (101)")
		if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM items"); v != "101" {
			t.Errorf("items from cn1 after a write on cn2: %s rows", v)
		}
		if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM adb.node WHERE name = 'cn2'"); v != "1" {
			t.Errorf("cn1's adb.node lacks cn2")
		}
		if v := c.nodeValue(t, c.node("gc"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cn2'"); v != "0" {
			t.Errorf("the clone's slot was left on gc")
		}
	})

	t.Run("AppendCoordinatorForActivate", func(t *testing.T) {
		c.addNode(t, "coordinator master", "cn3", "", "h1", "")
		rows, notices := c.mustRows(t, 3*time.Minute, "APPEND COORDINATOR cn3 FOR cn1")
		if len(rows) != 1 || rows[0][0] != "cn3" || rows[0][1] != "t" {
			t.Fatalf("APPEND … FOR rows = %q\n%s", rows, notices)
		}
		if v := c.nodeValue(t, c.node("cn3"), "SELECT pg_is_in_recovery()"); v != "t" {
			t.Errorf("cn3 is not a streaming copy of cn1 before ACTIVATE")
		}
		rows, _ = c.mustRows(t, time.Minute, "LIST NODE (initialized, incluster) cn3")
		if fmt.Sprint(rows) != "[[t f]]" {
			t.Errorf("LIST NODE cn3 before ACTIVATE = %q", rows)
		}
		rows, notices = c.mustRows(t, 3*time.Minute, "APPEND ACTIVATE COORDINATOR cn3")
		if fmt.Sprint(rows) != "[[cn3 t success]]" {
			t.Fatalf("APPEND ACTIVATE rows = %q\n%s", rows, notices)
		}
		if v := c.nodeValue(t, c.node("cn3"), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("cn3 is still a standby after ACTIVATE")
		}
		if v := c.nodeValue(t, c.node("cn3"), "SELECT count(*) FROM items"); v != "101" {
			t.Errorf("items from cn3: %s rows", v)
		}
		if _, stderr, err := c.psqlRows(time.Minute, "APPEND ACTIVATE COORDINATOR cn3"); err == nil || !strings.Contains(stderr, "was not copied") {
			t.Errorf("APPEND ACTIVATE twice: %v\n%s", err, stderr)
		}
	})

	t.Run("ZoneInit", func(t *testing.T) {
		// A slave in a second zone (async, as a foreign-zone slave is),
		// brought into the cluster by ZONE INIT.
		n := nodeSpec{Name: "dn2z", Type: "datanode slave", Master: "dn2", Host: "h1", Port: freePortOn(t, c.host("h1").Addr),
			Path: filepath.Join(c.Dir, "dn2z"), Sync: "async"}
		c.M.MustExec(t, fmt.Sprintf("ADD DATANODE SLAVE dn2z FOR dn2 (HOST=h1, PORT=%d, PATH='%s', ZONE=z2)", n.Port, n.Path))
		c.Nodes = append(c.Nodes, n)
		rows, notices := c.mustRows(t, 3*time.Minute, "ZONE INIT z2")
		if fmt.Sprint(rows) != "[[dn2z t success]]" {
			t.Fatalf("ZONE INIT rows = %q\n%s", rows, notices)
		}
		if v := c.nodeValue(t, c.node("dn2"), "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'dn2z'"); v != "async" {
			t.Errorf("dn2z on dn2's pg_stat_replication: %q", v)
		}
		if _, stderr, err := c.psqlRows(time.Minute, "ZONE INIT z2"); err == nil || !strings.Contains(stderr, "no slave waiting") {
			t.Errorf("ZONE INIT with nothing to do: %v\n%s", err, stderr)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		if _, stderr, err := c.psqlRows(time.Minute, "REMOVE DATANODE SLAVE dn1s"); err == nil || !strings.Contains(stderr, "is running, stop it first") {
			t.Errorf("REMOVE of a running node: %v\n%s", err, stderr)
		}
		if _, stderr, err := c.psqlRows(time.Minute, "REMOVE DATANODE MASTER dn1"); err == nil || !strings.Contains(stderr, "0A000") {
			t.Errorf("REMOVE of a datanode master: %v\n%s", err, stderr)
		}
		c.mustRows(t, time.Minute, "STOP DATANODE SLAVE dn1s MODE fast")
		c.mustRows(t, time.Minute, "REMOVE DATANODE SLAVE dn1s")
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (sync_state, initialized, incluster) dn1s")
		if fmt.Sprint(rows) != "[[async f f]]" {
			t.Errorf("LIST NODE dn1s after REMOVE = %q", rows)
		}
		if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dn1s'"); v != "0" {
			t.Errorf("dn1s's slot is left on dn1")
		}
		// Commits on dn1 no longer wait for dn1s.
		c.mustNodeSQL(t, c.node("dn1"), "SET statement_timeout = '10s'; CREATE TABLE after_remove (a int)")
		c.mustRows(t, time.Minute, "DROP DATANODE SLAVE dn1s")
	})
}
