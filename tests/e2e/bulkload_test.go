package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBulkLoad: the two reviews of the bulk-load path (stop 17), by trying
// it, on one cluster: Faults, what the first found, each fixed
// (bulkload_faults_test.go); Fixes, the second's probes of those fixes
// (bulkload_fixes_test.go).
func TestBulkLoad(t *testing.T) {
	c := sharedShardedCluster(t, 1)
	t.Run("Faults", func(t *testing.T) { c.bulkLoadFaults(t) })
	t.Run("Fixes", func(t *testing.T) { c.bulkLoadFixes(t) })
}

// holdRows begins a transaction on node n in a session of its own
// (application_name app) and runs sql in it: the rows sql writes stay
// locked, so that a load reaching them waits. release rolls it back; the
// session's end at the test's end does too.
func (c *testCluster) holdRows(t *testing.T, n nodeSpec, app, sql string) (release func()) {
	t.Helper()
	s := c.openSession(t, n, app)
	s.send(t, "BEGIN; "+sql+";")
	if out := s.wait(t, time.Minute); strings.Contains(out, "ERROR") {
		t.Fatalf("%s on %s: %s", sql, n.Name, out)
	}
	released := false
	return func() {
		t.Helper()
		if !released {
			released = true
			s.send(t, "ROLLBACK;")
			s.wait(t, time.Minute)
		}
	}
}

// psqlInBackground runs cmd with psql on node n (env added to its
// environment, stdin its input) while the test goes on; the channel gets
// what psql printed, its error and its stderr once it ended.
func (c *testCluster) psqlInBackground(n nodeSpec, env []string, cmd, stdin string) <-chan string {
	done := make(chan string, 1)
	go func() {
		out, stderr, err := c.copyPsql(n, env, cmd, stdin)
		done <- fmt.Sprint(strings.TrimSpace(out), " ", err, " ", stderr)
	}()
	return done
}

// loadPastABatch copies 1,010 rows of (id, 200 bytes) into table's
// columns (id, v) through coordinator cn, and fails the test unless all
// load: were they streamed, streaming would start after the first 1,000
// (a batch), before the last rows' defaults run.
func (c *testCluster) loadPastABatch(t *testing.T, cn nodeSpec, table, what string) {
	t.Helper()
	var in strings.Builder
	for n := 1; n <= 1010; n++ {
		fmt.Fprintf(&in, "%d\t%s\n", n, strings.Repeat("y", 200))
	}
	if out, stderr, err := c.copyPsql(cn, nil, "COPY "+table+" (id, v) FROM STDIN", in.String()); err != nil || strings.TrimSpace(out) != "COPY 1010" {
		t.Errorf("COPY into %s: %v %q %s", what, err, out, stderr)
	}
}
