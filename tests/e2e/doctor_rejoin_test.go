package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/coord"
)

// TestDoctorRejoinCoordinator: a coordinator the doctor isolated (its
// postmaster and its host's agent killed) comes back when its agent
// does. One that missed nothing is only started; one that missed DDL
// through another coordinator — a distributed table created and loaded,
// another dropped — is rebuilt from the gtmcoord master before it joins,
// and then sees the table and the same rows as the others, with its own
// name and configuration, and DDL through the others reaches it again.
func TestDoctorRejoinCoordinator(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h1", "")
	c.addNode(t, "coordinator master", "cn2", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h3", "")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 500, failures = 2)")
	c.mustRows(t, time.Minute, "START DOCTOR")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE old (id int NOT NULL); SELECT adb.create_distributed_table('old', 'id')")

	// The coordinators' fingerprints agree once INIT ALL and the DDL are
	// done: a rejoin that missed nothing needs no copy.
	fp := func(n string) string { return c.nodeValue(t, c.node(n), coord.Fingerprint) }
	if a, b, g := fp("cn1"), fp("cn2"), fp("gc"); a != b || a != g {
		t.Fatalf("fingerprints differ on a fresh cluster: cn1 %s, cn2 %s, gc %s", a, b, g)
	}

	isolate := func(t *testing.T) {
		t.Helper()
		c.killNodeAndAgent(t, "cn2", "h2")
		waitFor(t, 30*time.Second, "cn2 isolated", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, incluster) cn2")
			return err == nil && fmt.Sprint(rows) == "[[cn2 f]]", fmt.Sprint(rows, err)
		})
		// The others no longer list it: their DDL does not wait for it.
		// (They are told right after the node table changes.)
		waitFor(t, 10*time.Second, "cn1 no longer lists cn2 after its isolation", func() (bool, string) {
			v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM adb.node WHERE name = 'cn2'")
			return v == "0", v
		})
	}
	rejoined := func(t *testing.T) string {
		t.Helper()
		// The journal's end row comes after the node table says it is
		// back: wait for one newer than the rejoins before.
		rows, _ := c.mustRows(t, time.Minute, "SELECT coalesce(max(id), 0) FROM journal WHERE command = 'DOCTOR REJOIN cn2' AND step = 'end'")
		last := rows[0][0]
		start := time.Now()
		c.mustRows(t, time.Minute, "START AGENT h2")
		waitFor(t, 90*time.Second, "cn2 back in the cluster", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, initialized, incluster) cn2")
			return err == nil && fmt.Sprint(rows) == "[[cn2 t t]]", fmt.Sprint(rows, err)
		})
		t.Logf("cn2 back %.1fs after its agent", time.Since(start).Seconds())
		var detail string
		waitFor(t, 20*time.Second, "the rejoin journaled", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "SELECT status, detail FROM journal WHERE command = 'DOCTOR REJOIN cn2' AND step = 'end' AND id > "+last+" ORDER BY id DESC LIMIT 1")
			if err != nil || len(rows) != 1 || rows[0][0] != "done" {
				return false, fmt.Sprint(rows, err)
			}
			detail = rows[0][1]
			return true, ""
		})
		return detail
	}

	t.Run("StartsOneThatMissedNothing", func(t *testing.T) {
		isolate(t)
		if got := rejoined(t); got != "started; its catalog matches gc's" {
			t.Errorf("journal of the rejoin: %q", got)
		}
		if v := c.nodeValue(t, c.node("cn2"), "SELECT count(*) FROM old"); v != "0" {
			t.Errorf("old through cn2: %s", v)
		}
	})

	t.Run("RebuildsOneThatMissedDDL", func(t *testing.T) {
		isolate(t)
		c.mustNodeSQL(t, c.node("cn1"), `CREATE TABLE orders (id int NOT NULL, amount numeric);
			SELECT adb.create_distributed_table('orders', 'id');
			INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g;
			SELECT adb.drop_distributed_table('old')`)
		if got := rejoined(t); got != "rebuilt from gc (its catalog differs from gc's)" {
			t.Errorf("journal of the rejoin: %q", got)
		}
		want := c.nodeValue(t, c.node("cn1"), "SELECT count(*) || ' ' || sum(amount) FROM orders")
		if want != "500 187875.0" {
			t.Errorf("orders through cn1: %s", want)
		}
		if v := c.nodeValue(t, c.node("cn2"), "SELECT count(*) || ' ' || sum(amount) FROM orders"); v != want {
			t.Errorf("orders through cn2: %s, through cn1: %s", v, want)
		}
		if v := c.nodeValue(t, c.node("cn2"), "SELECT to_regclass('old') IS NULL"); v != "t" {
			t.Errorf("old, dropped while cn2 was out, is still on cn2")
		}
		// Its own name, port and node list, not its source's.
		n := c.node("cn2")
		if v := c.nodeValue(t, n, "SELECT current_setting('cluster_name') || ' ' || current_setting('port')"); v != fmt.Sprintf("cn2 %d", n.Port) {
			t.Errorf("cn2's settings after its rebuild: %s", v)
		}
		if a, b := fp("cn2"), fp("gc"); a != b {
			t.Errorf("cn2's fingerprint %s, gc's %s", a, b)
		}
		// Writes through it, and DDL through the others reaches it again.
		c.mustNodeSQL(t, n, "INSERT INTO orders VALUES (501, 1)")
		if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM orders"); v != "501" {
			t.Errorf("orders through cn1 after a write through cn2: %s", v)
		}
		c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE later (id int NOT NULL); SELECT adb.create_distributed_table('later', 'id')")
		if v := c.nodeValue(t, n, "SELECT count(*) FROM later"); v != "0" {
			t.Errorf("later through cn2: %s", v)
		}
		// The copy's slot on gc is gone.
		if v := c.nodeValue(t, c.node("gc"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cn2'"); v != "0" {
			t.Errorf("replication slot cn2 left on gc")
		}
		if got := c.monitor(t)["cn2"]; got != c.wantRunning()["cn2"] {
			t.Errorf("MONITOR ALL cn2 = %+v", got)
		}
	})
	c.mustRows(t, time.Minute, "STOP DOCTOR")
}
