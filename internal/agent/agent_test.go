package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/pgconf"
	"github.com/adbmgr/adbmgr/internal/pgctl"
	"github.com/adbmgr/adbmgr/internal/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

const pghome = "/usr/lib/postgresql/15"

// nodeUser is the OS user nodes run as: postgres when the tests run as
// root, the current user otherwise.
func nodeUser(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		return u.Username
	}
	if _, err := user.Lookup("postgres"); err != nil {
		t.Skip("running as root without an OS user postgres")
	}
	return "postgres"
}

func needPostgres(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pghome, "bin", "initdb")); err != nil {
		t.Skip("PostgreSQL 15 is not installed at " + pghome)
	}
}

// testPKI is a CA with an agent certificate for 127.0.0.1 and a manager
// client certificate, as `adbmgr init` and DEPLOY make them.
type testPKI struct{ dir string }

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.IssueAgent("h1", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(dir, "agent", c, k); err != nil {
		t.Fatal(err)
	}
	c, k, err = ca.IssueManager()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(dir, "manager", c, k); err != nil {
		t.Fatal(err)
	}
	return testPKI{dir}
}

func (p testPKI) file(name string) string { return filepath.Join(p.dir, name) }

func (p testPKI) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := pki.ServerTLS(p.file("agent.crt"), p.file("agent.key"), p.file(pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (p testPKI) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := pki.ClientTLS(p.file("manager.crt"), p.file("manager.key"), p.file(pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "127.0.0.1"
	return cfg
}

// runningAgent is an in-process agent served with Serve.
type runningAgent struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, p testPKI) *runningAgent {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &runningAgent{addr: lis.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { a.done <- Serve(ctx, lis, p.serverTLS(t), Options{Version: "test"}) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

func (a *runningAgent) stop(t *testing.T) {
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.done <- nil // later stops return at once
	case <-time.After(time.Minute):
		t.Errorf("agent did not stop")
	}
}

func dial(t *testing.T, addr string, cfg *tls.Config) agentpb.AgentClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return agentpb.NewAgentClient(conn)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sharedDir is a directory the node user can traverse. t.TempDir() is
// 0700 and owned by root, which postgres cannot enter.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "adbagent-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: got %v, want %v containing %q", what, err, code, msg)
	}
}

// stopAtCleanup makes sure a node the test started does not outlive it.
func stopAtCleanup(t *testing.T, path string) {
	t.Cleanup(func() {
		if _, alive, _ := pgctl.PostmasterPID(path); !alive {
			return
		}
		r, err := pgctl.New(pghome, nodeUser(t))
		if err == nil {
			_, err = r.Stop(context.Background(), path, pgctl.Immediate, 30*time.Second)
		}
		if err != nil {
			t.Logf("stopping %s: %v", path, err)
		}
	})
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	a := startAgent(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := dial(t, a.addr, p.clientTLS(t)).Ping(ctx, &agentpb.PingRequest{})
	if err != nil {
		t.Fatalf("manager refused: %v", err)
	}
	if resp.Version != "test" || resp.Pid != int64(os.Getpid()) || resp.Uid != int32(os.Getuid()) || resp.Hostname == "" || resp.Started == 0 {
		t.Errorf("Ping = %v", resp)
	}

	// A client that trusts the CA but has no certificate is refused.
	anon := &tls.Config{RootCAs: p.clientTLS(t).RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if _, err := dial(t, a.addr, anon).Ping(ctx, &agentpb.PingRequest{}); err == nil {
		t.Error("client without a certificate accepted")
	}

	// A certificate from another CA is refused too.
	other := newPKI(t)
	cfg := other.clientTLS(t)
	cfg.RootCAs = p.clientTLS(t).RootCAs
	if _, err := dial(t, a.addr, cfg).Ping(ctx, &agentpb.PingRequest{}); err == nil {
		t.Error("client with a foreign certificate accepted")
	}

	// Only the manager's certificate opens the agent, not any the CA
	// signed: not the agent's own (a host's root can read it), not another
	// client's (the CA may sign PostgreSQL's).
	ca, err := pki.LoadCA(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Issue("adbmgr", nil, nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(p.dir, "client", c, k); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"agent", "client"} {
		pair, err := tls.LoadX509KeyPair(p.file(name+".crt"), p.file(name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: anon.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
		if _, err := dial(t, a.addr, cfg).Ping(ctx, &agentpb.PingRequest{}); err == nil {
			t.Errorf("client with the %s certificate of the agent's CA accepted", name)
		}
	}

	// Serve refuses to run without client authentication.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	defer lis.Close()
	weak := p.serverTLS(t)
	weak.ClientAuth = tls.VerifyClientCertIfGiven
	if err := Serve(ctx, lis, weak, Options{}); err == nil {
		t.Error("Serve accepted a TLS configuration without required client certificates")
	}
	anyClient := p.serverTLS(t)
	anyClient.VerifyConnection = nil
	if err := Serve(ctx, lis, anyClient, Options{}); err == nil {
		t.Error("Serve accepted a TLS configuration that does not check the client's identity")
	}
}

func TestShutdownRPC(t *testing.T) {
	p := newPKI(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), lis, p.serverTLS(t), Options{}) }()
	c := dial(t, lis.Addr().String(), p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Shutdown(ctx, &agentpb.ShutdownRequest{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

func TestRefusals(t *testing.T) {
	needPostgres(t)
	usr := nodeUser(t)
	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := sharedDir(t)

	ref := func(path string) *agentpb.NodeRef {
		return &agentpb.NodeRef{Path: path, Pghome: pghome, User: usr}
	}
	evil := filepath.Join(base, "evil")
	if err := os.Symlink("/etc", evil); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", "relative/data", "/", "/etc", "/etc/postgresql/x", "/tmp", "/usr/local/pg/data",
		"/var/lib/dpkg/x", "/proc/1", base + "/", base + "/a/../b", base + "/x\x00y", "/" + strings.Repeat("a", 1000),
		pghome + "/data", "/usr/lib/postgresql", evil + "/x"} {
		_, err := c.InitDB(ctx, &agentpb.InitDBRequest{Node: ref(path)})
		wantCode(t, "InitDB "+strconv.Quote(path), err, codes.InvalidArgument, "")
		_, err = c.CleanDir(ctx, ref(path))
		wantCode(t, "CleanDir "+strconv.Quote(path), err, codes.InvalidArgument, "")
	}
	_, err := c.InitDB(ctx, &agentpb.InitDBRequest{})
	wantCode(t, "no node", err, codes.InvalidArgument, "node is required")
	_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: &agentpb.NodeRef{Path: base + "/n", Pghome: pghome, User: "no-such-user-xyz"}})
	wantCode(t, "unknown user", err, codes.InvalidArgument, "no-such-user-xyz")
	if os.Geteuid() == 0 {
		_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: &agentpb.NodeRef{Path: base + "/n", Pghome: pghome, User: "root"}})
		wantCode(t, "root", err, codes.InvalidArgument, "uid 0")
		_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: &agentpb.NodeRef{Path: base + "/n", Pghome: pghome}})
		wantCode(t, "no user", err, codes.InvalidArgument, "OS user is required")
	}
	_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: &agentpb.NodeRef{Path: base + "/n", Pghome: "/nonexistent", User: usr}})
	wantCode(t, "bad pghome", err, codes.InvalidArgument, "pghome")

	// A non-empty directory is neither initialised over nor cleaned.
	full := filepath.Join(base, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "precious"), []byte("x"), 0o644)
	_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: ref(full)})
	wantCode(t, "InitDB non-empty", err, codes.FailedPrecondition, "not empty")
	_, err = c.BaseBackup(ctx, &agentpb.BaseBackupRequest{Node: ref(full), SourceHost: "127.0.0.1", SourcePort: 1})
	if err == nil {
		_, err = recvAll(t, mustStream(c.BaseBackup(ctx, &agentpb.BaseBackupRequest{Node: ref(full), SourceHost: "127.0.0.1", SourcePort: 1})))
	}
	wantCode(t, "BaseBackup non-empty", err, codes.FailedPrecondition, "not empty")
	_, err = c.CleanDir(ctx, ref(full))
	wantCode(t, "CleanDir without PG_VERSION", err, codes.FailedPrecondition, "not a PostgreSQL data directory")
	if _, err := os.Stat(filepath.Join(full, "precious")); err != nil {
		t.Errorf("precious file gone: %v", err)
	}
	_, err = c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: ref(full), Action: agentpb.PgCtlRequest_START})
	wantCode(t, "start uninitialized", err, codes.FailedPrecondition, "not an initialized data directory")
	_, err = c.EditConf(ctx, &agentpb.EditConfRequest{Node: ref(full), Set: map[string]string{"port": "1"}})
	wantCode(t, "EditConf uninitialized", err, codes.FailedPrecondition, "not an initialized")

	// A file where the directory should be.
	_, err = c.CheckDir(ctx, ref(filepath.Join(full, "precious")))
	wantCode(t, "CheckDir file", err, codes.FailedPrecondition, "not a directory")
	// A directory the node's user cannot reach.
	if os.Geteuid() == 0 {
		closed := filepath.Join(base, "closed")
		os.Mkdir(closed, 0o700)
		_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: ref(filepath.Join(closed, "data"))})
		wantCode(t, "untraversable parent", err, codes.FailedPrecondition, "cannot reach")
	}
}

func mustStream(s agentpb.Agent_BaseBackupClient, err error) agentpb.Agent_BaseBackupClient {
	if err != nil {
		panic(err)
	}
	return s
}

// recvAll reads a BaseBackup stream to its end.
func recvAll(t *testing.T, s agentpb.Agent_BaseBackupClient) ([]*agentpb.BaseBackupProgress, error) {
	t.Helper()
	var msgs []*agentpb.BaseBackupProgress
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

// TestNodeLifecycle drives a primary and a standby through the RPCs the
// manager's INIT, START, FAILOVER, REWIND, STOP and CLEAN use, with the real
// PostgreSQL 15 tools.
func TestNodeLifecycle(t *testing.T) {
	needPostgres(t)
	usr := nodeUser(t)
	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	base := sharedDir(t)
	n1path, n2path := filepath.Join(base, "data", "n1"), filepath.Join(base, "data", "n2")
	p1, p2 := freePort(t), freePort(t)
	// Each node has its own socket directory, outside its data directory
	// (pg_rewind fails on a socket there), short enough for the 107-byte
	// limit of socket paths, and created by the agent at start.
	s1, s2 := filepath.Join(base, "run", "n1"), filepath.Join(base, "run", "n2")
	n1 := &agentpb.NodeRef{Path: n1path, Pghome: pghome, User: usr, Port: int32(p1), Address: "127.0.0.1", SocketDir: s1}
	n2 := &agentpb.NodeRef{Path: n2path, Pghome: pghome, User: usr, Port: int32(p2), Address: "127.0.0.1", SocketDir: s2}
	stopAtCleanup(t, n1path)
	stopAtCleanup(t, n2path)

	// CheckDir of an absent directory.
	ds, err := c.CheckDir(ctx, n1)
	if err != nil || ds.Exists {
		t.Fatalf("CheckDir(absent) = %v, %v", ds, err)
	}

	// InitDB creates the directory (and its parent) for the user, with a
	// superuser password and no trust.
	secrets := &agentpb.NodeSecrets{Password: "Zq9-node-password_x"}
	if _, err := c.InitDB(ctx, &agentpb.InitDBRequest{Node: n1, DataChecksums: true, Secrets: secrets}); err != nil {
		t.Fatalf("InitDB: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(n1path, "pg_hba.conf")); err != nil || strings.Contains(hbaRules(string(b)), "trust") ||
		!strings.Contains(string(b), "peer") || !strings.Contains(string(b), "scram-sha-256") {
		t.Errorf("pg_hba.conf after initdb (%v):\n%s", err, b)
	}
	checkSecretFile(t, filepath.Join(s1, PassFileName), "*:*:*:*:"+secrets.Password+"\n")
	if left, _ := filepath.Glob(filepath.Join(s1, ".initdb-pw-*")); len(left) > 0 {
		t.Errorf("initdb's password file left: %v", left)
	}
	_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: n2, Secrets: &agentpb.NodeSecrets{Password: "a:b"}})
	wantCode(t, "InitDB with a bad password", err, codes.InvalidArgument, "password")
	if _, err := os.Stat(s2); err == nil {
		t.Errorf("a refused InitDB created %s", s2)
	}
	fi, err := os.Stat(n1path)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode: %v %v", fi.Mode(), err)
	}
	if os.Geteuid() == 0 {
		if fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Error("data directory owned by root")
		}
		if pfi, _ := os.Stat(filepath.Dir(n1path)); pfi.Mode().Perm() != 0o755 {
			t.Errorf("parent mode %v", pfi.Mode())
		}
	}
	ds, err = c.CheckDir(ctx, n1)
	if err != nil || !ds.Exists || ds.Empty || !ds.Pgdata || ds.PgVersion != "15" {
		t.Fatalf("CheckDir(n1) = %v, %v", ds, err)
	}
	_, err = c.InitDB(ctx, &agentpb.InitDBRequest{Node: n1})
	wantCode(t, "InitDB twice", err, codes.FailedPrecondition, "already initialized")

	// Configure: each node its port, address and socket directory.
	conf := func(ref *agentpb.NodeRef, port int) map[string]string {
		return map[string]string{
			"port":                    strconv.Itoa(port),
			"listen_addresses":        "127.0.0.1",
			"unix_socket_directories": ref.SocketDir,
			"wal_log_hints":           "on",
			"hot_standby":             "on",
			// pg_rewind reads the old primary's WAL back to the last
			// common checkpoint; keep it from being recycled.
			"wal_keep_size": "128MB",
		}
	}
	ec, err := c.EditConf(ctx, &agentpb.EditConfRequest{Node: n1, Set: conf(n1, p1)})
	if err != nil || !ec.Changed {
		t.Fatalf("EditConf = %v, %v", ec, err)
	}
	ec, err = c.EditConf(ctx, &agentpb.EditConfRequest{Node: n1, Set: conf(n1, p1)})
	if err != nil || ec.Changed {
		t.Fatalf("EditConf replay = %v, %v", ec, err)
	}
	_, err = c.EditConf(ctx, &agentpb.EditConfRequest{Node: n1, Set: map[string]string{"bad key": "1"}})
	wantCode(t, "EditConf bad key", err, codes.InvalidArgument, "bad key")
	if os.Geteuid() == 0 {
		fi, _ := os.Stat(filepath.Join(n1path, "postgresql.conf"))
		if fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Error("postgresql.conf handed to root")
		}
	}

	repl := &agentpb.HBALine{Type: "host", Database: "replication", User: usr, Address: "127.0.0.1/32", Method: "scram-sha-256"}
	hba, err := c.EditHBA(ctx, &agentpb.EditHBARequest{Node: n1, AddManaged: []*agentpb.HBALine{repl}, EnsureSeparator: true})
	if err != nil {
		t.Fatalf("EditHBA: %v", err)
	}
	read, err := c.ReadHBA(ctx, n1)
	if err != nil || strings.Join(read.Lines, "\n") != strings.Join(hba.Lines, "\n") || !strings.Contains(strings.Join(hba.Lines, "\n"), "replication     "+usr) {
		t.Errorf("ReadHBA = %v, %v (EditHBA said %q)", read, err, hba.GetLines())
	}
	_, err = c.EditHBA(ctx, &agentpb.EditHBARequest{Node: n1, AddTail: []*agentpb.HBALine{{Type: "host", Database: "all", User: "all", Address: "0.0.0.0/0 trust\nhost all all", Method: "trust"}}})
	wantCode(t, "EditHBA injection", err, codes.InvalidArgument, "CIDR")

	// SetStandby round trip on a stopped primary.
	for _, step := range []struct{ standby, changed bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
		r, err := c.SetStandby(ctx, &agentpb.SetStandbyRequest{Node: n1, Standby: step.standby})
		if err != nil || r.Changed != step.changed {
			t.Fatalf("SetStandby(%v) = %v, %v", step.standby, r, err)
		}
	}

	// Start, twice.
	st, err := c.Status(ctx, n1)
	if err != nil || st.Running || !st.Initialized || st.Ready != pgctl.NoResponse {
		t.Fatalf("Status(stopped) = %v, %v", st, err)
	}
	inside := &agentpb.NodeRef{Path: n1path, Pghome: pghome, User: usr, SocketDir: n1path}
	_, err = c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: inside, Action: agentpb.PgCtlRequest_START})
	wantCode(t, "socket directory in the data directory", err, codes.InvalidArgument, "pg_rewind")
	start := &agentpb.PgCtlRequest{Node: n1, Action: agentpb.PgCtlRequest_START, WaitSeconds: 60}
	if r, err := c.PgCtl(ctx, start); err != nil || r.Already {
		t.Fatalf("start: %v %v", r, err)
	}
	if r, err := c.PgCtl(ctx, start); err != nil || !r.Already {
		t.Fatalf("second start: %v %v", r, err)
	}
	st, err = c.Status(ctx, n1)
	if err != nil || !st.Running || st.Pid == 0 || st.Ready != pgctl.Accepting {
		t.Fatalf("Status(running) = %v, %v", st, err)
	}
	// Without a socket directory, the address is asked.
	st, err = c.Status(ctx, &agentpb.NodeRef{Path: n1path, Pghome: pghome, User: usr, Port: int32(p1), Address: "127.0.0.1"})
	if err != nil || st.Ready != pgctl.Accepting {
		t.Fatalf("Status(address) = %v, %v", st, err)
	}
	if _, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n1, Action: agentpb.PgCtlRequest_RELOAD}); err != nil {
		t.Errorf("reload: %v", err)
	}
	if r, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n1, Action: agentpb.PgCtlRequest_PROMOTE}); err != nil || !r.Already {
		t.Errorf("promote of a primary: %v %v", r, err)
	}
	_, err = c.CleanDir(ctx, n1)
	wantCode(t, "CleanDir running", err, codes.FailedPrecondition, "is running")
	_, err = c.Rewind(ctx, &agentpb.RewindRequest{Node: n1, SourceHost: "127.0.0.1", SourcePort: int32(p2)})
	wantCode(t, "Rewind running", err, codes.FailedPrecondition, "is running")

	// The agent goes away; the node stays.
	pid := st.Pid
	a.stop(t)
	time.Sleep(200 * time.Millisecond)
	if _, alive, _ := pgctl.PostmasterPID(n1path); !alive || syscall.Kill(int(pid), 0) != nil {
		t.Fatal("the node died with the agent")
	}
	a = startAgent(t, p)
	c = dial(t, a.addr, p.clientTLS(t))

	// A standby by base backup, with progress.
	// Without the password the source refuses.
	stream, err := c.BaseBackup(ctx, &agentpb.BaseBackupRequest{Node: n2, SourceHost: "127.0.0.1", SourcePort: int32(p1), SourceUser: usr, ApplicationName: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = recvAll(t, stream)
	wantCode(t, "BaseBackup without a password", err, codes.Internal, "password")
	stream, err = c.BaseBackup(ctx, &agentpb.BaseBackupRequest{Node: n2, SourceHost: "127.0.0.1", SourcePort: int32(p1), SourceUser: usr, ApplicationName: "n2", Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := recvAll(t, stream)
	if err != nil {
		t.Fatalf("BaseBackup: %v", err)
	}
	if len(msgs) < 2 {
		t.Fatalf("BaseBackup sent %d messages, want progress and a final one", len(msgs))
	}
	if last := msgs[len(msgs)-1]; !last.Done || !last.Result.GetOk() || last.DoneKb == 0 {
		t.Errorf("final message %v", last)
	}
	for _, m := range msgs[:len(msgs)-1] {
		if m.Done || m.TotalKb == 0 {
			t.Errorf("progress message %v", m)
		}
	}
	if _, err := os.Stat(filepath.Join(n2path, "standby.signal")); err != nil {
		t.Errorf("standby.signal: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n2path, pgctl.LogFile)); err == nil {
		t.Errorf("the source's logfile was copied")
	}
	auto, _ := os.ReadFile(filepath.Join(n2path, "postgresql.auto.conf"))
	if ci := pgconf.Effective(auto)["primary_conninfo"]; !strings.Contains(ci, "application_name=n2") || !strings.Contains(ci, "port="+strconv.Itoa(p1)) ||
		!strings.Contains(ci, "passfile=") || strings.Contains(string(auto), secrets.Password) {
		t.Errorf("primary_conninfo = %q (passfile wanted, password not)", ci)
	}
	checkSecretFile(t, filepath.Join(s2, PassFileName), "*:*:*:*:"+secrets.Password+"\n")
	// The copy carries n1's settings: started as it is, it collides with
	// n1, and the error shows the server log's explanation.
	_, err = c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n2, Action: agentpb.PgCtlRequest_START, WaitSeconds: 10})
	wantCode(t, "start with n1's port", err, codes.Internal, "logfile:")
	t.Logf("start failure: %v", err)
	if !strings.Contains(status.Convert(err).Message(), "already in use") {
		t.Errorf("start failure does not say why: %v", err)
	}
	// Give n2 its own settings.
	if _, err := c.EditConf(ctx, &agentpb.EditConfRequest{Node: n2, Set: conf(n2, p2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n2, Action: agentpb.PgCtlRequest_START}); err != nil {
		t.Fatalf("start standby: %v", err)
	}
	st, err = c.Status(ctx, n2)
	if err != nil || !st.Running || st.Ready != pgctl.Accepting {
		t.Fatalf("Status(standby) = %v, %v", st, err)
	}
	cd, err := c.ControlData(ctx, n2)
	if err != nil || cd.Fields["Database cluster state"] != "in archive recovery" {
		t.Fatalf("ControlData(standby) = %v, %v", cd.GetFields()["Database cluster state"], err)
	}

	// Failover: promote n2, then rewind the old primary into its standby.
	if r, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n2, Action: agentpb.PgCtlRequest_PROMOTE}); err != nil || r.Already {
		t.Fatalf("promote: %v %v", r, err)
	}
	if r, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n2, Action: agentpb.PgCtlRequest_PROMOTE}); err != nil || !r.Already {
		t.Fatalf("second promote: %v %v", r, err)
	}
	cd, err = c.ControlData(ctx, n2)
	if err != nil || cd.Fields["Database cluster state"] != "in production" {
		t.Fatalf("ControlData(promoted) = %v, %v", cd.GetFields()["Database cluster state"], err)
	}
	if _, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n1, Action: agentpb.PgCtlRequest_STOP, Mode: agentpb.PgCtlRequest_FAST}); err != nil {
		t.Fatalf("stop n1: %v", err)
	}
	rw, err := c.Rewind(ctx, &agentpb.RewindRequest{Node: n1, SourceHost: "127.0.0.1", SourcePort: int32(p2), SourceUser: usr, ApplicationName: "n1", WriteRecoveryConf: true, Secrets: secrets})
	if err != nil {
		t.Fatalf("Rewind: %v", err)
	}
	t.Logf("pg_rewind: %s", rw.Output)
	// n1 kept its own settings, and follows n2 under its own name.
	b, _ := os.ReadFile(filepath.Join(n1path, "postgresql.conf"))
	if got := pgconf.Effective(b); got["port"] != strconv.Itoa(p1) || got["unix_socket_directories"] != s1 {
		t.Errorf("n1's postgresql.conf after rewind: port %s, sockets %s", got["port"], got["unix_socket_directories"])
	}
	auto, _ = os.ReadFile(filepath.Join(n1path, "postgresql.auto.conf"))
	if ci := pgconf.Effective(auto)["primary_conninfo"]; !strings.Contains(ci, "application_name=n1") || !strings.Contains(ci, "port="+strconv.Itoa(p2)) ||
		strings.Contains(string(auto), secrets.Password) {
		t.Errorf("n1's primary_conninfo = %q", ci)
	}
	if _, err := os.Stat(filepath.Join(n1path, "standby.signal")); err != nil {
		t.Errorf("standby.signal after rewind -R: %v", err)
	}
	if _, err := c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n1, Action: agentpb.PgCtlRequest_START}); err != nil {
		t.Fatalf("start rewound n1: %v", err)
	}
	cd, err = c.ControlData(ctx, n1)
	if err != nil || cd.Fields["Database cluster state"] != "in archive recovery" {
		t.Fatalf("ControlData(rewound) = %v, %v", cd.GetFields()["Database cluster state"], err)
	}

	// Stop both, twice; then clean.
	for _, n := range []*agentpb.NodeRef{n1, n2} {
		stop := &agentpb.PgCtlRequest{Node: n, Action: agentpb.PgCtlRequest_STOP, Mode: agentpb.PgCtlRequest_FAST}
		if r, err := c.PgCtl(ctx, stop); err != nil || r.Already {
			t.Fatalf("stop %s: %v %v", n.Path, r, err)
		}
		if r, err := c.PgCtl(ctx, stop); err != nil || !r.Already {
			t.Fatalf("second stop %s: %v %v", n.Path, r, err)
		}
		_, err = c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: n, Action: agentpb.PgCtlRequest_RELOAD})
		wantCode(t, "reload stopped", err, codes.FailedPrecondition, "not running")
		if r, err := c.CleanDir(ctx, n); err != nil || r.Already {
			t.Fatalf("CleanDir %s: %v %v", n.Path, r, err)
		}
		if r, err := c.CleanDir(ctx, n); err != nil || !r.Already {
			t.Fatalf("second CleanDir %s: %v %v", n.Path, r, err)
		}
		ds, err := c.CheckDir(ctx, n)
		if err != nil || !ds.Exists || !ds.Empty || ds.Pgdata {
			t.Fatalf("CheckDir after clean = %v, %v", ds, err)
		}
		if fi, _ := os.Stat(n.Path); fi.Mode().Perm() != 0o700 {
			t.Errorf("cleaned dir mode %v", fi.Mode())
		}
	}
}

// A failed base backup leaves the target empty, so that a retry works.
func TestBaseBackupFailureLeavesEmptyDir(t *testing.T) {
	needPostgres(t)
	usr := nodeUser(t)
	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(sharedDir(t), "n")
	ref := &agentpb.NodeRef{Path: path, Pghome: pghome, User: usr}
	stream, err := c.BaseBackup(ctx, &agentpb.BaseBackupRequest{Node: ref, SourceHost: "127.0.0.1", SourcePort: int32(freePort(t)), Slot: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = recvAll(t, stream)
	wantCode(t, "BaseBackup from nowhere", err, codes.Internal, "pg_basebackup failed")
	ds, err := c.CheckDir(ctx, ref)
	if err != nil || !ds.Exists || !ds.Empty {
		t.Errorf("CheckDir after failure = %v, %v", ds, err)
	}
	stream, _ = c.BaseBackup(ctx, &agentpb.BaseBackupRequest{Node: ref, SourceHost: "127.0.0.1", SourcePort: 1, Slot: "Bad-Slot"})
	_, err = recvAll(t, stream)
	wantCode(t, "bad slot", err, codes.InvalidArgument, "slot")
}

func TestDescribeConfig(t *testing.T) {
	needPostgres(t)
	p := newPKI(t)
	a := startAgent(t, p)
	c := dial(t, a.addr, p.clientTLS(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := c.DescribeConfig(ctx, &agentpb.DescribeConfigRequest{Pghome: pghome, User: nodeUser(t)})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*agentpb.Parameter{}
	for _, p := range r.Parameters {
		byName[p.Name] = p
	}
	if sb := byName["shared_buffers"]; sb == nil || sb.Context != "postmaster" || sb.Vartype != "integer" || sb.Min != "16" {
		t.Errorf("shared_buffers = %v", sb)
	}
	if wl := byName["wal_level"]; wl == nil || wl.Vartype != "enum" || wl.DefaultValue != "replica" {
		t.Errorf("wal_level = %v", wl)
	}
	if len(r.Parameters) < 300 {
		t.Errorf("%d parameters", len(r.Parameters))
	}
}

func TestCheckDataPath(t *testing.T) {
	for _, ok := range []string{"/home/antdb/data/dn1", "/data/pg/n1", "/var/lib/postgresql/15/main", "/tmp/x"} {
		if err := checkDataPath(ok, pghome); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"/opt/pg", "/opt/pg/bin", "/opt"} {
		if err := checkDataPath(bad, "/opt/pg"); err == nil {
			t.Errorf("%s accepted with pghome /opt/pg", bad)
		}
	}
	exe, _ := os.Executable()
	if err := checkDataPath(filepath.Dir(exe), ""); err == nil {
		t.Errorf("the agent's own directory accepted")
	}
}

// hbaRules drops pg_hba.conf's comments.
func hbaRules(conf string) string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkSecretFile checks a file the agent wrote for a node: the content,
// mode 0600, owned by the node's user.
func checkSecretFile(t *testing.T, path, want string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if fi.Mode() != 0o600 {
		t.Errorf("%s is %v, want -rw-------", path, fi.Mode())
	}
	if os.Geteuid() == 0 && fi.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Errorf("%s belongs to root", path)
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("%s holds %q", path, b)
	}
}
