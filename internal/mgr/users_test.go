package mgr

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

func TestRequiredPrivilege(t *testing.T) {
	for _, tc := range []struct {
		stmt, want string
	}{
		{"HELP", ""},
		{"SET mgr_zone = 'z'", ""},
		{"ALTER USER me PASSWORD 'x'", ""},
		{"ALTER USER me SUPERUSER", privSuperuser},
		{"CREATE USER u", privSuperuser},
		{"DROP USER u", privSuperuser},
		{"GRANT list TO u", privSuperuser},
		{"LIST ACL", ""},
		{"SELECT current_user, 1, version()", ""},
		{"SELECT name FROM host", "list"},
		{"SELECT pg_get_userbyid(10)", "list"},
		{"SELECT (SELECT 1 FROM node)", "list"},
		{"ADD HOST h (address='127.0.0.5')", privSuperuser},
		{"ALTER HOST h (pghome='/x')", privSuperuser},
		{"START AGENT ALL", privSuperuser},
		{"DEPLOY ALL", privSuperuser},
		{"ROTATE CERTIFICATES", privSuperuser},
		{"SWITCHOVER DATANODE SLAVE s", privSuperuser},
		{"PROMOTE DATANODE SLAVE s", privSuperuser},
		{"ADBMGR PROMOTE DATANODE SLAVE s", privSuperuser},
		{"CONFIG DATANODE SLAVE s", privSuperuser},
		{"ZONE FAILOVER z", privSuperuser},
		{"APPEND COORDINATOR cn3 FOR cn1", privSuperuser},
		{"APPEND ACTIVATE COORDINATOR cn3", privSuperuser},
		{"APPEND DATANODE SLAVE s", "append"},
		{"START DOCTOR", privSuperuser},
		{"LIST DOCTOR", "list"},
		{"DROP HOST h", "drop"},
		{"ADD DATANODE MASTER dn (host=h, port=5, path='/d')", "add"},
		{"LIST NODE", "list"},
		{"SELECT * FROM node", "list"},
		{"MONITOR ALL", "monitor"},
		{"STOP AGENT ALL", "stop"},
		{"INIT ALL", "init"},
		{"CLEAN ALL", "clean"},
		{"SET DATANODE ALL (work_mem = '8MB')", "set"},
		{"RESET DATANODE ALL (work_mem)", "reset"},
		{"SET DATANODE ALL (work_mem = '8MB', archive_command = 'sh -c x')", privSuperuser},
		{"SET COORDINATOR ALL (\"Shared_Preload_Libraries\" = 'evil')", privSuperuser},
		{"RESET GTMCOORD ALL (restore_command)", privSuperuser},
		{"FAILOVER DATANODE dn1", "failover"},
		{"REWIND DATANODE SLAVE dn1", "failover"},
		{"FLUSH PARAM", "flush"},
		{"FLUSH HOST", privSuperuser},
		{"SHOW PARAM dn1 work_mem", "show"},
	} {
		st, err := parser.Parse(tc.stmt)
		if err != nil {
			t.Fatalf("%s: %v", tc.stmt, err)
		}
		if got := requiredPrivilege(st[0]); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.stmt, got, tc.want)
		}
	}
}

func runAs(m *Manager, user, q string) (*recorder, error) {
	r := &recorder{}
	return r, m.Query(context.Background(), &pgwire.Session{User: user, Params: map[string]string{}}, q, r)
}

func wantSQLState(t *testing.T, err error, code string) {
	t.Helper()
	pe, ok := pgerror.As(err)
	if !ok || pe.Code != code {
		t.Fatalf("got %v, want SQLSTATE %s", err, code)
	}
}

func TestUsersAndPrivileges(t *testing.T) {
	m, cat := newManager(t)
	mustRun(t, m, "CREATE USER ops PASSWORD 'pw1'; CREATE USER \"Viewer\"")
	u, ok, err := cat.User(context.Background(), "ops")
	if err != nil || !ok || !pgwire.VerifierValid(u.Verifier) || strings.Contains(u.Verifier, "pw1") {
		t.Fatalf("ops: %+v %v %v", u, ok, err)
	}
	_, err = run(t, m, "CREATE USER ops")
	wantSQLState(t, err, pgerror.DuplicateObject)

	// Without privileges: refused, and a list with one refused statement
	// runs nothing.
	_, err = runAs(m, "ops", "LIST HOST")
	wantSQLState(t, err, pgerror.InsufficientPrivilege)
	_, err = runAs(m, "ops", "ADD HOST h1 (address='127.0.0.9')")
	wantSQLState(t, err, pgerror.InsufficientPrivilege)
	mustRun(t, m, "GRANT list, add TO ops")
	_, err = runAs(m, "ops", "ADD DATANODE MASTER dn1 (host=h1, port=5432, path='/d/dn1'); ADD HOST h1 (address='127.0.0.9')")
	wantSQLState(t, err, pgerror.InsufficientPrivilege)
	if _, err := m.Describe(context.Background(), &pgwire.Session{User: "Viewer"}, "SELECT * FROM node"); err == nil {
		t.Error("Describe of a SELECT for a user without list")
	}
	if r, err := runAs(m, "ops", "LIST HOST"); err != nil || len(r.rows) != 0 {
		t.Fatalf("LIST HOST as ops: %v %v", r.rows, err)
	}
	// Own password yes, another's no, superuser no.
	if _, err := runAs(m, "ops", "ALTER USER ops PASSWORD 'pw2'"); err != nil {
		t.Fatal(err)
	}
	_, err = runAs(m, "ops", `ALTER USER "Viewer" PASSWORD 'x'`)
	wantSQLState(t, err, pgerror.InsufficientPrivilege)
	_, err = runAs(m, "ops", "ALTER USER ops SUPERUSER")
	wantSQLState(t, err, pgerror.InsufficientPrivilege)

	r := mustRun(t, m, "LIST ACL")
	want := [][]string{{"Viewer", ""}, {"ops", "add,list"}, {"postgres", "superuser"}}
	if d := cmp.Diff(want, r.rows); d != "" {
		t.Errorf("LIST ACL (-want +got):\n%s", d)
	}
	if r, _ := runAs(m, "ops", "LIST ACL"); len(r.rows) != 1 || r.rows[0][0] != "ops" {
		t.Errorf("LIST ACL as ops: %v", r.rows)
	}
	mustRun(t, m, "REVOKE add FROM ops; GRANT ALL TO \"Viewer\"; REVOKE ALL FROM ALL; GRANT monitor TO ALL")
	r = mustRun(t, m, "LIST ACL")
	want = [][]string{{"Viewer", "monitor"}, {"ops", "monitor"}, {"postgres", "superuser"}}
	if d := cmp.Diff(want, r.rows); d != "" {
		t.Errorf("LIST ACL after REVOKE (-want +got):\n%s", d)
	}
	_, err = run(t, m, "GRANT list TO ghost")
	wantSQLState(t, err, pgerror.UndefinedObject)

	// The last superuser stays; the session's own user cannot be dropped.
	_, err = run(t, m, "ALTER USER postgres NOSUPERUSER")
	wantSQLState(t, err, pgerror.ObjectInUse)
	_, err = run(t, m, "DROP USER postgres")
	wantSQLState(t, err, pgerror.ObjectInUse)
	mustRun(t, m, "ALTER USER ops SUPERUSER")
	if _, err := runAs(m, "ops", "DROP USER postgres, \"Viewer\""); err != nil {
		t.Fatal(err)
	}
	r = mustRunAs(t, m, "ops", "DROP USER IF EXISTS ghost; LIST ACL")
	if d := cmp.Diff([][]string{{"ops", "superuser"}}, r.rows); d != "" || len(r.notices) != 1 {
		t.Errorf("after DROP USER: %v %v", r.rows, r.notices)
	}
	// A dropped user's session can do nothing more.
	_, err = run(t, m, "LIST HOST")
	wantSQLState(t, err, pgerror.InvalidAuthorization)
}

func mustRunAs(t *testing.T, m *Manager, user, q string) *recorder {
	t.Helper()
	r, err := runAs(m, user, q)
	if err != nil {
		t.Fatalf("%s as %s: %v", q, user, err)
	}
	return r
}

// DROP NODE and DROP HOST take the node's certificate and the agent's
// credentials out of the data directory with them.
func TestDropRemovesCredentials(t *testing.T) {
	m, _ := newManager(t)
	m.opts.DataDir = t.TempDir()
	nodeKey := filepath.Join(m.opts.DataDir, nodeCertDir, "dn1", "server.key")
	agentKey := filepath.Join(m.opts.DataDir, "agents", "h1", "agent.key")
	agentLog := filepath.Join(m.opts.DataDir, "agents", "h1", "agent.log")
	for _, f := range []string{nodeKey, agentKey, agentLog} {
		os.MkdirAll(filepath.Dir(f), 0o700)
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, m, `ADD HOST h1 (protocol=local, address='127.0.0.2'); ADD DATANODE MASTER dn1 (HOST=h1, PORT=5432, PATH='/d/dn1')`)
	mustRun(t, m, `DROP DATANODE MASTER dn1; DROP HOST h1`)
	for _, f := range []string{nodeKey, agentKey} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
	if _, err := os.Stat(agentLog); err != nil {
		t.Errorf("the agent's log went too: %v", err)
	}
}

// A syntax error in a statement with a password has no position: psql
// would print the line, password and all.
func TestPasswordNotEchoed(t *testing.T) {
	m, _ := newManager(t)
	for _, q := range []string{"CREATE USER u PASSWORD 'S3cret' bogus", "DEPLOY h1 PASSWORD 'S3cret' bogus", "ALTER USER u PASSWORD 'S3cret"} {
		_, err := run(t, m, q)
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != pgerror.SyntaxError || pe.Position != 0 || strings.Contains(pe.Message, "S3cret") {
			t.Errorf("%s: %+v", q, err)
		}
	}
	// Elsewhere the caret stays.
	_, err := run(t, m, "LIST HOST bogus bogus")
	if pe, ok := pgerror.As(err); !ok || pe.Position == 0 {
		t.Errorf("LIST HOST bogus bogus: %+v", err)
	}
}
