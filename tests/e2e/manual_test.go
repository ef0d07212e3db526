package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
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

// streamsFrom is application_name → sync_state of the standbys streaming
// from node n.
func (c *testCluster) streamsFrom(n string) map[string]string {
	out := map[string]string{}
	rows, err := c.nodeSQL(c.node(n), "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'")
	if err == nil {
		for _, r := range rows {
			out[r[0]] = r[1]
		}
	}
	return out
}

// TestManualAlterParent: ALTER DATANODE SLAVE n (PARENT = m) re-points a
// running slave to a sibling (a cascade) and back, with both parents'
// synchronous_standby_names and slots following; the refusals name the
// PARENT option.
func TestManualAlterParent(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addNode(t, "datanode slave", "dn1p", "dn1", "h3", "potential")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	line := func(n string) string {
		rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, mastername, sync_state, initialized, incluster) "+n)
		return fmt.Sprint(rows)
	}

	out := c.M.MustExec(t, "ALTER DATANODE SLAVE dn1p (PARENT = dn1s)")
	if !strings.Contains(out, "ALTER NODE") {
		t.Fatalf("ALTER … PARENT said %q", out)
	}
	if got := line("dn1p"); got != "[[dn1p dn1s async t t]]" {
		t.Errorf("LIST NODE dn1p = %s", got)
	}
	waitFor(t, 30*time.Second, "dn1p streaming from dn1s", func() (bool, string) {
		r := c.streamsFrom("dn1s")
		return r["dn1p"] == "async", fmt.Sprint(r)
	})
	if r := c.streamsFrom("dn1"); len(r) != 1 || r["dn1s"] != "sync" {
		t.Errorf("dn1 streams to %v, want dn1s alone as sync", r)
	}
	if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dn1p'"); v != "0" {
		t.Errorf("dn1p's slot on dn1 is still there (%s)", v)
	}
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE p (a int); INSERT INTO p VALUES (1)")
	waitFor(t, 30*time.Second, "the new row on dn1p through dn1s", func() (bool, string) {
		rows, err := c.nodeSQL(c.node("dn1p"), "SELECT count(*) FROM p")
		return err == nil && len(rows) == 1 && rows[0][0] == "1", fmt.Sprint(rows, err)
	})

	for _, tt := range []struct{ sql, msg string }{
		{"ALTER DATANODE SLAVE dn1p (PARENT = dn1p)", "cannot alter the parent node to itself"},
		{"ALTER DATANODE SLAVE dn1s (PARENT = dn1p)", "cannot support to revert child and parent relationship"},
		{"ALTER DATANODE SLAVE dn1p (PARENT = gc)", "not in the same group"},
		{"ALTER DATANODE SLAVE dn1p (PARENT = dn1s)", "is already the parent"},
		{"ALTER DATANODE SLAVE dn1p (PARENT = dn1, PORT = 1)", `option "parent" goes with "sync_state" only`},
	} {
		if _, stderr, err := c.psqlRows(time.Minute, tt.sql); err == nil || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%s: %v\n%s", tt.sql, err, stderr)
		}
	}

	c.M.MustExec(t, "ALTER DATANODE SLAVE dn1p (PARENT = dn1, SYNC_STATE = potential)")
	if got := line("dn1p"); got != "[[dn1p dn1 potential t t]]" {
		t.Errorf("LIST NODE dn1p back = %s", got)
	}
	waitFor(t, 30*time.Second, "dn1p streaming from dn1 as potential", func() (bool, string) {
		r := c.streamsFrom("dn1")
		return r["dn1p"] == "potential" && r["dn1s"] == "sync", fmt.Sprint(r)
	})
}

// promoteCluster is the cluster of the manual step tests, initialised: gc
// and dn1 on h1, cn1 and dn1's slave dn1s on h2.
func promoteCluster(t *testing.T) *testCluster {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	return c
}

// TestManualPromoteSteps: a failover by hand, as the reference's manual
// commands do it — PROMOTE DATANODE SLAVE (refused while the master runs),
// CONFIG DATANODE SLAVE (the coordinators route to it), ADBMGR PROMOTE
// DATANODE SLAVE (the node table; the old master's row deleted), then ADD
// … FOR and REWIND bring the old master back as a slave.
func TestManualPromoteSteps(t *testing.T) {
	c := promoteCluster(t)
	dn1 := c.node("dn1")
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE m (a int); INSERT INTO m SELECT generate_series(1, 100)")

	if _, stderr, err := c.psqlRows(time.Minute, "PROMOTE DATANODE SLAVE dn1s"); err == nil || !strings.Contains(stderr, "would make two masters") {
		t.Fatalf("PROMOTE with the master running: %v\n%s", err, stderr)
	}
	if _, stderr, err := c.psqlRows(time.Minute, "CONFIG DATANODE SLAVE dn1s"); err == nil || !strings.Contains(stderr, "PROMOTE DATANODE SLAVE dn1s first") {
		t.Fatalf("CONFIG of a standby: %v\n%s", err, stderr)
	}
	c.mustRows(t, time.Minute, "STOP DATANODE MASTER dn1 MODE immediate")

	rows, notices := c.mustRows(t, 2*time.Minute, "PROMOTE DATANODE SLAVE dn1s")
	if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1s|t|promote success" {
		t.Fatalf("PROMOTE rows = %q\n%s", rows, notices)
	}
	if v := c.nodeValue(t, c.node("dn1s"), "SELECT pg_is_in_recovery()"); v != "f" {
		t.Errorf("dn1s in recovery after PROMOTE: %s", v)
	}
	rows, _ = c.mustRows(t, time.Minute, "CONFIG DATANODE SLAVE dn1s")
	if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1s|t|config datanode slave success" {
		t.Fatalf("CONFIG rows = %q", rows)
	}
	srv := c.mustNodeSQL(t, c.node("cn1"), "SELECT srvname, array_to_string(srvoptions, ',') FROM pg_foreign_server")
	if len(srv) != 1 || srv[0][0] != "dn1s" || !strings.Contains(srv[0][1], fmt.Sprintf("port=%d", c.node("dn1s").Port)) {
		t.Errorf("cn1's foreign servers = %q, want dn1 renamed to dn1s with its port", srv)
	}
	rows, notices = c.mustRows(t, time.Minute, "ADBMGR PROMOTE DATANODE SLAVE dn1s")
	if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1s|t|adbmgr promote success" {
		t.Fatalf("ADBMGR PROMOTE rows = %q\n%s", rows, notices)
	}
	if !strings.Contains(notices, "no slave node now") {
		t.Errorf("ADBMGR PROMOTE did not warn dn1s has no slave:\n%s", notices)
	}
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, initialized, incluster) dn1s")
	if fmt.Sprint(rows) != "[[dn1s datanode master  t t]]" {
		t.Errorf("LIST NODE dn1s = %q", rows)
	}
	if out, _, _ := c.psqlRows(time.Minute, "LIST NODE dn1"); len(out) != 0 {
		t.Errorf("dn1 still listed: %q", out)
	}

	c.M.MustExec(t, fmt.Sprintf("ADD DATANODE SLAVE dn1 FOR dn1s (HOST=h1, PORT=%d, PATH='%s')", dn1.Port, dn1.Path))
	c.mustRows(t, 3*time.Minute, "REWIND DATANODE SLAVE dn1")
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, sync_state, incluster) dn1")
	if fmt.Sprint(rows) != "[[dn1 datanode slave dn1s sync t]]" {
		t.Errorf("LIST NODE dn1 after REWIND = %q", rows)
	}
	waitFor(t, 30*time.Second, "dn1 streaming from dn1s", func() (bool, string) {
		r := c.streamsFrom("dn1s")
		return r["dn1"] == "sync", fmt.Sprint(r)
	})
	if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM m"); v != "100" {
		t.Errorf("dn1 holds %s rows of m after REWIND", v)
	}
}

// addZoneNode adds a slave in zone to the cluster (addNode with ZONE).
func (c *testCluster) addZoneNode(t *testing.T, typ, name, master, host, zone string) {
	t.Helper()
	n := nodeSpec{Name: name, Type: typ, Master: master, Host: host, Sync: "async"}
	n.Port, n.Path = freePortOn(t, c.host(host).Addr), filepath.Join(c.Dir, name)
	c.M.MustExec(t, fmt.Sprintf("ADD %s %s FOR %s (HOST=%s, PORT=%d, PATH='%s', ZONE='%s');", strings.ToUpper(typ), name, master, host, n.Port, n.Path, zone))
	c.Nodes = append(c.Nodes, n)
}

// TestManualZoneSwitch: ZONE SWITCHOVER z2 moves every master — gtmcoord,
// coordinator, datanode — to its slave in zone z2, one row each; ZONE
// FAILOVER local FORCE brings them back (the old masters, now slaves in
// local, take over), the z2 masters kicked out.
func TestManualZoneSwitch(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addZoneNode(t, "gtmcoord slave", "gcz", "gc", "h3", "z2")
	c.addZoneNode(t, "coordinator slave", "cn1z", "cn1", "h3", "z2")
	c.addZoneNode(t, "datanode slave", "dn1z", "dn1", "h3", "z2")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	masters := func() string {
		rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, type, zone, incluster)")
		var out []string
		for _, r := range rows {
			if strings.HasSuffix(r[1], " master") && r[3] == "t" {
				out = append(out, r[0]+" "+r[2])
			}
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}

	if _, stderr, err := c.psqlRows(time.Minute, "ZONE SWITCHOVER z2"); err == nil || !strings.Contains(stderr, "is not same with guc parameter mgr_zone") {
		t.Fatalf("ZONE SWITCHOVER outside mgr_zone: %v\n%s", err, stderr)
	}
	rows, notices := c.mustRows(t, 5*time.Minute, "SET mgr_zone = 'z2'; ZONE SWITCHOVER z2")
	if len(rows) > 0 && fmt.Sprint(rows[0]) == "[SET]" {
		rows = rows[1:]
	}
	want := "[[gcz t switchover gtmcoord success] [cn1z t switchover coordinator success] [dn1z t switchover datanode success]]"
	if fmt.Sprint(rows) != want {
		t.Fatalf("ZONE SWITCHOVER rows = %q\n%s", rows, notices)
	}
	if got := masters(); got != "[cn1z z2 dn1z z2 gcz z2]" {
		t.Errorf("masters after ZONE SWITCHOVER z2 = %s", got)
	}
	for _, n := range []string{"gcz", "cn1z", "dn1z"} {
		if v := c.nodeValue(t, c.node(n), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("%s in recovery after the switchover", n)
		}
	}
	if v := c.nodeValue(t, c.node("cn1z"), "SELECT srvname FROM pg_foreign_server"); v != "dn1z" {
		t.Errorf("foreign servers on cn1z: %q", v)
	}

	rows, notices = c.mustRows(t, 5*time.Minute, "ZONE FAILOVER local FORCE")
	want = "[[gc t failover gtmcoord success] [cn1 t failover coordinator success] [dn1 t failover datanode success]]"
	if fmt.Sprint(rows) != want {
		t.Fatalf("ZONE FAILOVER rows = %q\n%s", rows, notices)
	}
	if got := masters(); got != "[cn1 local dn1 local gc local]" {
		t.Errorf("masters after ZONE FAILOVER local = %s", got)
	}
	rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, mastername, initialized, incluster) gcz, cn1z, dn1z")
	if fmt.Sprint(rows) != "[[gcz gc f f] [cn1z cn1 f f] [dn1z dn1 f f]]" {
		t.Errorf("the z2 nodes after ZONE FAILOVER local = %q", rows)
	}
}

// TestManualAdbmgrPromoteOutOfOrder: ADBMGR PROMOTE run before PROMOTE (the
// slave still a standby) or before CONFIG DATANODE SLAVE refuses with
// 55000 and changes nothing — the master runs on, its row stays. Then a
// coordinator left routing to names the catalog no longer has (a server
// renamed after no node, a stray server named after a slave, slots on a
// node it once listed) is refreshed by the doctor once, routes to the
// master again, and is left quiet; one routing to a name nothing can
// place is refreshed once, recorded in adb.lost, and left quiet too.
func TestManualAdbmgrPromoteOutOfOrder(t *testing.T) {
	c := promoteCluster(t)
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE items (id int NOT NULL); SELECT adb.create_distributed_table('items', 'id'); INSERT INTO items SELECT generate_series(1, 64)")

	list := func() string {
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type, mastername, incluster)")
		return fmt.Sprint(rows)
	}
	before := list()
	if _, stderr, err := c.psqlRows(time.Minute, "ADBMGR PROMOTE DATANODE SLAVE dn1s"); err == nil ||
		!strings.Contains(stderr, "55000") || !strings.Contains(stderr, "still runs as a standby") ||
		!strings.Contains(stderr, "PROMOTE DATANODE SLAVE dn1s, then CONFIG DATANODE SLAVE dn1s first") {
		t.Fatalf("ADBMGR PROMOTE before PROMOTE: %v\n%s", err, stderr)
	}
	if got := list(); got != before {
		t.Errorf("LIST NODE changed: %s, was %s", got, before)
	}
	if v := c.nodeValue(t, c.node("dn1"), "SELECT pg_is_in_recovery()"); v != "f" {
		t.Errorf("dn1 is not a running primary any more: %s", v)
	}
	rows, _ := c.mustRows(t, time.Minute, "MONITOR ALL")
	for _, r := range rows {
		if r[0] == "dn1" && r[2] != "t" {
			t.Errorf("MONITOR dn1 = %q", r)
		}
	}

	// cn1 routes to names no node has: dn1's server renamed dn1gone
	// (placed by its address), a stray server named after the slave
	// dn1s holding eight partitions, and eight slots on dn1x, a node
	// cn1's list once had under dn1.
	cn1 := c.node("cn1")
	c.mustNodeSQL(t, cn1, `ALTER SERVER dn1 RENAME TO dn1gone;
		UPDATE adb.slot SET node = 'dn1gone';
		CREATE SERVER dn1s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '1', dbname 'postgres');
		INSERT INTO adb.node VALUES ('dn1x', 'datanode slave', '127.0.0.1', 1, 'dn1');
		UPDATE adb.slot SET node = 'dn1x' WHERE slot BETWEEN 8 AND 15`)
	for k := 0; k < 8; k++ {
		c.mustNodeSQL(t, cn1, fmt.Sprintf(`ALTER TABLE items DETACH PARTITION items_%[1]d; DROP FOREIGN TABLE items_%[1]d;
			CREATE FOREIGN TABLE items_%[1]d PARTITION OF items FOR VALUES WITH (MODULUS 64, REMAINDER %[1]d) SERVER dn1s OPTIONS (schema_name 'public', table_name 'items_%[1]d')`, k))
	}
	c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 500, failures = 2)")
	c.mustRows(t, time.Minute, "START DOCTOR")
	refreshes := func() int {
		rows, _ := c.mustRows(t, time.Minute, "SELECT count(*) FROM journal WHERE command LIKE 'DOCTOR REFRESH%'")
		n := 0
		fmt.Sscan(rows[0][0], &n)
		return n
	}
	waitFor(t, time.Minute, "cn1 routing to dn1 alone", func() (bool, string) {
		rows, err := c.nodeSQL(cn1, `SELECT (SELECT string_agg(srvname, ',' ORDER BY srvname) FROM pg_foreign_server) || ' ' ||
			(SELECT string_agg(DISTINCT node, ',') FROM adb.slot) || ' ' ||
			(SELECT string_agg(DISTINCT s.srvname, ',') FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver)`)
		return err == nil && fmt.Sprint(rows) == "[[dn1 dn1 dn1]]", fmt.Sprint(rows, err)
	})
	if v := c.nodeValue(t, cn1, "SELECT count(*) FROM items"); v != "64" {
		t.Errorf("items through cn1: %s rows", v)
	}
	c.mustNodeSQL(t, cn1, "INSERT INTO items SELECT generate_series(65, 128)")
	n := refreshes()
	if n == 0 {
		t.Error("no DOCTOR REFRESH journaled")
	}
	quiet := func(n int) {
		t.Helper()
		time.Sleep(8 * time.Second)
		if m := refreshes(); m != n {
			t.Errorf("DOCTOR REFRESH journaled %d rows, then %d more in 8 s", n, m-n)
		}
	}
	quiet(n)

	// A slot on a name no list ever had cannot be placed: refreshed
	// once, recorded in adb.lost, then left to a DBA — not refreshed
	// again and again.
	c.mustNodeSQL(t, cn1, "UPDATE adb.slot SET node = 'dnlost' WHERE slot = 16")
	waitFor(t, time.Minute, "dnlost in cn1's adb.lost", func() (bool, string) {
		rows, err := c.nodeSQL(cn1, "SELECT string_agg(name, ',') FROM adb.lost")
		return err == nil && fmt.Sprint(rows) == "[[dnlost]]", fmt.Sprint(rows, err)
	})
	m := refreshes()
	if m == n {
		t.Error("no DOCTOR REFRESH for the lost slot")
	}
	quiet(m)
}
