package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestUpsert, from psql on the coordinators: INSERT … ON CONFLICT with a
// conflict target (DO NOTHING, DO UPDATE with the table's alias, EXCLUDED
// and a WHERE; VALUES and INSERT … SELECT sources) into a distributed
// table (ext/adb/upsert.c) reports the row counts and leaves the rows a
// plain table with the same key holds after the same statements; an
// upsert through the other coordinator finds the row; two sessions
// upserting one key at READ COMMITTED wait for each other and both
// count; RETURNING answers as on the plain table; the extended
// protocol's parameters in VALUES work. Refused by name (0A000):
// parameters in the ON CONFLICT clause, a new value for the distribution
// column; a key twice in one statement fails
// as on one PostgreSQL (21000) and a ROLLBACK leaves nothing.
func TestUpsert(t *testing.T) {
	c := sharedShardedCluster(t, 2)
	cn1, cn2 := c.node("cn1"), c.node("cn2")
	const def = "(id bigint PRIMARY KEY, v text, n int NOT NULL DEFAULT 0, s bigserial)"
	c.mustNodeSQL(t, cn1, "CREATE TABLE up_d "+def+"; SELECT adb.create_distributed_table('up_d', 'id'); CREATE TABLE up_p "+def)

	steps := []struct{ sql, tag string }{
		{"INSERT INTO %s (id, v) VALUES (1, 'a'), (2, 'b') ON CONFLICT (id) DO NOTHING", "INSERT 0 2"},
		{"INSERT INTO %s (id, v) VALUES (1, 'a2'), (3, 'c') ON CONFLICT (id) DO NOTHING", "INSERT 0 1"},
		{"INSERT INTO %s AS u (id, v) VALUES (1, 'x'), (4, 'd') ON CONFLICT (id) DO UPDATE SET v = u.v || '+' || EXCLUDED.v, n = u.n + 1", "INSERT 0 2"},
		{"INSERT INTO %[1]s (id, v) SELECT g, 'g' || g FROM generate_series(1, 200) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v WHERE %[1]s.n = 0", "INSERT 0 199"},
		{"INSERT INTO %s (id, v, n) VALUES (7, NULL, 5) ON CONFLICT (id) DO UPDATE SET v = coalesce(EXCLUDED.v, 'none'), n = EXCLUDED.n * 2", "INSERT 0 1"},
		{`INSERT INTO %s AS u (id, v, n) VALUES (1, 'q', 3), (2, 'r', 50), (3, 's', 1) ON CONFLICT (id) DO UPDATE
			SET n = GREATEST(u.n, EXCLUDED.n), v = CASE WHEN u.v IS DISTINCT FROM EXCLUDED.v AND u.n IN (0, 1, 10) THEN NULLIF(EXCLUDED.v, 'r') ELSE u.v || '.' END
			WHERE (u.n > 100) IS NOT TRUE AND u.id = ANY (ARRAY[1, 2])`, "INSERT 0 2"},
	}
	for _, st := range steps {
		for _, tbl := range []string{"up_d", "up_p"} {
			if out := c.mustNodeSQL(t, cn1, fmt.Sprintf(st.sql, tbl)); fmt.Sprint(out) != fmt.Sprintf("[[%s]]", st.tag) {
				t.Errorf("%s: %v, want %s", fmt.Sprintf(st.sql, tbl), out, st.tag)
			}
		}
	}
	const rows = "SELECT id, v, n FROM %s ORDER BY id"
	sameAsPlain(t, c, cn1, rows, []any{"up_d"}, []any{"up_p"}, false)
	if v := c.nodeValue(t, cn1, "SELECT count(DISTINCT s) = count(*) FROM up_d"); v != "t" {
		t.Errorf("serial values repeat: %s", v)
	}

	// Through the other coordinator: the same key is the same row.
	if out := c.mustNodeSQL(t, cn2, "INSERT INTO up_d (id, v) VALUES (2, 'cn2') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = up_d.n + 10"); fmt.Sprint(out) != "[[INSERT 0 1]]" {
		t.Errorf("upsert through cn2: %v", out)
	}
	if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || min(v) || ' ' || min(n) FROM up_d WHERE id = 2"); v != "1 cn2 60" {
		t.Errorf("id 2 after the upsert through cn2: %s", v)
	}

	// The clause runs on the datanodes as their superuser: only the
	// columns, constants and built-in immutable operators and functions
	// go there; settings, tables, volatile or stable functions do not.
	for _, set := range []string{"v = current_user", "v = pg_read_file('postgresql.conf')", "v = (SELECT max(v) FROM up_p)",
		"v = to_char(now(), 'HH24')", "v = up_d.v COLLATE \"C\""} {
		c.wantState(t, cn1, "INSERT INTO up_d (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET "+set, "0A000", "in its clause")
	}
	// Quotes in constants stay constants, whatever the client's settings.
	if _, stderr, err := c.copyPsql(cn1, []string{"PGOPTIONS=-c standard_conforming_strings=off -c escape_string_warning=off"},
		`INSERT INTO up_d (id, v) VALUES (5000, 'x'); INSERT INTO up_d (id, v) VALUES (5000, 'x') ON CONFLICT (id) DO UPDATE SET v = 'a\'; SELECT 1; --'`, ""); err != nil {
		t.Fatalf("upsert with a quote in its constant: %v %s", err, stderr)
	}
	if v := c.nodeValue(t, cn1, "SELECT v FROM up_d WHERE id = 5000"); v != "a'; SELECT 1; --" {
		t.Errorf("v of id 5000 after an upsert with a quote in its constant: %q", v)
	}
	// Through views: the base table's columns; a check option refused.
	c.mustNodeSQL(t, cn1, "CREATE VIEW up_swap AS SELECT id, n, s, v AS w FROM up_d; CREATE VIEW up_chk AS SELECT * FROM up_d WHERE id < 1000 WITH CHECK OPTION")
	c.mustNodeSQL(t, cn1, "INSERT INTO up_swap (id, w) VALUES (5000, 'via view') ON CONFLICT (id) DO UPDATE SET w = EXCLUDED.w || '!'")
	if v := c.nodeValue(t, cn1, "SELECT v FROM up_d WHERE id = 5000"); v != "via view!" {
		t.Errorf("v of id 5000 after an upsert through a view: %q", v)
	}
	c.mustNodeSQL(t, cn1, "DELETE FROM up_d WHERE id = 5000; DROP VIEW up_swap")
	c.wantState(t, cn1, "INSERT INTO up_chk (id, v) VALUES (3000, 'c') ON CONFLICT (id) DO NOTHING", "0A000", "CHECK OPTION")
	before := c.mustNodeSQL(t, cn1, fmt.Sprintf(rows, "up_d"))
	c.wantState(t, cn1, "INSERT INTO up_d (id, v) VALUES (300, 'x'), (300, 'y') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", "21000", "cannot affect row a second time")
	c.wantState(t, cn1, "INSERT INTO up_d (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET id = 1000", "0A000", "partition value")
	c.wantState(t, cn1, "DO $$ DECLARE k int := 3; BEGIN INSERT INTO up_d (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET n = k; END $$", "0A000", "a parameter in its clause")
	c.mustNodeSQL(t, cn1, "BEGIN; INSERT INTO up_d (id, v) SELECT g, 'gone' FROM generate_series(150, 400) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v; ROLLBACK")
	if after := c.mustNodeSQL(t, cn1, fmt.Sprintf(rows, "up_d")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a failed upsert or a ROLLBACK changed the table")
	}

	// From the table itself: the statement does not see its own rows.
	c.mustNodeSQL(t, cn1, "INSERT INTO up_d (id, v) SELECT id + 10000, v FROM up_d ON CONFLICT (id) DO NOTHING")
	if v := c.nodeValue(t, cn1, "SELECT count(*) FILTER (WHERE id > 10000) || ' ' || count(*) FILTER (WHERE id > 20000) FROM up_d"); v != "200 0" {
		t.Errorf("rows copied from up_d into itself (over 10000, over 20000): %s, want 200 0", v)
	}
	c.mustNodeSQL(t, cn1, "DELETE FROM up_d WHERE id > 10000")

	// RETURNING: the rows as the shards left them, the list computed on
	// the coordinator.
	const ret = "INSERT INTO %s AS u (id, v) VALUES (1, 'r'), (900, 'new') ON CONFLICT (id) DO UPDATE SET n = u.n + 100 RETURNING id * 2 AS twice, v, n, u.n > 50 AS big"
	got, want := c.mustNodeSQL(t, cn1, fmt.Sprintf(ret, "up_d")), c.mustNodeSQL(t, cn1, fmt.Sprintf(ret, "up_p"))
	sortRows := func(r [][]string) string {
		var s []string
		for _, x := range r {
			s = append(s, strings.Join(x, "|"))
		}
		sort.Strings(s)
		return strings.Join(s, "\n")
	}
	if len(got) != 3 || sortRows(got) != sortRows(want) {
		t.Errorf("upsert … RETURNING: %v, the plain table's %v", got, want)
	}
	c.wantState(t, cn1, "WITH w AS (INSERT INTO up_d (id, v) VALUES (1, 'x') ON CONFLICT (id) DO NOTHING RETURNING id) SELECT * FROM w", "0A000", "WITH")
	if v := c.nodeValue(t, cn1, "SELECT count(*) FROM up_d WHERE id IN (1, 900)"); v != "2" {
		t.Errorf("rows after the upsert with RETURNING: %s", v)
	}
	before = c.mustNodeSQL(t, cn1, fmt.Sprintf(rows, "up_d"))

	// Two sessions upsert one key: the second waits, then counts too.
	a, b := c.openSession(t, cn1, "upsert-a"), c.openSession(t, cn2, "upsert-b")
	const bump = "INSERT INTO up_d (id, v) VALUES (5, 'bump') ON CONFLICT (id) DO UPDATE SET n = up_d.n + 1;"
	a.send(t, "BEGIN;")
	if out := a.run(t, bump); !strings.Contains(out, "INSERT 0 1") {
		t.Fatalf("session a: %q", out)
	}
	b.send(t, bump)
	time.Sleep(500 * time.Millisecond)
	if out := b.out.String(); strings.Contains(out, "INSERT") {
		t.Errorf("session b did not wait for a's row: %q", out)
	}
	a.run(t, "COMMIT;")
	if out := b.wait(t, time.Minute); !strings.Contains(out, "INSERT 0 1") {
		t.Errorf("session b after a's COMMIT: %q", out)
	}
	if v := c.nodeValue(t, cn1, "SELECT n FROM up_d WHERE id = 5"); v != "2" {
		t.Errorf("n of id 5 after two bumps: %s, want 2", v)
	}

	// The extended protocol: parameters in VALUES.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(cn1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, v := range []string{"p1", "p2"} {
		if tag, err := conn.Exec(ctx, "INSERT INTO up_d (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", 500, v); err != nil || tag.RowsAffected() != 1 {
			t.Errorf("upsert with parameters: %v %v", tag, err)
		}
	}
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM up_d WHERE id = 500").Scan(&v); err != nil || v != "p2" {
		t.Errorf("id 500: %q %v, want p2", v, err)
	}
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, "INSERT INTO up_d (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET v = $1", "y"); !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Errorf("a parameter in DO UPDATE SET: %v, want 0A000", err)
	}
}
