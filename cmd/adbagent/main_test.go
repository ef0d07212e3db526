package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/pgctl"
	"github.com/adbmgr/adbmgr/internal/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TestDependencies keeps the agent small: it is copied to every host and
// must not carry the manager's catalog, wire server or SSH client (the idea
// of Tailscale's deptest).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"modernc.org/sqlite",
		"github.com/jackc/pgx",
		"database/sql",
		"golang.org/x/crypto/ssh",
		"github.com/pkg/sftp",
		"github.com/adbmgr/adbmgr/internal/pgwire",
		"github.com/adbmgr/adbmgr/internal/catalog",
		"github.com/adbmgr/adbmgr/internal/mgr",
		"github.com/adbmgr/adbmgr/internal/agentclient",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("adbagent depends on %s", dep)
			}
		}
	}
}

const pghome = "/usr/lib/postgresql/15"

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "adbagent")
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/adbmgr/adbmgr/internal/version.Version=v-test", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func certs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		issue func() ([]byte, []byte, error)
	}{
		{"agent", func() ([]byte, []byte, error) { return ca.IssueAgent("h1", []net.IP{net.ParseIP("127.0.0.1")}) }},
		{"manager", ca.IssueManager},
	} {
		cert, key, err := c.issue()
		if err != nil {
			t.Fatal(err)
		}
		if err := ca.WritePair(dir, c.name, cert, key); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// agentProc is a running adbagent binary in its own process group.
type agentProc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error
	c    agentpb.AgentClient
}

func startAgent(t *testing.T, bin, pkiDir string) *agentProc {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--listen", addr,
		"--cert", filepath.Join(pkiDir, "agent.crt"), "--key", filepath.Join(pkiDir, "agent.key"), "--ca", filepath.Join(pkiDir, pki.CACert))
	a := &agentProc{cmd: cmd, log: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = a.log
	// Its own process group, so that the test can kill it the way a
	// terminal's Ctrl-C or a service manager would: the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
		a.done <- nil
	})
	cfg, err := pki.ClientTLS(filepath.Join(pkiDir, "manager.crt"), filepath.Join(pkiDir, "manager.key"), filepath.Join(pkiDir, pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "127.0.0.1"
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a.c = agentpb.NewAgentClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := a.c.Ping(ctx, &agentpb.PingRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent does not answer: %v\n%s", err, a.log)
		}
	}
}

// wait returns the agent's exit status, failing after a minute.
func (a *agentProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(time.Minute):
		t.Fatalf("agent did not exit\n%s", a.log)
		return nil
	}
}

func TestCommandLine(t *testing.T) {
	bin := build(t)
	for _, v := range []string{"version", "--version", "-V"} {
		out, err := exec.Command(bin, v).Output()
		if err != nil || strings.TrimSpace(string(out)) != "adbagent v-test" {
			t.Errorf("%s: %q %v", v, out, err)
		}
	}
	for _, h := range []string{"-h", "--help"} {
		out, err := exec.Command(bin, h).Output()
		if err != nil || !strings.Contains(string(out), "--log-level") && !strings.Contains(string(out), "-log-level") {
			t.Errorf("%s: exit %v, stdout %q", h, err, out)
		}
	}
	for _, args := range [][]string{{}, {"--listen", "127.0.0.1:0"}, {"--listen", "127.0.0.1:0", "--cert", "a", "--key", "b", "--ca", "c"}, {"--bogus"}, {"extra"}, {"--log-format", "xml", "--listen", "127.0.0.1:0", "--cert", "a", "--key", "b", "--ca", "c"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("adbagent %q: %v\n%s", args, err, out)
		}
	}
}

// TestSignalsAndSurvival: SIGTERM and the Shutdown RPC stop the agent
// cleanly, and nodes it started survive the agent's whole process group
// being killed.
func TestSignalsAndSurvival(t *testing.T) {
	bin := build(t)
	pkiDir := certs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	a := startAgent(t, bin, pkiDir)
	ping, err := a.c.Ping(ctx, &agentpb.PingRequest{})
	if err != nil || ping.Version != "v-test" || ping.Pid != int64(a.cmd.Process.Pid) {
		t.Fatalf("Ping = %v, %v", ping, err)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := a.wait(t); err != nil {
		t.Errorf("SIGTERM: exit %v\n%s", err, a.log)
	}
	if !strings.Contains(a.log.String(), "agent stopping") {
		t.Errorf("log: %s", a.log)
	}

	a = startAgent(t, bin, pkiDir)
	if _, err := a.c.Shutdown(ctx, &agentpb.ShutdownRequest{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := a.wait(t); err != nil {
		t.Errorf("Shutdown: exit %v\n%s", err, a.log)
	}

	if _, err := os.Stat(filepath.Join(pghome, "bin", "initdb")); err != nil {
		t.Skip("PostgreSQL 15 is not installed")
	}
	usr := "postgres"
	if os.Geteuid() != 0 {
		u, _ := user.Current()
		usr = u.Username
	} else if _, err := user.Lookup(usr); err != nil {
		t.Skip("no OS user postgres")
	}
	base, err := os.MkdirTemp("", "adbagent-cmd-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755)
	t.Cleanup(func() { os.RemoveAll(base) })
	path := filepath.Join(base, "n1")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	node := &agentpb.NodeRef{Path: path, Pghome: pghome, User: usr, Port: int32(port), Address: "127.0.0.1", SocketDir: filepath.Join(base, "run")}
	t.Cleanup(func() {
		if r, err := pgctl.New(pghome, usr); err == nil {
			if _, alive, _ := pgctl.PostmasterPID(path); alive {
				r.Stop(context.Background(), path, pgctl.Immediate, 30*time.Second)
			}
		}
	})

	a = startAgent(t, bin, pkiDir)
	if _, err := a.c.InitDB(ctx, &agentpb.InitDBRequest{Node: node}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.EditConf(ctx, &agentpb.EditConfRequest{Node: node, Set: map[string]string{
		"port": strconv.Itoa(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": node.SocketDir,
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: node, Action: agentpb.PgCtlRequest_START}); err != nil {
		t.Fatal(err)
	}
	pid, alive, _ := pgctl.PostmasterPID(path)
	if !alive {
		t.Fatal("node not running")
	}
	// SIGKILL to the agent's whole process group: nothing of the node is
	// in it.
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	a.wait(t)
	time.Sleep(300 * time.Millisecond)
	if pid2, alive, _ := pgctl.PostmasterPID(path); !alive || pid2 != pid {
		t.Fatalf("the node died with the agent (pid %d -> %d, alive %v)", pid, pid2, alive)
	}

	// A new agent finds it running and stops it.
	a = startAgent(t, bin, pkiDir)
	st, err := a.c.Status(ctx, node)
	if err != nil || !st.Running || st.Ready != pgctl.Accepting {
		t.Fatalf("Status after agent restart = %v, %v", st, err)
	}
	if r, err := a.c.PgCtl(ctx, &agentpb.PgCtlRequest{Node: node, Action: agentpb.PgCtlRequest_STOP}); err != nil || r.Already {
		t.Fatalf("stop: %v %v", r, err)
	}
}

// TestClientIdentity: the real binary accepts the manager's certificate and
// refuses no certificate, another CA's and its own (an agent's) presented
// as a client; after its files are rewritten (ROTATE CERTIFICATES) it
// presents the new certificate without a restart.
func TestClientIdentity(t *testing.T) {
	bin := build(t)
	pkiDir := certs(t)
	a := startAgent(t, bin, pkiDir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := a.cmd.Args[2]
	mgr, err := pki.ClientTLS(filepath.Join(pkiDir, "manager.crt"), filepath.Join(pkiDir, "manager.key"), filepath.Join(pkiDir, pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	mgr.ServerName = "127.0.0.1"
	other := certs(t)
	withPair := func(dir, name string) *tls.Config {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: mgr.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	}
	for name, cfg := range map[string]*tls.Config{
		"no certificate":       {RootCAs: mgr.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13},
		"another CA's manager": withPair(other, "manager"),
		"the agent's own":      withPair(pkiDir, "agent"),
	} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agentpb.NewAgentClient(conn).Ping(ctx, &agentpb.PingRequest{}); err == nil {
			t.Errorf("agent accepted a client with %s certificate", name)
		}
		conn.Close()
	}

	presented := func() *x509.Certificate {
		t.Helper()
		c, err := tls.Dial("tcp", addr, mgr)
		if err != nil {
			t.Fatalf("manager refused: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	before := presented()
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssueAgent("h1", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(pkiDir, "agent", cert, key); err != nil {
		t.Fatal(err)
	}
	want, err := pki.ReadCert(filepath.Join(pkiDir, "agent.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := presented(); got.SerialNumber.Cmp(want.SerialNumber) != 0 || got.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Errorf("after rewriting its files the agent presents serial %v, want the new %v", got.SerialNumber, want.SerialNumber)
	}
	if _, err := a.c.Ping(ctx, &agentpb.PingRequest{}); err != nil {
		t.Errorf("Ping after the rewrite: %v", err)
	}
}
