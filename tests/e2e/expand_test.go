package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestExpand moves half of a datanode's slots to a new datanode, online:
// EXPAND DATANODE MASTER copies it, EXPAND ACTIVATE switches the moving
// slots, EXPAND CLEAN empties the shards each side no longer owns; the
// distributed table keeps every row throughout.
func TestExpand(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE ev (id int NOT NULL, v text); SELECT adb.create_distributed_table('ev', 'id'); INSERT INTO ev SELECT g, 'x' FROM generate_series(1, 2000) g")

	// A user's own table on the datanode whose name ends like a shard's.
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE note_3 (a int); INSERT INTO note_3 VALUES (1)")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	rows, notices := c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn2")
	if len(rows) != 1 || rows[0][1] != "t" {
		t.Fatalf("EXPAND DATANODE MASTER rows = %q\n%s", rows, notices)
	}
	if v := c.nodeValue(t, c.node("dn2"), "SELECT pg_is_in_recovery()"); v != "t" {
		t.Errorf("dn2 is not streaming from dn1 before ACTIVATE")
	}
	// Writes go on while dn2 catches up.
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO ev SELECT g, 'y' FROM generate_series(2001, 2100) g")

	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE")
	if len(rows) != 1 || rows[0][0] != "dn2" || rows[0][1] != "t" {
		t.Fatalf("EXPAND ACTIVATE rows = %q\n%s", rows, notices)
	}
	slots := c.mustNodeSQL(t, c.node("cn1"), "SELECT node, count(*) FROM adb.slot GROUP BY node ORDER BY node")
	if fmt.Sprint(slots) != "[[dn1 32] [dn2 32]]" {
		t.Errorf("slot map after ACTIVATE = %q", slots)
	}
	for _, cn := range []string{"cn1", "gc"} {
		if v := c.nodeValue(t, c.node(cn), "SELECT count(*) FROM ev"); v != "2100" {
			t.Errorf("ev from %s after ACTIVATE: %s rows, want 2100", cn, v)
		}
	}
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO ev SELECT g, 'z' FROM generate_series(3001, 3100) g")
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, incluster) dn2")
	if fmt.Sprint(rows) != "[[dn2 datanode master t]]" {
		t.Errorf("LIST NODE dn2 = %q", rows)
	}

	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	if len(rows) != 2 {
		t.Fatalf("EXPAND CLEAN rows = %q\n%s", rows, notices)
	}
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM ev"); v != "2200" {
		t.Errorf("ev after CLEAN: %s rows, want 2200", v)
	}
	// Each row lives on exactly one datanode now.
	total := 0
	for _, dn := range []string{"dn1", "dn2"} {
		n := 0
		for _, r := range c.mustNodeSQL(t, c.node(dn), "SELECT relname FROM pg_class WHERE relname LIKE 'ev\\_%' AND relkind = 'r'") {
			v, _ := strconv.Atoi(c.nodeValue(t, c.node(dn), "SELECT count(*) FROM "+r[0]))
			n += v
		}
		if n == 0 {
			t.Errorf("no row on %s after the expansion", dn)
		}
		total += n
	}
	if total != 2200 {
		t.Errorf("the shards of both datanodes hold %d rows, want 2200 (no duplicates left)", total)
	}
	if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM note_3"); v != "1" {
		t.Errorf("EXPAND CLEAN emptied the user table note_3 on dn1")
	}
	rows, _ = c.mustRows(t, time.Minute, "EXPAND CLEAN")
	if !strings.Contains(fmt.Sprint(rows), "No database need expand clean") {
		t.Errorf("second EXPAND CLEAN = %q", rows)
	}
}
