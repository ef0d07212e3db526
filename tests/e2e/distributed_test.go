package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDistributedTable: a table distributed from one coordinator is
// readable and writable from every coordinator, its rows are spread over the
// datanodes' shards, and it keeps working after a datanode failover.
func TestDistributedTable(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "coordinator master", "cn2", "", "h3", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h3", "")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	slots := c.mustNodeSQL(t, c.node("cn1"), "SELECT node, count(*) FROM adb.slot GROUP BY node ORDER BY node")
	if fmt.Sprint(slots) != "[[dn1 32] [dn2 32]]" {
		t.Fatalf("slot map on cn1 = %q, want 32 slots on each datanode master", slots)
	}
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE orders (id int NOT NULL, amount numeric); SELECT adb.create_distributed_table('orders', 'id')")
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g")
	for _, cn := range []string{"cn1", "cn2", "gc"} {
		if v := c.nodeValue(t, c.node(cn), "SELECT count(*) || ' ' || sum(amount) FROM orders"); v != "1000 750750.0" {
			t.Errorf("orders seen from %s: %s", cn, v)
		}
	}
	c.mustNodeSQL(t, c.node("cn2"), "INSERT INTO orders VALUES (1001, 1)")
	total := 0
	for _, dn := range []string{"dn1", "dn2"} {
		n := 0
		for _, r := range c.mustNodeSQL(t, c.node(dn), "SELECT relname FROM pg_class WHERE relname LIKE 'orders\\_%' AND relkind = 'r'") {
			v, _ := strconv.Atoi(c.nodeValue(t, c.node(dn), fmt.Sprintf("SELECT count(*) FROM %s", r[0])))
			n += v
		}
		if n == 0 {
			t.Errorf("no row of orders on %s: not spread", dn)
		}
		total += n
	}
	if total != 1001 {
		t.Errorf("the shards hold %d rows, want 1001", total)
	}
	// A datanode failover: the coordinators' server and slot map follow —
	// cn2 is down meanwhile and catches up when it starts.
	c.mustRows(t, time.Minute, "STOP COORDINATOR MASTER cn2 MODE fast")
	c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1")
	c.mustRows(t, time.Minute, "START COORDINATOR MASTER cn2")
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM orders"); v != "1001" {
		t.Errorf("orders after the failover of dn1: %s rows", v)
	}
	c.mustNodeSQL(t, c.node("cn2"), "INSERT INTO orders SELECT g, 0 FROM generate_series(2000, 2099) g")
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM orders"); v != "1101" {
		t.Errorf("orders after writes past the failover: %s rows", v)
	}
	if v := c.nodeValue(t, c.node("cn2"), "SELECT count(DISTINCT node) FROM adb.slot WHERE node IN ('dn1s', 'dn2')"); v != "2" {
		t.Errorf("slot map on cn2 after the failover does not name dn1s and dn2: %s", v)
	}
	if _, err := c.nodeSQL(c.node("cn1"), "CREATE TABLE full_t (a int); INSERT INTO full_t VALUES (1); SELECT adb.create_distributed_table('full_t', 'a')"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("distributing a table with rows: %v", err)
	}
	c.mustNodeSQL(t, c.node("cn2"), "SELECT adb.drop_distributed_table('orders')")
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM pg_class WHERE relname = 'orders'"); v != "0" {
		t.Errorf("orders still exists on cn1 after drop_distributed_table")
	}
	if v := c.nodeValue(t, c.node("dn2"), "SELECT count(*) FROM pg_class WHERE relname LIKE 'orders\\_%'"); v != "0" {
		t.Errorf("%s shards of orders left on dn2", v)
	}
}
