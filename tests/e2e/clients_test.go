package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// psql's own habits: \d, \dt, \l, \du, \d <table> and psql -l answer with
// the catalog's tables, the manager's database and its users.
func TestPsqlMetaCommands(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2'); CREATE USER dba PASSWORD 'Dba-pw-12345'`)
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{`\d`, []string{"List of relations", "public | node", "public | host", "public | param", "public | hba", "public | journal", "public | expansion", "table"}},
		{`\dt`, []string{"List of relations", "node", "host"}},
		{`\dt+`, []string{"node", "permanent"}},
		{`\d node`, []string{`Table "public.node"`, "sync_state", "port", "bigint", "text"}},
		{`\d+ host`, []string{`Table "public.host"`, "address", "agentport"}},
		{`\d nosuch`, nil},
		{`\l`, []string{"List of databases", "postgres", "UTF8"}},
		{`\du`, []string{"List of roles", "postgres", "Superuser", "dba"}},
		{`\dn`, []string{"public"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, errOut, err := m.Psql(ctx, "-c", tc.cmd)
		cancel()
		if tc.want == nil {
			if !strings.Contains(errOut, `Did not find any relation named "nosuch"`) {
				t.Errorf("%s: %v\n%s%s", tc.cmd, err, out, errOut)
			}
			continue
		}
		if err != nil || errOut != "" {
			t.Errorf("%s: %v\n%s", tc.cmd, err, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", tc.cmd, w, out)
			}
		}
	}
	// psql -l connects, lists the databases and leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, err := m.Psql(ctx, "-l")
	if err != nil || !strings.Contains(out, "List of databases") || !strings.Contains(out, "postgres") {
		t.Errorf("psql -l: %v\n%s%s", err, out, errOut)
	}
	// An unknown catalog probe is refused with a SQLSTATE, not SQLite's
	// words.
	for q, code := range map[string]string{
		`SELECT * FROM pg_catalog.pg_stat_activity`:           "42P01",
		`SELECT oid FROM pg_catalog.pg_class WHERE relname ~`: "0A000",
		`SELECT no_such_function()`:                           "42883",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, e, err := m.Psql(ctx, "-v", "VERBOSITY=verbose", "-c", q)
		cancel()
		if err == nil || !strings.Contains(e, "ERROR:  "+code) || strings.Contains(e, "ERROR:  "+code+": near \"") {
			t.Errorf("%s: want %s:\n%s", q, code, e)
		}
	}
}

// The functions and settings DBAs and drivers ask for.
func TestFunctionsAndSettings(t *testing.T) {
	m := StartManager(t, "")
	rows := m.Rows(t, `SELECT now() IS NOT NULL, current_user, session_user, current_database(), current_schema(), current_setting('server_version'), version() LIKE 'PostgreSQL 15%', pg_backend_pid() > 0`)
	want := []string{"1", "postgres", "postgres", "postgres", "public", "15.0", "1", "1"}
	if len(rows) != 1 || strings.Join(rows[0], "|") != strings.Join(want, "|") {
		t.Errorf("functions = %q, want %q", rows, want)
	}
	for q, want := range map[string]string{
		`SHOW server_version_num`:                                "150000",
		`SHOW server_version`:                                    "15.0",
		`SHOW TRANSACTION ISOLATION LEVEL`:                       "read committed",
		`SELECT current_setting('TimeZone')`:                     "UTC",
		`SELECT coalesce(current_setting('nope', true), 'none')`: "none",
	} {
		if rows := m.Rows(t, q); len(rows) != 1 || rows[0][0] != want {
			t.Errorf("%s = %q, want %q", q, rows, want)
		}
	}
	if rows := m.Rows(t, `SHOW ALL`); len(rows) < 20 {
		t.Errorf("SHOW ALL: %d rows", len(rows))
	}
	// Transaction blocks are accepted around manager commands, which run
	// and commit at once: ROLLBACK says it undoes nothing.
	out := m.MustExec(t, `BEGIN; LIST NODE; COMMIT;`)
	if !strings.Contains(out, "COMMIT") {
		t.Errorf("BEGIN; LIST NODE; COMMIT: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, errOut, err := m.Psql(ctx, "-c", `BEGIN; ADD HOST hb (protocol=local, address='127.0.0.3'); ROLLBACK;`)
	if err != nil || !strings.Contains(errOut, "ROLLBACK undoes nothing") {
		t.Errorf("ROLLBACK: %v %s", err, errOut)
	}
	if rows := m.Rows(t, `SELECT name FROM host`); len(rows) != 1 || rows[0][0] != "hb" {
		t.Errorf("hosts after ROLLBACK = %q", rows)
	}
}

func connectPgx(t *testing.T, m *Manager, mode pgx.QueryExecMode, app string) (*pgx.Conn, *[]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable&application_name=%s", Password, m.Port, app))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	notices := &[]string{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { *notices = append(*notices, n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, notices
}

// What pgjdbc sends at connect and for its metadata, over the extended
// protocol (Parse/Bind/Describe/Execute without parameters), in every pgx
// mode that uses it; a statement with a parameter is refused with 0A000.
func TestJDBCStyleSession(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2')`)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe} {
		t.Run(mode.String(), func(t *testing.T) {
			conn, _ := connectPgx(t, m, mode, "jdbc")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, q := range []string{
				`SET extra_float_digits = 3`,
				`SET application_name = 'PostgreSQL JDBC Driver'`,
				`SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED`,
				`SET TRANSACTION READ ONLY`,
				`BEGIN`,
				`COMMIT`,
			} {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Errorf("%s: %v", q, err)
				}
			}
			for q, want := range map[string]string{
				`SELECT version()`:                             "PostgreSQL 15",
				`SHOW TRANSACTION ISOLATION LEVEL`:             "read committed",
				`SHOW application_name`:                        "PostgreSQL JDBC Driver",
				`SELECT current_setting('server_version_num')`: "150000",
				`SELECT current_database()`:                    "postgres",
				`SELECT 1`:                                     "1",
				`SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public'`: "public",
				`SELECT t.typname FROM pg_catalog.pg_type t WHERE t.oid = 25`:                "text",
				`SELECT name FROM host`: "h1",
			} {
				var got string
				if err := conn.QueryRow(ctx, q).Scan(&got); err != nil || !strings.HasPrefix(got, want) {
					t.Errorf("%s = %q, %v; want %q", q, got, err, want)
				}
			}
			_, err := conn.Exec(ctx, `SELECT name FROM node WHERE name = $1`, "dn1")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "0A000" {
				t.Errorf("a parameter: %v, want 0A000", err)
			}
			_, err = conn.Exec(ctx, `DROP HOST $1`, "h9")
			if !errors.As(err, &pe) || pe.Code != "0A000" {
				t.Errorf("a command with a parameter: %v, want 0A000", err)
			}
			// The session goes on after the refusal.
			var one int64
			if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
				t.Errorf("after the refusal: %d, %v", one, err)
			}
		})
	}
}

// PgBouncer's way: one server connection, clients one after the other,
// DISCARD ALL between them, SET of the client's parameters, SELECT 1 as
// the health check.
func TestPgBouncerStyleSession(t *testing.T) {
	m := StartManager(t, "")
	conn, _ := connectPgx(t, m, pgx.QueryExecModeSimpleProtocol, "pgbouncer")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for client := range 3 {
		for _, q := range []string{
			`SELECT 1`,
			fmt.Sprintf(`SET application_name = 'client%d'`, client),
			`SET DateStyle = 'ISO, MDY'`,
			`SET TimeZone = 'UTC'`,
			`SET standard_conforming_strings = 'on'`,
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("client %d: %s: %v", client, q, err)
			}
		}
		var app string
		if err := conn.QueryRow(ctx, `SHOW application_name`).Scan(&app); err != nil || app != fmt.Sprintf("client%d", client) {
			t.Errorf("client %d: application_name = %q, %v", client, app, err)
		}
		if _, err := conn.Exec(ctx, `LIST NODE`); err != nil {
			t.Errorf("client %d: LIST NODE: %v", client, err)
		}
		if _, err := conn.Exec(ctx, `SET statement_timeout = '10s'`); err != nil {
			t.Fatal(err)
		}
		tag, err := conn.PgConn().Exec(ctx, `DISCARD ALL`).ReadAll()
		if err != nil || len(tag) != 1 || tag[0].CommandTag.String() != "DISCARD ALL" {
			t.Fatalf("client %d: DISCARD ALL: %v %v", client, tag, err)
		}
		var timeout string
		if err := conn.QueryRow(ctx, `SHOW statement_timeout`).Scan(&timeout); err != nil || timeout != "30s" {
			t.Errorf("client %d: statement_timeout after DISCARD ALL = %q, %v", client, timeout, err)
		}
	}
	// DISCARD ALL drops prepared statements too.
	pc := conn.PgConn()
	if _, err := pc.Prepare(ctx, "s1", `SELECT 1`, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Exec(ctx, `DISCARD ALL`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	_, err := pc.Exec(ctx, `DEALLOCATE s1`).ReadAll()
	var pe *pgconn.PgError
	if !asPgError(err, &pe) || pe.Code != "26000" {
		t.Errorf("DEALLOCATE after DISCARD ALL: %v, want 26000", err)
	}
}

// psql's \password: it asks SHOW password_encryption, computes the SCRAM
// verifier itself and sends ALTER USER … PASSWORD '<verifier>', which is
// stored as the verifier (as PostgreSQL does), so the new password logs
// in. psql reads the new password from its terminal: script(1) gives it
// one.
func TestPsqlPassword(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("no script(1) to give psql a terminal")
	}
	m := StartManager(t, "")
	m.MustExec(t, `CREATE USER jo PASSWORD 'Old-pw-12345'`)
	jo := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-U", "jo", "-d", "postgres"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	psql := "psql -X " + strings.Join(jo, " ") + ` -c '\password'`
	cmd := exec.CommandContext(ctx, "script", "-qec", psql, "/dev/null")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGPASSWORD=Old-pw-12345", "PGSSLMODE=require")
	// psql flushes the terminal's input when it prompts: each answer is
	// typed after its prompt.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, prompt := range []string{"Enter new password", "Enter it again"} {
		waitFor(t, 20*time.Second, "psql prompts "+prompt, func() (bool, string) {
			return strings.Contains(out.String(), prompt), out.String()
		})
		io.WriteString(stdin, "New-pw-67890\n")
	}
	err = cmd.Wait()
	stdin.Close()
	if err != nil || strings.Contains(out.String(), "ERROR") {
		t.Fatalf(`\password: %v\n%s`, err, out.String())
	}
	if out, err := psqlAs(t, "", []string{"PGPASSWORD=New-pw-67890", "PGSSLMODE=require"}, jo, "SELECT current_user"); err != nil || !strings.Contains(out, "jo") {
		t.Errorf("the new password: %v\n%s", err, out)
	}
	if out, err := psqlAs(t, "", []string{"PGPASSWORD=Old-pw-12345", "PGSSLMODE=require"}, jo, "SELECT current_user"); err == nil || !strings.Contains(out, "password authentication failed") {
		t.Errorf("the old password still logs in: %v\n%s", err, out)
	}
	// The verifier is stored as given, not as a password: an md5 hash
	// (what \password sends under password_encryption = md5) is refused
	// rather than locking the user out.
	if out, err := psqlAs(t, "", []string{"PGPASSWORD=New-pw-67890", "PGSSLMODE=require"}, jo, "ALTER USER jo PASSWORD 'md5"+strings.Repeat("ab", 16)+"'"); err == nil || !strings.Contains(out, "0A000") {
		t.Errorf("an md5 hash: %v\n%s", err, out)
	}
}

// Time values in SQL over the catalog: audit and monitor_history times
// compare with now() and with now() - interval '…', as a DBA writes them
// in psql; what the translation does not cover is refused in PostgreSQL's
// words; a READ ONLY session changes nothing.
func TestTimeQueriesAndReadOnly(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2')`)
	for q, want := range map[string]string{
		`SELECT count(*) FROM audit WHERE time > now() - interval '1 hour'`:             "1",
		`SELECT count(*) FROM audit WHERE time > now()`:                                 "0",
		`SELECT count(*) FROM audit WHERE time < now() + '1 min'::interval`:             "1",
		`SELECT count(*) FROM audit WHERE time > current_timestamp - interval '2 days'`: "1",
		`SELECT user`:                            "postgres",
		`SELECT array[1, 2]`:                     "{1,2}",
		`SELECT now() = transaction_timestamp()`: "1",
	} {
		if rows := m.Rows(t, q); len(rows) != 1 || rows[0][0] != want {
			t.Errorf("%s = %v, want %s", q, rows, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for q, want := range map[string]string{
		`SELECT name FROM host WHERE`:                                        `ERROR:  42601: syntax error at end of input`,
		`SELECT 1 +`:                                                         `ERROR:  42601: syntax error`,
		`SELECT nosuch FROM host`:                                            `ERROR:  42703: column "nosuch" does not exist`,
		`SELECT time - interval '1 hour' FROM audit`:                         `ERROR:  0A000: interval values are supported only as now()`,
		`SELECT now() - interval '1 fortnight'`:                              `ERROR:  22007: invalid input syntax for type interval`,
		"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; DROP HOST h1": `ERROR:  25006: cannot execute DROP HOST in a read-only transaction`,
		"BEGIN READ ONLY; ADD HOST h2 (protocol=local, address='127.0.0.3')": `ERROR:  25006: cannot execute ADD HOST in a read-only transaction`,
	} {
		_, errOut, err := m.Psql(ctx, "-v", "VERBOSITY=verbose", "-c", q)
		if err == nil || !strings.Contains(errOut, want) || strings.Contains(strings.ToLower(errOut), "sqlite") {
			t.Errorf("%s: want %q:\n%s", q, want, errOut)
		}
	}
	if rows := m.Rows(t, "SELECT count(*) FROM host"); rows[0][0] != "1" {
		t.Errorf("hosts after the read-only refusals: %v", rows)
	}
}
