package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// psqlAs runs psql -c sql as OS user osUser (runuser; "" for root) with
// the given connection arguments and environment, and returns its combined
// output and error.
func psqlAs(t *testing.T, osUser string, env []string, conn []string, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"}, conn...)
	args = append(args, "-c", sql)
	var cmd *exec.Cmd
	if osUser == "" {
		cmd = exec.CommandContext(ctx, "psql", args...)
	} else {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", osUser, "--", "psql"}, args...)...)
	}
	cmd.Env = append(append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGPASSWORD="), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAuthentication is the attack and the ways in: a local user
// who is not root and does not own the data directory gets nothing, TCP asks
// for the password (28P01 when wrong), TLS works with psql's verify-full.
func TestAuthentication(t *testing.T) {
	m := StartManager(t, "")
	port := strconv.Itoa(m.Port)
	tcp := []string{"-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres"}
	sock := []string{"-h", m.Dir, "-p", port, "-U", "postgres", "-d", "postgres"}

	// root over the socket: peer.
	if out, err := psqlAs(t, "", nil, sock, "LIST HOST"); err != nil {
		t.Fatalf("root over the socket: %v\n%s", err, out)
	}
	// nobody: over TCP without a password, with a wrong one, and over the
	// socket (the data directory is 0700, and peer would refuse anyway).
	out, err := psqlAs(t, "nobody", []string{"PGSSLMODE=disable"}, tcp, "ADD HOST evil (address='127.0.0.20')")
	if err == nil || !strings.Contains(out, "no password supplied") {
		t.Fatalf("nobody over TCP without a password: %v\n%s", err, out)
	}
	out, err = psqlAs(t, "nobody", []string{"PGPASSWORD=guess"}, tcp, "ADD HOST evil (address='127.0.0.20')")
	if err == nil || !strings.Contains(out, `password authentication failed for user "postgres"`) {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
	// psql prints no SQLSTATE for a connection failure; a driver sees it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pgconn.Connect(ctx, fmt.Sprintf("postgres://postgres:guess@127.0.0.1:%d/postgres?sslmode=disable", m.Port))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" {
		t.Fatalf("wrong password with pgconn: %v, want SQLSTATE 28P01", err)
	}
	out, err = psqlAs(t, "nobody", nil, sock, "ADD HOST evil (address='127.0.0.20')")
	if err == nil {
		t.Fatalf("nobody over the socket got in:\n%s", out)
	}
	if rows := m.Rows(t, "SELECT count(*) FROM host"); rows[0][0] != "0" {
		t.Fatalf("a refused client added a host: %v", rows)
	}

	// The password over TCP, plaintext and TLS; verify-full against the
	// manager's CA, with channel binding.
	for _, mode := range []string{"disable", "require", "verify-full"} {
		env := []string{"PGPASSWORD=" + Password, "PGSSLMODE=" + mode, "PGSSLROOTCERT=" + filepath.Join(m.Dir, "pki", "ca.crt")}
		if mode == "verify-full" {
			env = append(env, "PGCHANNELBINDING=require")
		}
		if out, err := psqlAs(t, "", env, tcp, "LIST HOST"); err != nil {
			t.Fatalf("sslmode=%s with the password: %v\n%s", mode, err, out)
		}
	}
	// A user that does not exist looks like a wrong password.
	out, err = psqlAs(t, "", []string{"PGPASSWORD=x"}, []string{"-h", "127.0.0.1", "-p", port, "-U", "ghost", "-d", "postgres"}, "LIST HOST")
	if err == nil || !strings.Contains(out, `password authentication failed for user "ghost"`) {
		t.Fatalf("unknown user: %v\n%s", err, out)
	}
	// Passwords never reach the manager's log.
	if l := m.log.String(); strings.Contains(l, Password) || strings.Contains(l, "guess") {
		t.Errorf("a password reached the manager's log:\n%s", l)
	}
	// The data directory and the rules are private to their owner.
	for _, f := range []string{m.Dir, filepath.Join(m.Dir, "mgr_hba.conf")} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is mode %v", f, st.Mode().Perm())
		}
	}
}

// TestTrustOnlyWhenAsked: adbmgr init --auth-host trust works for loopback
// with a WARNING at every start, and a manager that would trust clients on
// other addresses refuses to start.
func TestTrustOnlyWhenAsked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mgr")
	out, err := exec.Command(filepath.Join(binDir, "adbmgr"), "init", "-D", dir, "--auth-host", "trust").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "WARNING: trust") {
		t.Fatalf("init --auth-host trust: %v\n%s", err, out)
	}
	m := StartManager(t, dir)
	if out, err := psqlAs(t, "nobody", []string{"PGSSLMODE=disable"}, []string{"-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-U", "postgres", "-d", "postgres"}, "LIST HOST"); err != nil {
		t.Fatalf("trust over loopback: %v\n%s", err, out)
	}
	if !strings.Contains(m.log.String(), "trusts host connections without a password") {
		t.Errorf("no WARNING about trust at start:\n%s", m.log.String())
	}
	m.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	os.WriteFile(filepath.Join(dir, "mgr_hba.conf"), []byte("local all all peer\nhost all all all trust\n"), 0o600)
	out2, err := execOut(ctx, filepath.Join(binDir, "adbmgr"), "start", "-D", dir, "--listen", "0.0.0.0:"+strconv.Itoa(freePort(t)))
	if err == nil || !strings.Contains(out2, "refusing to listen on 0.0.0.0") {
		t.Fatalf("start on 0.0.0.0 with trust: %v\n%s", err, out2)
	}
	out, err = exec.Command(filepath.Join(binDir, "adbmgr"), "init", "-D", filepath.Join(t.TempDir(), "x"), "--auth-host", "md5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "invalid --auth-host") {
		t.Fatalf("init --auth-host md5: %v\n%s", err, out)
	}
}

// TestPrivileges: a manager user logs in with its password and runs what it
// was granted; anything else is 42501 with the catalog unchanged; the
// password is nowhere to be read back.
func TestPrivileges(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, "CREATE USER ops PASSWORD 'ops-Pass-1'; ADD HOST h1 (protocol=local, address='127.0.0.2', agentport=5430);")
	ops := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-U", "ops", "-d", "postgres"}
	env := []string{"PGPASSWORD=ops-Pass-1", "PGSSLMODE=require"}
	before := m.Rows(t, "SELECT * FROM host")
	for _, stmt := range []string{
		"LIST HOST",
		"ADD HOST evil (protocol=local, address='127.0.0.20', agentport=27190, adbhome='/tmp/evil')",
		"ALTER HOST h1 (pghome='/tmp/evil')",
		"START AGENT h1",
		"DROP HOST h1",
		"CREATE USER me2 SUPERUSER",
		"GRANT ALL TO ops",
	} {
		out, err := psqlAs(t, "", env, ops, stmt)
		if err == nil || !strings.Contains(out, "42501") || !strings.Contains(out, "permission denied") {
			t.Errorf("%s as ops: %v\n%s", stmt, err, out)
		}
	}
	m.MustExec(t, "GRANT list, drop TO ops")
	if out, err := psqlAs(t, "", env, ops, "LIST HOST"); err != nil || !strings.Contains(out, "h1") {
		t.Errorf("LIST HOST after GRANT list: %v\n%s", err, out)
	}
	out, err := psqlAs(t, "", env, ops, "START AGENT h1")
	if err == nil || !strings.Contains(out, "42501") || !strings.Contains(out, "START AGENT is for superusers only") {
		t.Errorf("START AGENT with every GRANT: %v\n%s", err, out)
	}
	if after := m.Rows(t, "SELECT * FROM host"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused statements changed the hosts:\nbefore %v\nafter  %v", before, after)
	}
	if out, err := psqlAs(t, "", env, ops, "ALTER USER ops PASSWORD 'ops-Pass-2'"); err != nil {
		t.Fatalf("own password: %v\n%s", err, out)
	}
	if out, err := psqlAs(t, "", env, ops, "LIST HOST"); err == nil {
		t.Errorf("old password still works:\n%s", out)
	}
	acl := m.MustExec(t, "LIST ACL")
	if !strings.Contains(acl, "ops      | drop,list") && !strings.Contains(acl, "drop,list") {
		t.Errorf("LIST ACL:\n%s", acl)
	}
	for _, where := range []string{acl, m.MustExec(t, "SELECT * FROM journal"), m.log.String()} {
		if strings.Contains(where, "ops-Pass") {
			t.Errorf("a password is readable:\n%s", where)
		}
	}
	// The verifiers are not for reading, not even for a user with list.
	out, err = psqlAs(t, "", []string{"PGPASSWORD=ops-Pass-2", "PGSSLMODE=require"}, ops, "SELECT verifier FROM mgr_user")
	if err == nil || !strings.Contains(out, "42501") || strings.Contains(out, "SCRAM-SHA-256$") {
		t.Errorf("SELECT FROM mgr_user as ops: %v\n%s", err, out)
	}
	// The review's escalation: pointing a node's log at its pg_hba.conf.
	m.MustExec(t, "GRANT set TO ops")
	for _, stmt := range []string{
		"SET DATANODE ALL (log_line_prefix = '# ')",
		"SET DATANODE ALL (archive_command = 'id > /tmp/x')",
	} {
		out, err := psqlAs(t, "", []string{"PGPASSWORD=ops-Pass-2", "PGSSLMODE=require"}, ops, stmt)
		if err == nil || !strings.Contains(out, "42501") || !strings.Contains(out, "only superusers may set parameter") {
			t.Errorf("%s as ops: %v\n%s", stmt, err, out)
		}
	}
	for _, stmt := range []string{
		"SET DATANODE ALL (log_filename = '../pg_hba.conf') FORCE",
		"SET DATANODE ALL (log_directory = '.') FORCE",
	} {
		if msg := m.MustFail(t, stmt); !strings.Contains(msg, "22023") {
			t.Errorf("%s as superuser:\n%s", stmt, msg)
		}
	}
	if msg := m.MustFail(t, "SET DATANODE ALL (ssl = off) FORCE"); !strings.Contains(msg, "42501") || !strings.Contains(msg, `"ssl" is managed by adbmgr`) {
		t.Errorf("ssl = off:\n%s", msg)
	}
	m.MustExec(t, "DROP USER ops")
	if out, err := psqlAs(t, "", []string{"PGPASSWORD=ops-Pass-2"}, ops, "LIST HOST"); err == nil {
		t.Errorf("a dropped user logged in:\n%s", out)
	}
}
