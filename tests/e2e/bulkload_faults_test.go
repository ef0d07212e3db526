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

// TestBulkLoad's Faults: faults a review of the bulk-load path found by
// trying it (stop 17), each fixed; each subtest shows the fault is gone.

// serverCrashes is how many times node n's server logs say a backend was
// killed by a signal (a crash that restarts every session of the node).
func (c *testCluster) serverCrashes(t *testing.T, n nodeSpec) int {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(n.Path, "log", "*.log"))
	crashes := 0
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crashes += strings.Count(string(b), "was terminated by signal")
	}
	return crashes
}

// reachable waits until node n answers again (after a crash, its
// postmaster reinitialises).
func (c *testCluster) reachable(t *testing.T, n nodeSpec) {
	t.Helper()
	waitFor(t, time.Minute, n.Name+" answers", func() (bool, string) {
		_, err := c.nodeSQL(n, "SELECT 1")
		return err == nil, fmt.Sprint(err)
	})
}

func (c *testCluster) bulkLoadFaults(t *testing.T) {
	cn1, dn1 := c.node("cn1"), c.node("dn1")

	var rows strings.Builder
	for n := 1; n <= 2000; n++ {
		fmt.Fprintf(&rows, "%d\tv%d\n", n, n)
	}

	// A multi-shard COPY on a datanode (shardcopy.c) refuses a table with
	// row-level security, as PostgreSQL's COPY FROM does (it checked
	// INSERT only: an ordinary role wrote rows its policies refuse).
	t.Run("ShardCopyHonoursRowLevelSecurity", func(t *testing.T) {
		c.mustNodeSQL(t, dn1, `CREATE ROLE r17_mallory LOGIN;
			CREATE TABLE r17_rls (owner text, v text);
			ALTER TABLE r17_rls ENABLE ROW LEVEL SECURITY;
			CREATE POLICY own ON r17_rls USING (owner = current_user) WITH CHECK (owner = current_user);
			GRANT SELECT, INSERT ON r17_rls TO r17_mallory`)
		asMallory := []string{"PGOPTIONS=-c role=r17_mallory"}
		if _, stderr, err := c.copyPsql(dn1, asMallory, "COPY r17_rls FROM STDIN", "alice\tforged\n"); err == nil || !strings.Contains(stderr, "0A000") {
			t.Errorf("PostgreSQL's COPY FROM into a table with row-level security: %v %s, want 0A000", err, stderr)
		}
		out, stderr, err := c.copyPsql(dn1, asMallory, "COPY r17_rls (owner, v) FROM STDIN WITH (adb_shards ('public.r17_rls'))", "0\talice\tforged\n")
		if err == nil || !strings.Contains(stderr, "0A000") {
			t.Errorf("a multi-shard COPY into a table with row-level security, as a role its policy refuses: %v %q %s, want 0A000", err, out, stderr)
		}
		if n := c.nodeValue(t, dn1, "SELECT count(*) FROM r17_rls WHERE owner = 'alice'"); n != "0" {
			t.Errorf("r17_rls holds %s rows of alice's written by r17_mallory", n)
		}
	})

	// A row of a few hundred MB (a large text or bytea value) loads in
	// time linear in its length (the datanode looked for the line's end
	// from its start again at each 64 kB CopyData message, put_aside:
	// 256 MB took 77 s, against 4.5 s with adb.copy_bulk off).
	t.Run("LongRowLoadsInLinearTime", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE r17_long (id int, v text); SELECT adb.create_distributed_table('r17_long', 'id')`)
		in := "1\t" + strings.Repeat("x", 128<<20) + "\n"
		load := func(env []string) time.Duration {
			start := time.Now()
			if out, stderr, err := c.copyPsql(cn1, env, "COPY r17_long FROM STDIN", in); err != nil || strings.TrimSpace(out) != "COPY 1" {
				t.Fatalf("COPY of a 128 MB row: %v %q %s", err, out, stderr)
			}
			return time.Since(start)
		}
		rowByRow := load([]string{"PGOPTIONS=-c adb.copy_bulk=off"})
		bulk := load(nil)
		if bulk > 3*rowByRow+3*time.Second {
			t.Errorf("a 128 MB row: %v in bulk, %v row by row (adb.copy_bulk off)", bulk, rowByRow)
		}
	})

	// While a datanode does not read the rows streamed to it (its shard's
	// COPY waits for a lock), the coordinator's backend still takes
	// interrupts: statement_timeout, pg_cancel_backend (and so the
	// manager's deadlock breaker) end the COPY. With libpq's blocking
	// PQputCopyData it sat in send() until the lock's holder ended.
	t.Run("CancelWhileADatanodeWaits", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE r17_wait (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('r17_wait', 'id')`)
		release := c.holdRows(t, cn1, "r17_holder", "INSERT INTO r17_wait VALUES (5, 'held')")
		done := c.psqlInBackground(cn1, []string{"PGOPTIONS=-c statement_timeout=2s"}, "COPY r17_wait FROM STDIN", longInput(2000000))
		select {
		case got := <-done:
			if !strings.Contains(got, "57014") {
				t.Errorf("COPY with statement_timeout 2s, a key of it locked: %s, want 57014", got)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("COPY with statement_timeout 2s still runs after 30 s, while a datanode waits for a lock")
			release()
			<-done
		}
		release()
	})

	// A FATAL in the middle of a streaming COPY (pg_terminate_backend, a
	// fast shutdown) ends the datanodes' COPYs too (abandon at exit). A
	// PG_CATCH skipped it: postgres_fdw's abort cleanup then looped on
	// PQgetResult, which kept returning PGRES_COPY_IN, at 100% CPU for
	// good, the datanodes' COPYs and locks open.
	t.Run("TerminateWhileStreaming", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE r17_term (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('r17_term', 'id')`)
		done := c.psqlInBackground(cn1, []string{"PGAPPNAME=r17_term"}, "COPY r17_term FROM STDIN", longInput(2000000))
		var pid string
		waitFor(t, time.Minute, "the COPY streams to the datanodes", func() (bool, string) {
			rows, err := c.nodeSQL(dn1, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.r17_term%'")
			if err != nil || len(rows) != 1 || rows[0][0] == "0" {
				return false, fmt.Sprint(rows, err)
			}
			pid = c.nodeValue(t, cn1, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = 'r17_term'")
			return pid != "0", pid
		})
		c.mustNodeSQL(t, cn1, "SELECT pg_terminate_backend("+pid+")")
		gone := func() (bool, string) {
			left := c.nodeValue(t, cn1, "SELECT count(*) FROM pg_stat_activity WHERE pid = "+pid)
			copies := c.nodeValue(t, dn1, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.r17_term%' AND state = 'active'")
			return left == "0" && copies == "0", "coordinator backend " + left + ", dn1 COPYs " + copies
		}
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(30 * time.Second)
	poll:
		for ok, _ := gone(); !ok; ok, _ = gone() {
			select {
			case <-tick.C:
			case <-deadline:
				break poll
			}
		}
		if ok, saw := gone(); !ok {
			t.Errorf("30 s after pg_terminate_backend of a streaming COPY: %s", saw)
			// A backend spinning in its exit ends by SIGKILL only (cn1 restarts).
			if n, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
		<-done
		c.reachable(t, cn1)
	})

	// A default calling a built-in that runs a query (query_to_xml over a
	// distributed table) keeps the rows from streaming (stream_safe): it
	// would find the datanodes' connections inside COPY ("another command
	// is already in progress").
	t.Run("DefaultRunningAQuery", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE r17_q (id bigint PRIMARY KEY, x xml DEFAULT query_to_xml('SELECT count(*) FROM r17_q', false, false, ''), v text);
			SELECT adb.create_distributed_table('r17_q', 'id')`)
		c.loadPastABatch(t, cn1, "r17_q", "a table whose default runs a query")
	})

	// A COPY into a plain table is PostgreSQL's own; a shard's, on a
	// datanode, runs with the shard's descriptor swapped for an uncounted
	// copy (shardcopy.c, unpin). Something that looks the row type up in
	// the type cache meanwhile (a whole-row reference in a CHECK or an
	// index expression, a function taking the row) must find the
	// relcache's own descriptor, as it did: an earlier version set the
	// shared descriptor's count to -1 for every plain table, and such a
	// COPY crashed the node (any role that may create a temporary table
	// could do it).
	t.Run("PlainCopyWithWholeRowReferences", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE ROLE r17_user`)
		for _, k := range []struct{ name, env, create, copy string }{
			{"a temporary table's whole-row CHECK, as an ordinary role", "PGOPTIONS=-c role=r17_user",
				"CREATE TEMP TABLE r17_wr (a int, b text, CHECK (r17_wr IS NOT NULL))", "COPY r17_wr FROM STDIN"},
			{"an index on a function of the row", "",
				`CREATE TABLE r17_ix (a int, b text);
				CREATE FUNCTION r17_key(r17_ix) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1.a::text || $1.b';
				CREATE INDEX ON r17_ix (r17_key(r17_ix))`, "COPY r17_ix FROM STDIN"},
		} {
			c.reachable(t, cn1)
			before := c.serverCrashes(t, cn1)
			var env []string
			if k.env != "" {
				env = []string{k.env}
			}
			cmd := k.copy
			if strings.HasPrefix(k.create, "CREATE TEMP") {
				// One session: the temporary table and its COPY.
				cmd = k.create + `; ` + k.copy
			} else {
				c.mustNodeSQL(t, cn1, k.create)
			}
			out, stderr, err := c.copyPsql(cn1, env, cmd, rows.String())
			if err != nil || !strings.Contains(out, "COPY 2000") {
				t.Errorf("%s: %v %q %s", k.name, err, out, stderr)
			}
			if n := c.serverCrashes(t, cn1) - before; n != 0 {
				t.Errorf("%s: cn1's log shows %d backend(s) killed by a signal", k.name, n)
			}
		}
		// A shard with a whole-row CHECK and an index on a function of the
		// row (a distributed table cannot have them: PostgreSQL refuses
		// whole-row references in a partitioned table's constraints, but a
		// DBA may add them to a shard), loaded by a multi-shard COPY.
		c.mustNodeSQL(t, dn1, `CREATE TABLE r17_sh (a int, b text, CHECK (r17_sh IS NOT NULL));
			CREATE FUNCTION r17_shkey(r17_sh) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1.a::text || $1.b';
			CREATE INDEX ON r17_sh (r17_shkey(r17_sh))`)
		var lines strings.Builder
		for n := 1; n <= 3000; n++ {
			fmt.Fprintf(&lines, "0\t%d\tv%d\n", n, n)
		}
		crashes := c.serverCrashes(t, dn1)
		for i := 0; i < 3; i++ {
			out, stderr, err := c.copyPsql(dn1, nil, "COPY r17_sh (a, b) FROM STDIN WITH (adb_shards ('public.r17_sh'))", lines.String())
			if err != nil || !strings.Contains(out, "COPY 3000") {
				t.Errorf("a multi-shard COPY into a shard with whole-row references: %v %q %s", err, out, stderr)
			}
		}
		if n := c.serverCrashes(t, dn1) - crashes; n != 0 {
			t.Errorf("dn1's log shows %d backend(s) killed by a signal", n)
		}
		if v := c.nodeValue(t, dn1, "SELECT count(*) || ' ' || count(DISTINCT r17_shkey(r17_sh)) FROM r17_sh"); v != "9000 3000" {
			t.Errorf("rows in r17_sh, distinct keys: %s, want 9000 3000", v)
		}
	})
}

// longInput is n rows of (id, v) in COPY text form.
func longInput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\tv%d\n", i, i)
	}
	return b.String()
}
