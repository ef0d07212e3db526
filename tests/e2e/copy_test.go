package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// copyPsql runs psql on node n with command cmd (-c: SQL or a backslash
// command such as \copy), stdin as psql's standard input (COPY … FROM
// STDIN reads it) and env added to the DBA's environment (PGOPTIONS for
// settings), and is psql's output, its error output and its exit error.
func (c *testCluster) copyPsql(n nodeSpec, env []string, cmd, stdin string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := exec.CommandContext(ctx, "psql", "-X", "-h", c.host(n.Host).Addr, "-p", strconv.Itoa(n.Port), "-U", c.dbUser(),
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", cmd)
	p.Env = append(append(os.Environ(), c.nodeEnv()...), env...)
	p.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	p.Stdout, p.Stderr = &o, &e
	err := p.Run()
	return o.String(), e.String(), err
}

// copyRows is COPY input of rows from..to of table (id, g, v): text
// format, or CSV. Some v hold what COPY must escape (tab, backslash,
// newline, carriage return), some non-ASCII text, some are NULL.
func copyRows(from, to int, csv bool) string {
	var b strings.Builder
	for n := from; n <= to; n++ {
		g := n % 97
		switch {
		case n%11 == 0:
			if csv {
				fmt.Fprintf(&b, "%d,%d,\n", n, g)
			} else {
				fmt.Fprintf(&b, "%d\t%d\t\\N\n", n, g)
			}
		case n%7 == 0:
			if csv {
				fmt.Fprintf(&b, "%d,%d,\"a\tb\\c\nd\re é %d\"\n", n, g, n)
			} else {
				fmt.Fprintf(&b, "%d\t%d\ta\\tb\\\\c\\nd\\re é %d\n", n, g, n)
			}
		default:
			if csv {
				fmt.Fprintf(&b, "%d,%d,v%d\n", n, g, n)
			} else {
				fmt.Fprintf(&b, "%d\t%d\tv%d\n", n, g, n)
			}
		}
	}
	return b.String()
}

// slotFigures is, on every datanode, each shard of table: slot → its
// row count, sum of id and of g, and a digest of its v in id order.
func (c *testCluster) slotFigures(t *testing.T, table string) map[int]string {
	t.Helper()
	figs := map[int]string{}
	for _, dn := range []string{"dn1", "dn2"} {
		var parts []string
		for _, r := range c.mustNodeSQL(t, c.node(dn), fmt.Sprintf(`SELECT relname FROM pg_class WHERE relname ~ '^%s_[0-9]+$' AND relkind = 'r'`, table)) {
			slot := strings.TrimPrefix(r[0], table+"_")
			parts = append(parts, fmt.Sprintf(`SELECT %s, count(*) || ' ' || coalesce(sum(id), 0) || ' ' || coalesce(sum(g), 0) || ' '
				|| md5(coalesce(string_agg(coalesce(v, '<null>'), '|' ORDER BY id), '')) FROM %s`, slot, r[0]))
		}
		if len(parts) == 0 {
			t.Fatalf("no shard of %s on %s", table, dn)
		}
		for _, r := range c.mustNodeSQL(t, c.node(dn), strings.Join(parts, " UNION ALL ")) {
			k, _ := strconv.Atoi(r[0])
			if _, dup := figs[k]; dup {
				t.Fatalf("slot %d of %s has a shard on two datanodes", k, table)
			}
			figs[k] = r[1]
		}
	}
	return figs
}

// sameSlots checks that every slot of table has the figures it had in
// base (slotFigures), what saying when.
func (c *testCluster) sameSlots(t *testing.T, table string, base map[int]string, what string) {
	t.Helper()
	after := c.slotFigures(t, table)
	for k, f := range base {
		if after[k] != f {
			t.Errorf("%s: slot %d changed: %q → %q", what, k, f, after[k])
		}
	}
}

// checkBulkInsert: an INSERT … SELECT of many rows whose source reads no
// distributed table goes the bulk COPY path (on a datanode, the
// coordinator's connection shows COPY into the shards) and puts the rows
// where PostgreSQL's routing puts them (want: cp_ref's slots); from the
// table into itself, it copies each row once; the source
// is evaluated with the user's settings (DateStyle DMY), serial defaults
// are unique, and a duplicate key or a ROLLBACK leaves nothing.
func checkBulkInsert(t *testing.T, c *testCluster, want map[int]string) {
	cn1 := c.node("cn1")
	c.mustNodeSQL(t, cn1, `CREATE TABLE cp_ins (id bigint PRIMARY KEY, g int, v text, d date, s bigserial);
		SELECT adb.create_distributed_table('cp_ins', 'id')`)
	if out := c.mustNodeSQL(t, cn1, "INSERT INTO cp_ins (id, g, v) SELECT * FROM cp_local"); len(out) != 1 || out[0][0] != "INSERT 0 100000" {
		t.Errorf("INSERT … SELECT of 100,000 rows: %v", out)
	}
	got := c.slotFigures(t, "cp_ins")
	for k, w := range want {
		if got[k] != w {
			t.Errorf("slot %d: bulk INSERT … SELECT %q, PostgreSQL's routing %q", k, got[k], w)
		}
	}
	if v := c.nodeValue(t, cn1, "SELECT count(DISTINCT s) || ' ' || count(s) FROM cp_ins"); v != "100000 100000" {
		t.Errorf("distinct and non-null serial values: %s", v)
	}

	s := c.openSession(t, cn1, "bulk-insert")
	s.send(t, "BEGIN;")
	s.send(t, "SET LOCAL DateStyle = 'SQL, DMY';")
	if out := s.run(t, "INSERT INTO cp_ins (id, g, v, d) SELECT n, 0, 'd', ((n % 28) + 1 || '/04/2020')::date FROM generate_series(500001, 501000) n;"); !strings.Contains(out, "INSERT 0 1000") {
		t.Errorf("INSERT … SELECT under DateStyle DMY: %q", out)
	}
	dn := c.nodeValue(t, cn1, "SELECT node FROM adb.slot ORDER BY slot LIMIT 1")
	if v := c.nodeValue(t, c.node(dn), `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'adb:%' AND query ~ '^COPY public\.cp_ins_[0-9]+ '`); v != "1" {
		t.Errorf("the coordinator's connection to %s did not load by COPY (%s sessions)", dn, v)
	}
	s.send(t, "COMMIT;")
	if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || count(*) FILTER (WHERE d = DATE '2020-04-05') FROM cp_ins WHERE id > 500000"); v != "1000 35" {
		t.Errorf("rows and 5 April among them: %s, want 1000 35", v)
	}

	// From the table into itself: every row once, however many.
	for _, q := range []string{
		"INSERT INTO cp_ins (id, g, v, d) SELECT id + 1000000, g, v, d FROM cp_ins",
		"INSERT INTO cp_ins (id, g, v, d) SELECT id + 3000000, g, v, d FROM cp_ins WHERE id <= 5",
	} {
		c.mustNodeSQL(t, cn1, q)
	}
	if v := c.nodeValue(t, cn1, "SELECT count(*) FILTER (WHERE id > 1000000 AND id < 3000000) || ' ' || count(*) FILTER (WHERE id > 2000000) FROM cp_ins"); v != "101000 5" {
		t.Errorf("rows copied from cp_ins into itself: %s, want 101000 5", v)
	}
	c.mustNodeSQL(t, cn1, "DELETE FROM cp_ins WHERE id > 1000000")
	// The shapes postgres_fdw inserts (RETURNING, inside WITH, through a
	// view WITH CHECK OPTION, ON CONFLICT DO NOTHING): their source is
	// read whole first too.
	c.mustNodeSQL(t, cn1, "CREATE VIEW cp_chk AS SELECT * FROM cp_ins WHERE id > 0 WITH CHECK OPTION")
	for _, q := range []string{
		"INSERT INTO cp_ins (id, g, v, d) SELECT id + 1000000, g, v, d FROM cp_ins WHERE id <= 3000 RETURNING id",
		"INSERT INTO cp_chk (id, g, v, d) SELECT id + 1000000, g, v, d FROM cp_ins WHERE id <= 3000",
		"INSERT INTO cp_ins (id, g, v, d) SELECT id + 1000000, g, v, d FROM cp_ins WHERE id <= 3000 ON CONFLICT DO NOTHING RETURNING id",
	} {
		c.mustNodeSQL(t, cn1, q)
		if v := c.nodeValue(t, cn1, "SELECT count(*) FROM cp_ins WHERE id > 1000000"); v != "3000" {
			t.Errorf("%s: %s rows copied, want 3000", q, v)
		}
		c.mustNodeSQL(t, cn1, "DELETE FROM cp_ins WHERE id > 1000000")
	}
	c.mustNodeSQL(t, cn1, "DROP VIEW cp_chk")
	// WITH: a part that reads a distributed table another part writes is
	// refused (the parts would see each other's writes); parts on other
	// tables go.
	c.wantState(t, cn1, `WITH a AS (INSERT INTO cp_ins (id, g, v, d) SELECT id + 1000000, g, v, d FROM cp_ins WHERE id <= 10 RETURNING id),
		b AS (INSERT INTO cp_ref SELECT id + 1000000, g, v FROM cp_ins RETURNING id) SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)`,
		"0A000", `writes distributed table "cp_ins"`)
	c.wantState(t, cn1, `WITH d AS (DELETE FROM cp_ins WHERE id <= 10 RETURNING id) INSERT INTO cp_ref SELECT id + 1000000, g, v FROM cp_ins WHERE (SELECT count(*) FROM d) >= 0`,
		"0A000", `writes distributed table "cp_ins"`)
	c.wantState(t, cn1, `WITH u AS (UPDATE cp_ins SET g = g + 1 WHERE id = 12 RETURNING id) UPDATE cp_ins SET g = g + 1 WHERE id = 12`,
		"0A000", `writes distributed table "cp_ins"`)
	if out := c.mustNodeSQL(t, cn1, `WITH x AS (INSERT INTO cp_ins (id, g, v, d) SELECT id + 1000000, g, v, NULL FROM cp_local WHERE id <= 10 RETURNING id) SELECT count(*) FROM x`); fmt.Sprint(out) != "[[10]]" {
		t.Errorf("an INSERT in WITH from a plain table: %v", out)
	}
	if v := c.nodeValue(t, cn1, "SELECT count(*) FROM cp_ins WHERE id > 1000000"); v != "10" {
		t.Errorf("rows of the INSERT in WITH: %s, want 10", v)
	}
	c.mustNodeSQL(t, cn1, "DELETE FROM cp_ins WHERE id > 1000000")

	before := c.slotFigures(t, "cp_ins")
	_, err := c.nodeSQL(cn1, "INSERT INTO cp_ins (id, g, v) SELECT n, 0, 'again' FROM generate_series(99001, 100500) n")
	if err == nil || !strings.Contains(err.Error(), "23505") && !strings.Contains(err.Error(), "duplicate key") {
		t.Errorf("INSERT … SELECT of keys already there: %v", err)
	}
	c.mustNodeSQL(t, cn1, "BEGIN; INSERT INTO cp_ins (id, g, v) SELECT n, 0, 'gone' FROM generate_series(600001, 610000) n; ROLLBACK")
	after := c.slotFigures(t, "cp_ins")
	for k, f := range before {
		if after[k] != f {
			t.Errorf("after a duplicate key and a ROLLBACK: slot %d changed: %q → %q", k, f, after[k])
		}
	}
}

// TestDistributedCopy: COPY FROM into a distributed table through a
// coordinator (adb.copy_bulk, ext/adb/copy.c) puts every row in the shard
// of the slot PostgreSQL's hash routing gives it — the same shards as an
// INSERT … SELECT of the same rows — with the coordinator's defaults
// (serial values unique), reports COPY n, and loads all or nothing: a bad
// line, a duplicate key on a shard or a ROLLBACK leaves no row on any
// datanode, also after the rows were sent in several rounds.
func TestDistributedCopy(t *testing.T) {
	c := sharedShardedCluster(t, 1)
	cn1 := c.node("cn1")
	if c.nodeValue(t, cn1, "SELECT count(*) FROM pg_settings WHERE name = 'adb.copy_bulk'") != "1" {
		t.Skip("the nodes' adb library has no bulk COPY (ext/adb/copy.c)")
	}

	c.mustNodeSQL(t, cn1, `CREATE TABLE cp (id bigint PRIMARY KEY, g int, v text, s bigserial);
		SELECT adb.create_distributed_table('cp', 'id');
		CREATE TABLE cp_ref (id bigint PRIMARY KEY, g int, v text);
		SELECT adb.create_distributed_table('cp_ref', 'id');
		CREATE TABLE cp_local (id bigint, g int, v text)`)

	// The first half with COPY FROM STDIN (text), the second with psql's
	// \copy of a CSV file.
	first, second := copyRows(1, 50000, false), copyRows(50001, 100000, true)
	start := time.Now()
	out, stderr, err := c.copyPsql(cn1, nil, "COPY cp (id, g, v) FROM STDIN", first)
	if err != nil || strings.TrimSpace(out) != "COPY 50000" {
		t.Fatalf("COPY FROM STDIN: %v %q %s", err, out, stderr)
	}
	csv := filepath.Join(t.TempDir(), "cp.csv")
	if err := os.WriteFile(csv, []byte(second), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = c.copyPsql(cn1, nil, fmt.Sprintf(`\copy cp (id, g, v) FROM '%s' WITH (FORMAT csv)`, csv), "")
	if err != nil || strings.TrimSpace(out) != "COPY 50000" {
		t.Fatalf("\\copy: %v %q %s", err, out, stderr)
	}
	t.Logf("100,000 rows in two COPYs through cn1: %v", time.Since(start))

	// The reference: the same rows through PostgreSQL's own routing
	// (INSERT … SELECT from a plain table of the coordinator, which COPY
	// loads as PostgreSQL does; with adb.copy_bulk off, as an INSERT …
	// SELECT takes the bulk path too).
	if out, stderr, err := c.copyPsql(cn1, nil, "COPY cp_local FROM STDIN", first+copyRows(50001, 100000, false)); err != nil || strings.TrimSpace(out) != "COPY 100000" {
		t.Fatalf("COPY into a plain table: %v %q %s", err, out, stderr)
	}
	c.mustNodeSQL(t, cn1, "SET adb.copy_bulk = off; INSERT INTO cp_ref SELECT * FROM cp_local")

	t.Run("RowsInTheirSlots", func(t *testing.T) {
		got, want := c.slotFigures(t, "cp"), c.slotFigures(t, "cp_ref")
		if len(got) != 64 || len(want) != 64 {
			t.Fatalf("%d and %d shards, want 64", len(got), len(want))
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("slot %d: bulk COPY %q, INSERT … SELECT %q", k, got[k], w)
			}
		}
		// The input's own figures: 1 + … + 100000, and g = n % 97.
		gsum := 0
		for n := 1; n <= 100000; n++ {
			gsum += n % 97
		}
		want0 := fmt.Sprintf("100000 5000050000 %d", gsum)
		if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || sum(id) || ' ' || sum(g) FROM cp"); v != want0 {
			t.Errorf("cp: %s, want %s", v, want0)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) FROM cp c JOIN cp_local l USING (id) WHERE c.v IS NOT DISTINCT FROM l.v"); v != "100000" {
			t.Errorf("%s rows of cp have the input's v, want 100000", v)
		}
		if v := c.nodeValue(t, cn1, `SELECT v = E'a\tb\\c\nd\re é 7' FROM cp WHERE id = 7`); v != "t" {
			t.Errorf("v of id 7 is not the input's: %s", v)
		}
	})

	t.Run("SerialValuesUnique", func(t *testing.T) {
		if v := c.nodeValue(t, cn1, "SELECT count(DISTINCT s) || ' ' || count(s) FROM cp"); v != "100000 100000" {
			t.Errorf("distinct and non-null serial values: %s", v)
		}
	})

	t.Run("NoPreparedLeft", func(t *testing.T) {
		for _, dn := range []string{"dn1", "dn2"} {
			if v := c.nodeValue(t, c.node(dn), "SELECT count(*) FROM pg_prepared_xacts"); v != "0" {
				t.Errorf("%s prepared transactions left on %s", v, dn)
			}
		}
	})

	before := c.slotFigures(t, "cp")
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		c.sameSlots(t, "cp", before, what)
	}
	// A small buffer: the rows go out in many rounds before the error.
	small := []string{"PGOPTIONS=-c adb.copy_buffer=64kB"}

	t.Run("BadLineLoadsNothing", func(t *testing.T) {
		in := copyRows(100001, 160000, false) + "x\t1\tbad\n" + copyRows(160001, 160010, false)
		_, stderr, err := c.copyPsql(cn1, small, "COPY cp (id, g, v) FROM STDIN", in)
		if err == nil || !strings.Contains(stderr, "22P02") || !strings.Contains(stderr, "line 60001") {
			t.Errorf("a bad line: %v %s", err, stderr)
		}
		unchanged(t, "after a bad line")
	})

	t.Run("DuplicateKeyLoadsNothing", func(t *testing.T) {
		in := copyRows(100001, 160000, false) + "5\t1\tagain\n"
		_, stderr, err := c.copyPsql(cn1, small, "COPY cp (id, g, v) FROM STDIN", in)
		if err == nil || !strings.Contains(stderr, "23505") {
			t.Errorf("a duplicate key: %v %s", err, stderr)
		}
		unchanged(t, "after a duplicate key")
		// A key repeated inside the COPY.
		in = copyRows(100001, 100100, false) + copyRows(100050, 100050, false)
		_, stderr, err = c.copyPsql(cn1, nil, "COPY cp (id, g, v) FROM STDIN", in)
		if err == nil || !strings.Contains(stderr, "23505") {
			t.Errorf("a key twice in one COPY: %v %s", err, stderr)
		}
		unchanged(t, "after a key twice in one COPY")
	})

	t.Run("RollbackLoadsNothing", func(t *testing.T) {
		s := c.openSession(t, cn1, "copy-rollback")
		s.send(t, "SET adb.copy_buffer = '64kB';")
		s.send(t, "BEGIN;")
		s.send(t, "COPY cp (id, g, v) FROM STDIN;")
		s.send(t, strings.TrimSuffix(copyRows(100001, 130000, false), "\n")+"\n\\.")
		if out := s.run(t, "SELECT 'seen ' || count(*) FROM cp;"); !strings.Contains(out, "COPY 30000") || !strings.Contains(out, "seen 130000") {
			t.Errorf("inside the transaction: %q", out)
		}
		s.send(t, "ROLLBACK;")
		if out := s.run(t, "SELECT 'after ' || count(*) FROM cp;"); !strings.Contains(out, "after 100000") {
			t.Errorf("after ROLLBACK: %q", out)
		}
		unchanged(t, "after ROLLBACK")
	})

	t.Run("FallBack", func(t *testing.T) {
		// adb.copy_bulk off: PostgreSQL's row-by-row routing, as before.
		out, stderr, err := c.copyPsql(cn1, []string{"PGOPTIONS=-c adb.copy_bulk=off"}, "COPY cp (id, g, v) FROM STDIN", copyRows(200001, 200100, false))
		if err != nil || strings.TrimSpace(out) != "COPY 100" {
			t.Errorf("COPY with adb.copy_bulk off: %v %q %s", err, out, stderr)
		}
		// WHERE goes PostgreSQL's way too.
		out, stderr, err = c.copyPsql(cn1, nil, "COPY cp (id, g, v) FROM STDIN WHERE id % 2 = 0", copyRows(200101, 200200, false))
		if err != nil || strings.TrimSpace(out) != "COPY 50" {
			t.Errorf("COPY … WHERE: %v %q %s", err, out, stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) FROM cp WHERE id > 200000"); v != "150" {
			t.Errorf("rows past 200000: %s, want 150", v)
		}
		// COPY TO is PostgreSQL's.
		out, stderr, err = c.copyPsql(cn1, nil, "COPY (SELECT id, v FROM cp WHERE id IN (6, 7, 11) ORDER BY id) TO STDOUT", "")
		if err != nil || out != "6\tv6\n7\ta\\tb\\\\c\\nd\\re é 7\n11\t\\N\n" {
			t.Errorf("COPY TO: %v %q %s", err, out, stderr)
		}
	})

	// A COPY into a plain table (on a datanode: a shard's, from a bulk
	// load) runs with the table's row type unpinned (copy.c,
	// copy_unpinned). A COPY cut short by a bad line, a table with a
	// trigger (left alone) and a table changed between COPYs must still
	// balance every pin: PostgreSQL would otherwise warn of a TupleDesc
	// reference leak, or fail to release a pin it does not own.
	t.Run("PlainTables", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE cp_plain (id int PRIMARY KEY, v text);
			CREATE TABLE cp_trig (id int, v text);
			CREATE FUNCTION cp_trig() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.v := 'trig ' || NEW.v; RETURN NEW; END$$;
			CREATE TRIGGER cp_trig BEFORE INSERT ON cp_trig FOR EACH ROW EXECUTE FUNCTION cp_trig()`)
		rows := func(from, to int) string {
			var b strings.Builder
			for n := from; n <= to; n++ {
				fmt.Fprintf(&b, "%d\tv%d\n", n, n)
			}
			return b.String()
		}
		s := c.openSession(t, cn1, "copy-plain")
		s.send(t, "BEGIN;")
		s.send(t, "COPY cp_plain FROM STDIN;")
		s.send(t, rows(1, 3000)+"x\tbad\n\\.")
		s.send(t, "ROLLBACK;")
		s.send(t, "COPY cp_plain FROM STDIN;")
		s.send(t, rows(1, 3000)+"\\.")
		s.send(t, "ALTER TABLE cp_plain ADD COLUMN w int DEFAULT 7;")
		s.send(t, "COPY cp_plain (id, v) FROM STDIN;")
		s.send(t, rows(3001, 6000)+"\\.")
		s.send(t, "COPY cp_trig FROM STDIN;")
		s.send(t, rows(1, 3000)+"\\.")
		out := s.run(t, "SELECT 'counts ' || (SELECT count(*) FROM cp_plain) || ' ' || (SELECT count(*) FROM cp_plain WHERE w = 7) || ' ' || (SELECT count(*) FROM cp_trig WHERE v LIKE 'trig v%');")
		if !strings.Contains(out, "invalid input syntax") || strings.Count(out, "COPY 3000") != 3 || !strings.Contains(out, "counts 6000 6000 3000") {
			t.Errorf("COPYs into plain tables: %q", out)
		}
		if strings.Contains(out, "WARNING") || strings.Contains(out, "leak") {
			t.Errorf("COPYs into plain tables left a warning: %q", out)
		}
	})

	// A coordinator sends each datanode one COPY for all its shards
	// (shardcopy.c). Sent by hand to a datanode, it takes only what a
	// coordinator writes; anything else is refused, not loaded.
	t.Run("MultiShardCopyOnADatanode", func(t *testing.T) {
		dn1 := c.node("dn1")
		shard := c.nodeValue(t, dn1, `SELECT relname FROM pg_class WHERE relname ~ '^cp_[0-9]+$' AND relkind = 'r' ORDER BY 1 LIMIT 1`)
		count := func() string { return c.nodeValue(t, dn1, "SELECT count(*) FROM "+shard) }
		was := count()
		multi := fmt.Sprintf("COPY %s (id, g, v) FROM STDIN WITH (adb_shards ('public.%s'))", shard, shard)
		for _, k := range []struct{ name, cmd, in, want string }{
			{"no position", multi, "7\t1\tx\n", "08P01"},
			{"a position past the shards", multi, "1\t7\t1\tx\n", "08P01"},
			{"a negative position", multi, "-1\t7\t1\tx\n", "08P01"},
			{"a last line cut short", multi, "0\t7\t1\tx", "08P01"},
			{"a bad value", multi, "0\tseven\t1\tx\n", "22P02"},
			{"another option", multi[:len(multi)-1] + ", FORMAT csv)", "0\t7\t1\tx\n", "42601"},
			{"no such shard", fmt.Sprintf("COPY %s (id, g, v) FROM STDIN WITH (adb_shards ('public.%s', 'public.nosuch'))", shard, shard), "0\t7\t1\tx\n", "42P01"},
			{"not a table", fmt.Sprintf("COPY %s (id, g, v) FROM STDIN WITH (adb_shards ('pg_catalog.pg_tables'))", shard), "0\t7\t1\tx\n", "42809"},
		} {
			_, stderr, err := c.copyPsql(dn1, nil, k.cmd, k.in)
			if err == nil || !strings.Contains(stderr, k.want) {
				t.Errorf("%s: %v %s, want %s", k.name, err, stderr, k.want)
			}
		}
		if n := count(); n != was {
			t.Errorf("%s holds %s rows after refused COPYs, had %s", shard, n, was)
		}
		c.mustNodeSQL(t, dn1, "CREATE ROLE cp_nobody LOGIN")
		_, stderr, err := c.copyPsql(dn1, []string{"PGOPTIONS=-c role=cp_nobody"}, multi, "0\t900001\t1\tx\n")
		if err == nil || !strings.Contains(stderr, "42501") {
			t.Errorf("a role without INSERT on the shard: %v %s", err, stderr)
		}
		if n := count(); n != was {
			t.Errorf("%s holds %s rows after a refused COPY, had %s", shard, n, was)
		}
		// Row-level security is not skipped, as PostgreSQL's COPY FROM
		// refuses it.
		c.mustNodeSQL(t, dn1, `CREATE TABLE cp_rls (id bigint, g int, v text);
			ALTER TABLE cp_rls ENABLE ROW LEVEL SECURITY;
			CREATE POLICY cp_rls_positive ON cp_rls FOR INSERT WITH CHECK (g > 0);
			GRANT INSERT ON cp_rls TO cp_nobody`)
		_, stderr, err = c.copyPsql(dn1, []string{"PGOPTIONS=-c role=cp_nobody"},
			"COPY cp_rls (id, g, v) FROM STDIN WITH (adb_shards ('public.cp_rls'))", "0\t1\t-5\tx\n")
		if err == nil || !strings.Contains(stderr, "0A000") {
			t.Errorf("a table with row-level security: %v %s", err, stderr)
		}
		if n := c.nodeValue(t, dn1, "SELECT count(*) FROM cp_rls"); n != "0" {
			t.Errorf("cp_rls holds %s rows after a refused COPY", n)
		}
	})

	// Rows go out to the datanodes as they are read, unless a function
	// run for a row could query a datanode through the same connections
	// (a default calling a user function, a user type): then they are
	// held and sent in rounds, between which the connections are free.
	t.Run("FunctionsThatReadDatanodes", func(t *testing.T) {
		// Every coordinator and shard gets the table's default (the shards'
		// is never used: the coordinator fills it).
		for _, n := range c.Nodes {
			switch n.Name {
			case "dn1", "dn2":
				c.mustNodeSQL(t, n, "CREATE FUNCTION cp_refs() RETURNS int LANGUAGE sql AS 'SELECT -1'")
			case "cn2", "gc":
				c.mustNodeSQL(t, n, "CREATE FUNCTION cp_refs() RETURNS int LANGUAGE sql STABLE AS 'SELECT count(*)::int FROM cp_ref'")
			}
		}
		c.mustNodeSQL(t, cn1, `CREATE FUNCTION cp_refs() RETURNS int LANGUAGE sql STABLE AS 'SELECT count(*)::int FROM cp_ref';
			CREATE TABLE cp_def (id bigint PRIMARY KEY, g int DEFAULT cp_refs(), v text);
			SELECT adb.create_distributed_table('cp_def', 'id')`)
		refs := c.nodeValue(t, cn1, "SELECT count(*) FROM cp_ref")
		// 1,100 rows of 200 bytes: after the first 1,000 (read as a batch),
		// each datanode has over 64 kB of them, which streaming would
		// start sending while the last 100 rows' defaults are computed.
		var in strings.Builder
		for n := 1; n <= 1100; n++ {
			fmt.Fprintf(&in, "%d\t%s\n", n, strings.Repeat("x", 200))
		}
		out, stderr, err := c.copyPsql(cn1, small, "COPY cp_def (id, v) FROM STDIN", in.String())
		if err != nil || strings.TrimSpace(out) != "COPY 1100" {
			t.Fatalf("COPY with a default that reads a distributed table: %v %q %s", err, out, stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || count(*) FILTER (WHERE g = "+refs+") FROM cp_def"); v != "1100 1100" {
			t.Errorf("rows, rows with the default: %s, want 1100 1100", v)
		}
		// A round goes out after the first 1,000 rows (over 64 kB), the
		// last 100 rows' function runs after it.
		out, stderr, err = c.copyPsql(cn1, small, "INSERT INTO cp_def SELECT n, cp_refs() + 1, repeat('x', 100) FROM generate_series(1101, 2200) n", "")
		if err != nil || strings.TrimSpace(out) != "INSERT 0 1100" {
			t.Fatalf("INSERT … SELECT calling a function that reads a distributed table: %v %q %s", err, out, stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) FILTER (WHERE g = "+refs+" + 1) FROM cp_def"); v != "1100" {
			t.Errorf("rows of the INSERT … SELECT: %s, want 1100", v)
		}
	})

	// With adb.copy_stream off, the rows are held and sent in rounds.
	t.Run("StreamOff", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE cp_off (id bigint PRIMARY KEY, g int, v text);
			SELECT adb.create_distributed_table('cp_off', 'id')`)
		out, stderr, err := c.copyPsql(cn1, []string{"PGOPTIONS=-c adb.copy_stream=off -c adb.copy_buffer=64kB"}, "COPY cp_off (id, g, v) FROM STDIN", copyRows(1, 20000, false))
		if err != nil || strings.TrimSpace(out) != "COPY 20000" {
			t.Fatalf("COPY with adb.copy_stream off: %v %q %s", err, out, stderr)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || sum(id) || ' ' || count(v) FROM cp_off"); v != "20000 200010000 18182" {
			t.Errorf("count, sum of id, non-null v: %s", v)
		}
	})

	// A COPY cancelled while its rows stream to the datanodes loads
	// nothing, and the session's next COPY works.
	t.Run("CancelWhileStreaming", func(t *testing.T) {
		base := c.slotFigures(t, "cp")
		s := c.openSession(t, cn1, "copy-cancel")
		pid := strings.TrimSpace(s.run(t, "SELECT pg_backend_pid();"))
		s.send(t, "BEGIN;")
		s.send(t, "COPY cp (id, g, v) FROM STDIN;")
		s.send(t, strings.TrimSuffix(copyRows(400001, 460000, false), "\n"))
		// The rows are read and streaming; the end marker is not sent yet.
		waitFor(t, time.Minute, "the COPY reading", func() (bool, string) {
			v := c.nodeValue(t, cn1, "SELECT count(*) FROM pg_stat_activity WHERE pid = "+pid+" AND query LIKE 'COPY%' AND state = 'active'")
			return v == "1", v
		})
		c.mustNodeSQL(t, cn1, "SELECT pg_cancel_backend("+pid+")")
		s.send(t, "\\.")
		out := s.run(t, "ROLLBACK;")
		if !strings.Contains(out, "canceling statement due to user request") {
			t.Errorf("the cancelled COPY: %q", out)
		}
		c.sameSlots(t, "cp", base, "after a cancelled COPY")
		if out := s.run(t, "COPY cp (id, g, v) FROM STDIN;\n"+strings.TrimSuffix(copyRows(400001, 400010, false), "\n")+"\n\\."); !strings.Contains(out, "COPY 10") {
			t.Errorf("the COPY after: %q", out)
		}
		c.mustNodeSQL(t, cn1, "DELETE FROM cp WHERE id BETWEEN 400001 AND 400010")
		c.sameSlots(t, "cp", base, "after the COPY after a cancel")
	})

	t.Run("InsertSelect", func(t *testing.T) { checkBulkInsert(t, c, before) })

	t.Run("Privileges", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, "CREATE ROLE copy_user")
		_, stderr, err := c.copyPsql(cn1, []string{"PGOPTIONS=-c role=copy_user"}, "COPY cp (id, g, v) FROM STDIN", copyRows(300001, 300010, false))
		if err == nil || !regexp.MustCompile(`42501`).MatchString(stderr) {
			t.Errorf("COPY without INSERT on the table: %v %s", err, stderr)
		}
	})
}
