package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestRouter: single-slot statements through a coordinator (ext/adb
// router.c) as a client sees them from psql — the same answers as
// postgres_fdw's (adb.router off) and as a plain table's, with the types,
// NULLs and odd values intact; a duplicate key fails with 23505; UPDATE and
// DELETE by key report their row counts; EXPLAIN shows the router's node;
// in autocommit the statement runs without postgres_fdw (no connection of
// it is left in the session); inside BEGIN … COMMIT postgres_fdw runs it
// and the transaction stays atomic; statements the router leaves alone
// (RETURNING, several rows, a serial column, an UPDATE of the distribution
// column) work as before; a session's statements after its datanodes
// restarted reconnect instead of failing; a statement_timeout cancels the
// remote query.
func TestRouter(t *testing.T) {
	c := sharedShardedCluster(t, 1)
	cn := c.node("cn1")
	const cols = "(id bigint PRIMARY KEY, v text, n numeric, f float8, ts timestamptz, d date, a int[], j jsonb)"
	c.mustNodeSQL(t, cn, "CREATE TABLE rt "+cols+"; SELECT adb.create_distributed_table('rt', 'id'); CREATE TABLE rt_plain "+cols)

	// psql runs each statement as its own query (autocommit) in one
	// session, with command tags and verbose errors.
	psql := func(sqls ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := []string{"-X", "-h", c.host(cn.Host).Addr, "-p", strconv.Itoa(cn.Port), "-U", c.dbUser(),
			"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-A", "-F", "|", "-P", "footer=off"}
		for _, s := range sqls {
			args = append(args, "-c", s)
		}
		cmd := exec.CommandContext(ctx, "psql", args...)
		cmd.Env = append(os.Environ(), c.nodeEnv()...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return o.String(), e.String(), err
	}
	mustPsql := func(sqls ...string) string {
		t.Helper()
		out, stderr, err := psql(sqls...)
		if err != nil {
			t.Fatalf("%q: %v\n%s", sqls, err, stderr)
		}
		return out
	}
	// fdwConns ends a session's statements: how many postgres_fdw
	// connections the session has.
	const fdwConns = "SELECT count(*) AS fdw_connections FROM postgres_fdw_get_connections()"

	values := []string{
		"(1, 'one', 1.5, 0.1, '2024-02-29 12:34:56.789+02', '2024-02-29', '{1,2,NULL}', '{\"a\": [1, null]}')",
		"(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
		"(3, 'it''s \\ a \"quote\" é 日本', -0.000001, 'NaN', 'infinity', '-infinity', '{}', 'null')",
		"(4, '', 123456789012345678901234567890.123, '-Infinity', '1999-12-31 23:59:59.999999+00', '0001-01-01 BC', '{-2147483648}', '\"x\"')",
		"(-9223372036854775808, 'min', 0, 1e-300, '2000-01-01', '2000-01-01', NULL, '{}')",
	}
	for _, v := range values {
		out := mustPsql("INSERT INTO rt VALUES "+v, "INSERT INTO rt_plain VALUES "+v, fdwConns)
		if !strings.Contains(out, "INSERT 0 1\nINSERT 0 1\nfdw_connections\n0") {
			t.Errorf("INSERT %s: want two INSERT 0 1 and no postgres_fdw connection (routed), got\n%s", v, out)
		}
	}

	ids := []string{"1", "2", "3", "4", "-9223372036854775808", "5"}
	t.Run("answers", func(t *testing.T) {
		for _, id := range ids {
			q := " WHERE id = " + id
			for _, sel := range []string{"SELECT * FROM %s", "SELECT v, n, id FROM %s", "SELECT id, v || 'x', f FROM %s"} {
				routed := mustPsql(strings.Replace(sel, "%s", "rt", 1)+q, fdwConns)
				fdw := mustPsql("SET adb.router = off", strings.Replace(sel, "%s", "rt", 1)+q, fdwConns)
				plain := mustPsql(strings.Replace(sel, "%s", "rt_plain", 1) + q)
				if !strings.HasSuffix(routed, "fdw_connections\n0\n") {
					t.Errorf("%s: not routed (postgres_fdw connected):\n%s", sel+q, routed)
				}
				routed = strings.TrimSuffix(routed, "fdw_connections\n0\n")
				fdw = strings.TrimPrefix(strings.TrimSuffix(fdw, "fdw_connections\n1\n"), "SET\n")
				if routed != plain || fdw != plain {
					t.Errorf("%s: routed\n%s\npostgres_fdw\n%s\nplain table\n%s", sel+q, routed, fdw, plain)
				}
			}
		}
		// System column tableoid, no column at all (SELECT NULL remotely).
		for _, q := range []string{"SELECT tableoid::regclass, v FROM rt WHERE id = 1", "SELECT 1 FROM rt WHERE id = 2",
			"SELECT count(*) FROM rt WHERE id = 2", "SELECT ctid IS NOT NULL FROM rt WHERE id = 2"} {
			routed := mustPsql(q)
			if fdw := mustPsql("SET adb.router = off", q); "SET\n"+routed != fdw || !strings.Contains(routed, "\n") {
				t.Errorf("%s: routed %q, postgres_fdw %q", q, routed, fdw)
			}
		}
		// A condition left to the coordinator, no row.
		if out := mustPsql("SELECT v FROM rt WHERE id = 1 AND v ~ '^o'", "SELECT v FROM rt WHERE id = 1 AND v = 'zz'"); out != "v\none\nv\n" {
			t.Errorf("local conditions: %q", out)
		}
	})

	t.Run("duplicate key", func(t *testing.T) {
		_, stderr, err := psql("INSERT INTO rt VALUES (1, 'again')")
		if err == nil || !strings.Contains(stderr, "ERROR:  23505: duplicate key value violates unique constraint") ||
			!strings.Contains(stderr, "DETAIL:  Key (id)=(1) already exists.") {
			t.Errorf("duplicate key: %v %s", err, stderr)
		}
		// The connection is usable after the error.
		if out := mustPsql("SELECT v FROM rt WHERE id = 1"); out != "v\none\n" {
			t.Errorf("after the duplicate key: %q", out)
		}
		_, stderr, err = psql("INSERT INTO rt (id, n) VALUES (7, 'abc')")
		if err == nil || !strings.Contains(stderr, "22P02") {
			t.Errorf("bad value: %v %s", err, stderr)
		}
	})

	t.Run("update and delete counts", func(t *testing.T) {
		out := mustPsql("UPDATE rt SET v = 'uno', n = n + 1 WHERE id = 1", "UPDATE rt SET v = 'none' WHERE id = 99",
			"DELETE FROM rt WHERE id = 4", "DELETE FROM rt WHERE id = 4", "SELECT v, n FROM rt WHERE id = 1", fdwConns)
		if out != "UPDATE 1\nUPDATE 0\nDELETE 1\nDELETE 0\nv|n\nuno|2.5\nfdw_connections\n0\n" {
			t.Errorf("UPDATE and DELETE by key:\n%s", out)
		}
		if out := mustPsql("SELECT count(*) FROM rt"); out != "count\n4\n" {
			t.Errorf("rows left: %q", out)
		}
	})

	t.Run("explain", func(t *testing.T) {
		for _, q := range []string{"SELECT * FROM rt WHERE id = 2", "INSERT INTO rt VALUES (10, 'x')",
			"UPDATE rt SET v = 'y' WHERE id = 2", "DELETE FROM rt WHERE id = 2"} {
			out := mustPsql("EXPLAIN VERBOSE " + q)
			if !strings.Contains(out, "Custom Scan (AdbRouter)") || !strings.Contains(out, "Router SQL: ") {
				t.Errorf("EXPLAIN %s:\n%s", q, out)
			}
		}
		// Not a single slot: postgres_fdw's plan as before.
		for _, q := range []string{"SELECT * FROM rt WHERE id IN (1, 2)", "INSERT INTO rt VALUES (10, 'x'), (11, 'y')",
			"INSERT INTO rt VALUES (10, 'x') RETURNING id", "UPDATE rt SET v = 'y' WHERE id = 2 RETURNING v"} {
			if out := mustPsql("EXPLAIN VERBOSE " + q); strings.Contains(out, "AdbRouter") {
				t.Errorf("EXPLAIN %s routed:\n%s", q, out)
			}
		}
	})

	t.Run("transaction block", func(t *testing.T) {
		// Atomic: a failure in the block undoes the earlier rows.
		_, stderr, err := psql("BEGIN", "INSERT INTO rt VALUES (20, 'a')", "INSERT INTO rt VALUES (21, 'b')",
			"UPDATE rt SET v = 'changed' WHERE id = 1", "INSERT INTO rt VALUES (3, 'dup')", "COMMIT")
		if err == nil || !strings.Contains(stderr, "23505") {
			t.Fatalf("the block's duplicate key: %v %s", err, stderr)
		}
		if out := mustPsql("SELECT count(*) FROM rt WHERE id IN (20, 21)", "SELECT v FROM rt WHERE id = 1"); out != "count\n0\nv\nuno\n" {
			t.Errorf("after the failed block: %q", out)
		}
		out := mustPsql("BEGIN", "INSERT INTO rt VALUES (20, 'a')", "UPDATE rt SET v = 'b' WHERE id = 20",
			"SELECT v FROM rt WHERE id = 20", "DELETE FROM rt WHERE id = 3", "COMMIT")
		if out != "BEGIN\nINSERT 0 1\nUPDATE 1\nv\nb\nDELETE 1\nCOMMIT\n" {
			t.Errorf("a block of single-slot statements:\n%s", out)
		}
		if out := mustPsql("SELECT v FROM rt WHERE id = 20", "SELECT count(*) FROM rt WHERE id = 3"); out != "v\nb\ncount\n0\n" {
			t.Errorf("after the block: %q", out)
		}
		// Several statements in one query string are one transaction too.
		_, stderr, err = psql("INSERT INTO rt VALUES (30, 'a'); INSERT INTO rt VALUES (20, 'dup')")
		if err == nil || !strings.Contains(stderr, "23505") {
			t.Fatalf("multi-statement query: %v %s", err, stderr)
		}
		if out := mustPsql("SELECT count(*) FROM rt WHERE id = 30"); out != "count\n0\n" {
			t.Errorf("a failed multi-statement query left its first row: %q", out)
		}
		// A DO block's statements are its transaction's.
		_, stderr, err = psql("DO $$ BEGIN INSERT INTO rt VALUES (31, 'a'); INSERT INTO rt VALUES (20, 'dup'); END $$")
		if err == nil || !strings.Contains(stderr, "23505") {
			t.Fatalf("DO block: %v %s", err, stderr)
		}
		if out := mustPsql("SELECT count(*) FROM rt WHERE id = 31"); out != "count\n0\n" {
			t.Errorf("a failed DO block left its first row: %q", out)
		}
	})

	t.Run("fallback", func(t *testing.T) {
		out := mustPsql("INSERT INTO rt VALUES (40, 'r') RETURNING id, v", "INSERT INTO rt VALUES (41, 'm'), (42, 'm')",
			"UPDATE rt SET v = 'rr' WHERE id = 40 RETURNING v", "SELECT count(*) FROM rt WHERE v = 'm'",
			"SELECT id FROM rt WHERE id = 41 FOR UPDATE")
		if out != "id|v\n40|r\nINSERT 0 1\nINSERT 0 2\nv\nrr\nUPDATE 1\ncount\n2\nid\n41\n" {
			t.Errorf("statements left to postgres_fdw:\n%s", out)
		}
		_, stderr, err := psql("UPDATE rt SET id = 1000 WHERE id = 40")
		if err == nil || !strings.Contains(stderr, "0A000") {
			t.Errorf("UPDATE of the distribution column: %v %s", err, stderr)
		}
		// A column default evaluated on the coordinator (a serial).
		mustPsql("CREATE TABLE rt_s (id bigserial PRIMARY KEY, v text)", "SELECT adb.create_distributed_table('rt_s', 'id')")
		out = mustPsql("INSERT INTO rt_s (v) VALUES ('a')", "INSERT INTO rt_s (v) VALUES ('b')", "SELECT count(*), count(DISTINCT id) FROM rt_s")
		if out != "INSERT 0 1\nINSERT 0 1\ncount|count\n2|2\n" {
			t.Errorf("serial column:\n%s", out)
		}
	})

	t.Run("extended protocol", func(t *testing.T) {
		// pgx's default: the extended query protocol, statements
		// prepared once and cached, Bind/Execute/Sync per query. In
		// autocommit each one is routed (the session never opens a
		// postgres_fdw connection); in a transaction and in a pipeline
		// of several statements (one implicit transaction) they stay
		// atomic.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		conn := c.begin(t, cn)
		fdwConn := c.begin(t, cn, "SET adb.router = off")
		fdwConnections := func() string {
			var n string
			if err := conn.QueryRow(ctx, "SELECT count(*)::text FROM postgres_fdw_get_connections()").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for round := 0; round < 2; round++ {
			for _, id := range []int64{1, 2, 3, 4, 5, 20, -9223372036854775808} {
				var got, want *string
				if err := conn.QueryRow(ctx, "SELECT v FROM rt WHERE id = $1", id).Scan(&got); err != nil && err != pgx.ErrNoRows {
					t.Fatalf("SELECT by key %d: %v", id, err)
				}
				if err := fdwConn.QueryRow(ctx, "SELECT v FROM rt WHERE id = $1", id).Scan(&want); err != nil && err != pgx.ErrNoRows {
					t.Fatalf("SELECT by key %d with the router off: %v", id, err)
				}
				if (got == nil) != (want == nil) || (got != nil && *got != *want) {
					t.Errorf("SELECT by key %d: %v, with the router off %v", id, deref(got), deref(want))
				}
			}
			// A query without parameters: its plan is cached and used again.
			var v string
			if err := conn.QueryRow(ctx, "SELECT v FROM rt WHERE id = 20").Scan(&v); err != nil || v != "b" {
				t.Errorf("SELECT by key 20 (round %d): %q %v", round, v, err)
			}
		}
		if tag, err := conn.Exec(ctx, "INSERT INTO rt (id, v) VALUES ($1, $2)", int64(50), "fifty"); err != nil || tag.String() != "INSERT 0 1" {
			t.Errorf("INSERT by key: %s %v", tag, err)
		}
		if n := fdwConnections(); n != "0" {
			t.Errorf("postgres_fdw connections of the extended protocol's session: %s (not routed)", n)
		}
		_, err := conn.Exec(ctx, "INSERT INTO rt (id, v) VALUES ($1, $2)", int64(50), "again")
		if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Errorf("duplicate key through the extended protocol: %v", err)
		}
		// The cached plan of a literal query, in a transaction block:
		// postgres_fdw's plan, in the transaction.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := tx.QueryRow(ctx, "SELECT v FROM rt WHERE id = 20").Scan(&v); err != nil || v != "b" {
			t.Errorf("SELECT by key 20 in a block: %q %v", v, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO rt (id, v) VALUES ($1, $2)", int64(51), "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO rt (id, v) VALUES ($1, $2)", int64(50), "dup"); err == nil {
			t.Fatal("duplicate key in a block: no error")
		}
		_ = tx.Rollback(ctx)
		// A pipeline (one Sync for all): one implicit transaction.
		batch := &pgx.Batch{}
		batch.Queue("INSERT INTO rt (id, v) VALUES ($1, $2)", int64(52), "x")
		batch.Queue("INSERT INTO rt (id, v) VALUES ($1, $2)", int64(50), "dup")
		if err := conn.SendBatch(ctx, batch).Close(); err == nil {
			t.Fatal("duplicate key in a pipeline: no error")
		}
		batch = &pgx.Batch{}
		batch.Queue("SELECT v FROM rt WHERE id = $1", int64(1))
		batch.Queue("INSERT INTO rt (id, v) VALUES ($1, $2)", int64(53), "y")
		batch.Queue("INSERT INTO rt (id, v) VALUES ($1, $2)", int64(54), "z")
		if err := conn.SendBatch(ctx, batch).Close(); err != nil {
			t.Fatalf("a pipeline of single-slot statements: %v", err)
		}
		if out := mustPsql("SELECT id, v FROM rt WHERE id IN (50, 51, 52, 53, 54) ORDER BY id"); out != "id|v\n50|fifty\n53|y\n54|z\n" {
			t.Errorf("rows after the block and the pipelines (want 50, 53, 54):\n%s", out)
		}
	})

	t.Run("privileges", func(t *testing.T) {
		// A role with no privilege on the table is refused as PostgreSQL
		// refuses it, routed or not; one with privileges is routed too
		// (the user mappings need no password of the role's own), with
		// the answers of the router off.
		// Roles are per server; a GRANT on a distributed table reaches the
		// gtmcoord master too.
		c.mustNodeSQL(t, c.node("gc"), "CREATE ROLE rt_nopriv; CREATE ROLE rt_reader")
		mustPsql("CREATE ROLE rt_nopriv", "CREATE ROLE rt_reader", "GRANT SELECT, INSERT ON rt TO rt_reader")
		for _, q := range []string{"SELECT v FROM rt WHERE id = %d", "INSERT INTO rt (id, v) VALUES (%d, 'x')"} {
			_, stderr, err := psql("SET ROLE rt_nopriv", fmt.Sprintf(q, 60))
			if err == nil || !strings.Contains(stderr, "ERROR:  42501: permission denied for table rt") {
				t.Errorf("%s as a role without privileges: %v %s", q, err, stderr)
			}
			// (Each INSERT a key of its own; the SELECTs read one.)
			routed, stderr1, err1 := psql("SET ROLE rt_reader", fmt.Sprintf(q, 61))
			fdw, stderr2, err2 := psql("SET adb.router = off", "SET ROLE rt_reader", fmt.Sprintf(q, map[bool]int{true: 62, false: 61}[strings.HasPrefix(q, "INSERT")]))
			if err1 != nil || err2 != nil || strings.ReplaceAll(routed, "SET\n", "") != strings.ReplaceAll(fdw, "SET\n", "") {
				t.Errorf("%s as a reader: %v %q %s; with the router off: %v %q %s", q, err1, routed, stderr1, err2, fdw, stderr2)
			}
		}
		if out := mustPsql("SELECT count(*) FROM rt WHERE id IN (61, 62)"); !strings.Contains(out, "2") {
			t.Errorf("the reader's rows 61 and 62: %s", out)
		}
	})

	t.Run("key types", func(t *testing.T) {
		// The slot of a key is found without the planner (router.c's
		// fast_plan) with the hash PostgreSQL's partition pruning and
		// tuple routing use, also for a constant of another integer type
		// than the key's: every row inserted routed is found again, by
		// the router and by postgres_fdw.
		mustPsql("CREATE TABLE rk_t (k text PRIMARY KEY, v int)", "SELECT adb.create_distributed_table('rk_t', 'k')",
			"CREATE TABLE rk_i (k int PRIMARY KEY, v int)", "SELECT adb.create_distributed_table('rk_i', 'k')",
			"CREATE TABLE rk_s (k smallint PRIMARY KEY, v int)", "SELECT adb.create_distributed_table('rk_s', 'k')",
			"CREATE TABLE rk_u (k uuid PRIMARY KEY, v int)", "SELECT adb.create_distributed_table('rk_u', 'k')",
			"CREATE TABLE rk_n (k numeric PRIMARY KEY, v int)", "SELECT adb.create_distributed_table('rk_n', 'k')")
		var ins []string
		for i := 1; i <= 40; i++ {
			ins = append(ins, "INSERT INTO rk_t VALUES ('key "+strconv.Itoa(i)+" é', "+strconv.Itoa(i)+")",
				"INSERT INTO rk_i VALUES ("+strconv.Itoa(i*7919)+", "+strconv.Itoa(i)+")",
				"INSERT INTO rk_s VALUES ("+strconv.Itoa(-i)+", "+strconv.Itoa(i)+")",
				"INSERT INTO rk_u VALUES ('00000000-0000-0000-0000-"+strings.Repeat("0", 10)+strconv.Itoa(10+i)+"', "+strconv.Itoa(i)+")",
				"INSERT INTO rk_n VALUES ("+strconv.Itoa(i)+".50, "+strconv.Itoa(i)+")")
		}
		mustPsql(append(ins, fdwConns)...)
		var sel []string
		for i := 1; i <= 40; i++ {
			sel = append(sel, "SELECT v FROM rk_t WHERE k = 'key "+strconv.Itoa(i)+" é'",
				"SELECT v FROM rk_i WHERE k = "+strconv.Itoa(i*7919)+"::bigint",
				"SELECT v FROM rk_s WHERE k = "+strconv.Itoa(-i),
				"SELECT v FROM rk_u WHERE k = '00000000-0000-0000-0000-"+strings.Repeat("0", 10)+strconv.Itoa(10+i)+"'",
				"SELECT v FROM rk_n WHERE k = "+strconv.Itoa(i)+".500")
		}
		routed := mustPsql(append(sel, fdwConns)...)
		fdw := mustPsql(append([]string{"SET adb.router = off"}, sel...)...)
		var want strings.Builder
		for i := 1; i <= 40; i++ {
			want.WriteString(strings.Repeat("v\n"+strconv.Itoa(i)+"\n", 5))
		}
		if routed != want.String()+"fdw_connections\n0\n" || fdw != "SET\n"+want.String() {
			t.Errorf("rows by key of each type: routed\n%s\npostgres_fdw\n%s", routed, fdw)
		}
		if out := mustPsql("SELECT count(*) FROM rk_t", "SELECT count(*) FROM rk_i WHERE k = 7919", "SELECT count(*) FROM rk_i WHERE k = 5000000000"); out != "count\n40\ncount\n1\ncount\n0\n" {
			t.Errorf("counts: %q", out)
		}
	})

	t.Run("datanodes restarted", func(t *testing.T) {
		// One session (simple query protocol, as psql's) keeps its
		// connections to the datanodes; after they restart, its next
		// statements reconnect instead of failing on the dead ones.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		conn := c.begin(t, cn)
		simple := func(sql string) (string, error) {
			var v string
			err := conn.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&v)
			return v, err
		}
		for _, id := range []string{"1", "2", "20"} {
			if _, err := simple("SELECT coalesce(v, '-') FROM rt WHERE id = " + id); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := simple("SELECT count(*)::text FROM postgres_fdw_get_connections()"); err != nil || n != "0" {
			t.Fatalf("postgres_fdw connections of the routed session: %s %v", n, err)
		}
		for _, dn := range []string{"dn1", "dn2"} {
			c.mustRows(t, time.Minute, "STOP DATANODE MASTER "+dn+" MODE fast")
			c.mustRows(t, time.Minute, "START DATANODE MASTER "+dn)
		}
		// Writes first: a write is not sent twice, so the dead
		// connections must be seen before.
		for _, id := range []string{"1", "2", "20"} {
			if tag, err := conn.Exec(ctx, "UPDATE rt SET v = v WHERE id = "+id, pgx.QueryExecModeSimpleProtocol); err != nil || tag.String() != "UPDATE 1" {
				t.Errorf("UPDATE by key %s after the restarts: %s %v", id, tag, err)
			}
		}
		for _, id := range []string{"1", "2", "20"} {
			if v, err := simple("SELECT coalesce(v, '-') FROM rt WHERE id = " + id); err != nil {
				t.Errorf("SELECT by key %s after the restarts: %v", id, err)
			} else if id == "20" && v != "b" {
				t.Errorf("SELECT by key 20 after the restarts: %q", v)
			}
		}
	})

	t.Run("table changed", func(t *testing.T) {
		// A session's routed statements are prepared on the datanodes:
		// after a column changes type under the same name, the same
		// statement still answers (the old prepared plan no longer
		// fits: the statement is sent again as it is).
		out := mustPsql("SELECT n FROM rt WHERE id = 1", "INSERT INTO rt (id, v, n) VALUES (70, 'x', 7)",
			"ALTER TABLE rt DROP COLUMN n", "ALTER TABLE rt ADD COLUMN n text",
			"UPDATE rt SET n = 'one' WHERE id = 1", "SELECT n FROM rt WHERE id = 1",
			"INSERT INTO rt (id, v, n) VALUES (71, 'y', 'eight')", "SELECT n FROM rt WHERE id = 71")
		if out != "n\n2.5\nINSERT 0 1\nALTER TABLE\nALTER TABLE\nUPDATE 1\nn\none\nINSERT 0 1\nn\neight\n" {
			t.Errorf("statements before and after a column's change of type:\n%s", out)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		// A row locked by an open transaction: the routed UPDATE waits on
		// the datanode until the statement_timeout cancels it there too.
		holder := c.begin(t, cn, "BEGIN", "UPDATE rt SET v = 'held' WHERE id = 1")
		start := time.Now()
		_, stderr, err := psql("SET statement_timeout = '1s'", "UPDATE rt SET v = 'late' WHERE id = 1")
		if err == nil || !strings.Contains(stderr, "57014") {
			t.Fatalf("the waiting UPDATE: %v %s", err, stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the cancel took %v", d)
		}
		if _, err := holder.Exec(context.Background(), "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if out := mustPsql("SELECT v FROM rt WHERE id = 1"); out != "v\nheld\n" {
			t.Errorf("after the cancelled UPDATE: %q (it ran on after the cancel?)", out)
		}
	})
}

// deref is *s, or "NULL".
func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
