package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLiveChanges covers the commands that change a running cluster:
// ALTER of an initialised node's sync_state and port, SET parameters, and
// ADD/DROP HBA — each checked on the real nodes, not only in the catalog.
func TestLiveChanges(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.addNode(t, "datanode slave", "dn1p", "dn1", "h3", "potential")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	replication := func() map[string]string {
		out := map[string]string{}
		rows, err := c.nodeSQL(c.node("dn1"), "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'")
		if err != nil {
			return out
		}
		for _, r := range rows {
			out[r[0]] = r[1]
		}
		return out
	}
	wantReplication := func(t *testing.T, want map[string]string) {
		t.Helper()
		waitFor(t, 30*time.Second, "pg_stat_replication on dn1", func() (bool, string) {
			got := replication()
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
		})
	}
	syncStates := func(t *testing.T) map[string]string {
		t.Helper()
		rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, sync_state) dn1s, dn1p")
		out := map[string]string{}
		for _, r := range rows {
			out[r[0]] = r[1]
		}
		return out
	}

	t.Run("BoottimeCheckoutFlush", func(t *testing.T) {
		rows, _ := c.mustRows(t, time.Minute, "SHOW BOOTTIME ALL")
		if len(rows) != 5 {
			t.Fatalf("SHOW BOOTTIME ALL = %q", rows)
		}
		for _, r := range rows {
			if r[2] != "t" || r[5] == "" {
				t.Errorf("SHOW BOOTTIME row %q: want running with a boot time", r)
			}
		}
		rows, _ = c.mustRows(t, time.Minute, "CHECKOUT DATANODE SLAVE STATUS")
		if fmt.Sprint(rows) != "[[dn1s datanode slave t running as a standby] [dn1p datanode slave t running as a standby]]" {
			t.Errorf("CHECKOUT DATANODE SLAVE STATUS = %q", rows)
		}
		c.mustRows(t, time.Minute, "FLUSH READONLY SLAVE")
	})

	t.Run("AlterSyncState", func(t *testing.T) {
		wantReplication(t, map[string]string{"dn1s": "sync", "dn1p": "potential"})
		_, notices := c.mustRows(t, time.Minute, "ALTER DATANODE SLAVE dn1p (SYNC_STATE=sync)")
		if !strings.Contains(notices, `FIRST 2 ("dn1s", "dn1p")`) {
			t.Errorf("no NOTICE with the new synchronous_standby_names:\n%s", notices)
		}
		wantReplication(t, map[string]string{"dn1s": "sync", "dn1p": "sync"})
		if got := syncStates(t); got["dn1p"] != "sync" || got["dn1s"] != "sync" {
			t.Errorf("LIST NODE sync states = %v", got)
		}
		c.mustRows(t, time.Minute, "ALTER DATANODE SLAVE dn1p (SYNC_STATE=async)")
		wantReplication(t, map[string]string{"dn1s": "sync", "dn1p": "async"})
	})

	t.Run("DemoteDeadSyncSlave", func(t *testing.T) {
		// dn1s is the only sync slave; once it is gone, commits on dn1 wait.
		// Demoting it to async is how a DBA unblocks them: it must work
		// although the slave is down, and stay done.
		c.mustRows(t, time.Minute, "STOP DATANODE SLAVE dn1s MODE immediate")
		_, notices := c.mustRows(t, time.Minute, "ALTER DATANODE SLAVE dn1s (SYNC_STATE=async)")
		if !strings.Contains(notices, "not streaming") {
			t.Errorf("no NOTICE that dn1s is not streaming:\n%s", notices)
		}
		if v := c.nodeValue(t, c.node("dn1"), "SELECT coalesce(nullif(current_setting('synchronous_standby_names'), ''), '<empty>')"); v != "<empty>" {
			t.Errorf("synchronous_standby_names on dn1 = %q, want empty (no sync or potential slave left)", v)
		}
		c.mustNodeSQL(t, c.node("dn1"), "SET statement_timeout = '10s'; CREATE TABLE live_t (a int); INSERT INTO live_t VALUES (1)")
		if got := syncStates(t); got["dn1s"] != "async" {
			t.Errorf("LIST NODE sync states after the demotion = %v", got)
		}
		c.mustRows(t, time.Minute, "START DATANODE SLAVE dn1s")
		c.mustRows(t, time.Minute, "ALTER DATANODE SLAVE dn1s (SYNC_STATE=sync)")
		wantReplication(t, map[string]string{"dn1s": "sync", "dn1p": "async"})
	})

	t.Run("SetParam", func(t *testing.T) {
		c.mustRows(t, time.Minute, "SET DATANODE ALL (work_mem = '8MB')")
		for _, n := range []string{"dn1", "dn1s", "dn1p"} {
			if v := c.nodeValue(t, c.node(n), "SHOW work_mem"); v != "8MB" {
				t.Errorf("work_mem on %s = %q, want 8MB (reloaded at once)", n, v)
			}
		}
		if v := c.nodeValue(t, c.node("cn1"), "SHOW work_mem"); v == "8MB" {
			t.Errorf("SET DATANODE reached coordinator cn1")
		}
		_, notices := c.mustRows(t, time.Minute, "SET DATANODE MASTER dn1 (max_connections = 150)")
		if !strings.Contains(notices, "restart") {
			t.Errorf("no NOTICE that max_connections needs a restart:\n%s", notices)
		}
		rows, _ := c.mustRows(t, time.Minute, "SHOW PARAM dn1 max_connections")
		if len(rows) != 1 || rows[0][1] != "max_connections" || rows[0][6] != "t" {
			t.Errorf("SHOW PARAM dn1 max_connections = %q, want pending_restart t", rows)
		}
		rows, _ = c.mustRows(t, time.Minute, "LIST PARAM DATANODE MASTER dn1")
		if !strings.Contains(fmt.Sprint(rows), "max_connections 150") {
			t.Errorf("LIST PARAM = %q", rows)
		}
		if _, stderr, err := c.psqlRows(time.Minute, "SET DATANODE ALL (work_mem = 'lots')"); err == nil || !strings.Contains(stderr, "22023") {
			t.Errorf("invalid value accepted: %v\n%s", err, stderr)
		}
		c.mustRows(t, time.Minute, "RESET DATANODE ALL (work_mem)")
		if v := c.nodeValue(t, c.node("dn1"), "SHOW work_mem"); v != "4MB" {
			t.Errorf("work_mem on dn1 after RESET = %q, want the default 4MB", v)
		}
	})

	t.Run("HBA", func(t *testing.T) {
		line := "host all all 10.1.2.0/24 md5"
		if _, stderr, err := c.psqlRows(time.Minute, `ADD HBA DATANODE ALL ("host all all 10.1.2.0/24 trsut")`); err == nil || !strings.Contains(stderr, "22023") {
			t.Errorf("a line with an unknown method was accepted: %v\n%s", err, stderr)
		}
		// Nodes trust nobody, not even when a DBA asks.
		if _, stderr, err := c.psqlRows(time.Minute, `ADD HBA DATANODE ALL ("host all all 10.1.2.0/24 trust")`); err == nil || !strings.Contains(stderr, "42501") || !strings.Contains(stderr, "nodes trust nobody") {
			t.Errorf("a trust line was accepted: %v\n%s", err, stderr)
		}
		c.mustRows(t, time.Minute, fmt.Sprintf(`ADD HBA DATANODE ALL ("%s")`, line))
		rows, _ := c.mustRows(t, time.Minute, "LIST HBA")
		if len(rows) != 1 || rows[0][2] != line {
			t.Errorf("LIST HBA = %q", rows)
		}
		rows, _ = c.mustRows(t, time.Minute, "SHOW HBA dn1s")
		if !hbaHas(rows, line) {
			t.Errorf("SHOW HBA dn1s lacks the line: %q", rows)
		}
		for _, n := range []string{"dn1", "dn1s"} {
			waitFor(t, 10*time.Second, "pg_hba_file_rules on "+n, func() (bool, string) {
				rows, err := c.nodeSQL(c.node(n), "SELECT count(*) FROM pg_hba_file_rules WHERE address = '10.1.2.0'")
				return err == nil && len(rows) == 1 && rows[0][0] == "1", fmt.Sprint(rows, err)
			})
		}
		c.mustRows(t, time.Minute, fmt.Sprintf(`DROP HBA ALL ("%s")`, line))
		rows, _ = c.mustRows(t, time.Minute, "SHOW HBA dn1")
		if hbaHas(rows, line) {
			t.Errorf("SHOW HBA dn1 after DROP HBA still has the line: %q", rows)
		}
	})

	t.Run("AlterPort", func(t *testing.T) {
		old := c.node("dn1")
		port := freePortOn(t, c.host(old.Host).Addr)
		_, notices := c.mustRows(t, 2*time.Minute, fmt.Sprintf("ALTER DATANODE MASTER dn1 (PORT=%d)", port))
		for i := range c.Nodes {
			if c.Nodes[i].Name == "dn1" {
				c.Nodes[i].Port = port
			}
		}
		if v := c.nodeValue(t, c.node("dn1"), "SHOW port"); v != fmt.Sprint(port) {
			t.Errorf("dn1 answers with port %s", v)
		}
		if _, err := c.nodeSQL(old, "SELECT 1"); err == nil {
			t.Errorf("dn1 still answers on its old port %d", old.Port)
		}
		if !strings.Contains(notices, "now streams from port") {
			t.Errorf("no NOTICE about the slaves:\n%s", notices)
		}
		wantReplication(t, map[string]string{"dn1s": "sync", "dn1p": "async"})
		rows := c.mustNodeSQL(t, c.node("cn1"), "SELECT array_to_string(srvoptions, ',') FROM pg_foreign_server WHERE srvname = 'dn1'")
		if len(rows) != 1 || !strings.Contains(rows[0][0], fmt.Sprintf("port=%d", port)) {
			t.Errorf("cn1's foreign server dn1 = %q, want port %d", rows, port)
		}
		rows, _ = c.mustRows(t, time.Minute, "LIST NODE (port) dn1")
		if len(rows) != 1 || rows[0][0] != fmt.Sprint(port) {
			t.Errorf("LIST NODE port of dn1 = %q", rows)
		}
		// Refused, nothing changed: the port of another node on the host.
		gc := c.node("gc")
		if _, stderr, err := c.psqlRows(time.Minute, fmt.Sprintf("ALTER DATANODE MASTER dn1 (PORT=%d)", gc.Port)); err == nil || !strings.Contains(stderr, "has already been used") {
			t.Errorf("a port in use was accepted: %v\n%s", err, stderr)
		}
	})
}

// hbaHas reports whether SHOW HBA rows hold line, whatever its spacing.
func hbaHas(rows [][]string, line string) bool {
	for _, r := range rows {
		if len(r) == 3 && strings.Join(strings.Fields(r[2]), " ") == line {
			return true
		}
	}
	return false
}
