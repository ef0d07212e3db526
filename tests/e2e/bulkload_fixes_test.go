package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestBulkLoad's Fixes: a second review of the bulk-load path's fixes
// (stop 17), by trying them: split CopyData messages, invalidations during
// a shard's load, cancels and terminations while a datanode does not read,
// a datanode stopped mid-stream, a fast shutdown, defaults that run
// queries.

// chunkReader hands out its data n bytes per Read: pgconn's CopyFrom sends
// each Read as one CopyData message, so lines split at any place.
type chunkReader struct {
	data string
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, io.EOF
	}
	k := r.n
	if k > len(p) {
		k = len(p)
	}
	if k > len(r.data) {
		k = len(r.data)
	}
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func (c *testCluster) bulkLoadFixes(t *testing.T) {
	cn1, dn1 := c.node("cn1"), c.node("dn1")
	ctx := context.Background()

	connect := func(t *testing.T, n nodeSpec, notices *[]string, mu *sync.Mutex) *pgconn.PgConn {
		cfg, err := pgconn.ParseConfig(c.nodeConnString(n))
		if err != nil {
			t.Fatal(err)
		}
		cfg.OnNotice = func(_ *pgconn.PgConn, nt *pgconn.Notice) {
			mu.Lock()
			*notices = append(*notices, nt.Severity+": "+nt.Message)
			mu.Unlock()
		}
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	exec := func(conn *pgconn.PgConn, sql string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err := conn.Exec(cctx, sql).ReadAll()
		if err != nil {
			return "", err
		}
		var out []string
		for _, r := range res {
			for _, row := range r.Rows {
				for _, v := range row {
					out = append(out, string(v))
				}
			}
		}
		return strings.Join(out, " "), nil
	}

	// Lines split across CopyData messages at every place, a "\." line in
	// the middle (the rest ignored), a long row sent 7 bytes a message.
	t.Run("SplitMessagesAndEndMarker", func(t *testing.T) {
		c.mustNodeSQL(t, dn1, `CREATE TABLE rb_s0 (a int, b text); CREATE TABLE rb_s1 (a int, b text)`)
		var notices []string
		var mu sync.Mutex
		conn := connect(t, dn1, &notices, &mu)
		var in strings.Builder
		for n := 1; n <= 300; n++ {
			fmt.Fprintf(&in, "%d\t%d\tv%d\n", n%2, n, n)
		}
		fmt.Fprintf(&in, "1\t9999\t%s\n", strings.Repeat("L", 200000))
		in.WriteString("\\.\n0\t-1\tafter the end\ngarbage\n")
		for _, size := range []int{1, 2, 3, 7} {
			tag, err := conn.CopyFrom(ctx, &chunkReader{data: in.String(), n: size},
				"COPY rb_s0 (a, b) FROM STDIN WITH (adb_shards ('public.rb_s0', 'public.rb_s1'))")
			if err != nil || tag.RowsAffected() != 301 {
				t.Errorf("chunks of %d bytes: %v %v, want 301 rows", size, tag, err)
			}
		}
		if v, err := exec(conn, "SELECT (SELECT count(*) FROM rb_s0) || ' ' || (SELECT count(*) FROM rb_s1) || ' ' || (SELECT count(*) FROM rb_s1 WHERE length(b) = 200000) || ' ' || (SELECT count(*) FROM rb_s0 WHERE a < 0)"); err != nil || v != "600 604 4 0" {
			t.Errorf("rows of rb_s0, rb_s1, long rows, rows after \\.: %q %v, want 600 604 4 0", v, err)
		}
		if len(notices) > 0 {
			t.Errorf("notices: %q", notices)
		}
	})

	// Relcache invalidations of a shard while its multi-shard COPY loads
	// (ANALYZE, ALTER … SET STATISTICS, COMMENT ON, GRANT from another
	// session), a whole-row CHECK and an index on a function of the row;
	// then a unique violation, a failed COPY in a subtransaction and more
	// loads in the same session.
	t.Run("InvalidationsDuringShardLoad", func(t *testing.T) {
		c.mustNodeSQL(t, dn1, `CREATE TABLE rb_inv (a int PRIMARY KEY, b text, CHECK (rb_inv IS NOT NULL));
			CREATE TABLE rb_inv2 (a int PRIMARY KEY, b text, CHECK (rb_inv2 IS NOT NULL));
			CREATE FUNCTION rb_invkey(rb_inv) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1.a::text || $1.b';
			CREATE INDEX ON rb_inv (rb_invkey(rb_inv));
			CREATE ROLE rb_someone`)
		crashes := c.serverCrashes(t, dn1)
		var notices []string
		var mu sync.Mutex
		conn := connect(t, dn1, &notices, &mu)
		other := connect(t, dn1, &notices, &mu)
		lines := func(from, to int) string {
			var b strings.Builder
			for n := from; n <= to; n++ {
				fmt.Fprintf(&b, "%d\t%d\tv%d\n", n%2, n, n)
			}
			return b.String()
		}
		const cmd = "COPY rb_inv (a, b) FROM STDIN WITH (adb_shards ('public.rb_inv', 'public.rb_inv2'))"
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 1; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, s := range []string{"ANALYZE rb_inv", fmt.Sprintf("ALTER TABLE rb_inv ALTER b SET STATISTICS %d", 100+k%50),
					fmt.Sprintf("COMMENT ON TABLE rb_inv IS 'c%d'", k), "GRANT SELECT ON rb_inv TO rb_someone", "REVOKE SELECT ON rb_inv FROM rb_someone",
					fmt.Sprintf("ALTER TABLE rb_inv2 ALTER b SET STATISTICS %d", 100+k%50)} {
					if _, err := exec(other, s); err != nil {
						t.Errorf("%s: %v", s, err)
						return
					}
				}
			}
		}()
		for i := 0; i < 3; i++ {
			tag, err := conn.CopyFrom(ctx, strings.NewReader(lines(i*400000+1, (i+1)*400000)), cmd)
			if err != nil || tag.RowsAffected() != 400000 {
				t.Errorf("load %d with invalidations: %v %v", i, tag, err)
			}
		}
		close(stop)
		wg.Wait()
		// A unique violation, then more.
		if _, err := conn.CopyFrom(ctx, strings.NewReader(lines(1199990, 1200010)), cmd); sqlState(err) != "23505" {
			t.Errorf("a duplicate key: %v, want 23505", err)
		}
		if _, err := exec(conn, `BEGIN; SAVEPOINT s`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.CopyFrom(ctx, strings.NewReader(lines(1199990, 1200010)), cmd); sqlState(err) != "23505" {
			t.Errorf("a duplicate key in a subtransaction: %v, want 23505", err)
		}
		if _, err := exec(conn, `ROLLBACK TO s`); err != nil {
			t.Fatal(err)
		}
		if tag, err := conn.CopyFrom(ctx, strings.NewReader(lines(1200001, 1300000)), cmd); err != nil || tag.RowsAffected() != 100000 {
			t.Errorf("a load after a subtransaction's failed one: %v %v", tag, err)
		}
		if _, err := exec(conn, `ANALYZE rb_inv; COMMIT`); err != nil {
			t.Fatal(err)
		}
		if tag, err := conn.CopyFrom(ctx, strings.NewReader(lines(1300001, 1400000)), cmd); err != nil || tag.RowsAffected() != 100000 {
			t.Errorf("a load after: %v %v", tag, err)
		}
		v, err := exec(conn, "SELECT (SELECT count(*) FROM rb_inv) + (SELECT count(*) FROM rb_inv2), (SELECT count(DISTINCT rb_invkey(rb_inv)) FROM rb_inv), (SELECT count(*) FROM rb_inv WHERE rb_inv IS NULL)")
		if err != nil || v != "1400000 700000 0" {
			t.Errorf("rows, distinct keys, null rows: %q %v, want 1400000 700000 0", v, err)
		}
		if n := c.serverCrashes(t, dn1) - crashes; n != 0 {
			t.Errorf("dn1's log shows %d crash(es)", n)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, nt := range notices {
			if strings.Contains(nt, "leak") || strings.Contains(nt, "WARNING") {
				t.Errorf("notice: %s", nt)
			}
		}
	})

	// A COPY ended by statement_timeout while a datanode waits for a
	// lock; the same session's next statements must work.
	t.Run("CancelThenSameSession", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE rb_wait (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb_wait', 'id')`)
		release := c.holdRows(t, cn1, "rb_holder", "INSERT INTO rb_wait VALUES (5, 'held')")
		var notices []string
		var mu sync.Mutex
		conn := connect(t, cn1, &notices, &mu)
		// Twice: the second cancel finds the connections the first one's
		// abandon left (or postgres_fdw made again). 1 s is time enough
		// for a datanode to be waiting: the locked key is in the first
		// rows.
		for i := 0; i < 2; i++ {
			if _, err := exec(conn, "SET statement_timeout = '1s'"); err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
			start := time.Now()
			_, err := conn.CopyFrom(cctx, strings.NewReader(longInput(1000000)), "COPY rb_wait FROM STDIN")
			cancel()
			if sqlState(err) != "57014" || time.Since(start) > 30*time.Second {
				t.Fatalf("round %d: COPY with a key locked: %v after %v, want 57014", i, err, time.Since(start))
			}
			if _, err := exec(conn, "RESET statement_timeout"); err != nil {
				t.Fatalf("round %d: RESET after the cancel: %v", i, err)
			}
			for _, s := range []string{"SELECT count(*) FROM rb_wait WHERE id > 10", fmt.Sprintf("INSERT INTO rb_wait VALUES (%d, 'x')", 2000000+i),
				fmt.Sprintf("INSERT INTO rb_wait SELECT g, 'y' FROM generate_series(%d, %d) g", 3000000+i*1000, 3000000+i*1000+999),
				"SELECT count(*) FROM rb_wait"} {
				if v, err := exec(conn, s); err != nil {
					t.Errorf("round %d: %s after the cancel: %q %v", i, s, v, err)
				}
			}
			if tag, err := conn.CopyFrom(ctx, strings.NewReader(fmt.Sprintf("%d\tz\n%d\tz\n", 4000000+i*10, 4000001+i*10)), "COPY rb_wait FROM STDIN"); err != nil || tag.RowsAffected() != 2 {
				t.Errorf("round %d: a COPY after the cancel: %v %v", i, tag, err)
			}
		}
		release()
		if v, err := exec(conn, "SELECT count(*) FROM rb_wait"); err != nil || v != "2006" {
			t.Errorf("rows of rb_wait: %q %v, want 2006", v, err)
		}
	})

	// A cancel (statement_timeout) after every row was sent, while a
	// datanode's COPY still waits for a lock (the coordinator waits for its
	// result): abandon leaves the target CONN_SENT without putting the
	// connection back in blocking mode, and postgres_fdw keeps it. Then a
	// row larger than the socket's buffers, in the same session, through
	// the same connection: libpq's non-blocking send queues what it cannot
	// send and postgres_fdw waits for an answer that cannot come.
	t.Run("CancelAfterCopyEndThenLargeRow", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE rb_sent (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb_sent', 'id')`)
		// The control: the same row, in a fresh session, loads.
		var cn []string
		var cmu sync.Mutex
		fresh := connect(t, cn1, &cn, &cmu)
		if v, err := exec(fresh, "SET statement_timeout = '20s'; INSERT INTO rb_sent VALUES (5, repeat('x', 30000000)) RETURNING id; DELETE FROM rb_sent"); err != nil || v != "5" {
			t.Fatalf("a 30 MB row in a fresh session: %q %v", v, err)
		}
		release := c.holdRows(t, cn1, "rb_holder2", "INSERT INTO rb_sent VALUES (5, 'held')")
		var notices []string
		var mu sync.Mutex
		conn := connect(t, cn1, &notices, &mu)
		if _, err := exec(conn, "SET statement_timeout = '1s'"); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		_, err := conn.CopyFrom(cctx, strings.NewReader(longInput(100)), "COPY rb_sent FROM STDIN")
		cancel()
		if sqlState(err) != "57014" {
			t.Fatalf("COPY of 100 rows, one locked: %v, want 57014", err)
		}
		release()
		if _, err := exec(conn, "SET statement_timeout = '20s'"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if v, err := exec(conn, "INSERT INTO rb_sent VALUES (5, repeat('x', 30000000)) RETURNING id"); err != nil || v != "5" {
			t.Errorf("a 30 MB row after the cancel, in the same session: %q %v after %v", v, err, time.Since(start))
		}
		if v, err := exec(conn, "SELECT count(*), sum(length(v)) FROM rb_sent"); err != nil || v != "1 30000000" {
			t.Errorf("rb_sent: %q %v, want 1 30000000", v, err)
		}
	})

	// ts_rewrite(tsquery, text) runs the query it is given (SPI), as
	// query_to_xml does: a default calling it over a distributed table
	// keeps the rows from streaming (runs_queries). Its query reads two
	// shards through postgres_fdw's connections, which streaming would
	// find inside COPY (without ts_rewrite in runs_queries: 08006). Not
	// every shard: that took 12 ms a row. Not id = 1 alone: one slot's
	// query goes by the router's own connection.
	t.Run("DefaultCallingTsRewrite", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE rb_alias (id int PRIMARY KEY, t tsquery, s tsquery); SELECT adb.create_distributed_table('rb_alias', 'id');
			INSERT INTO rb_alias VALUES (1, 'a', 'b');
			CREATE TABLE rb_tsr (id bigint PRIMARY KEY, q tsquery DEFAULT ts_rewrite('a'::tsquery, 'SELECT t, s FROM rb_alias WHERE id IN (1, 2)'), v text);
			SELECT adb.create_distributed_table('rb_tsr', 'id')`)
		c.loadPastABatch(t, cn1, "rb_tsr", "a table whose default calls ts_rewrite over a distributed table")
		if v := c.nodeValue(t, cn1, "SELECT count(*) FILTER (WHERE q = 'b'::tsquery) FROM rb_tsr"); v != "1010" {
			t.Errorf("rows of rb_tsr rewritten: %s, want 1010", v)
		}
	})

	// A datanode stopped (immediate) while a COPY streams to it, then
	// started: the COPY fails in time, and the same session works after.
	t.Run("DatanodeStoppedMidStream", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE rb_stop (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb_stop', 'id')`)
		var notices []string
		var mu sync.Mutex
		conn := connect(t, cn1, &notices, &mu)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err := conn.CopyFrom(cctx, strings.NewReader(longInput(6000000)), "COPY rb_stop FROM STDIN")
			done <- err
		}()
		waitFor(t, time.Minute, "the COPY streams to dn1", func() (bool, string) {
			v := c.nodeValue(t, dn1, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.rb_stop%'")
			return v != "0", v
		})
		c.mustRows(t, 2*time.Minute, "STOP DATANODE MASTER dn1 MODE immediate")
		var err error
		select {
		case err = <-done:
		case <-time.After(90 * time.Second):
			t.Fatalf("the COPY still runs 90 s after dn1 stopped")
		}
		if err == nil {
			t.Errorf("the COPY succeeded with dn1 stopped mid-stream")
		}
		t.Logf("COPY ended after %v: %v", time.Since(start), err)
		c.mustRows(t, 2*time.Minute, "START DATANODE MASTER dn1")
		c.reachable(t, dn1)
		for _, s := range []string{"SELECT count(*) FROM rb_stop", "INSERT INTO rb_stop SELECT g, 'a' FROM generate_series(1, 1000) g",
			"INSERT INTO rb_stop VALUES (5000, 'b')", "SELECT count(*) FROM rb_stop"} {
			if v, err := exec(conn, s); err != nil {
				t.Errorf("%s after dn1 restarted, same session: %q %v", s, v, err)
			}
		}
		if tag, err := conn.CopyFrom(ctx, strings.NewReader(longInput(3000)[len(longInput(1000)):]), "COPY rb_stop FROM STDIN"); err != nil || tag.RowsAffected() != 2000 {
			t.Errorf("a COPY after dn1 restarted, same session: %v %v", tag, err)
		}
	})

	// pg_terminate_backend of an INSERT … SELECT sent in rounds
	// (adb.copy_buffer 64 kB) while a datanode waits for a row lock: the
	// backend and the datanodes' COPYs end in seconds.
	t.Run("TerminateInsertSelectMidRound", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE rb_ts (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb_ts', 'id')`)
		release := c.holdRows(t, cn1, "rb_holder4", "INSERT INTO rb_ts SELECT g, 'held' FROM generate_series(50000, 50100) g")
		done := c.psqlInBackground(cn1, []string{"PGAPPNAME=rb_ts", "PGOPTIONS=-c adb.copy_buffer=64"}, "INSERT INTO rb_ts SELECT g, repeat('v', 50) FROM generate_series(1, 3000000) g", "")
		var pid string
		waitFor(t, time.Minute, "a datanode waits for the lock", func() (bool, string) {
			v := c.nodeValue(t, cn1, "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = 'rb_ts' AND state = 'active'")
			w := "0"
			for _, dn := range []string{"dn1", "dn2"} {
				if x := c.nodeValue(t, c.node(dn), "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.rb_ts%' AND wait_event_type = 'Lock'"); x != "0" {
					w = x
				}
			}
			pid = v
			return v != "0" && w != "0", v + " " + w
		})
		time.Sleep(time.Second)
		c.mustNodeSQL(t, cn1, "SELECT pg_terminate_backend("+pid+")")
		start := time.Now()
		waitFor(t, 30*time.Second, "the backend and the datanodes' COPYs end", func() (bool, string) {
			left := c.nodeValue(t, cn1, "SELECT count(*) FROM pg_stat_activity WHERE pid = "+pid)
			copies := "0"
			for _, dn := range []string{"dn1", "dn2"} {
				if x := c.nodeValue(t, c.node(dn), "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.rb_ts%' AND state = 'active'"); x != "0" {
					copies = x
				}
			}
			return left == "0" && copies == "0", left + " " + copies
		})
		took := time.Since(start)
		t.Logf("ended %v after pg_terminate_backend: %s", took, <-done)
		// abandon gives each target its own ABANDON_WAIT_MS (10 s): with
		// every datanode waiting, an exit takes 10 s per datanode.
		if took > 12*time.Second {
			t.Errorf("pg_terminate_backend with both datanodes waiting took %v, want at most the 10 s of one abandon", took)
		}
		release()
		if v := c.nodeValue(t, cn1, "SELECT count(*) FROM rb_ts"); v != "0" {
			t.Errorf("rb_ts holds %s rows after the terminated INSERT", v)
		}
	})

	// A CHECK whose function, for some rows, runs ANALYZE and GRANT on the
	// shard being loaded (invalidations in the loading backend itself)
	// and reads the shard (by an index: a scan a row made the loads take
	// seconds); a whole-row CHECK too.
	t.Run("SelfInvalidatingCheck", func(t *testing.T) {
		c.mustNodeSQL(t, dn1, `CREATE TABLE rb_self (a int, b text, CHECK (rb_self IS NOT NULL));
			CREATE FUNCTION rb_selfchk(int) RETURNS bool LANGUAGE plpgsql VOLATILE AS $$
			BEGIN
				IF $1 % 2000 = 0 THEN
					ANALYZE rb_self;
					EXECUTE 'GRANT SELECT ON rb_self TO rb_someone';
					EXECUTE 'REVOKE SELECT ON rb_self FROM rb_someone';
				END IF;
				RETURN (SELECT count(*) < 2 FROM rb_self WHERE a = $1);
			END $$;
			ALTER TABLE rb_self ADD CHECK (rb_selfchk(a));
			CREATE INDEX ON rb_self (a)`)
		crashes := c.serverCrashes(t, dn1)
		var notices []string
		var mu sync.Mutex
		conn := connect(t, dn1, &notices, &mu)
		var in strings.Builder
		for n := 1; n <= 8000; n++ {
			fmt.Fprintf(&in, "0\t%d\tv%d\n", n, n)
		}
		for i := 0; i < 2; i++ {
			if tag, err := conn.CopyFrom(ctx, strings.NewReader(in.String()), "COPY rb_self (a, b) FROM STDIN WITH (adb_shards ('public.rb_self'))"); err != nil || tag.RowsAffected() != 8000 {
				t.Errorf("load %d: %v %v", i, tag, err)
			}
		}
		if v, err := exec(conn, "SELECT count(*) FROM rb_self WHERE rb_self IS NOT NULL"); err != nil || v != "16000" {
			t.Errorf("rows: %q %v, want 16000", v, err)
		}
		if n := c.serverCrashes(t, dn1) - crashes; n != 0 {
			t.Errorf("dn1's log shows %d crash(es)", n)
		}
		if len(notices) > 0 {
			t.Errorf("notices: %q", notices)
		}
	})

	// A fast shutdown of the coordinator while its COPY streams to a
	// datanode whose shard COPY waits for a row lock held on the datanode
	// itself: the node must stop in seconds. Last: it restarts cn1.
	t.Run("FastShutdownWhileADatanodeWaits", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, `CREATE TABLE rb_fs (id bigint PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb_fs', 'id'); INSERT INTO rb_fs VALUES (5, 'x')`)
		var dn nodeSpec
		var shard string
		for _, name := range []string{"dn1", "dn2"} {
			n := c.node(name)
			for _, r := range c.mustNodeSQL(t, n, `SELECT relname FROM pg_class WHERE relname ~ '^rb_fs_[0-9]+$' AND relkind = 'r'`) {
				if c.nodeValue(t, n, "SELECT count(*) FROM "+r[0]+" WHERE id = 5") == "1" {
					dn, shard = n, r[0]
				}
			}
		}
		if shard == "" {
			t.Fatal("no shard holds id 5")
		}
		c.mustNodeSQL(t, cn1, "DELETE FROM rb_fs")
		release := c.holdRows(t, dn, "rb_holder3", "INSERT INTO "+shard+" VALUES (5, 'held')")
		done := c.psqlInBackground(cn1, []string{"PGAPPNAME=rb_fs"}, "COPY rb_fs FROM STDIN", longInput(2000000))
		waitFor(t, time.Minute, "the datanode's COPY waits for the lock", func() (bool, string) {
			v := c.nodeValue(t, dn, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.rb_fs%' AND wait_event_type = 'Lock'")
			return v != "0", v
		})
		time.Sleep(2 * time.Second)
		start := time.Now()
		rows, stderr := c.mustRows(t, 2*time.Minute, "STOP COORDINATOR MASTER cn1 MODE fast")
		took := time.Since(start)
		if took > 15*time.Second {
			t.Errorf("STOP COORDINATOR MASTER cn1 MODE fast during a COPY took %v, want under 15 s: %v %s", took, rows, stderr)
		}
		release()
		<-done
		c.mustRows(t, 2*time.Minute, "START COORDINATOR MASTER cn1")
		c.reachable(t, cn1)
	})
}
