package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The spec's examples, typed into psql one after the other, give exactly the
// transcript in testdata (LIST NODE/LIST HOST tables, refusals with SQLSTATE).
func TestSpecExamplesTranscript(t *testing.T) {
	m := StartManager(t, "")
	path, _ := filepath.Abs(filepath.Join("testdata", "spec_examples.sql"))
	golden(t, "spec_examples.out", m.Transcript(t, path))
}

// Refusals: each names the object and the rule, with a SQLSTATE, and the
// caret points at the offending option or name.
func TestRefusals(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2');
		ADD HOST h2 (protocol=local, address='127.0.0.3');
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=15432, PATH='/data/dn1s');
		ADD GTMCOORD MASTER gc (HOST=h1, PORT=6768, PATH='/data/gc');`)
	tests := []struct {
		sql  string
		want []string // substrings of psql's stderr, in order
	}{
		{`ADD HOST h3 (protocol=local, address='127.0.0.2');`,
			[]string{`ERROR:  42710`, `address "127.0.0.2" is already in host table (host "h1")`, `^`}},
		{`ADD HOST h1 (address='127.0.0.9');`, []string{`ERROR:  42710: host "h1" already exists`}},
		{`ADD HOST h3 (colour=blue);`,
			[]string{`ERROR:  42601: option "colour" is not recognized`, `HINT:  Host options are user, port, protocol, agentport, address, adbhome, pghome.`}},
		{`ADD HOST h3 (address='127.0.0.7', port=70000);`,
			[]string{`ERROR:  22023: invalid value for option "port": "70000"`, `LINE 1: ADD HOST h3 (address='127.0.0.7', port=70000);`, "                                              ^"}},
		{`ADD HOST h3 (address='127.0.0.7', protocol=telnet);`, []string{`22023`, `The protocol is ssh or local`}},
		{`ADD HOST h3 (address='not-an-ip');`, []string{`22023`, `address must be an IPv4 or IPv6 address literal`}},
		{`DROP HOST h1;`, []string{`ERROR:  55006: host "h1" has been used, cannot be dropped`, `HINT:  Drop the nodes on it first: dn1, gc.`}},
		{`DROP HOST h9;`, []string{`ERROR:  42704: host "h9" does not exist`}},
		{`ADD DATANODE MASTER dn1 (HOST=h2, PORT=1, PATH='/x');`, []string{`42710`, `the name "dn1" already exists in the node table`}},
		{`ADD COORDINATOR MASTER dn1s (HOST=h2, PORT=1, PATH='/x');`, []string{`42710`, `the name "dn1s" already exists`}},
		{`ADD DATANODE MASTER dn2 (HOST=h9, PORT=1, PATH='/x');`, []string{`42704`, `host "h9" does not exist`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PORT=15432, PATH='/data/dn2');`,
			[]string{`42710`, `on host "h1" the port "15432" has already been used in node table (by node "dn1")`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PORT=15433, PATH='/data/dn1');`, []string{`42710`, `on host "h1" the path "/data/dn1" has already been used`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PORT=15433, PATH='data/dn2');`, []string{`22023`, `The path must be absolute`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PORT=0, PATH='/data/dn2');`, []string{`22023`, `invalid value for option "port": "0"`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PATH='/data/dn2');`, []string{`option "port" must be given`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PORT=15433, PATH='/data/dn2', READONLY=true);`,
			[]string{`22023`, `option "readonly" is only valid for coordinator masters`}},
		{`ADD DATANODE MASTER dn2 (HOST=h1, PORT=15433, PATH='/data/dn2', SYNC_STATE=sync);`, []string{`must set on the slave node`}},
		{`ADD DATANODE SLAVE x FOR nobody (HOST=h1, PORT=15433, PATH='/data/x');`, []string{`42704`, `datanode "nobody" does not exist`}},
		{`ADD DATANODE SLAVE x FOR gc (HOST=h1, PORT=15433, PATH='/data/x');`, []string{`cannot follow gtmcoord master "gc"`}},
		{`ADD DATANODE SLAVE x FOR dn1 (HOST=h1, PORT=15433, PATH='/data/x', SYNC_STATE=maybe);`,
			[]string{`22023`, `invalid value for option "sync_state": "maybe"`}},
		{`ADD GTMCOORD MASTER gc2 (HOST=h2, PORT=6768, PATH='/data/gc');`, []string{`Only one gtm coordinator master`}},
		{`ADD DATANODE MASTER "Bad-Name" (HOST=h1, PORT=15433, PATH='/data/x');`, []string{`42602`, `invalid node name "Bad-Name"`}},
		{`DROP DATANODE MASTER dn1;`, []string{`55006`, `datanode master "dn1" has been used by slave, cannot be dropped`, `HINT:  Drop the slaves first: dn1s.`}},
		{`DROP DATANODE MASTER dn1s;`, []string{`42704`, `datanode master "dn1s" does not exist`, `HINT:  "dn1s" is a datanode slave.`}},
		{`ALTER DATANODE MASTER dn1 (SYNC_STATE=async);`, []string{`must set on the slave node`}},
		{`ALTER DATANODE SLAVE dn1s (HOST=h1, PORT=15432);`, []string{`on host "h1" the port "15432" has already been used`}},
		{`ALTER DATANODE SLAVE nobody (PORT=1);`, []string{`42704`, `datanode slave "nobody" does not exist, check the node table`}},
		{`LIST NODE nobody;`, []string{`42704`, `node "nobody" does not exist`}},
		{`LIST NODE (name, colour);`, []string{`42703`, `column "colour" does not exist`}},
		{`LIST HOST h9;`, []string{`42704`, `host name "h9" does not exist`}},
		{`ZONE FAILOVER local;`, []string{`55000`, `no master in the cluster is outside zone "local": nothing to switch`}},
		{`FAILOVER DATANODE dn1;`, []string{`55000`, `dn1 has not been initialized`}},
		{`APPEND DATANODE MASTER dn1;`, []string{`55000`, `gtm master is not initialized`}},
		{`DEPLOY h1, h9 PASSWORD 'pw';`, []string{`42704`, `host "h9" does not exist`}},
		{`INSERT INTO node VALUES ('x');`, []string{`25006`, `cannot execute INSERT`}},
		{`SELECT * FROM no_such_table;`, []string{`42P01`, `no such table: no_such_table`}},
		{`ADD DATANODE MASTR dn2 (HOST=h1);`, []string{`42601`, `syntax error at or near "MASTR"`, `LINE 1: ADD DATANODE MASTR dn2 (HOST=h1);`, "                     ^"}},
		{`SET DATANODE mastere ALL (wal_keep_size = 102400);`, []string{`42601`, `syntax error at or near "mastere"`}},
		{`FAILOR DATANODE dn1_1;`, []string{`42601`, `syntax error at or near "FAILOR"`}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			stderr := m.MustFail(t, tt.sql)
			rest := stderr
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in order):\n%s", w, stderr)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	// Nothing above changed the catalog.
	got := m.MustExec(t, `LIST NODE (name, host, port, sync_state);`)
	want := ` name | host | port  | sync_state 
------+------+-------+------------
 gc   | h1   |  6768 | 
 dn1  | h1   | 15432 | 
 dn1s | h2   | 15432 | sync
(3 rows)

`
	if got != want {
		t.Errorf("catalog changed by refused commands:\n%s", lineDiff(want, got))
	}
}

// A syntax error anywhere in a multi-statement query runs nothing; a refusal
// in the middle keeps what ran before it (PostgreSQL's implicit transaction
// per statement), and every statement is atomic.
func TestMultiStatementQueries(t *testing.T) {
	m := StartManager(t, "")
	m.MustFail(t, `ADD HOST h1 (address='127.0.0.2'); ADD HOST h2 (address=);`)
	if out := m.MustExec(t, `LIST HOST (name);`); !strings.Contains(out, "(0 rows)") {
		t.Errorf("a syntax error in the second statement let the first run:\n%s", out)
	}
	m.MustFail(t, `ADD HOST h1 (address='127.0.0.2'); ADD HOST h2 (address='127.0.0.2'); ADD HOST h3 (address='127.0.0.4');`)
	if out := m.MustExec(t, `LIST HOST (name, address);`); !strings.Contains(out, " h1   | 127.0.0.2\n(1 row)") {
		t.Errorf("after a refusal in the middle:\n%s", out)
	}
}

func TestHelp(t *testing.T) {
	m := StartManager(t, "")
	out := m.MustExec(t, `HELP ADD DATANODE`)
	for _, w := range []string{"ADD DATANODE MASTER", "ADD DATANODE SLAVE", "FOR"} {
		if !strings.Contains(out, w) {
			t.Errorf("HELP ADD DATANODE lacks %q:\n%s", w, out)
		}
	}
	out = m.MustExec(t, `HELP`)
	for _, w := range []string{"ADD HOST", "LIST NODE", "INIT ALL", "FAILOVER", "EXPAND"} {
		if !strings.Contains(out, w) {
			t.Errorf("HELP lacks %q", w)
		}
	}
	if e := m.MustFail(t, `HELP NO SUCH THING`); !strings.Contains(e, "no help available") {
		t.Errorf("HELP of an unknown command: %s", e)
	}
}

// Users read the catalog through SQL views named like AntDB's.
func TestReadOnlySQL(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2');
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h1, PORT=15433, PATH='/data/dn1s');`)
	out := m.MustExec(t, `SELECT name, mastername, sync_state, initialized FROM node WHERE type = 'datanode slave'`)
	want := ` name | mastername | sync_state | initialized 
------+------------+------------+-------------
 dn1s | dn1        | sync       | f
(1 row)

`
	if out != want {
		t.Errorf("SELECT over node:\n%s", lineDiff(want, out))
	}
	if got := m.Rows(t, `select count(*) from host`); got[0][0] != "1" {
		t.Errorf("count over host = %s", got[0][0])
	}
	if out := m.MustExec(t, `SELECT version()`); !strings.Contains(out, "adbmgr") {
		t.Errorf("version(): %s", out)
	}
	for _, sql := range []string{`DELETE FROM node`, `UPDATE mgr_node SET port = 1`, `DROP TABLE mgr_node`, `CREATE TABLE x (a int)`} {
		if e := m.MustFail(t, sql); !strings.Contains(e, "25006") {
			t.Errorf("%s: %s", sql, e)
		}
	}
}

// pgx in its default (extended protocol, statement cache) mode works for
// parameterless statements, and in simple-protocol mode too.
func TestPgxClient(t *testing.T) {
	m := StartManager(t, "")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, m.Port))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			var notices []string
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			host := "h" + strings.ToLower(mode.String()[:4])
			if _, err := conn.Exec(ctx, fmt.Sprintf(`ADD HOST IF NOT EXISTS %s (address='127.0.1.%d')`, host, len(host)+int(mode))); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf(`ADD HOST IF NOT EXISTS %s (address='127.0.0.9')`, host)); err != nil {
				t.Fatal(err)
			}
			if len(notices) != 1 || !strings.Contains(notices[0], "skipping") {
				t.Errorf("notices = %q", notices)
			}
			var name string
			var port int32
			if err := conn.QueryRow(ctx, fmt.Sprintf(`LIST HOST (name, port) %s`, host)).Scan(&name, &port); err != nil {
				t.Fatal(err)
			}
			if name != host || port != 22 {
				t.Errorf("LIST HOST = %s %d", name, port)
			}
			var n int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM host`).Scan(&n); err != nil || n < 1 {
				t.Errorf("count = %d, %v", n, err)
			}
			_, err = conn.Exec(ctx, `DROP HOST nosuch`)
			var pe *pgconn.PgError
			if !asPgError(err, &pe) || pe.Code != "42704" {
				t.Errorf("DROP HOST nosuch: %v", err)
			}
		})
	}
}

func asPgError(err error, pe **pgconn.PgError) bool {
	p, ok := err.(*pgconn.PgError)
	if ok {
		*pe = p
	}
	return ok
}

// Two sessions adding the same name, or the same port, at once never create
// duplicates: exactly one wins each race.
func TestConcurrentSessions(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2');`)
	const n = 8
	var wg sync.WaitGroup
	results := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, _, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-c",
				fmt.Sprintf(`ADD DATANODE MASTER same (HOST=h1, PORT=%d, PATH='/data/same%d');`, 20000+i, i))
			results <- err
		}(i)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, _, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-c",
				fmt.Sprintf(`ADD DATANODE MASTER p%d (HOST=h1, PORT=30000, PATH='/data/p%d');`, i, i))
			results <- err
		}(i)
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		if err == nil {
			ok++
		}
	}
	if ok != 2 {
		t.Errorf("%d of %d racing ADDs succeeded, want 2 (one per race)", ok, 2*n)
	}
	got := m.Rows(t, `SELECT count(*), count(DISTINCT name), count(DISTINCT port) FROM node`)
	if diff := cmp.Diff([][]string{{"2", "2", "2"}}, got); diff != "" {
		t.Errorf("catalog after the races (nodes, names, ports) (-want +got):\n%s", diff)
	}
}

// The catalog survives kill -9 and restarts: what was acknowledged is there.
func TestDurability(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2');`)
	for i := 0; i < 20; i++ {
		m.MustExec(t, fmt.Sprintf(`ADD DATANODE MASTER d%d (HOST=h1, PORT=%d, PATH='/data/d%d');`, i, 20000+i, i))
	}
	m.Kill9()
	m.Restart()
	if got := m.Rows(t, `SELECT count(*) FROM node`); got[0][0] != "20" {
		t.Errorf("after kill -9: %s nodes, want 20", got[0][0])
	}
	// Kill it while a stream of commands runs: every row is whole, and every
	// acknowledged command is there.
	ctx, cancel := context.WithCancel(context.Background())
	acked := make(chan int, 1000)
	go func() {
		for i := 100; ctx.Err() == nil; i++ {
			_, _, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-c",
				fmt.Sprintf(`ADD DATANODE MASTER d%d (HOST=h1, PORT=%d, PATH='/data/d%d');`, i, 20000+i, i))
			if err == nil {
				acked <- i
			}
		}
		close(acked)
	}()
	time.Sleep(1500 * time.Millisecond)
	m.Kill9()
	cancel()
	var ack []int
	for i := range acked {
		ack = append(ack, i)
	}
	m.Restart()
	rows := m.Rows(t, `SELECT name, port, path FROM node WHERE name >= 'd100'`)
	have := map[string]bool{}
	for _, r := range rows {
		have[strings.Join(r, " ")] = true
	}
	for _, i := range ack {
		if row := fmt.Sprintf("d%d %d /data/d%d", i, 20000+i, i); !have[row] {
			t.Errorf("acknowledged %q missing or torn after kill -9", row)
		}
	}
	if len(ack) == 0 {
		t.Error("no command was acknowledged before the kill")
	}
	if got := m.Rows(t, `SELECT count(*) FROM node WHERE port IS NULL OR path = '' OR host <> 'h1'`); got[0][0] != "0" {
		t.Errorf("%s torn rows after kill -9", got[0][0])
	}
}

// A second manager on the same data directory is refused.
func TestDataDirLock(t *testing.T) {
	m := StartManager(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := execOut(ctx, filepath.Join(binDir, "adbmgr"), "start", "-D", m.Dir, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if err == nil || !strings.Contains(out, "another adbmgr is running") {
		t.Errorf("second manager on the same directory: %v\n%s", err, out)
	}
}
