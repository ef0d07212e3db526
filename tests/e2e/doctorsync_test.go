package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDoctorSyncLists: the doctor keeps every master's live
// synchronous_standby_names what the catalog says (docs/HA.md, "The sync
// lists").
//
//   - A DBA empties dn1's list behind the manager's back (ALTER SYSTEM,
//     reload): the doctor writes it again within a second or two
//     (DOCTOR SYNC), and the ALTER SYSTEM value is gone.
//   - dn1's only sync slave dn1s dies with its host's agent: the doctor
//     isolates it (dn1's list emptied, commits go on), then steps dn1's
//     streaming async slave dn1a up to sync (catalog and list); when the
//     agent is back, dn1s is rewound and comes back potential.
func TestDoctorSyncLists(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h3", "")
	c.addNode(t, "datanode slave", "dn1a", "dn1", "h1", "async")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustRows(t, time.Minute, "START DOCTOR")
	dn1 := c.node("dn1")
	c.mustNodeSQL(t, dn1, "CREATE TABLE d (a int); INSERT INTO d VALUES (1)")
	list := func() string { return c.nodeValue(t, dn1, "SELECT current_setting('synchronous_standby_names')") }
	if got := list(); got != `FIRST 1 ("dn1s")` {
		t.Fatalf("dn1's list after INIT ALL: %q", got)
	}
	journal := func(node string) [][]string {
		rows, _ := c.mustRows(t, 30*time.Second, "SELECT status, detail FROM journal WHERE command = 'DOCTOR SYNC "+node+"' AND step = 'end' ORDER BY id")
		return rows
	}

	t.Run("RewritesAListChangedBehindItsBack", func(t *testing.T) {
		c.mustNodeSQL(t, dn1, "ALTER SYSTEM SET synchronous_standby_names = ''")
		c.mustNodeSQL(t, dn1, "SELECT pg_reload_conf()")
		start := time.Now()
		waitFor(t, 30*time.Second, "dn1's list written again", func() (bool, string) {
			v, err := c.nodeSQL(dn1, "SELECT current_setting('synchronous_standby_names')")
			return err == nil && fmt.Sprint(v) == `[[FIRST 1 ("dn1s")]]`, fmt.Sprint(v, err)
		})
		t.Logf("written again %.1fs after the reload", time.Since(start).Seconds())
		if v := c.nodeValue(t, dn1, "SELECT count(*) FROM pg_file_settings WHERE name = 'synchronous_standby_names' AND sourcefile LIKE '%auto.conf'"); v != "0" {
			t.Errorf("the ALTER SYSTEM value is still in postgresql.auto.conf")
		}
		waitFor(t, 10*time.Second, "journaled", func() (bool, string) {
			j := journal("dn1")
			return len(j) == 1 && j[0][0] == "done" && j[0][1] == `synchronous_standby_names was '', now 'FIRST 1 ("dn1s")'`, fmt.Sprint(j)
		})
		// The list right, the doctor does nothing more.
		time.Sleep(2 * time.Second)
		if j := journal("dn1"); len(j) != 1 {
			t.Errorf("journal after the repair: %q", j)
		}
		c.mustNodeSQL(t, dn1, "INSERT INTO d VALUES (2)")
	})

	t.Run("StepsUpAnAsyncSlaveWhenTheSyncOneIsLost", func(t *testing.T) {
		c.killNodeAndAgent(t, "dn1s", "h3")
		waitFor(t, 30*time.Second, "dn1s isolated and dn1a stepped up", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, sync_state, incluster) dn1s, dn1a")
			return err == nil && fmt.Sprint(rows) == "[[dn1a sync t] [dn1s async f]]", fmt.Sprint(rows, err)
		})
		if got := list(); got != `FIRST 1 ("dn1a")` {
			t.Errorf("dn1's list after the step-up: %q", got)
		}
		waitFor(t, 10*time.Second, "dn1a streams as sync", func() (bool, string) {
			got, err := c.replication(dn1)
			return err == nil && got["dn1a"] == "sync", fmt.Sprint(got, err)
		})
		if j := journal("dn1"); len(j) != 2 || j[1][0] != "done" || !strings.Contains(j[1][1], `now 'FIRST 1 ("dn1a")'`) {
			t.Errorf("journal of the step-up: %q", j)
		}
		c.mustNodeSQL(t, dn1, "INSERT INTO d VALUES (3)")
		c.mustRows(t, time.Minute, "START AGENT h3")
		waitFor(t, 90*time.Second, "dn1s back as a streaming potential slave", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, sync_state, incluster) dn1s")
			if err != nil || fmt.Sprint(rows) != "[[dn1s potential t]]" {
				return false, fmt.Sprint(rows, err)
			}
			got, err := c.replication(dn1)
			return err == nil && got["dn1s"] == "potential" && got["dn1a"] == "sync", fmt.Sprint(got, err)
		})
		if got := list(); got != `FIRST 1 ("dn1a", "dn1s")` {
			t.Errorf("dn1's list after the rewind: %q", got)
		}
	})
}
