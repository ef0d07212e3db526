package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestAggregatePushdown, from a user's psql on a coordinator: aggregates
// over a distributed table that are not grouped by the distribution
// column (count, sum, min, max, avg, with WHERE, GROUP BY another column,
// HAVING) run on the datanodes, one aggregate query per slot (EXPLAIN
// VERBOSE: a Foreign Scan of "Aggregate on" each slot, the aggregates in
// its remote SQL), and answer what the same query answers on a plain table
// holding the same rows — values, result types and column names — also
// over an empty table and columns of NULLs. count(DISTINCT …) and the
// setting adb.aggregate_pushdown = off keep the plan of before; reading
// still needs the privilege on the distributed table. The slots of one
// datanode go to it as one query (checkShardBatch).
func TestAggregatePushdown(t *testing.T) {
	c, cn := newPushdownCluster(t)

	// 5,000 rows, some NULL; an empty table; a table of NULLs only.
	const rows = `SELECT n, n % 7, CASE WHEN n % 11 = 0 THEN NULL ELSE n % 101 END,
	n * 1000000000::bigint, CASE WHEN n % 3 = 0 THEN NULL ELSE (n % 97) / 8.0 END, n / 4.0::float8, 'k' || n % 5
	FROM generate_series(1, 5000) n`
	const cols = "(id int NOT NULL, g int, a int, b bigint, m numeric, f float8, s text)"
	c.mustNodeSQL(t, cn, `CREATE TABLE ap_t `+cols+`;
CREATE TABLE ap_e `+cols+`;
CREATE TABLE ap_n `+cols+`;
SELECT adb.create_distributed_table('ap_t', 'id');
SELECT adb.create_distributed_table('ap_e', 'id');
SELECT adb.create_distributed_table('ap_n', 'id');
INSERT INTO ap_t `+rows+`;
INSERT INTO ap_n SELECT n, NULL, NULL, NULL, NULL, NULL, NULL FROM generate_series(1, 100) n;
ANALYZE ap_t;
CREATE TABLE pl_t `+cols+`;
CREATE TABLE pl_e `+cols+`;
CREATE TABLE pl_n `+cols+`;
INSERT INTO pl_t `+rows+`;
INSERT INTO pl_n SELECT n, NULL, NULL, NULL, NULL, NULL, NULL FROM generate_series(1, 100) n;
ANALYZE pl_t;`)

	explain := func(q string) string { return explainVerbose(t, c, cn, q) }
	count := func(plan, re string) int { return len(regexp.MustCompile(re).FindAllString(plan, -1)) }

	pushed := []struct{ query, remote string }{
		{"SELECT count(*), sum(a), avg(a), min(a), max(a) FROM ap_t",
			`Remote SQL: SELECT count\(\*\), sum\(a\), count\(a\), min\(a\), max\(a\) FROM public\.ap_t_\d+\n`},
		{"SELECT g, count(*), sum(a) FROM ap_t GROUP BY g",
			`Remote SQL: SELECT g, count\(\*\), sum\(a\) FROM public\.ap_t_\d+ GROUP BY 1\n`},
		{"SELECT s, count(a), avg(m) FROM ap_t WHERE a > 10 GROUP BY s HAVING sum(b) > 0 ORDER BY s",
			`Remote SQL: SELECT s, count\(a\), sum\(m\), count\(m\), sum\(b\) FROM public\.ap_t_\d+ WHERE \(\(a > 10\)\) GROUP BY 1\n`},
	}
	for _, p := range pushed {
		plan := explain(p.query)
		if n := count(plan, `Relations: Aggregate on \(public\.ap_t_\d+( \w+)?\)\n\s*`+p.remote); n != 64 {
			t.Errorf("%s: %d of 64 slots aggregate on their datanode, want all\n%s", p.query, n, plan)
		}
	}
	// What is not rewritten: count(DISTINCT …) aggregates on the
	// coordinator; a count in one slot reads that slot; grouped by the
	// distribution column, each slot's groups are whole (no aggregate at
	// the top of the plan).
	if plan := explain("SELECT count(DISTINCT g) FROM ap_t"); strings.Contains(plan, "Aggregate on") {
		t.Errorf("count(DISTINCT g) rewritten:\n%s", plan)
	}
	if plan := explain("SELECT count(*) FROM ap_t WHERE id = 5"); count(plan, `Foreign Scan`) != 1 {
		t.Errorf("a count in one slot reads more than that slot:\n%s", plan)
	}
	if plan := explain("SELECT id, count(*) FROM ap_t GROUP BY id"); strings.Contains(strings.SplitN(plan, "\n", 2)[0], "Aggregate") {
		t.Errorf("GROUP BY the distribution column rewritten:\n%s", plan)
	}
	if plan := c.mustNodeSQL(t, cn, "SET adb.aggregate_pushdown = off; EXPLAIN VERBOSE SELECT count(*) FROM ap_t"); strings.Contains(fmt.Sprint(plan), "Aggregate on") {
		t.Errorf("adb.aggregate_pushdown = off still pushes the aggregate:\n%s", plan)
	}

	// The answers, their types and their column names are those of the
	// plain tables.
	for _, q := range []string{
		"SELECT count(*), count(a), sum(a), avg(a), min(a), max(a) FROM %s_t",
		"SELECT count(*), count(a), sum(a), avg(a), min(a), max(a), sum(b), avg(b), sum(m), avg(m), min(m), max(s), sum(f), avg(f) FROM %s_e",
		"SELECT count(*), count(a), sum(a), avg(a), min(a), max(a), sum(b), avg(b), sum(m), avg(m), min(m), max(s), sum(f), avg(f) FROM %s_n",
		"SELECT sum(b), avg(b), min(b), sum(m), avg(m), max(m), min(s), max(s), sum(f), avg(f) FROM %s_t",
		"SELECT count(*), sum(a) FROM %s_t WHERE a > 50 AND s <> 'k3'",
		"SELECT count(*), sum(a), avg(a) FROM %s_t WHERE a > 1000",
		"SELECT g, count(*), sum(a), avg(a), min(a), max(a), avg(m) FROM %s_t GROUP BY g ORDER BY g",
		"SELECT g, count(*), sum(a), avg(a) FROM %s_e GROUP BY g ORDER BY g",
		"SELECT s, g, count(a) FILTER (WHERE a > 20), max(m) FROM %s_t WHERE id < 4000 GROUP BY s, g ORDER BY 1, 2",
		"SELECT g + 1 AS h, count(*) * 2 AS twice, sum(a) / count(a) AS mean FROM %s_t GROUP BY g HAVING avg(a) > 49 ORDER BY h DESC LIMIT 3",
		"SELECT DISTINCT count(*) FROM %s_t GROUP BY g",
		"SELECT pg_typeof(count(*)), pg_typeof(sum(a)), pg_typeof(avg(a)), pg_typeof(sum(b)), pg_typeof(avg(f)), pg_typeof(min(s)) FROM %s_t",
		"SELECT g FROM %s_t GROUP BY g ORDER BY sum(a) DESC, g",
		"SELECT sum(a * 2 + 1), max(s || 'x'), count(*) FILTER (WHERE f > 100), min(m) FILTER (WHERE g = 3) FROM %s_t",
		"SELECT count(*), sum(a) FROM %s_t WHERE id < 0 HAVING count(*) = 0",
		"SELECT count(DISTINCT g), sum(DISTINCT a) FROM %s_t",
		"SELECT count(*) FROM %s_t WHERE id = 5",
	} {
		sameAsPlain(t, c, cn, q, []any{"ap"}, []any{"pl"}, strings.Contains(q, "_e GROUP BY"))
	}
	const named = "SELECT g AS grp, count(*), sum(a) AS total, avg(m), max(s) FROM %s_t GROUP BY g"
	c.mustNodeSQL(t, cn, fmt.Sprintf("CREATE TABLE ap_cols AS "+named+"; CREATE TABLE pl_cols AS "+named, "ap", "pl"))
	const desc = "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '%s'::regclass AND attnum > 0 ORDER BY attnum"
	if got, want := c.mustNodeSQL(t, cn, fmt.Sprintf(desc, "ap_cols")), c.mustNodeSQL(t, cn, fmt.Sprintf(desc, "pl_cols")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("columns of the answer: distributed %v, plain %v", got, want)
	}

	checkShardBatch(t, c, cn)

	// Privileges are those of the distributed table (past them, the
	// user mapping's rules hold as without the rewrite).
	// Roles are per server: a GRANT on a distributed table reaches every
	// coordinator and the gtmcoord master, which need the role too.
	c.mustNodeSQL(t, c.node("gc"), "CREATE ROLE ap_reader")
	c.mustNodeSQL(t, cn, "CREATE ROLE ap_reader")
	if _, err := c.nodeSQL(cn, "SET ROLE ap_reader; SELECT count(*) FROM ap_t"); err == nil || !strings.Contains(err.Error(), "permission denied for table ap_t") {
		t.Errorf("a count without the privilege on ap_t: %v, want permission denied for table ap_t", err)
	}
	c.mustNodeSQL(t, cn, "GRANT SELECT ON ap_t TO ap_reader")
	on, errOn := c.nodeSQL(cn, "SET ROLE ap_reader; SELECT count(*), sum(a) FROM ap_t")
	off, errOff := c.nodeSQL(cn, "SET ROLE ap_reader; SET adb.aggregate_pushdown = off; SELECT count(*), sum(a) FROM ap_t")
	if errOn != nil || errOff != nil || len(on) != 2 || len(off) != 3 || fmt.Sprint(on[1]) != fmt.Sprint(off[2]) {
		t.Errorf("with SELECT on ap_t: pushed down %v %v, not %v %v", on, errOn, off, errOff)
	}
}

// checkShardBatch: the slots' aggregates reach each datanode as one
// remote query (EXPLAIN VERBOSE: "Custom Scan (AdbShardBatch)", "Remote
// queries: 2" over the per-slot plan), the partial aggregates as one
// statement over the UNION ALL of the datanode's slots ("Remote
// statements: 2"), slots' final groups one statement each, with the
// answers of adb.shard_batch = off; a remote error reaches the client with its SQLSTATE and leaves
// the session usable; a statement_timeout while a datanode waits on a
// lock cancels the remote query (57014) and the next query is answered;
// a client's cursor over the table, read half-way, does not disturb an
// aggregate run between its fetches, nor the fetches after it.
func checkShardBatch(t *testing.T, c *testCluster, cn nodeSpec) {
	const q = "SELECT g, count(*), sum(a), avg(m) FROM ap_t GROUP BY g ORDER BY g"
	if plan := explainVerbose(t, c, cn, q); !strings.Contains(plan, "Custom Scan (AdbShardBatch)") || !strings.Contains(plan, "Remote queries: 2") ||
		!strings.Contains(plan, "Remote statements: 2\n") {
		t.Errorf("the slots' aggregates are not batched per datanode, as one statement each:\n%s", plan)
	} else if n := strings.Count(plan, ") adb_slots GROUP BY 1\n"); n != 2 {
		t.Errorf("EXPLAIN VERBOSE shows %d merged statements, want the 2 sent:\n%s", n, plan)
	}
	// Grouped by the distribution column, each slot's groups are final:
	// one statement per slot. A query whose SQL names a slot's table
	// twice (here in a constant) is not merged either; its answer is the
	// same.
	for _, q := range []string{
		"SELECT id, count(*) FROM ap_t GROUP BY id HAVING count(*) > 1",
		"SELECT s, count(*) FROM ap_t WHERE s <> 'x FROM public.ap_t_0 y' GROUP BY s",
	} {
		if plan := explainVerbose(t, c, cn, q); !strings.Contains(plan, "Custom Scan (AdbShardBatch)") || !strings.Contains(plan, "Remote statements: 64\n") {
			t.Errorf("%s: not one statement per slot:\n%s", q, plan)
		}
	}
	sameAsPlain(t, c, cn, "SELECT s, count(*), sum(a) FROM %s_t WHERE s <> 'x FROM public.ap_t_0 y' GROUP BY s ORDER BY s", []any{"ap"}, []any{"pl"}, false)
	// adb.shard_batch_merge = off: one statement per slot, the same answer.
	if plan := c.mustNodeSQL(t, cn, "SET adb.shard_batch_merge = off; EXPLAIN VERBOSE "+q); !strings.Contains(fmt.Sprint(plan), "Remote statements: 64") {
		t.Errorf("adb.shard_batch_merge = off still merges the slots:\n%s", plan)
	}
	if on, off := c.mustNodeSQL(t, cn, q), c.mustNodeSQL(t, cn, "SET adb.shard_batch_merge = off; "+q)[1:]; len(on) == 0 || fmt.Sprint(on) != fmt.Sprint(off) {
		t.Errorf("merged %v, one statement per slot %v", on, off)
	}
	// psql prints the SET's tag as a row of its own.
	if on, off := c.mustNodeSQL(t, cn, q), c.mustNodeSQL(t, cn, "SET adb.shard_batch = off; "+q)[1:]; len(on) == 0 || fmt.Sprint(on) != fmt.Sprint(off) {
		t.Errorf("batched %v, not batched %v", on, off)
	}
	if plan := c.mustNodeSQL(t, cn, "SET adb.shard_batch = off; EXPLAIN "+q); strings.Contains(fmt.Sprint(plan), "AdbShardBatch") {
		t.Errorf("adb.shard_batch = off still batches:\n%s", plan)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(cn))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, "SELECT sum(1 / (a - a)) FROM ap_t"); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Errorf("a division by zero on the datanodes: %v, want SQLSTATE 22012", err)
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ap_t").Scan(&n); err != nil || n != 5000 {
		t.Errorf("the count after a remote error: %d %v, want 5000", n, err)
	}

	// A shard locked on its datanode: the batch waits, the timeout
	// cancels it, and once the lock is gone the same query answers.
	dn := c.nodeValue(t, cn, "SELECT s.srvname FROM pg_foreign_table f JOIN pg_foreign_server s ON s.oid = f.ftserver WHERE f.ftrelid = 'ap_t_0'::regclass")
	lock, err := pgx.Connect(ctx, c.nodeConnString(c.node(dn)))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(context.Background())
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE ap_t_0 IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET statement_timeout = '1s'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM ap_t"); !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Errorf("a batch waiting on a locked shard past statement_timeout: %v, want SQLSTATE 57014", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ap_t").Scan(&n); err != nil || n != 5000 {
		t.Errorf("the count after a cancelled batch: %d %v, want 5000", n, err)
	}

	// An aggregate between the fetches of a cursor over the table.
	b, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Rollback(context.Background())
	var ids []int64
	fetch := func(k int) {
		rows, err := b.Query(ctx, fmt.Sprintf("FETCH %d FROM ap_cur", k))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Exec(ctx, "DECLARE ap_cur CURSOR FOR SELECT id FROM ap_t"); err != nil {
		t.Fatal(err)
	}
	fetch(100)
	if err := b.QueryRow(ctx, "SELECT count(*) FROM ap_t").Scan(&n); err != nil || n != 5000 {
		t.Errorf("a count between a cursor's fetches: %d %v, want 5000", n, err)
	}
	fetch(10000)
	if len(ids) != 5000 {
		t.Errorf("the cursor read %d rows around the count, want 5000", len(ids))
	}
}

// explainVerbose is the plan of q on node n, as EXPLAIN VERBOSE prints it.
func explainVerbose(t *testing.T, c *testCluster, n nodeSpec, q string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range c.mustNodeSQL(t, n, "EXPLAIN VERBOSE "+q) {
		b.WriteString(strings.Join(r, "\t") + "\n")
	}
	return b.String()
}

// sameAsPlain checks that the query format q, filled in with the names of
// distributed tables (dist) and then of plain tables holding the same rows
// (plain), answers the same on node n; the answer must not be empty
// unless empty says so.
func sameAsPlain(t *testing.T, c *testCluster, n nodeSpec, q string, dist, plain []any, empty bool) {
	t.Helper()
	got := c.mustNodeSQL(t, n, fmt.Sprintf(q, dist...))
	want := c.mustNodeSQL(t, n, fmt.Sprintf(q, plain...))
	if (len(want) == 0) != empty || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\ndistributed: %.400v\nplain:       %.400v", fmt.Sprintf(q, dist...), got, want)
	}
}

// newPushdownCluster is the pushdown tests' cluster, up: the gtmcoord, one
// coordinator (returned) and two datanode masters, no slaves (shared).
func newPushdownCluster(t *testing.T) (*testCluster, nodeSpec) {
	c := sharedShardedCluster(t, 1)
	return c, c.node("cn1")
}
