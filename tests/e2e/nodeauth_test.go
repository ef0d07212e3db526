package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNodesTrustNobody: the nodes of an initialised cluster trust no host
// and no local account (issue 6 item 4). A client without the password is
// refused over TCP, another OS user is refused on the Unix socket (peer),
// so nobody can become the superuser and run COPY … TO PROGRAM; the cluster
// itself authenticates with the manager's SCRAM password over TLS, and the
// password is in no configuration file, log or LIST output. Socket
// directories live under <adbhome>/run, are the node's user's, and go with
// CLEAN.
func TestNodesTrustNobody(t *testing.T) {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	pwb, err := os.ReadFile(filepath.Join(c.M.Dir, "node.password"))
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pwb))
	if len(password) < 32 {
		t.Fatalf("node password of %d characters", len(password))
	}
	for _, f := range []string{"node.password", "pgpass"} {
		if fi, err := os.Stat(filepath.Join(c.M.Dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}

	adbhome := filepath.Dir(binDir)
	for _, n := range c.Nodes {
		// pg_hba.conf: not one trust line; peer for local, SCRAM over TLS
		// for the cluster.
		for _, r := range c.mustNodeSQL(t, n, "SELECT type, auth_method FROM pg_hba_file_rules") {
			if r[1] == "trust" || (r[0] == "local" && r[1] != "peer") || (r[0] != "local" && r[1] != "scram-sha-256") {
				t.Errorf("%s: pg_hba.conf rule %q", n.Name, r)
			}
		}
		// Nothing of the data directory holds the password.
		for _, f := range []string{"postgresql.conf", "postgresql.auto.conf", "pg_hba.conf"} {
			if b, _ := os.ReadFile(filepath.Join(n.Path, f)); strings.Contains(string(b), password) {
				t.Errorf("%s's %s holds the password", n.Name, f)
			}
		}
		// The socket directory: <adbhome>/run/<node>-<hash>, the node
		// user's, writable by nobody else, in a run directory nobody else
		// may write to; the secrets in it are 0600.
		sd := c.nodeValue(t, n, "SHOW unix_socket_directories")
		c.socketDirs = append(c.socketDirs, sd)
		if filepath.Dir(sd) != filepath.Join(adbhome, "run") || !strings.HasPrefix(filepath.Base(sd), n.Name+"-") {
			t.Errorf("%s: socket directory %s, want %s/run/%s-<hash>", n.Name, sd, adbhome, n.Name)
		}
		for _, d := range []string{sd, filepath.Dir(sd)} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o022 != 0 {
				t.Errorf("%s: %s is %v (%v), want writable by its owner only", n.Name, d, fi.Mode(), err)
			}
		}
		for _, f := range []string{"pgpass", "server.crt", "server.key", "root.crt"} {
			fi, err := os.Stat(filepath.Join(sd, f))
			if err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid == 0 {
				t.Errorf("%s: %s/%s: %v %v, want 0600 and the node user's", n.Name, sd, f, fi.Mode(), err)
			}
		}
		if v := c.nodeValue(t, n, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); v != "t" {
			t.Errorf("%s: the DBA's connection is not over TLS", n.Name)
		}
		c.refusals(t, n, sd, password)
	}

	// Replication: SCRAM over TLS, with the password from the slave's
	// password file (passfile=), never written into its configuration.
	if v := c.nodeValue(t, c.node("dn1"), `SELECT string_agg(r.application_name || ' ' || r.state || ' ' || s.ssl, ',')
		FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)`); v != "dn1s streaming true" {
		t.Errorf("replication of dn1 = %q, want dn1s streaming over TLS", v)
	}
	ci := c.nodeValue(t, c.node("dn1s"), "SHOW primary_conninfo")
	if !strings.Contains(ci, "passfile=") || !strings.Contains(ci, "sslmode='verify-full'") || strings.Contains(ci, "password") {
		t.Errorf("dn1s primary_conninfo = %q, want passfile and sslmode=verify-full, no password", ci)
	}
	// The coordinator reaches the datanode the same way, and its user
	// mapping holds no password.
	if v := c.nodeValue(t, c.node("cn1"), "SELECT array_to_string(srvoptions, ' ') FROM pg_foreign_server WHERE srvname = 'dn1'"); !strings.Contains(v, "sslmode=verify-full") || !strings.Contains(v, "passfile=") {
		t.Errorf("cn1's server dn1: %s", v)
	}
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM pg_user_mappings m, unnest(m.umoptions) o WHERE o LIKE 'password=%'"); v != "0" {
		t.Errorf("%s user mappings with a password on cn1", v)
	}
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM dblink(adb.conninfo('dn1'), 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()') AS t(ssl bool) WHERE ssl"); v != "1" {
		t.Errorf("dblink from cn1 to dn1 is not over TLS")
	}

	// Not in LIST output, the journal or the manager's log either.
	for _, q := range []string{"LIST HOST", "LIST NODE", "LIST PARAM", "LIST HBA", "SELECT * FROM journal"} {
		rows, notices := c.mustRows(t, time.Minute, q)
		if strings.Contains(strings.Join(flatten(rows), " ")+notices, password) {
			t.Errorf("%s shows the nodes' password", q)
		}
	}
	if strings.Contains(c.M.log.String(), password) {
		t.Errorf("the manager's log holds the nodes' password")
	}
	for _, h := range c.Hosts {
		if b, _ := os.ReadFile(filepath.Join(c.M.Dir, "agents", h.Name, "agent.log")); strings.Contains(string(b), password) {
			t.Errorf("agent %s's log holds the nodes' password", h.Name)
		}
	}

	c.rotatePassword(t)

	// CLEAN removes the socket directories with the secrets.
	c.mustRows(t, 2*time.Minute, "STOP ALL MODE fast")
	c.mustRows(t, 2*time.Minute, "CLEAN ALL")
	for _, sd := range c.socketDirs {
		if _, err := os.Lstat(sd); !os.IsNotExist(err) {
			t.Errorf("socket directory %s left after CLEAN ALL: %v", sd, err)
		}
	}
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// refusals: who must not get into node n (socket directory sd).
func (c *testCluster) refusals(t *testing.T, n nodeSpec, sd, password string) {
	t.Helper()
	addr, port := c.host(n.Host).Addr, strconv.Itoa(n.Port)
	// Where the node's user could write, were the command run.
	marker := filepath.Join(os.TempDir(), "adbmgr-pwned-"+strconv.Itoa(os.Getpid())+"-"+n.Name)
	t.Cleanup(func() { os.Remove(marker) })
	copyProgram := "COPY (SELECT 1) TO PROGRAM 'touch " + marker + "'"
	noPass := []string{"PGPASSFILE=/dev/null", "PGPASSWORD=", "PGCONNECT_TIMEOUT=5", "PGSSLMODE=prefer"}
	cases := []struct {
		name string
		as   string // OS user, "" for root (the test)
		host string
		env  []string
		want string
	}{
		{"TCP without a password", "", addr, noPass, "no password supplied"},
		{"TCP as nobody without a password", "nobody", addr, noPass, "no password supplied"},
		{"TCP with a wrong password", "", addr, []string{"PGPASSFILE=/dev/null", "PGPASSWORD=wrong", "PGCONNECT_TIMEOUT=5"}, "password authentication failed"},
		{"TCP without TLS from another address's rules", "nobody", addr, []string{"PGPASSFILE=/dev/null", "PGPASSWORD=", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=5"}, "password"},
		{"socket as nobody", "nobody", sd, noPass, "Peer authentication failed"},
		{"socket as root", "", sd, noPass, "Peer authentication failed"},
	}
	for _, tc := range cases {
		args := []string{"-X", "-w", "-h", tc.host, "-p", port, "-U", "postgres", "-d", "postgres", "-c", copyProgram}
		name := "psql"
		if tc.as != "" {
			args = append([]string{"-u", tc.as, "--", "psql"}, args...)
			name = "runuser"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), tc.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s, %s: %v\n%s\nwant a refusal saying %q", n.Name, tc.name, err, out, tc.want)
		}
		if strings.Contains(string(out), password) {
			t.Errorf("%s, %s: the refusal shows the password", n.Name, tc.name)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s: COPY … TO PROGRAM ran for a client without credentials", n.Name)
	}
	// The node's own OS user gets in over the socket (peer), as a DBA on
	// the host would: runuser -u postgres -- psql -h <socket directory>.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", "psql", "-X", "-w", "-A", "-t", "-h", sd, "-p", port,
		"-U", "postgres", "-d", "postgres", "-c", "SELECT current_user").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "postgres" {
		t.Errorf("%s: postgres over the socket: %v\n%s", n.Name, err, out)
	}
}

// rotatePassword follows the documented rotation of the nodes' password:
// ALTER ROLE on every master (the slaves replay it), the new password into
// DIR/node.password with the manager stopped, then START ALL, which
// rewrites every node's password file and the DBAs' one. Afterwards the
// manager, the DBAs, replication and the coordinators use the new one.
func (c *testCluster) rotatePassword(t *testing.T) {
	t.Helper()
	newPW := "rotated_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_0123456789abcdefghij"
	for _, n := range c.Nodes {
		if n.isMaster() {
			c.mustNodeSQL(t, n, "ALTER ROLE postgres PASSWORD '"+newPW+"'")
		}
	}
	c.M.Stop()
	if err := os.WriteFile(filepath.Join(c.M.Dir, "node.password"), []byte(newPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.M.Restart()
	c.mustRows(t, 2*time.Minute, "START ALL")
	if b, _ := os.ReadFile(filepath.Join(c.M.Dir, "pgpass")); !strings.Contains(string(b), newPW) {
		t.Fatalf("DIR/pgpass not rewritten by START ALL")
	}
	if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
		t.Errorf("MONITOR ALL after the rotation (-want +got):\n%s", diff)
	}
	// The slave reconnects with the new password.
	c.mustNodeSQL(t, c.node("dn1"), "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
	waitFor(t, 30*time.Second, "dn1s streams again", func() (bool, string) {
		rows, err := c.nodeSQL(c.node("dn1"), "SELECT application_name, state FROM pg_stat_replication")
		return err == nil && fmt.Sprint(rows) == "[[dn1s streaming]]", fmt.Sprint(rows, err)
	})
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM dblink(adb.conninfo('dn1'), 'SELECT 1') AS t(x int)"); v != "1" {
		t.Errorf("dblink from cn1 after the rotation: %s", v)
	}
}

// A node's socket directory holds the cluster's password file: it goes
// when the node is dropped (here the old master a FAILOVER kicked out),
// while its data directory stays for the DBA, as in AntDB.
func TestDropRemovesSocketDir(t *testing.T) {
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	sock := c.nodeValue(t, c.node("dn1"), "SHOW unix_socket_directories")
	if _, err := os.Stat(filepath.Join(sock, "pgpass")); err != nil {
		t.Fatalf("dn1's socket directory %s has no pgpass: %v", sock, err)
	}
	c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1")
	_, notices := c.mustRows(t, time.Minute, "DROP DATANODE SLAVE dn1")
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("dn1's socket directory %s survived DROP: %v (%s)", sock, err, notices)
	}
	if _, err := os.Stat(filepath.Join(c.node("dn1").Path, "PG_VERSION")); err != nil {
		t.Errorf("DROP touched dn1's data directory: %v", err)
	}
}
