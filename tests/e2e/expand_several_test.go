package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestExpandSeveral: several EXPANDs wait for one EXPAND ACTIVATE, as the
// spec's walkthrough runs them ("EXPAND dn1 TO dn3; EXPAND dn2 TO dn4;
// EXPAND activate; EXPAND clean"), and one source may be copied to two
// destinations, which then take a third of its slots each.
func TestExpandSeveral(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE ev (id int NOT NULL, v text); SELECT adb.create_distributed_table('ev', 'id'); INSERT INTO ev SELECT g, 'x' FROM generate_series(1, 2000) g")
	count := func(want string) {
		t.Helper()
		if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM ev"); v != want {
			t.Errorf("ev: %s rows, want %s", v, want)
		}
	}
	slotMap := func(want string) {
		t.Helper()
		if slots := c.mustNodeSQL(t, c.node("cn1"), "SELECT node, count(*) FROM adb.slot GROUP BY node ORDER BY node"); fmt.Sprint(slots) != want {
			t.Errorf("slot map = %q, want %s", slots, want)
		}
	}

	// Two sources, one ACTIVATE.
	c.addNode(t, "datanode master", "dn3", "", "h1", "")
	c.addNode(t, "datanode master", "dn4", "", "h1", "")
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn3")
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn2 TO dn4")
	rows, _ := c.mustRows(t, time.Minute, "SELECT src, dst, phase FROM expansion ORDER BY dst")
	if fmt.Sprint(rows) != "[[dn1 dn3 copied] [dn2 dn4 copied]]" {
		t.Errorf("expansion view = %q", rows)
	}
	rows, notices := c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE")
	if len(rows) != 2 || rows[0][1] != "t" || rows[1][1] != "t" {
		t.Fatalf("EXPAND ACTIVATE rows = %q\n%s", rows, notices)
	}
	slotMap("[[dn1 16] [dn2 16] [dn3 16] [dn4 16]]")
	count("2000")
	if _, stderr, err := c.psqlRows(time.Minute, "EXPAND DATANODE MASTER dn1 TO dn3"); err == nil {
		t.Errorf("EXPAND before CLEAN: accepted\n%s", stderr)
	}
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	if len(rows) != 4 {
		t.Fatalf("EXPAND CLEAN rows = %q\n%s", rows, notices)
	}
	count("2000")

	// One source, two destinations.
	c.addNode(t, "datanode master", "dn5", "", "h2", "")
	c.addNode(t, "datanode master", "dn6", "", "h3", "")
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn5")
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn6")
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE")
	if len(rows) != 2 || rows[0][1] != "t" || rows[1][1] != "t" {
		t.Fatalf("EXPAND ACTIVATE rows = %q\n%s", rows, notices)
	}
	slotMap("[[dn1 6] [dn2 16] [dn3 16] [dn4 16] [dn5 5] [dn6 5]]")
	count("2000")
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	if len(rows) != 3 {
		t.Fatalf("EXPAND CLEAN rows = %q\n%s", rows, notices)
	}
	count("2000")
	rows, _ = c.mustRows(t, time.Minute, "SELECT command, status FROM journal WHERE command LIKE 'EXPAND%' ORDER BY id")
	for _, r := range rows {
		if r[1] != "done" {
			t.Errorf("journal: %q", rows)
			break
		}
	}
}
