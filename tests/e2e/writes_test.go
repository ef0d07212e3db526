package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestWrites: writes through coordinators as a client sees them — an
// UPDATE of the distribution column is refused and changes nothing,
// other UPDATEs are still pushed down, concurrent updates of one row wait
// at READ COMMITTED (and fail at REPEATABLE READ, as PostgreSQL's do), and
// a deadlock across two datanodes ends within seconds with "deadlock
// detected" for one transaction while the other commits.
func TestWrites(t *testing.T) {
	c := sharedShardedCluster(t, 2)
	cn1, cn2 := c.node("cn1"), c.node("cn2")
	c.mustNodeSQL(t, cn1, "CREATE TABLE acct (id int NOT NULL, v int); SELECT adb.create_distributed_table('acct', 'id')")
	c.mustNodeSQL(t, cn1, "INSERT INTO acct SELECT g, 0 FROM generate_series(1, 100) g")

	t.Run("distribution column", func(t *testing.T) {
		stderr := c.psqlFails(t, cn1, "UPDATE acct SET id = 1000 WHERE id = 1")
		if !strings.Contains(stderr, "0A000: modifying the partition value of rows is not allowed") || !strings.Contains(stderr, "HINT:") {
			t.Errorf("UPDATE of the distribution column: %s", stderr)
		}
		part := c.nodeValue(t, cn2, "SELECT tableoid::regclass FROM acct WHERE id = 1")
		stderr = c.psqlFails(t, cn2, "UPDATE "+part+" SET id = id + 1 WHERE id = 1")
		if !strings.Contains(stderr, "0A000: modifying the partition value of rows is not allowed") {
			t.Errorf("UPDATE of the distribution column through partition %s: %s", part, stderr)
		}
		// Through a view, in a WITH query: the same.
		c.mustNodeSQL(t, cn1, "CREATE VIEW acct_v AS SELECT * FROM acct")
		for _, sql := range []string{"UPDATE acct_v SET id = 1000 WHERE id = 1",
			"WITH u AS (UPDATE acct SET id = 1000 WHERE id = 1 RETURNING id) SELECT count(*) FROM u"} {
			if stderr := c.psqlFails(t, cn1, sql); !strings.Contains(stderr, "0A000") {
				t.Errorf("%s: %s", sql, stderr)
			}
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || sum(id) || ' ' || count(*) FILTER (WHERE id = 1) FROM acct"); v != "100 5050 1" {
			t.Errorf("rows after the refused UPDATEs (count, sum of ids, rows with id 1): %s", v)
		}
		// Setting the key to its own value changes nothing: allowed (ORMs
		// send every column).
		c.mustNodeSQL(t, cn1, "UPDATE acct SET id = 1, v = 7 WHERE id = 1")
		c.mustNodeSQL(t, cn1, "UPDATE acct SET id = id, v = 0 WHERE id = 1")
		plan := c.mustNodeSQL(t, cn1, "EXPLAIN VERBOSE UPDATE acct SET v = v + 1 WHERE id = 2")
		if !strings.Contains(rowsText(plan), "Foreign Update") {
			t.Errorf("an UPDATE of another column is no longer pushed down:\n%s", rowsText(plan))
		}
		// A plain EXPLAIN of an UPDATE of every slot, first thing in its
		// session, writes nothing: it is no transaction across datanodes
		// to commit (it once failed at COMMIT with "missed cleaning up
		// connection during pre-commit").
		plan = c.mustNodeSQL(t, cn1, "EXPLAIN VERBOSE UPDATE acct SET v = v + 1")
		if !strings.Contains(rowsText(plan), "Foreign Update") {
			t.Errorf("EXPLAIN of an UPDATE of every slot:\n%s", rowsText(plan))
		}
	})

	t.Run("read committed waits", func(t *testing.T) {
		first := c.begin(t, cn1, "BEGIN", "UPDATE acct SET v = v + 1 WHERE id = 3")
		second := c.psqlAsync(cn2, "UPDATE acct SET v = v + 10 WHERE id = 3")
		select {
		case r := <-second:
			t.Fatalf("the second UPDATE did not wait for the first transaction: %v %s", r.err, r.stderr)
		case <-time.After(2 * time.Second):
		}
		if _, err := first.Exec(context.Background(), "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if r := <-second; r.err != nil {
			t.Fatalf("the second UPDATE at READ COMMITTED failed after the first committed: %v %s", r.err, r.stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT v FROM acct WHERE id = 3"); v != "11" {
			t.Errorf("v after both updates = %s, want 11", v)
		}
	})

	t.Run("read committed after a routed insert", func(t *testing.T) {
		// The second session's first use of the datanode is an INSERT,
		// whose partition is opened while the statement runs.
		// A free id on the datanode of row 5.
		c.mustNodeSQL(t, cn1, "INSERT INTO acct SELECT g, 0 FROM generate_series(1001, 1100) g")
		id := c.nodeValue(t, cn1, `SELECT min(b.id) FROM acct a JOIN acct b ON b.id > 1000
			JOIN pg_foreign_table fa ON fa.ftrelid = a.tableoid JOIN pg_foreign_table fb ON fb.ftrelid = b.tableoid
			WHERE a.id = 5 AND fa.ftserver = fb.ftserver`)
		c.mustNodeSQL(t, cn1, "DELETE FROM acct WHERE id > 1000")
		first := c.begin(t, cn1, "BEGIN", "UPDATE acct SET v = v + 1 WHERE id = 5")
		second := c.psqlAsync(cn2, "BEGIN; INSERT INTO acct VALUES ("+id+", 0); UPDATE acct SET v = v + 10 WHERE id = 5; COMMIT")
		time.Sleep(time.Second)
		if _, err := first.Exec(context.Background(), "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if r := <-second; r.err != nil {
			t.Fatalf("INSERT then UPDATE at READ COMMITTED failed after the first transaction committed: %v %s", r.err, r.stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT v FROM acct WHERE id = 5"); v != "11" {
			t.Errorf("v after both updates = %s, want 11", v)
		}
		c.mustNodeSQL(t, cn1, "DELETE FROM acct WHERE id = "+id)
	})

	t.Run("repeatable read fails as PostgreSQL's", func(t *testing.T) {
		first := c.begin(t, cn1, "BEGIN ISOLATION LEVEL REPEATABLE READ", "UPDATE acct SET v = v + 1 WHERE id = 4")
		second := c.psqlAsync(cn2, "BEGIN ISOLATION LEVEL REPEATABLE READ; UPDATE acct SET v = v + 10 WHERE id = 4; COMMIT")
		time.Sleep(time.Second)
		if _, err := first.Exec(context.Background(), "COMMIT"); err != nil {
			t.Fatal(err)
		}
		r := <-second
		if r.err == nil || !strings.Contains(r.stderr, "40001") {
			t.Errorf("the second UPDATE at REPEATABLE READ: %v %s, want a serialization failure (40001)", r.err, r.stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT v FROM acct WHERE id = 4"); v != "1" {
			t.Errorf("v = %s, want 1 (the first transaction's update alone)", v)
		}
	})

	t.Run("deadlock across datanodes", func(t *testing.T) {
		// One row on each datanode.
		ids := map[string]string{}
		for _, r := range c.mustNodeSQL(t, cn1, `SELECT DISTINCT ON (s.srvname) s.srvname, a.id FROM acct a
			JOIN pg_foreign_table ft ON ft.ftrelid = a.tableoid JOIN pg_foreign_server s ON s.oid = ft.ftserver
			WHERE a.id > 10 ORDER BY s.srvname, a.id`) {
			ids[r[0]] = r[1]
		}
		if ids["dn1"] == "" || ids["dn2"] == "" {
			t.Fatalf("no row on each datanode: %v", ids)
		}
		t1 := c.begin(t, cn1, "BEGIN", "UPDATE acct SET v = v + 1 WHERE id = "+ids["dn1"])
		t2 := c.begin(t, cn2, "BEGIN", "UPDATE acct SET v = v + 1 WHERE id = "+ids["dn2"])
		start := time.Now()
		done1, done2 := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := t1.Exec(context.Background(), "UPDATE acct SET v = v + 1 WHERE id = "+ids["dn2"])
			done1 <- err
		}()
		go func() {
			_, err := t2.Exec(context.Background(), "UPDATE acct SET v = v + 1 WHERE id = "+ids["dn1"])
			done2 <- err
		}()
		// The victim's error and the other transaction's UPDATE (which
		// goes on once the victim's locks are gone) reach their clients in
		// either order.
		var victim error
		var winner *pgx.Conn
		var err1, err2 error
		timeout := time.After(30 * time.Second)
		for got1, got2 := false, false; !got1 || !got2; {
			select {
			case err1 = <-done1:
				got1 = true
			case err2 = <-done2:
				got2 = true
			case <-timeout:
				t.Fatal("the deadlock was not broken within 30 s")
			}
		}
		switch {
		case err1 != nil && err2 != nil:
			t.Fatalf("both transactions failed: %v / %v", err1, err2)
		case err1 == nil && err2 == nil:
			t.Fatal("both transactions went through: no deadlock")
		case err1 != nil:
			victim, winner = err1, t2
		default:
			victim, winner = err2, t1
		}
		took := time.Since(start)
		var pe *pgconn.PgError
		if !errors.As(victim, &pe) || pe.Code != "40P01" || pe.Message != "deadlock detected" ||
			!strings.Contains(pe.Detail, "dn1") || !strings.Contains(pe.Detail, "dn2") {
			t.Fatalf("the victim's error: %v (detail %q), want 40P01 deadlock detected naming dn1 and dn2", victim, errDetail(victim))
		}
		if took > 10*time.Second {
			t.Errorf("the deadlock took %s to break, want < 10 s", took)
		}
		if _, err := winner.Exec(context.Background(), "COMMIT"); err != nil {
			t.Fatalf("the other transaction's COMMIT: %v", err)
		}
		if v := c.nodeValue(t, cn2, "SELECT sum(v) FROM acct WHERE id IN ("+ids["dn1"]+", "+ids["dn2"]+")"); v != "2" {
			t.Errorf("after the deadlock, the two rows' sum(v) = %s, want 2 (the winner's two updates)", v)
		}
		rows, _ := c.mustRows(t, time.Minute, "SELECT step FROM journal WHERE command = 'BREAK DEADLOCK'")
		if len(rows) != 1 {
			t.Errorf("journal of the deadlock: %q", rows)
		}
		t.Logf("deadlock broken in %s: %s", took.Round(time.Millisecond), pe.Detail)
	})
}

func rowsText(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "\t"))
		b.WriteString("\n")
	}
	return b.String()
}

func errDetail(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Detail
	}
	return ""
}

// begin opens a client session on n that runs sqls (a transaction left
// open); it is closed at the test's end.
func (c *testCluster) begin(t *testing.T, n nodeSpec, sqls ...string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s on %s: %v", q, n.Name, err)
		}
	}
	return conn
}

// psqlResult is how a psql run ended.
type psqlResult struct {
	err    error
	stderr string
}

// psqlCmd is psql on n running sql with verbose errors (SQLSTATEs shown).
func (c *testCluster) psqlCmd(ctx context.Context, n nodeSpec, sql string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "psql", "-X", "-h", c.host(n.Host).Addr, "-p", strconv.Itoa(n.Port), "-U", c.dbUser(),
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-A", "-t", "-c", sql)
	cmd.Env = append(os.Environ(), c.nodeEnv()...)
	return cmd
}

// psqlAsync runs sql on n in the background.
func (c *testCluster) psqlAsync(n nodeSpec, sql string) <-chan psqlResult {
	out := make(chan psqlResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var e strings.Builder
		cmd := c.psqlCmd(ctx, n, sql)
		cmd.Stderr = &e
		err := cmd.Run()
		out <- psqlResult{err: err, stderr: e.String()}
	}()
	return out
}

// psqlFails runs sql on n, which must fail, and returns psql's stderr.
func (c *testCluster) psqlFails(t *testing.T, n nodeSpec, sql string) string {
	t.Helper()
	r := <-c.psqlAsync(n, sql)
	if r.err == nil {
		t.Fatalf("%s on %s succeeded", sql, n.Name)
	}
	return r.stderr
}
