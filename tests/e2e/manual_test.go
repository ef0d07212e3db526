package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestManualFailoverCoordinator: FAILOVER COORDINATOR promotes the
// coordinator slave; the other coordinators and the gtmcoord learn the new
// node list, and the old master is kicked out until REWIND.
func TestManualFailoverCoordinator(t *testing.T) {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h1", "")
	c.addNode(t, "coordinator slave", "cn1s", "cn1", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	rows, notices := c.mustRows(t, 3*time.Minute, "FAILOVER COORDINATOR cn1")
	if len(rows) != 1 || strings.Join(rows[0], "|") != "cn1s|t|failover coordinator success" {
		t.Fatalf("FAILOVER COORDINATOR rows = %q\n%s", rows, notices)
	}
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, initialized, incluster) cn1, cn1s")
	if fmt.Sprint(rows) != "[[cn1s coordinator master  t t] [cn1 coordinator slave cn1s f f]]" {
		t.Errorf("LIST NODE = %q", rows)
	}
	if v := c.nodeValue(t, c.node("cn1s"), "SELECT pg_is_in_recovery()"); v != "f" {
		t.Errorf("cn1s in recovery after the failover: %s", v)
	}
	if v := c.nodeValue(t, c.node("gc"), "SELECT type FROM adb.node WHERE name = 'cn1s'"); v != "coordinator master" {
		t.Errorf("adb.node on gc says cn1s is %q", v)
	}
	if v := c.nodeValue(t, c.node("cn1s"), "SELECT srvname FROM pg_foreign_server"); v != "dn1" {
		t.Errorf("foreign servers on cn1s: %q", v)
	}
	c.mustRows(t, 3*time.Minute, "REWIND COORDINATOR SLAVE cn1")
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, incluster) cn1")
	if fmt.Sprint(rows) != "[[cn1 coordinator slave cn1s t]]" {
		t.Errorf("LIST NODE cn1 after REWIND = %q", rows)
	}
}
