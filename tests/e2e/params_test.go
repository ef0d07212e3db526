package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"
)

// plantParam writes a parameter row straight into the manager's catalog, as
// a catalog from before SET checked names may hold one; no command can.
func plantParam(t *testing.T, m *Manager, node, typ, key, value string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(m.Dir, "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO mgr_param (nodename, nodetype, key, value) VALUES (?, ?, ?, ?)`, node, typ, key, value); err != nil {
		t.Fatalf("plant %s %s %s: %v", node, typ, key, err)
	}
}

// nodeSQLIn runs sql on a node in database db (nodeSQL's is postgres).
func (c *testCluster) nodeSQLIn(n nodeSpec, db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-h", c.host(n.Host).Addr, "-p", strconv.Itoa(n.Port), "-U", "postgres",
		"-d", db, "-v", "ON_ERROR_STOP=1", "-A", "-t", "-c", sql)
	cmd.Env = append(os.Environ(), c.nodeEnv()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestParamsCannotBreakCluster: SET refuses what the agent would refuse;
// rows planted in the catalog neither stop INIT nor resist RESET; settings
// that change how a session talks leave the manager's connections alone;
// and the doctor does not act on a master that runs but answers with an
// error of its own.
func TestParamsCannotBreakCluster(t *testing.T) {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")

	paramRows := func(t *testing.T) [][]string {
		t.Helper()
		rows, _ := c.mustRows(t, 30*time.Second, "LIST PARAM")
		return rows
	}

	t.Run("SetRefusesWhatTheAgentRefuses", func(t *testing.T) {
		for _, tt := range []struct{ sql, code, name string }{
			{`SET DATANODE ALL ("a.b.c" = 1) FORCE`, "42602", `"a.b.c"`},
			{`SET DATANODE ALL (include = '/etc/passwd') FORCE`, "42602", `"include"`},
			{`SET DATANODE MASTER ALL (include_dir = '/etc') FORCE`, "42602", `"include_dir"`},
			{`SET DATANODE MASTER dn1 ("Include_If_Exists" = 'x') FORCE`, "42602", `"include_if_exists"`},
			{`SET DATANODE ALL ("a b" = 1) FORCE`, "42602", `"a b"`},
			{`SET DATANODE ALL (work_mem = '8MB', "x.y.z" = 1) FORCE`, "42602", `"x.y.z"`},
			{fmt.Sprintf(`SET DATANODE ALL (my.param = '%s') FORCE`, strings.Repeat("v", 70000)), "22023", `"my.param"`},
		} {
			_, stderr, err := c.psqlRows(time.Minute, tt.sql)
			if err == nil || !strings.Contains(stderr, "ERROR:  "+tt.code+":") || !strings.Contains(stderr, tt.name) {
				t.Errorf("%.80s: want ERROR %s naming %s, got %v\n%s", tt.sql, tt.code, tt.name, err, stderr)
			}
		}
		if rows := paramRows(t); len(rows) != 0 {
			t.Errorf("LIST PARAM after refused SETs = %.500q, want nothing (nothing half-applied)", rows)
		}
	})

	// A catalog from before this check: rows the agent refuses. INIT must
	// still work, and RESET must remove them — no editing of catalog.db.
	plantParam(t, c.M, "*", "datanode", "a.b.c", "1")
	plantParam(t, c.M, "dn1", "datanode master", "INCLUDE_DIR", "/etc")
	rows, stderr := c.mustRows(t, 5*time.Minute, "INIT ALL")
	if bad := failedRows(opRows(t, rows)); len(bad) > 0 {
		t.Fatalf("INIT ALL with planted rows: failed steps %v\n%s", bad, stderr)
	}
	if !strings.Contains(stderr, `WARNING`) || !strings.Contains(stderr, `"a.b.c"`) || !strings.Contains(stderr, `"INCLUDE_DIR"`) {
		t.Errorf("INIT ALL does not warn about the planted rows:\n%s", stderr)
	}
	if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
		t.Fatalf("MONITOR ALL after INIT ALL:\n%s", diff)
	}

	t.Run("PlantedRowsCanBeReset", func(t *testing.T) {
		_, stderr := c.mustRows(t, time.Minute, `RESET DATANODE ALL ("a.b.c")`)
		_, stderr2 := c.mustRows(t, time.Minute, `RESET DATANODE MASTER dn1 (include_dir) FORCE`)
		for _, s := range []string{stderr, stderr2} {
			if strings.Contains(s, "WARNING") || !strings.Contains(s, "removed parameter") {
				t.Errorf("RESET of a planted row:\n%s", s)
			}
		}
		if rows := paramRows(t); len(rows) != 0 {
			t.Errorf("LIST PARAM after RESET = %q, want nothing", rows)
		}
		// The affected node restarts, and SET reaches the nodes again.
		c.mustRows(t, time.Minute, "STOP DATANODE MASTER dn1 MODE fast")
		rows, _ := c.mustRows(t, time.Minute, "START DATANODE MASTER dn1")
		if bad := failedRows(opRows(t, rows)); len(bad) > 0 {
			t.Fatalf("START after RESET: %v", bad)
		}
		_, stderr = c.mustRows(t, time.Minute, "SET DATANODE ALL (work_mem = '9MB')")
		if strings.Contains(stderr, "WARNING") {
			t.Errorf("SET after RESET:\n%s", stderr)
		}
		waitFor(t, 30*time.Second, "work_mem on dn1", func() (bool, string) {
			rows, err := c.nodeSQL(c.node("dn1"), "SHOW work_mem")
			return err == nil && fmt.Sprint(rows) == "[[9MB]]", fmt.Sprint(rows, err)
		})
		c.mustRows(t, time.Minute, "RESET DATANODE ALL (work_mem)")
	})

	t.Run("SessionSettingsDoNotReachTheManager", func(t *testing.T) {
		settings := []string{
			"standard_conforming_strings = off", "client_encoding = 'LATIN1'", "DateStyle = 'SQL, DMY'",
			"IntervalStyle = 'sql_standard'", "TimeZone = 'Asia/Tokyo'", "extra_float_digits = -15", "bytea_output = 'escape'",
			"search_path = 'nowhere'", "default_transaction_read_only = on", "default_transaction_isolation = 'serializable'",
			"statement_timeout = '1ms'", "lock_timeout = '1ms'", "idle_in_transaction_session_timeout = '1ms'",
			"session_preload_libraries = 'no_such_library'",
		}
		var keys []string
		for _, s := range settings {
			keys = append(keys, strings.SplitN(s, " ", 2)[0])
		}
		for _, fam := range []string{"GTMCOORD", "DATANODE"} {
			if _, stderr := c.mustRows(t, time.Minute, "SET "+fam+" ALL ("+strings.Join(settings, ", ")+")"); strings.Contains(stderr, "WARNING") {
				t.Errorf("SET %s ALL:\n%s", fam, stderr)
			}
		}
		defer func() {
			for _, fam := range []string{"GTMCOORD", "DATANODE"} {
				c.mustRows(t, time.Minute, "RESET "+fam+" ALL ("+strings.Join(keys, ", ")+")")
			}
		}()
		// The nodes have them: a DBA's own session fails to start.
		waitFor(t, 30*time.Second, "session_preload_libraries applied on dn1", func() (bool, string) {
			_, err := c.nodeSQL(c.node("dn1"), "SELECT 1")
			return err != nil && strings.Contains(err.Error(), "no_such_library"), fmt.Sprint(err)
		})
		// The manager's connections are not affected.
		if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
			t.Errorf("MONITOR ALL with the session settings on the nodes:\n%s", diff)
		}
		rows, _ := c.mustRows(t, time.Minute, "MONITOR HA")
		if !strings.Contains(fmt.Sprint(rows), "dn1s") {
			t.Errorf("MONITOR HA = %q", rows)
		}
		// SHOW PARAM shows the nodes' value, not the manager's session's.
		rows, _ = c.mustRows(t, time.Minute, "SHOW PARAM dn1 standard_conforming_strings")
		if len(rows) != 1 || rows[0][2] != "off" || rows[0][5] != "configuration file" {
			t.Errorf("SHOW PARAM dn1 standard_conforming_strings = %q, want off from the configuration file", rows)
		}
		// The example: the node's statement_timeout, not the 120s
		// of the manager's connection.
		rows, _ = c.mustRows(t, time.Minute, "SHOW PARAM dn1 statement_timeout")
		if len(rows) != 1 || rows[0][2] != "1ms" || rows[0][5] != "configuration file" {
			t.Errorf("SHOW PARAM dn1 statement_timeout = %q, want 1ms from the configuration file", rows)
		}
	})
	waitFor(t, 30*time.Second, "dn1 accepts sessions again", func() (bool, string) {
		_, err := c.nodeSQL(c.node("dn1"), "SELECT 1")
		return err == nil, fmt.Sprint(err)
	})

	t.Run("DoctorLeavesAnErringMasterAlone", func(t *testing.T) {
		c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 200, failures = 2)")
		c.mustRows(t, time.Minute, "START DOCTOR")
		defer c.mustRows(t, time.Minute, "STOP DOCTOR")
		pid := postmasterPID(t, c.node("dn1"))
		// dn1 runs and answers, but every login to postgres fails with
		// 55000; with its agent gone too, nothing can tell the doctor it
		// runs except that answer.
		if out, err := c.nodeSQLIn(c.node("dn1"), "template1", "ALTER DATABASE postgres ALLOW_CONNECTIONS false"); err != nil {
			t.Fatalf("ALLOW_CONNECTIONS false: %v: %s", err, out)
		}
		defer func() {
			if out, err := c.nodeSQLIn(c.node("dn1"), "template1", "ALTER DATABASE postgres ALLOW_CONNECTIONS true"); err != nil {
				t.Errorf("restore ALLOW_CONNECTIONS: %v: %s", err, out)
			}
		}()
		agent := c.agentPID(c.host("h2"))
		if agent == 0 {
			t.Fatal("no agent process for h2")
		}
		syscall.Kill(agent, syscall.SIGKILL)
		defer c.mustRows(t, time.Minute, "START AGENT h2")

		time.Sleep(4 * time.Second) // 20 rounds; 2 failed ones would have been enough
		// The manager's log says what the doctor decided (read once the
		// manager has stopped, so that nothing writes the buffer meanwhile).
		// A failover would not have found a candidate here (dn1s refuses
		// logins to postgres as well: ALTER DATABASE replicates), but the
		// doctor must not even try.
		c.M.Stop()
		log := c.M.log.String()
		c.M.Restart()
		if strings.Contains(log, "doctor: master down") {
			t.Errorf("the doctor acted on dn1:\n%s", tailLines(log, 20))
		}
		if !strings.Contains(log, "answers with an error; leaving it alone") {
			t.Errorf("the doctor did not log why it leaves dn1 alone:\n%s", tailLines(log, 20))
		}
		rows, _ := c.mustRows(t, 30*time.Second, "SELECT command, status, step FROM journal WHERE command LIKE 'FAILOVER%'")
		if len(rows) != 0 {
			t.Errorf("the doctor tried to fail dn1 over: %q", rows)
		}
		if p := postmasterPID(t, c.node("dn1")); p != pid {
			t.Errorf("dn1's postmaster changed from %d to %d", pid, p)
		}
		rows, _ = c.mustRows(t, 30*time.Second, "LIST NODE (name, type) dn1, dn1s")
		if fmt.Sprint(rows) != "[[dn1 datanode master] [dn1s datanode slave]]" {
			t.Errorf("LIST NODE = %q", rows)
		}
		rows, _ = c.mustRows(t, time.Minute, "MONITOR DATANODE MASTER dn1")
		if len(rows) != 1 || rows[0][2] != "t" || !strings.Contains(rows[0][3], "not currently accepting connections") {
			t.Errorf("MONITOR of a master refusing logins = %q, want running with its error", rows)
		}
	})
}
