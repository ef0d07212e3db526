package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sqlState runs sql on node n as a DBA's psql would, with VERBOSITY
// verbose, and is the SQLSTATE of the error it ends with ("" when it
// succeeds) and psql's error output.
func (c *testCluster) sqlState(n nodeSpec, sql string) (string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-h", c.host(n.Host).Addr, "-p", strconv.Itoa(n.Port), "-U", c.dbUser(),
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-A", "-t", "-c", sql)
	cmd.Env = append(os.Environ(), c.nodeEnv()...)
	var e strings.Builder
	cmd.Stderr = &e
	if err := cmd.Run(); err == nil {
		return "", ""
	}
	if m := regexp.MustCompile(`ERROR:  ([0-9A-Z]{5}):`).FindStringSubmatch(e.String()); m != nil {
		return m[1], e.String()
	}
	return "?", e.String()
}

// wantState fails t unless sql on n fails with SQLSTATE state and, when
// msg is not empty, a message that holds msg.
func (c *testCluster) wantState(t *testing.T, n nodeSpec, sql, state, msg string) {
	t.Helper()
	got, stderr := c.sqlState(n, sql)
	if got != state || !strings.Contains(stderr, msg) {
		t.Errorf("%s on %s: SQLSTATE %q, want %s %q; stderr:\n%s", sql, n.Name, got, state, msg, stderr)
	}
}

// needTwoPhase skips t unless adb.remote_exec commits with the local
// transaction (the library's version), not at once (the first, dblink
// one): what atomic DDL across nodes needs.
func (c *testCluster) needTwoPhase(t *testing.T) {
	t.Helper()
	if c.nodeValue(t, c.node("cn1"), "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'adb.remote_exec(text, text)'::regprocedure") != "c" {
		t.Skip("waits for the two-phase adb.remote_exec (ext/adb/twophase.c)")
	}
}

// shardCount is how many relations on datanode dn are called like pattern
// (a LIKE pattern) with relkind kind.
func (c *testCluster) shardCount(t *testing.T, dn, pattern, kind string) int {
	t.Helper()
	v, _ := strconv.Atoi(c.nodeValue(t, c.node(dn), fmt.Sprintf("SELECT count(*) FROM pg_class WHERE relname LIKE '%s' AND relkind = '%s'", pattern, kind)))
	return v
}

// shardsWithColumn is how many shards of table on datanode dn have column col.
func (c *testCluster) shardsWithColumn(t *testing.T, dn, table, col string) int {
	t.Helper()
	v, _ := strconv.Atoi(c.nodeValue(t, c.node(dn), fmt.Sprintf(`SELECT count(*) FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
		WHERE r.relname ~ '^%s_[0-9]+$' AND r.relkind = 'r' AND a.attname = '%s' AND NOT a.attisdropped`, table, col)))
	return v
}

// TestDistributedDDL: a distributed table keeps its definition on every
// shard — a key that holds across coordinators, defaults, checks, serial
// values unique across coordinators — refuses what it cannot keep, and
// DDL through any coordinator reaches every shard and coordinator, or
// nothing (a ROLLBACK, a datanode stopped before or during COMMIT), and
// DDL on one table through two coordinators at once waits its turn.
// GRANT, REVOKE and COMMENT on a distributed table reach every
// coordinator.
func TestDistributedDDL(t *testing.T) {
	c := newShardedCluster(t, 2)
	cn1, cn2, gc := c.node("cn1"), c.node("cn2"), c.node("gc")
	coords := []nodeSpec{cn1, cn2, gc}

	rows := c.mustNodeSQL(t, cn1, `CREATE TABLE acct (id bigint PRIMARY KEY, v text NOT NULL DEFAULT 'new' CHECK (v <> 'bad'), n int DEFAULT 7);
		SELECT adb.create_distributed_table('acct', 'id');
		SELECT (extract(epoch FROM clock_timestamp() - now()) * 1000)::int`)
	t.Logf("CREATE TABLE + create_distributed_table over 64 slots, first in the cluster: %s ms", rows[len(rows)-1][0])
	// The second one, with the connections' caches warm (each psql is a
	// new session: it connects to every node again).
	rows = c.mustNodeSQL(t, cn2, `CREATE TABLE warm (id int, v text, PRIMARY KEY (id)); SELECT adb.create_distributed_table('warm', 'id');
		SELECT (extract(epoch FROM clock_timestamp() - now()) * 1000)::int`)
	ms := rows[len(rows)-1][0]
	t.Logf("CREATE TABLE + create_distributed_table over 64 slots: %s ms", ms)
	if v, _ := strconv.Atoi(ms); v > 1500 {
		t.Errorf("create_distributed_table took %s ms", ms)
	}

	t.Run("PlainTablesOfAnyUser", func(t *testing.T) {
		// The hook looks at every DDL on a coordinator; a user with no
		// rights on schema adb still does DDL on tables of their own.
		c.mustNodeSQL(t, cn1, `CREATE ROLE ddl_user; GRANT CREATE ON SCHEMA public TO ddl_user; SET ROLE ddl_user;
			CREATE TABLE mine (a int); ALTER TABLE mine ADD COLUMN b int; CREATE INDEX ON mine (a); TRUNCATE mine; DROP TABLE mine;
			RESET ROLE; REVOKE CREATE ON SCHEMA public FROM ddl_user; DROP ROLE ddl_user`)
	})

	t.Run("KeyHoldsAcrossCoordinators", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, "INSERT INTO acct (id, v) VALUES (1, 'one')")
		c.wantState(t, cn2, "INSERT INTO acct (id, v) VALUES (1, 'again')", "23505", "duplicate key")
		c.wantState(t, gc, "INSERT INTO acct (id, v) VALUES (1, 'again')", "23505", "duplicate key")
		if v := c.nodeValue(t, cn2, "SELECT count(*) || ' ' || max(v) FROM acct WHERE id = 1"); v != "1 one" {
			t.Errorf("rows of id 1: %s", v)
		}
	})

	t.Run("DefaultsAndChecks", func(t *testing.T) {
		c.mustNodeSQL(t, cn2, "INSERT INTO acct (id) VALUES (2)")
		if v := c.nodeValue(t, gc, "SELECT v || ' ' || n FROM acct WHERE id = 2"); v != "new 7" {
			t.Errorf("defaults of a row written through cn2: %q", v)
		}
		c.wantState(t, cn1, "INSERT INTO acct (id, v) VALUES (3, 'bad')", "23514", "acct_v_check")
		c.wantState(t, cn1, "INSERT INTO acct (id, v) VALUES (3, NULL)", "23502", "")
		// The shards hold the key and the check themselves.
		for _, dn := range []string{"dn1", "dn2"} {
			if v := c.nodeValue(t, c.node(dn), `SELECT count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
				WHERE r.relname LIKE 'acct\_%' AND c.contype IN ('p', 'c')`); v != "64" {
				t.Errorf("keys and checks on the shards of %s: %s, want 64 (32 shards × 2)", dn, v)
			}
		}
		if v := c.nodeValue(t, cn2, "SELECT name || ' ' || kind || ' ' || def FROM adb.dist_constraint WHERE rel = 'acct'::regclass"); v != "acct_pkey primary key PRIMARY KEY (id)" {
			t.Errorf("adb.dist_constraint on cn2: %q", v)
		}
	})

	t.Run("KeyWithoutDistributionColumnRefused", func(t *testing.T) {
		c.wantState(t, cn1, "CREATE TABLE badkey (id int, code int PRIMARY KEY); SELECT adb.create_distributed_table('badkey', 'id')",
			"0A000", `cannot create constraint on "badkey"`)
		c.wantState(t, cn1, "CREATE TABLE badu (id int, code int UNIQUE); SELECT adb.create_distributed_table('badu', 'id')",
			"0A000", "Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column")
		c.wantState(t, cn2, "ALTER TABLE acct ADD UNIQUE (n)", "0A000", `cannot create constraint on "acct"`)
		c.wantState(t, cn2, "CREATE UNIQUE INDEX ON acct (n)", "0A000", "unique indexes on non-partition columns")
		c.wantState(t, cn1, "CREATE TABLE fkp (id int PRIMARY KEY); CREATE TABLE fkc (id int REFERENCES fkp); SELECT adb.create_distributed_table('fkc', 'id')",
			"0A000", `foreign key "fkc_id_fkey"`)
		c.wantState(t, cn1, "CREATE TRIGGER tr BEFORE INSERT ON acct FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
			"0A000", `CREATE TRIGGER is not supported on distributed table "acct"`)
		c.wantState(t, cn1, "ALTER TABLE acct RENAME TO acct2", "0A000", "RENAME TO is not supported")
		// What would hold on one coordinator only is refused by name.
		c.wantState(t, cn1, "CREATE TABLE rls_t (id int PRIMARY KEY, o text); ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY; SELECT adb.create_distributed_table('rls_t', 'id')",
			"0A000", "row-level security of table rls_t")
		c.wantState(t, cn1, "CREATE TABLE pol_t (id int PRIMARY KEY, o text); CREATE POLICY p ON pol_t USING (o = current_user); SELECT adb.create_distributed_table('pol_t', 'id')",
			"0A000", `policy "p" of table pol_t`)
		c.wantState(t, cn1, "CREATE TABLE rule_t (id int PRIMARY KEY); CREATE RULE r AS ON INSERT TO rule_t DO ALSO NOTIFY x; SELECT adb.create_distributed_table('rule_t', 'id')",
			"0A000", `rule "r" of table rule_t`)
	})

	t.Run("ExclusionConstraintOnShards", func(t *testing.T) {
		// An exclusion constraint that includes the distribution column
		// with = holds on each shard.
		c.mustNodeSQL(t, cn1, "CREATE TABLE ex_t (id int NOT NULL, s text, EXCLUDE USING btree (id WITH =)); SELECT adb.create_distributed_table('ex_t', 'id'); INSERT INTO ex_t VALUES (1, 'a')")
		c.wantState(t, cn2, "INSERT INTO ex_t VALUES (1, 'b')", "23P01", "conflicting key value violates exclusion constraint")
	})

	t.Run("SerialUniqueAcrossCoordinators", func(t *testing.T) {
		c.mustNodeSQL(t, cn2, "CREATE TABLE ev (id bigserial PRIMARY KEY, src text); SELECT adb.create_distributed_table('ev', 'id')")
		var wg sync.WaitGroup
		errs := make(chan error, 9)
		for _, n := range coords {
			for i := 0; i < 3; i++ {
				wg.Add(1)
				go func(n nodeSpec) {
					defer wg.Done()
					for j := 0; j < 5; j++ {
						if _, err := c.nodeSQL(n, fmt.Sprintf("INSERT INTO ev (src) SELECT %s FROM generate_series(1, 40)", "'"+n.Name+"'")); err != nil {
							errs <- err
							return
						}
					}
				}(n)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("insert with a serial id: %v", err)
		}
		if v := c.nodeValue(t, cn1, "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(DISTINCT src) FROM ev"); v != "1800 1800 3" {
			t.Errorf("rows, distinct ids, coordinators: %s, want 1800 1800 3", v)
		}
	})

	t.Run("AlterTableReachesEveryone", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, "ALTER TABLE acct ADD COLUMN note text DEFAULT 'n' CHECK (note <> 'x')")
		c.mustNodeSQL(t, cn2, "ALTER TABLE acct RENAME COLUMN v TO label")
		c.mustNodeSQL(t, gc, "ALTER TABLE acct ALTER COLUMN n SET DEFAULT 9, ALTER COLUMN n SET NOT NULL")
		for i, n := range coords {
			c.mustNodeSQL(t, n, fmt.Sprintf("INSERT INTO acct (id, label) VALUES (%d, 'via %s')", 100+i, n.Name))
		}
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT string_agg(id || ':' || label || ':' || n || ':' || note, ',' ORDER BY id) FROM acct WHERE id >= 100"); v != "100:via cn1:9:n,101:via cn2:9:n,102:via gc:9:n" {
				t.Errorf("acct through %s: %s", n.Name, v)
			}
		}
		c.wantState(t, cn2, "INSERT INTO acct (id, note) VALUES (200, 'x')", "23514", "acct_note_check")
		c.mustNodeSQL(t, cn2, "ALTER TABLE acct DROP COLUMN note")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT count(*) FROM acct WHERE label LIKE 'via%'"); v != "3" {
				t.Errorf("acct through %s after DROP COLUMN: %s", n.Name, v)
			}
		}
		if n := c.shardsWithColumn(t, "dn1", "acct", "label"); n != 32 {
			t.Errorf("shards of dn1 with column label: %d", n)
		}
		c.wantState(t, cn1, "ALTER TABLE acct SET UNLOGGED", "0A000", "SET UNLOGGED is not supported")
	})

	t.Run("IndexesOnEveryShard", func(t *testing.T) {
		c.mustNodeSQL(t, cn2, "CREATE INDEX acct_label ON acct (label)")
		c.mustNodeSQL(t, cn1, "CREATE UNIQUE INDEX acct_id_label ON acct (id, label)")
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.shardCount(t, dn, "acct\\_label\\_%", "i"); n != 32 {
				t.Errorf("index acct_label on %s: %d shards, want 32", dn, n)
			}
			if n := c.shardCount(t, dn, "acct\\_id\\_label\\_%", "i"); n != 32 {
				t.Errorf("unique index acct_id_label on %s: %d shards, want 32", dn, n)
			}
		}
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT (to_regclass('acct_label') IS NOT NULL) || ' ' || (SELECT kind FROM adb.dist_constraint WHERE name = 'acct_id_label')"); v != "true unique index" {
				t.Errorf("indexes of acct on %s: %s", n.Name, v)
			}
		}
		c.mustNodeSQL(t, gc, "DROP INDEX acct_label")
		c.mustNodeSQL(t, cn2, "DROP INDEX acct_id_label")
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.shardCount(t, dn, "acct\\_label\\_%", "i") + c.shardCount(t, dn, "acct\\_id\\_label\\_%", "i"); n != 0 {
				t.Errorf("%d shard indexes left on %s after DROP INDEX", n, dn)
			}
		}
		if v := c.nodeValue(t, cn1, "SELECT (to_regclass('acct_label') IS NULL) || ' ' || count(*) FROM adb.dist_constraint WHERE name = 'acct_id_label'"); v != "true 0" {
			t.Errorf("indexes of acct on cn1 after DROP INDEX: %s", v)
		}
	})

	t.Run("TruncateAndDrop", func(t *testing.T) {
		c.mustNodeSQL(t, gc, "TRUNCATE acct")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT count(*) FROM acct"); v != "0" {
				t.Errorf("acct through %s after TRUNCATE: %s rows", n.Name, v)
			}
		}
		c.mustNodeSQL(t, cn2, "DROP TABLE acct")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT (to_regclass('acct') IS NULL) || ' ' || (SELECT count(*) FROM adb.dist_constraint)"); !strings.HasPrefix(v, "true") {
				t.Errorf("acct on %s after DROP TABLE: %s", n.Name, v)
			}
		}
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.shardCount(t, dn, "acct\\_%", "r"); n != 0 {
				t.Errorf("%d shards of acct left on %s", n, dn)
			}
		}
	})

	t.Run("RollbackLeavesNothing", func(t *testing.T) {
		c.needTwoPhase(t)
		c.mustNodeSQL(t, cn1, "BEGIN; CREATE TABLE rb (id int PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb', 'id'); ROLLBACK")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT (to_regclass('rb') IS NULL) || ' ' || (SELECT count(*) FROM adb.dist_table WHERE rel::text = 'rb')"); v != "true 0" {
				t.Errorf("rb on %s after ROLLBACK: %s", n.Name, v)
			}
		}
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.shardCount(t, dn, "rb\\_%", "r"); n != 0 {
				t.Errorf("%d shards of rb left on %s after ROLLBACK", n, dn)
			}
		}
		c.mustNodeSQL(t, cn1, "CREATE TABLE rb (id int PRIMARY KEY, v text); SELECT adb.create_distributed_table('rb', 'id'); INSERT INTO rb VALUES (1, 'a')")
		if v := c.nodeValue(t, cn2, "SELECT count(*) FROM rb"); v != "1" {
			t.Errorf("rb through cn2 after the retry: %s rows", v)
		}
	})

	t.Run("DatanodeDownChangesNothing", func(t *testing.T) {
		c.needTwoPhase(t)
		c.mustNodeSQL(t, cn1, "CREATE TABLE dd (id int PRIMARY KEY, v text); SELECT adb.create_distributed_table('dd', 'id')")
		c.mustRows(t, time.Minute, "STOP DATANODE MASTER dn2 MODE fast")
		if state, stderr := c.sqlState(cn1, "ALTER TABLE dd ADD COLUMN w int"); state == "" {
			t.Errorf("ALTER TABLE with dn2 stopped succeeded")
		} else {
			t.Logf("ALTER TABLE with dn2 stopped: %s %s", state, strings.TrimSpace(stderr))
		}
		if state, _ := c.sqlState(cn2, "CREATE TABLE dd2 (id int); SELECT adb.create_distributed_table('dd2', 'id')"); state == "" {
			t.Errorf("create_distributed_table with dn2 stopped succeeded")
		}
		c.mustRows(t, time.Minute, "START DATANODE MASTER dn2")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT count(*) || ' ' || (to_regclass('dd2') IS NULL) FROM pg_attribute WHERE attrelid = 'dd'::regclass AND attname = 'w'"); v != "0 true" {
				t.Errorf("dd on %s after the failed DDL: %s", n.Name, v)
			}
		}
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.shardsWithColumn(t, dn, "dd", "w"); n != 0 {
				t.Errorf("shards of dd on %s with column w: %d", dn, n)
			}
			if n := c.shardCount(t, dn, "dd2\\_%", "r"); n != 0 {
				t.Errorf("%d shards of dd2 left on %s", n, dn)
			}
		}
		c.mustNodeSQL(t, cn1, "ALTER TABLE dd ADD COLUMN w int; INSERT INTO dd VALUES (1, 'a', 2)")
		if v := c.nodeValue(t, gc, "SELECT w FROM dd"); v != "2" {
			t.Errorf("dd through gc after the retry: %s", v)
		}
	})

	t.Run("DatanodeStoppedBeforeCommit", func(t *testing.T) {
		c.needTwoPhase(t)
		s := c.openSession(t, cn1, "adbmgr-e2e-ddl")
		if out := s.run(t, "BEGIN; ALTER TABLE dd ADD COLUMN late int; CREATE INDEX dd_v ON dd (v); INSERT INTO dd SELECT g, 'b', 0, 1 FROM generate_series(10, 40) g;"); strings.Contains(out, "ERROR") {
			t.Fatalf("DDL and writes before COMMIT: %s", out)
		}
		c.mustRows(t, time.Minute, "STOP DATANODE MASTER dn2 MODE immediate")
		if out := s.run(t, "COMMIT;"); !strings.Contains(out, "ERROR") {
			t.Errorf("COMMIT with dn2 stopped answered:\n%s", out)
		}
		c.mustRows(t, time.Minute, "START DATANODE MASTER dn2")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT count(*) || ' ' || (to_regclass('dd_v') IS NULL) || ' ' || (SELECT count(*) FROM dd) FROM pg_attribute WHERE attrelid = 'dd'::regclass AND attname = 'late'"); v != "0 true 1" {
				t.Errorf("dd on %s after the failed COMMIT (column late, no index dd_v, rows): %s", n.Name, v)
			}
		}
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.shardsWithColumn(t, dn, "dd", "late"); n != 0 {
				t.Errorf("shards of dd on %s with column late: %d", dn, n)
			}
			if n := c.shardCount(t, dn, "dd\\_v\\_%", "i"); n != 0 {
				t.Errorf("%d shard indexes dd_v left on %s", n, dn)
			}
			if n := c.preparedOn(t, dn); n != 0 {
				t.Errorf("%d prepared transactions left on %s", n, dn)
			}
		}
	})

	t.Run("GrantAndCommentReachEveryCoordinator", func(t *testing.T) {
		c.mustNodeSQL(t, cn1, "CREATE TABLE gr_t (id int PRIMARY KEY, v text); SELECT adb.create_distributed_table('gr_t', 'id')")
		// Roles are per server: the DBA makes the role on each coordinator.
		for _, n := range coords {
			c.mustNodeSQL(t, n, "CREATE ROLE gr_reader")
		}
		c.mustNodeSQL(t, cn1, "GRANT SELECT ON gr_t TO gr_reader; COMMENT ON TABLE gr_t IS 'accounts'; COMMENT ON COLUMN gr_t.v IS 'the value'")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT has_table_privilege('gr_reader', 'gr_t', 'SELECT') || ' ' || obj_description('gr_t'::regclass, 'pg_class') || ' ' || col_description('gr_t'::regclass, 2)"); v != "true accounts the value" {
				t.Errorf("on %s after GRANT and COMMENT through cn1: %q", n.Name, v)
			}
		}
		c.mustNodeSQL(t, cn1, "INSERT INTO gr_t SELECT n, 'r' FROM generate_series(1, 10) n")
		if v := c.mustNodeSQL(t, cn2, "SET ROLE gr_reader; SELECT count(*) FROM gr_t"); fmt.Sprint(v) != "[[SET] [10]]" {
			t.Errorf("gr_reader reading gr_t through cn2: %v", v)
		}
		c.wantState(t, cn2, "SET ROLE gr_reader; INSERT INTO gr_t VALUES (11, 'no')", "42501", "permission denied for table gr_t")
		// A role does not get at the shards by other ways: the servers
		// are the superusers'.
		c.mustNodeSQL(t, cn2, "GRANT CREATE ON SCHEMA public TO gr_reader")
		c.wantState(t, cn2, "SET ROLE gr_reader; CREATE FOREIGN TABLE gr_peek (a int) SERVER dn1 OPTIONS (table_name 'gr_t_0')", "42501", "foreign server dn1")
		c.wantState(t, cn2, "SET ROLE gr_reader; CREATE TABLE gr_own (id int); SELECT adb.create_distributed_table('gr_own', 'id')", "42501", "")
		c.mustNodeSQL(t, cn2, "REVOKE CREATE ON SCHEMA public FROM gr_reader")
		c.mustNodeSQL(t, cn2, "REVOKE SELECT ON gr_t FROM gr_reader")
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT has_table_privilege('gr_reader', 'gr_t', 'SELECT')"); v != "f" {
				t.Errorf("on %s after REVOKE through cn2: %q", n.Name, v)
			}
		}
		// What cannot be kept alike is refused, with nothing changed.
		c.mustNodeSQL(t, cn1, "CREATE TABLE gr_local (a int)")
		c.wantState(t, cn1, "GRANT SELECT ON gr_t, gr_local TO gr_reader", "0A000", "together with table")
		c.wantState(t, cn1, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO gr_reader", "0A000", "ON ALL TABLES IN SCHEMA")
		// A role missing on another coordinator: refused as a whole.
		c.mustNodeSQL(t, cn1, "CREATE ROLE gr_cn1_only")
		c.wantState(t, cn1, "GRANT SELECT ON gr_t TO gr_cn1_only", "42704", "gr_cn1_only")
		if v := c.nodeValue(t, cn1, "SELECT has_table_privilege('gr_cn1_only', 'gr_t', 'SELECT') OR has_table_privilege('gr_reader', 'gr_local', 'SELECT')"); v != "f" {
			t.Errorf("a refused GRANT changed privileges on cn1")
		}
		c.mustNodeSQL(t, cn1, "DROP TABLE gr_local; DROP ROLE gr_cn1_only; CREATE SEQUENCE gr_local_seq")
		// A new distributed table's privileges are the same everywhere:
		// cn1's default privileges and a GRANT made before
		// create_distributed_table.
		c.mustNodeSQL(t, cn1, `ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO gr_reader;
			ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO gr_reader;
			CREATE TABLE gr_dp (id int PRIMARY KEY, k serial); GRANT INSERT ON gr_dp TO gr_reader;
			SELECT adb.create_distributed_table('gr_dp', 'id');
			ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM gr_reader;
			ALTER DEFAULT PRIVILEGES REVOKE USAGE ON SEQUENCES FROM gr_reader`)
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT has_table_privilege('gr_reader', 'gr_dp', 'SELECT') || ' ' || has_table_privilege('gr_reader', 'gr_dp', 'INSERT') || ' ' || has_sequence_privilege('gr_reader', 'gr_dp_k_seq', 'USAGE')"); v != "true true true" {
				t.Errorf("gr_reader's SELECT and INSERT on gr_dp, USAGE on its sequence, on %s: %s", n.Name, v)
			}
		}
		// A datanode's "Failing row contains" shows every column: a role
		// that is no superuser does not get it, not even in a PL/pgSQL
		// handler, nor with postgres_fdw.application_name of its own; a
		// superuser does.
		c.mustNodeSQL(t, cn1, `CREATE TABLE gr_sec (id int PRIMARY KEY, secret text, v text CHECK (v <> 'bad'));
			SELECT adb.create_distributed_table('gr_sec', 'id'); INSERT INTO gr_sec VALUES (1, 'TOPSECRET', 'a');
			GRANT SELECT (id, v), UPDATE (v) ON gr_sec TO gr_reader`)
		if st, stderr := c.sqlState(cn2, "SET ROLE gr_reader; UPDATE gr_sec SET v = 'bad' WHERE id = 1"); st != "23514" || strings.Contains(stderr, "TOPSECRET") {
			t.Errorf("a check violation through a datanode as gr_reader: %s %s", st, stderr)
		}
		if _, stderr, err := c.copyPsql(cn2, nil, `SET ROLE gr_reader; DO $$ DECLARE d text; BEGIN UPDATE gr_sec SET v = 'bad' WHERE id = 1;
			EXCEPTION WHEN check_violation THEN GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL; RAISE NOTICE 'caught: %', d; END $$`, ""); err != nil ||
			!strings.Contains(stderr, "caught: ") || strings.Contains(stderr, "TOPSECRET") {
			t.Errorf("the failing row through a PL/pgSQL handler: %v %s", err, stderr)
		}
		if st, stderr := c.sqlState(cn2, "SET ROLE gr_reader; SET postgres_fdw.application_name = 'mine'; UPDATE gr_sec SET v = 'bad' WHERE id = 1"); st != "23514" || strings.Contains(stderr, "TOPSECRET") {
			t.Errorf("a check violation as gr_reader with an application_name of its own: %s %s", st, stderr)
		}
		if _, stderr := c.sqlState(cn2, "UPDATE gr_sec SET v = 'bad' WHERE id = 1"); !strings.Contains(stderr, "TOPSECRET") {
			t.Errorf("a superuser's check violation lost its failing row: %s", stderr)
		}
		// A serial column's sequence needs USAGE, as nextval does; its
		// GRANT reaches every coordinator.
		c.mustNodeSQL(t, cn1, "CREATE TABLE gr_s (id int PRIMARY KEY, k bigserial); SELECT adb.create_distributed_table('gr_s', 'id'); GRANT INSERT ON gr_s TO gr_reader")
		c.wantState(t, cn2, "SET ROLE gr_reader; INSERT INTO gr_s (id) VALUES (1)", "42501", "permission denied for sequence gr_s_k_seq")
		c.mustNodeSQL(t, cn1, "GRANT USAGE ON SEQUENCE gr_s_k_seq TO gr_reader")
		c.mustNodeSQL(t, cn2, "SET ROLE gr_reader; INSERT INTO gr_s (id) VALUES (1)")
		c.wantState(t, cn1, "GRANT USAGE ON SEQUENCE gr_s_k_seq, gr_local_seq TO gr_reader", "0A000", "together with sequence")
		// A role with the grant option is no superuser: the other
		// coordinators would apply its GRANT as theirs.
		c.mustNodeSQL(t, cn1, "GRANT SELECT ON gr_t TO gr_reader WITH GRANT OPTION")
		c.wantState(t, cn1, "SET ROLE gr_reader; GRANT SELECT ON gr_t TO PUBLIC", "42501", "only a superuser")
		// Text sent to the other nodes is read there with
		// standard_conforming_strings on: DDL with it off is refused.
		c.wantState(t, cn1, "SET standard_conforming_strings = off; COMMENT ON TABLE gr_t IS 'x'", "0A000", "standard_conforming_strings")
		c.wantState(t, cn1, "SET standard_conforming_strings = off; ALTER TABLE gr_t ALTER COLUMN v SET DEFAULT 'x'", "0A000", "standard_conforming_strings")
	})

	t.Run("ConcurrentDDLWaits", func(t *testing.T) {
		c.needTwoPhase(t)
		s := c.openSession(t, cn1, "adbmgr-e2e-ddl-lock")
		if out := s.run(t, "BEGIN; ALTER TABLE dd ADD COLUMN a1 int;"); strings.Contains(out, "ERROR") {
			t.Fatalf("ALTER TABLE in a transaction on cn1: %s", out)
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.nodeSQL(cn2, "ALTER TABLE dd ADD COLUMN a2 int")
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("ALTER TABLE through cn2 did not wait for cn1's transaction: %v", err)
		case <-time.After(2 * time.Second):
		}
		if out := s.run(t, "COMMIT;"); strings.Contains(out, "ERROR") {
			t.Fatalf("COMMIT on cn1: %s", out)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ALTER TABLE through cn2 after cn1's COMMIT: %v", err)
			}
		case <-time.After(25 * time.Second):
			t.Fatalf("ALTER TABLE through cn2 still waits after cn1's COMMIT")
		}
		for _, n := range coords {
			if v := c.nodeValue(t, n, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'dd'::regclass AND attname IN ('a1', 'a2')"); v != "a1,a2" {
				t.Errorf("columns a1, a2 of dd on %s: %q", n.Name, v)
			}
		}
		for _, dn := range []string{"dn1", "dn2"} {
			if a, b := c.shardsWithColumn(t, dn, "dd", "a1"), c.shardsWithColumn(t, dn, "dd", "a2"); a != 32 || b != 32 {
				t.Errorf("shards of dd on %s with a1, a2: %d, %d", dn, a, b)
			}
		}
	})
}
