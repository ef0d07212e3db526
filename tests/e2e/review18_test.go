package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestReview18 probes, from a user's session on a coordinator, the
// partial aggregates that reach a datanode as one statement over the
// UNION ALL of its slots (adb.shard_batch_merge): every answer must be
// the one the same query gives over a plain table holding the same rows,
// whatever the names, the DDL since the table was distributed, the
// protocol, the transaction or the failures around the statement.
func TestReview18(t *testing.T) {
	c, cn := newPushdownCluster(t)

	const cols = `(id int NOT NULL, g int, v int, n numeric, b bigint, f float8, s text, c text COLLATE "C", "Odd Col" int, "select" int)`
	const rows = `SELECT i, i % 7, CASE WHEN i % 13 = 0 THEN NULL ELSE i % 101 END, i / 3.0, i * 1000000000::bigint,
	i / 4.0::float8, 'k' || i % 5, CASE WHEN i % 2 = 0 THEN 'B' || i % 4 ELSE 'a' || i % 4 END, i % 3, i % 11
	FROM generate_series(1, 3000) i`
	c.mustNodeSQL(t, cn, `CREATE TABLE r18_t `+cols+`;
SELECT adb.create_distributed_table('r18_t', 'id');
INSERT INTO r18_t `+rows+`;
CREATE TABLE r18p_t `+cols+`;
INSERT INTO r18p_t `+rows+`;
CREATE TABLE r18_e `+cols+`;
SELECT adb.create_distributed_table('r18_e', 'id');
CREATE TABLE r18p_e `+cols+`;
CREATE SCHEMA "R18 ""Sch";
CREATE TABLE "R18 ""Sch"."Tab Le" (id int NOT NULL, "G g" int, "SELECT" int, "V" text);
SELECT adb.create_distributed_table('"R18 ""Sch"."Tab Le"', 'id');
INSERT INTO "R18 ""Sch"."Tab Le" SELECT i, i % 5, i % 9, 'v' || i % 4 FROM generate_series(1, 2000) i;
CREATE TABLE r18p_q (id int NOT NULL, "G g" int, "SELECT" int, "V" text);
INSERT INTO r18p_q SELECT * FROM "R18 ""Sch"."Tab Le";
CREATE TABLE r18x_1 (id int NOT NULL, g int, v int);
CREATE TABLE r18x_10 (id int NOT NULL, g int, v int);
SELECT adb.create_distributed_table('r18x_1', 'id');
SELECT adb.create_distributed_table('r18x_10', 'id');
INSERT INTO r18x_1 SELECT i, i % 5, i FROM generate_series(1, 1000) i;
INSERT INTO r18x_10 SELECT i, i % 5, 10 * i FROM generate_series(1, 1000) i;
CREATE TABLE r18px_1 AS SELECT * FROM r18x_1;
CREATE TABLE r18px_10 AS SELECT * FROM r18x_10;
CREATE TABLE r18_m (id int NOT NULL, k int, v numeric);
SELECT adb.create_distributed_table('r18_m', 'id');
INSERT INTO r18_m SELECT i, i % 30000, i FROM generate_series(1, 90000) i;
CREATE TABLE r18p_m AS SELECT * FROM r18_m;
ANALYZE r18_m;`)

	merged := func(q string) {
		t.Helper()
		if plan := explainVerbose(t, c, cn, q); !strings.Contains(plan, "Remote statements: 2\n") {
			t.Errorf("%s: not one statement per datanode:\n%.3000s", q, plan)
		}
	}

	t.Run("Answers", func(t *testing.T) {
		for _, q := range []string{
			"SELECT count(*), sum(v), avg(v), min(v), max(v), avg(n), min(n), max(n), sum(n), sum(b), avg(b), sum(f), avg(f) FROM %s_t",
			"SELECT g, count(*) FILTER (WHERE v > 50), sum(v) FILTER (WHERE s = 'k1'), min(s) FILTER (WHERE v IS NULL) FROM %s_t GROUP BY g ORDER BY g",
			"SELECT g %% 3 AS h, s || 'x', count(v), max(n) FROM %s_t GROUP BY g %% 3, s || 'x' ORDER BY 1, 2",
			"SELECT s, count(*) FROM %s_t GROUP BY s HAVING sum(v) > 1000 ORDER BY count(*) DESC, s LIMIT 2",
			"SELECT DISTINCT count(*) > 400 FROM %s_t GROUP BY g",
			`SELECT "Odd Col", "select", count(*), sum("Odd Col") FROM %s_t GROUP BY 1, 2 ORDER BY 1, 2`,
			"SELECT v, count(*) FROM %s_t GROUP BY v ORDER BY v NULLS FIRST",
			"SELECT c, min(c), max(c), count(*) FROM %s_t GROUP BY c ORDER BY c",
			`SELECT min(s COLLATE "C"), max(s COLLATE "C"), min(c), max(c) FROM %s_t WHERE c > 'B1'`,
			"SELECT g, count(*) FROM %s_t WHERE s LIKE 'k%%' GROUP BY g ORDER BY g",
			"SELECT g, count(*) FROM %s_t WHERE s = 'public.r18_t_1' OR s <> ' FROM public.r18_t_1 ' GROUP BY g ORDER BY g",
			"SELECT (g + 1) * 2, count(*) FROM %s_t GROUP BY (g + 1) * 2 ORDER BY 1",
			"SELECT count(*) FROM %s_t WHERE id > 10 AND id < 2000",
			"SELECT g, sum(v) OVER () FROM %s_t GROUP BY g, v ORDER BY 1, 2 LIMIT 3",
			"SELECT g, count(*), count(DISTINCT v) FROM %s_t GROUP BY g ORDER BY g",
			"SELECT max(length(s)), min(abs(v - 50)), sum(v * v) FROM %s_t",
			"SELECT count(*) FROM %s_t WHERE false",
			"SELECT count(*), sum(v), avg(n), max(s) FROM %s_e",
			"SELECT k, count(*), sum(v), avg(v), max(v) FROM %s_m GROUP BY k ORDER BY k",
		} {
			sameAsPlain(t, c, cn, q, []any{"r18"}, []any{"r18p"}, false)
		}
		sameAsPlain(t, c, cn, "SELECT g, count(*) FROM %s_e GROUP BY g", []any{"r18"}, []any{"r18p"}, true)
		merged("SELECT g, count(*) FILTER (WHERE v > 50), sum(v) FILTER (WHERE s = 'k1') FROM r18_t GROUP BY g")
		merged("SELECT c, min(c), max(c), count(*) FROM r18_t GROUP BY c")
		merged("SELECT k, count(*), sum(v), avg(v), max(v) FROM r18_m GROUP BY k")
		// float8 sums add in another order merged: the last digits may
		// differ from a plain table's, as they do from the unmerged plan's.
		// Values of i / 4.0 add exactly.
	})

	t.Run("Names", func(t *testing.T) {
		for _, q := range []string{
			`SELECT "G g", count(*), sum("SELECT"), max("V") FROM %s GROUP BY 1 ORDER BY 1`,
			`SELECT "V", count(*) FROM %s WHERE "V" <> 'R18 "Sch' AND "V" <> '"R18 ""Sch"."Tab Le_0"' GROUP BY 1 ORDER BY 1`,
		} {
			sameAsPlain(t, c, cn, q, []any{`"R18 ""Sch"."Tab Le"`}, []any{"r18p_q"}, false)
		}
		merged(`SELECT "G g", count(*), sum("SELECT"), max("V") FROM "R18 ""Sch"."Tab Le" GROUP BY 1`)
		for _, x := range []string{"1", "10"} {
			sameAsPlain(t, c, cn, "SELECT g, count(*), sum(v) FROM %s_"+x+" WHERE v > 3 GROUP BY g ORDER BY g", []any{"r18x"}, []any{"r18px"}, false)
		}
		merged("SELECT g, count(*), sum(v) FROM r18x_1 WHERE v > 3 GROUP BY g")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	connect := func(t *testing.T, n nodeSpec) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.nodeConnString(n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	// answer is q's rows as text, over the extended protocol (pgx's
	// statement cache) unless simple.
	answer := func(conn *pgx.Conn, q string, simple bool) (string, error) {
		var args []any
		if simple {
			args = []any{pgx.QueryExecModeSimpleProtocol}
		}
		rs, err := conn.Query(ctx, q, args...)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for rs.Next() {
			vals, err := rs.Values()
			if err != nil {
				rs.Close()
				return "", err
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		return b.String(), rs.Err()
	}
	same := func(conn *pgx.Conn, what, q string, dist, plain []any, simple bool) {
		t.Helper()
		got, err := answer(conn, fmt.Sprintf(q, dist...), simple)
		want, errPlain := answer(conn, fmt.Sprintf(q, plain...), simple)
		if err != nil || errPlain != nil || got != want || got == "" {
			t.Errorf("%s: %s:\ndistributed: %.400s (%v)\nplain:       %.400s (%v)", what, fmt.Sprintf(q, dist...), got, err, want, errPlain)
		}
	}
	exec := func(conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// Columns dropped, added and renamed after create_distributed_table,
	// with a prepared statement (PREPARE and the extended protocol) across
	// each change, and inside a transaction.
	t.Run("DDL", func(t *testing.T) {
		conn := connect(t, cn)
		exec(conn, "CREATE TABLE r18_d (id int NOT NULL, g int, v int, junk text); SELECT adb.create_distributed_table('r18_d', 'id')")
		exec(conn, "CREATE TABLE r18p_d (id int NOT NULL, g int, v int, junk text)")
		exec(conn, "INSERT INTO r18_d SELECT i, i % 4, i, 'j' FROM generate_series(1, 1000) i; INSERT INTO r18p_d SELECT * FROM r18_d")
		const q = "SELECT g, count(*), sum(v) FROM %s_d GROUP BY g ORDER BY g"
		exec(conn, "PREPARE r18_pd AS "+fmt.Sprintf(q, "r18")+"; PREPARE r18_pp AS "+fmt.Sprintf(q, "r18p"))
		check := func(step string) {
			t.Helper()
			same(conn, step+" (extended)", q, []any{"r18"}, []any{"r18p"}, false)
			same(conn, step+" (simple)", q, []any{"r18"}, []any{"r18p"}, true)
			got, err := answer(conn, "EXECUTE r18_pd", true)
			want, errPlain := answer(conn, "EXECUTE r18_pp", true)
			if err != nil || errPlain != nil || got != want {
				t.Errorf("%s: EXECUTE: distributed %s (%v), plain %s (%v)", step, got, err, want, errPlain)
			}
		}
		check("before DDL")
		for _, ddl := range []string{
			"ALTER TABLE %s_d DROP COLUMN junk",
			"ALTER TABLE %s_d ADD COLUMN w int DEFAULT 5",
			`ALTER TABLE %s_d ADD COLUMN "Late ""x" text DEFAULT 'l'`,
			`ALTER TABLE %s_d RENAME COLUMN w TO "W w"`,
		} {
			exec(conn, fmt.Sprintf(ddl, "r18")+"; "+fmt.Sprintf(ddl, "r18p"))
			check(ddl)
		}
		same(conn, "new columns", `SELECT g, count(*), sum("W w"), max("Late ""x") FROM %s_d GROUP BY g ORDER BY g`, []any{"r18"}, []any{"r18p"}, false)
		merged(`SELECT g, count(*), sum("W w"), max("Late ""x") FROM r18_d GROUP BY g`)
		// A new result type: a prepared statement fails as over any table.
		exec(conn, "ALTER TABLE r18_d ALTER COLUMN g TYPE bigint; ALTER TABLE r18p_d ALTER COLUMN g TYPE bigint; DEALLOCATE r18_pd; DEALLOCATE r18_pp")
		same(conn, "ALTER COLUMN TYPE", q, []any{"r18"}, []any{"r18p"}, true)
		exec(conn, "PREPARE r18_pd AS "+fmt.Sprintf(q, "r18")+"; PREPARE r18_pp AS "+fmt.Sprintf(q, "r18p"))

		// The same in a transaction, the aggregate after each change.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ddl := range []string{
			"ALTER TABLE %s_d ADD COLUMN tx int DEFAULT 1",
			`ALTER TABLE %s_d DROP COLUMN "W w"`,
			`ALTER TABLE %s_d RENAME COLUMN tx TO "TX 2"`,
		} {
			for _, p := range []string{"r18", "r18p"} {
				if _, err := tx.Exec(ctx, fmt.Sprintf(ddl, p)); err != nil {
					t.Fatalf("%s: %v", fmt.Sprintf(ddl, p), err)
				}
			}
			for _, q := range []string{"SELECT g, count(*), sum(v) AS total FROM %s_d GROUP BY g ORDER BY g", "SELECT g, count(*), max(v), min(\"Late \"\"x\") FROM %s_d GROUP BY g ORDER BY g"} {
				got, err := answer(tx.Conn(), fmt.Sprintf(q, "r18"), false)
				want, errPlain := answer(tx.Conn(), fmt.Sprintf(q, "r18p"), false)
				if err != nil || errPlain != nil || got != want {
					t.Errorf("in a transaction after %s: %s: distributed %s (%v), plain %s (%v)", ddl, q, got, err, want, errPlain)
				}
			}
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		same(conn, "after the transaction's rollback", "SELECT g, count(*), sum(v) AS after FROM %s_d GROUP BY g ORDER BY g", []any{"r18"}, []any{"r18p"}, false)
	})

	// Writes of the same transaction are seen, at every isolation level.
	t.Run("Transactions", func(t *testing.T) {
		conn := connect(t, cn)
		for _, iso := range []string{"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"} {
			exec(conn, "BEGIN ISOLATION LEVEL "+iso)
			for _, p := range []string{"r18", "r18p"} {
				exec(conn, fmt.Sprintf(`INSERT INTO %[1]s_t (id, g, v, s) VALUES (100001, 1, 5, 'new'), (100002, 2, 7, 'new'), (100003, 9, 9, 'new');
UPDATE %[1]s_t SET v = v + 1 WHERE g = 3; DELETE FROM %[1]s_t WHERE g = 4 AND v > 50`, p))
			}
			same(conn, iso, "SELECT g, count(*), sum(v), max(s) FROM %s_t GROUP BY g ORDER BY g", []any{"r18"}, []any{"r18p"}, false)
			same(conn, iso, "SELECT s, count(*) FROM %s_t WHERE s = 'new' GROUP BY s", []any{"r18"}, []any{"r18p"}, true)
			exec(conn, "ROLLBACK")
		}
		same(conn, "after the rollbacks", "SELECT g, count(*), sum(v) FROM %s_t GROUP BY g ORDER BY g", []any{"r18"}, []any{"r18p"}, false)
	})

	// Cursors over aggregates and over rows, read half-way around
	// aggregates; a scroll cursor read backward; one held past COMMIT.
	t.Run("Cursors", func(t *testing.T) {
		conn := connect(t, cn)
		const script = `BEGIN;
DECLARE a SCROLL CURSOR FOR SELECT v, count(*) FROM %[1]s_t GROUP BY v ORDER BY v;
FETCH 3 FROM a;
DECLARE b CURSOR FOR SELECT id, v FROM %[1]s_t ORDER BY id;
FETCH 2 FROM b;
SELECT g, count(*), sum(v) FROM %[1]s_t GROUP BY g ORDER BY g;
FETCH BACKWARD 2 FROM a;
FETCH 2 FROM b;
DECLARE c CURSOR FOR SELECT s, count(*) FROM %[1]s_t GROUP BY s ORDER BY s;
FETCH 2 FROM c;
SELECT count(*) FROM %[1]s_t WHERE v > 10;
FETCH ALL FROM c;
MOVE FORWARD ALL IN a;
FETCH BACKWARD 1 FROM a;
COMMIT;
DECLARE h CURSOR WITH HOLD FOR SELECT g, count(*) FROM %[1]s_t GROUP BY g ORDER BY g;
FETCH 2 FROM h;
SELECT count(*) FROM %[1]s_t;
FETCH 2 FROM h;
CLOSE h`
		var outs [2]string
		for i, p := range []string{"r18", "r18p"} {
			for _, stmt := range strings.Split(fmt.Sprintf(script, p), ";\n") {
				out, err := answer(conn, stmt, true)
				if err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				outs[i] += out
			}
		}
		if outs[0] != outs[1] || outs[0] == "" {
			t.Errorf("cursors around aggregates:\ndistributed: %s\nplain:       %s", outs[0], outs[1])
		}
	})

	// A remote error, a pg_cancel_backend of a merged statement waiting on
	// a datanode's lock, and the datanode's backend terminated under one:
	// each an error, and the session's next aggregate answers.
	t.Run("Failures", func(t *testing.T) {
		conn := connect(t, cn)
		var pgErr *pgconn.PgError
		if _, err := answer(conn, "SELECT g, sum(1 / (v - v)) FROM r18_t GROUP BY g", false); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
			t.Errorf("a division by zero on the datanodes: %v, want SQLSTATE 22012", err)
		}
		same(conn, "after a remote error", "SELECT g, count(*), sum(v) FROM %s_t GROUP BY g ORDER BY g", []any{"r18"}, []any{"r18p"}, false)

		dn := c.nodeValue(t, cn, "SELECT s.srvname FROM pg_foreign_table f JOIN pg_foreign_server s ON s.oid = f.ftserver WHERE f.ftrelid = 'r18_t_1'::regclass")
		lock := connect(t, c.node(dn))
		other := connect(t, cn)
		// pg_stat_activity is read outside the lock's transaction (which
		// would see its first snapshot of it).
		watch := connect(t, c.node(dn))
		pid := conn.PgConn().PID()
		type killer struct {
			on        *pgx.Conn
			sql, what string
		}
		for _, kill := range []killer{
			{other, fmt.Sprintf("SELECT pg_cancel_backend(%d)", pid), "pg_cancel_backend on the coordinator"},
			{watch, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UNION ALL%'", "pg_terminate_backend of the datanode's backend"},
		} {
			tx, err := lock.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback(context.Background()) })
			if _, err := tx.Exec(ctx, "LOCK TABLE r18_t_1 IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := answer(conn, "SELECT g, count(*) FROM r18_t GROUP BY g", false)
				done <- err
			}()
			// Wait until the merged statement waits on the lock.
			waiting := func() (bool, string) {
				var n int
				err := other.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid).Scan(&n)
				return err == nil && n == 1, fmt.Sprint(n, err)
			}
			waitFor(t, 30*time.Second, "the aggregate running", waiting)
			var waiters int
			waitFor(t, 30*time.Second, "a datanode backend waiting on the lock", func() (bool, string) {
				var seen string
				err := watch.QueryRow(ctx, `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND query LIKE '%UNION ALL%'),
	coalesce(string_agg(coalesce(wait_event_type, '-') || ' ' || left(query, 120), ' | '), '') FROM pg_stat_activity WHERE backend_type = 'client backend'`).Scan(&waiters, &seen)
				return err == nil && waiters == 1, fmt.Sprint(waiters, err, seen)
			})
			if _, err := kill.on.Exec(ctx, kill.sql); err != nil {
				t.Fatal(err)
			}
			var err2 error
			select {
			case err2 = <-done:
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			if err2 == nil {
				t.Errorf("%s: the aggregate answered", kill.what)
			} else {
				t.Logf("%s: %v", kill.what, err2)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			same(conn, "after "+kill.what, "SELECT g, count(*), sum(v) FROM %s_t GROUP BY g ORDER BY g", []any{"r18"}, []any{"r18p"}, false)
		}
	})

	// Reading needs the privilege on the distributed table (or on the
	// columns read), as over the plain table.
	t.Run("Privileges", func(t *testing.T) {
		c.mustNodeSQL(t, c.node("gc"), "CREATE ROLE r18_reader")
		c.mustNodeSQL(t, cn, "CREATE ROLE r18_reader; GRANT SELECT (g, v) ON r18_t TO r18_reader; GRANT SELECT (g, v) ON r18p_t TO r18_reader")
		for _, q := range []string{
			"SELECT g, count(*), sum(v) FROM %s_t GROUP BY g ORDER BY g",
			"SELECT count(*) FROM %s_t",
			"SELECT g, max(s) FROM %s_t GROUP BY g",
			"SELECT g, count(*) FROM %s_e GROUP BY g",
		} {
			got, err := c.nodeSQL(cn, "SET ROLE r18_reader; "+fmt.Sprintf(q, "r18"))
			want, errPlain := c.nodeSQL(cn, "SET ROLE r18_reader; "+fmt.Sprintf(q, "r18p"))
			norm := func(err error) string {
				if err == nil {
					return ""
				}
				s := err.Error()
				return strings.ReplaceAll(s[strings.Index(s, "ERROR"):], "r18p_", "r18_")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || norm(err) != norm(errPlain) {
				t.Errorf("as r18_reader: %s: distributed %v (%v), plain %v (%v)", q, got, err, want, errPlain)
			}
		}
	})

	// Merged or not, the same answer (types whose sums are exact).
	t.Run("MergeOff", func(t *testing.T) {
		const q = "SELECT g, c, count(*), sum(v), avg(v), sum(n), avg(b), min(s), max(c) FROM r18_t GROUP BY g, c ORDER BY g, c"
		on := c.mustNodeSQL(t, cn, q)
		off := c.mustNodeSQL(t, cn, "SET adb.shard_batch_merge = off; "+q)
		if len(on) == 0 || fmt.Sprint(on) != fmt.Sprint(off[1:]) {
			t.Errorf("merged %.300v, unmerged %.300v", on, off)
		}
	})

	// Not this change's, noted: once ANALYZE gives the coordinator the
	// slots' statistics, a slot of few rows may aggregate locally (cost),
	// and then no slot is batched nor merged: 64 remote queries.
	t.Run("Analyzed", func(t *testing.T) {
		c.mustNodeSQL(t, cn, "ANALYZE r18_t")
		const q = "SELECT g, count(*) FILTER (WHERE v > 50), sum(v) FILTER (WHERE s = 'k1') FROM r18_t GROUP BY g"
		if plan := explainVerbose(t, c, cn, q); !strings.Contains(plan, "Remote statements: 2\n") {
			t.Errorf("after ANALYZE, %s is not merged (%d of 64 slots aggregate on their datanode)", q, strings.Count(plan, "Aggregate on"))
		}
		sameAsPlain(t, c, cn, "SELECT g, count(*) FILTER (WHERE v > 50), sum(v) FILTER (WHERE s = 'k1') FROM %s_t GROUP BY g ORDER BY g", []any{"r18"}, []any{"r18p"}, false)
	})
}
