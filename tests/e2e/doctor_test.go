package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// postmasterPID reads a node's postmaster.pid.
func postmasterPID(t testing.TB, n nodeSpec) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Path, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// killNodeAndAgent kills a node's postmaster and the agent of its host,
// as the death of the host would.
func (c *testCluster) killNodeAndAgent(t testing.TB, node, host string) {
	t.Helper()
	agent := c.agentPID(c.host(host))
	if agent == 0 {
		t.Fatalf("no agent process for %s", host)
	}
	syscall.Kill(agent, syscall.SIGKILL)
	syscall.Kill(postmasterPID(t, c.node(node)), syscall.SIGKILL)
}

// TestDoctor: with the doctor on, a master that crashes is restarted, and a
// master that cannot be restarted (its host's agent is gone too) is failed
// over to its sync slave within seconds; once the agent is back the old
// master is rewound into a streaming sync slave of the new one. A crashed
// slave and a crashed coordinator are restarted; a host the doctor must
// leave alone (SET DOCTOR HOST … OFF) is.
func TestDoctor(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 500, failures = 2)")
	c.mustRows(t, time.Minute, "START DOCTOR")
	rows, _ := c.mustRows(t, time.Minute, "LIST DOCTOR")
	if !strings.Contains(fmt.Sprint(rows), "PARAMETER  enable on") || !strings.Contains(fmt.Sprint(rows), "interval_ms 500") {
		t.Errorf("LIST DOCTOR = %q", rows)
	}
	c.mustNodeSQL(t, c.node("dn1"), "CREATE TABLE d (a int); INSERT INTO d VALUES (1)")

	t.Run("RestartsACrashedMaster", func(t *testing.T) {
		syscall.Kill(postmasterPID(t, c.node("dn1")), syscall.SIGKILL)
		waitFor(t, 30*time.Second, "dn1 restarted by the doctor", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1"), "SELECT pg_is_in_recovery()")
			return err == nil && len(rows) == 1 && rows[0][0] == "f", fmt.Sprint(rows, err)
		})
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type) dn1")
		if fmt.Sprint(rows) != "[[dn1 datanode master]]" {
			t.Errorf("LIST NODE after the restart = %q", rows)
		}
	})

	t.Run("FailsOverAMasterThatCannotRestart", func(t *testing.T) {
		c.killNodeAndAgent(t, "dn1", "h2")
		start := time.Now()
		waitFor(t, 60*time.Second, "dn1s promoted by the doctor", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, type) dn1s")
			return err == nil && fmt.Sprint(rows) == "[[dn1s datanode master]]", fmt.Sprint(rows, err)
		})
		t.Logf("failed over %.1fs after the crash", time.Since(start).Seconds())
		if v := c.nodeValue(t, c.node("dn1s"), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("dn1s is not a primary")
		}
		if v := c.nodeValue(t, c.node("dn1s"), "SELECT count(*) FROM d"); v != "1" {
			t.Errorf("the committed row is not on dn1s: %s", v)
		}
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type, incluster) dn1")
		if fmt.Sprint(rows) != "[[dn1 datanode slave f]]" {
			t.Errorf("LIST NODE dn1 after the doctor's failover = %q", rows)
		}
		c.mustRows(t, time.Minute, "START AGENT h2")
	})

	t.Run("RewindsTheOldMaster", func(t *testing.T) {
		start := time.Now()
		waitFor(t, 90*time.Second, "dn1 back as a streaming sync slave of dn1s", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, type, mastername, sync_state, incluster) dn1")
			if err != nil || fmt.Sprint(rows) != "[[dn1 datanode slave dn1s sync t]]" {
				return false, fmt.Sprint(rows, err)
			}
			got, err := c.replication(c.node("dn1s"))
			return err == nil && got["dn1"] == "sync", fmt.Sprint(got, err)
		})
		t.Logf("rewound %.1fs after the agent came back", time.Since(start).Seconds())
		if v := c.nodeValue(t, c.node("dn1"), "SELECT pg_is_in_recovery()"); v != "t" {
			t.Errorf("dn1 is not a standby")
		}
		c.mustNodeSQL(t, c.node("dn1s"), "INSERT INTO d VALUES (2)")
		waitFor(t, 20*time.Second, "dn1 replays dn1s's writes", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1"), "SELECT count(*) FROM d")
			return err == nil && fmt.Sprint(rows) == "[[2]]", fmt.Sprint(rows, err)
		})
		ha := c.monitorHA(t)
		if ha["dn1"] != "datanode slave dn1 streaming sync" {
			t.Errorf("MONITOR HA dn1 = %q", ha["dn1"])
		}
		// The doctor journals its actions; the rewind's last row comes
		// once the coordinators are refreshed.
		waitFor(t, 20*time.Second, "the doctor's failover and rewind journaled", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "SELECT command, status FROM journal WHERE command LIKE 'DOCTOR%' AND step = 'end' ORDER BY id")
			got := fmt.Sprint(rows)
			return err == nil && strings.Contains(got, "DOCTOR FAILOVER dn1 done") && strings.Contains(got, "DOCTOR REWIND dn1 done"), got
		})
	})

	t.Run("RestartsACrashedSlave", func(t *testing.T) {
		pid := postmasterPID(t, c.node("dn1"))
		syscall.Kill(pid, syscall.SIGKILL)
		waitFor(t, 30*time.Second, "dn1 restarted by the doctor as a standby", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1"), "SELECT pg_is_in_recovery()")
			return err == nil && fmt.Sprint(rows) == "[[t]]", fmt.Sprint(rows, err)
		})
		if p := postmasterPID(t, c.node("dn1")); p == pid {
			t.Errorf("dn1's postmaster is still %d", p)
		}
		waitFor(t, 30*time.Second, "dn1 streams again", func() (bool, string) {
			got, err := c.replication(c.node("dn1s"))
			return err == nil && got["dn1"] == "sync", fmt.Sprint(got, err)
		})
	})

	t.Run("RestartsACrashedCoordinator", func(t *testing.T) {
		pid := postmasterPID(t, c.node("cn"))
		syscall.Kill(pid, syscall.SIGKILL)
		waitFor(t, 30*time.Second, "cn restarted by the doctor", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("cn"), "SELECT pg_is_in_recovery()")
			return err == nil && fmt.Sprint(rows) == "[[f]]", fmt.Sprint(rows, err)
		})
		rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, incluster) cn")
		if fmt.Sprint(rows) != "[[cn t]]" {
			t.Errorf("LIST NODE cn = %q", rows)
		}
	})

	t.Run("LeavesAHostOffAlone", func(t *testing.T) {
		c.mustRows(t, time.Minute, "SET DOCTOR HOST h2 OFF")
		rows, _ := c.mustRows(t, time.Minute, "LIST DOCTOR")
		if !strings.Contains(fmt.Sprint(rows), "HOST 127.0.0.2 h2 off") && !strings.Contains(fmt.Sprint(rows), " h2 off") {
			t.Errorf("LIST DOCTOR = %q", rows)
		}
		syscall.Kill(postmasterPID(t, c.node("dn1")), syscall.SIGKILL)
		time.Sleep(4 * time.Second) // 8 rounds; 2 failed ones would have been enough
		if _, err := c.nodeSQL(c.node("dn1"), "SELECT 1"); err == nil {
			t.Errorf("the doctor restarted dn1 on a host it must leave alone")
		}
		rows, _ = c.mustRows(t, time.Minute, "LIST NODE (name, incluster) dn1")
		if fmt.Sprint(rows) != "[[dn1 t]]" {
			t.Errorf("LIST NODE dn1 = %q", rows)
		}
		c.mustRows(t, time.Minute, "SET DOCTOR HOST h2 ON")
		waitFor(t, 30*time.Second, "dn1 restarted once the host is on again", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1"), "SELECT pg_is_in_recovery()")
			return err == nil && fmt.Sprint(rows) == "[[t]]", fmt.Sprint(rows, err)
		})
	})

	t.Run("IsolatesASlaveItCannotRestartAndBringsItBack", func(t *testing.T) {
		c.killNodeAndAgent(t, "dn1", "h2")
		waitFor(t, 30*time.Second, "dn1 isolated", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, sync_state, incluster) dn1")
			return err == nil && fmt.Sprint(rows) == "[[dn1 async f]]", fmt.Sprint(rows, err)
		})
		// Commits on dn1s no longer wait for its only sync slave.
		waitFor(t, 20*time.Second, "dn1s runs without a sync slave", func() (bool, string) {
			v, err := c.nodeSQL(c.node("dn1s"), "SELECT current_setting('synchronous_standby_names') = ''")
			return err == nil && fmt.Sprint(v) == "[[t]]", fmt.Sprint(v, err)
		})
		c.mustNodeSQL(t, c.node("dn1s"), "INSERT INTO d VALUES (3)")
		rows, _ := c.mustRows(t, 30*time.Second, "SELECT status, detail FROM journal WHERE command = 'DOCTOR ISOLATE dn1' AND step = 'end'")
		if len(rows) != 1 || rows[0][0] != "done" || !strings.Contains(rows[0][1], "agent") {
			t.Errorf("journal of the isolation = %q", rows)
		}
		c.mustRows(t, time.Minute, "START AGENT h2")
		waitFor(t, 90*time.Second, "dn1 back as a streaming sync slave", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, sync_state, incluster) dn1")
			if err != nil || fmt.Sprint(rows) != "[[dn1 sync t]]" {
				return false, fmt.Sprint(rows, err)
			}
			got, err := c.replication(c.node("dn1s"))
			return err == nil && got["dn1"] == "sync", fmt.Sprint(got, err)
		})
		if v := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM d"); v != "3" {
			t.Errorf("dn1 has %s rows, want 3", v)
		}
	})
	c.mustRows(t, time.Minute, "STOP DOCTOR")
}

// TestDoctorNoFalseFailoverUnderLoad: 12 s of pgbench load on a healthy
// demo cluster, more clients than cores, with the doctor on at its
// defaults: it must take no action (BenchmarkDoctorNoFalseFailover is the
// long version).
func TestDoctorNoFalseFailoverUnderLoad(t *testing.T) {
	loadHealthy(t, newTestCluster(t, 3), 12*time.Second, 1)
}
