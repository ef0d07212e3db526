package fleet

import (
	"context"
	"errors"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pki"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// fakeAgent is an agent over real gRPC and mutual TLS that records the
// requests it gets and answers them from its fields.
type fakeAgent struct {
	agentpb.UnimplementedAgentServer
	mu   sync.Mutex
	reqs []any
	// fail makes the named method ("PgCtl", "EditConf", …) fail.
	fail    map[string]error
	running bool
	already bool
	fields  map[string]string
	output  string
}

func (a *fakeAgent) record(method string, req any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ref, ok := req.(*agentpb.NodeRef); ok {
		req = strings.ToLower(method) + " " + ref.Path
	}
	a.reqs = append(a.reqs, req)
	return a.fail[method]
}

func (a *fakeAgent) requests() []any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]any(nil), a.reqs...)
}

func (a *fakeAgent) Ping(_ context.Context, r *agentpb.PingRequest) (*agentpb.PingResponse, error) {
	return &agentpb.PingResponse{}, a.record("Ping", r)
}

func (a *fakeAgent) PgCtl(_ context.Context, r *agentpb.PgCtlRequest) (*agentpb.ToolResult, error) {
	return &agentpb.ToolResult{Already: a.already}, a.record("PgCtl", r)
}

func (a *fakeAgent) Status(_ context.Context, r *agentpb.NodeRef) (*agentpb.NodeStatus, error) {
	return &agentpb.NodeStatus{Running: a.running}, a.record("Status", r)
}

func (a *fakeAgent) ControlData(_ context.Context, r *agentpb.NodeRef) (*agentpb.ControlDataResponse, error) {
	return &agentpb.ControlDataResponse{Fields: a.fields}, a.record("ControlData", r)
}

func (a *fakeAgent) EditConf(_ context.Context, r *agentpb.EditConfRequest) (*agentpb.EditConfResponse, error) {
	return &agentpb.EditConfResponse{}, a.record("EditConf", r)
}

func (a *fakeAgent) EditHBA(_ context.Context, r *agentpb.EditHBARequest) (*agentpb.HBAResponse, error) {
	return &agentpb.HBAResponse{}, a.record("EditHBA", r)
}

func (a *fakeAgent) ReadHBA(_ context.Context, r *agentpb.NodeRef) (*agentpb.HBAResponse, error) {
	return &agentpb.HBAResponse{Lines: []string{"local all all peer"}}, a.record("ReadHBA", r)
}

func (a *fakeAgent) CheckDir(_ context.Context, r *agentpb.NodeRef) (*agentpb.DirStatus, error) {
	return &agentpb.DirStatus{Exists: true}, a.record("CheckDir", r)
}

func (a *fakeAgent) CleanDir(_ context.Context, r *agentpb.NodeRef) (*agentpb.ToolResult, error) {
	return &agentpb.ToolResult{Ok: true}, a.record("CleanDir", r)
}

func (a *fakeAgent) RemoveSocketDir(_ context.Context, r *agentpb.NodeRef) (*agentpb.ToolResult, error) {
	return &agentpb.ToolResult{Ok: a.output == "", Output: a.output}, a.record("RemoveSocketDir", "removesocketdir "+r.SocketDir)
}

func (a *fakeAgent) SetStandby(_ context.Context, r *agentpb.SetStandbyRequest) (*agentpb.SetStandbyResponse, error) {
	return &agentpb.SetStandbyResponse{}, a.record("SetStandby", r)
}

func (a *fakeAgent) Rewind(_ context.Context, r *agentpb.RewindRequest) (*agentpb.ToolResult, error) {
	return &agentpb.ToolResult{Output: a.output}, a.record("Rewind", r)
}

// caDir holds a CA, the manager's pair and an agent's pair for 127.0.0.1.
func caDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.SetupManager(dir); err != nil {
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
	return dir
}

// fleetOf serves a on a local port and returns the fleet of the manager
// that reaches it, and the member n on its host.
func fleetOf(t *testing.T, a *fakeAgent) (*Agents, Member) {
	t.Helper()
	dir := caDir(t)
	stls, err := pki.ServerTLS(filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key"), filepath.Join(dir, pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(stls)))
	agentpb.RegisterAgentServer(srv, a)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	ctls, err := pki.SetupManager(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := agentclient.New(ctls)
	t.Cleanup(pool.Close)
	f := New(pool, Credentials{
		Secrets: func(n cluster.Node, h cluster.Host) (*agentpb.NodeSecrets, error) {
			return &agentpb.NodeSecrets{}, nil
		},
		Auth: func() (pgclient.Auth, error) { return pgclient.Auth{}, errors.New("no nodes here") },
	})
	h := cluster.Host{Name: "h1", Address: "127.0.0.1", AgentPort: l.Addr().(*net.TCPAddr).Port, User: "pg", PGHome: "/pg"}
	return f, Member{Node: cluster.Node{Name: "n", Host: "h1", Port: 1, Path: "/d/n", Type: cluster.DatanodeSlave, Master: "p"}, Host: h}
}

// TestAgentsRequests: each Fleet method sends the agent the request it
// means, with the node's secrets where the node (re)reads them.
func TestAgentsRequests(t *testing.T) {
	a := &fakeAgent{running: true, already: true, fields: map[string]string{"Database cluster state": "shut down"}, output: " Done!\n"}
	f, m := fleetOf(t, a)
	parent := Member{Node: cluster.Node{Name: "p", Host: "h1", Port: 2, Path: "/d/p", Type: cluster.DatanodeMaster}, Host: m.Host}
	ctx := context.Background()
	if err := f.AgentUp(ctx, m.Host); err != nil {
		t.Fatal(err)
	}
	if run, err := f.Running(ctx, m); err != nil || !run {
		t.Errorf("Running = %v, %v", run, err)
	}
	if already, err := f.Start(ctx, m); err != nil || !already {
		t.Errorf("Start = %v, %v", already, err)
	}
	for _, mode := range []Mode{Smart, Fast, Immediate} {
		if _, err := f.Stop(ctx, m, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Reload(ctx, m); err != nil {
		t.Fatal(err)
	}
	// The promotion is followed by a CHECKPOINT over SQL, which this fleet
	// cannot reach: its failure says so.
	if err := f.Promote(ctx, m); err == nil || !strings.Contains(err.Error(), "checkpoint that records its new timeline") {
		t.Errorf("Promote without SQL = %v", err)
	}
	if cd, err := f.ControlData(ctx, m); err != nil || !cd.CleanlyShutDown() {
		t.Errorf("ControlData = %v, %v", cd, err)
	}
	if err := f.Configure(ctx, m, Conf{Set: map[string]string{"port": "1"}, HBA: []cluster.HBALine{{Type: "host", Database: "all", User: "all", Address: "10.0.0.1/32", Method: "scram-sha-256"}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteStandby(ctx, m, parent); err != nil {
		t.Fatal(err)
	}
	if out, err := f.Rewind(ctx, m, parent); err != nil || out != "Done!" {
		t.Errorf("Rewind = %q, %v", out, err)
	}
	var got []string
	for _, r := range a.requests() {
		got = append(got, describe(r))
	}
	want := []string{
		"ping",
		"status /d/n",
		"pgctl START UNSPECIFIED secrets",
		"pgctl STOP SMART", "pgctl STOP FAST", "pgctl STOP IMMEDIATE",
		"pgctl RELOAD UNSPECIFIED secrets",
		"pgctl PROMOTE UNSPECIFIED",
		"controldata /d/n",
		"editconf POSTGRESQL_CONF +port",
		"edithba 1 separator",
		"editconf POSTGRESQL_AUTO_CONF +primary_conninfo +primary_slot_name +recovery_target_timeline",
		"standby true",
		"rewind from 127.0.0.1:2 as n recovery secrets",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// describe renders a request to the agent in a line.
func describe(r any) string {
	switch r := r.(type) {
	case *agentpb.PingRequest:
		return "ping"
	case string: // a NodeRef, with its method
		return r
	case *agentpb.PgCtlRequest:
		s := "pgctl " + r.Action.String() + " " + strings.TrimPrefix(r.Mode.String(), "MODE_")
		if r.Secrets != nil {
			s += " secrets"
		}
		return s
	case *agentpb.EditConfRequest:
		s := "editconf " + r.File.String()
		keys := slices.Sorted(maps.Keys(r.Set))
		for _, k := range keys {
			s += " +" + k
		}
		return s
	case *agentpb.EditHBARequest:
		s := "edithba " + strconv.Itoa(len(r.AddManaged))
		if len(r.AddTail)+len(r.Remove) > 0 {
			s += " tail " + strconv.Itoa(len(r.AddTail)) + " remove " + strconv.Itoa(len(r.Remove))
		}
		if r.EnsureSeparator {
			s += " separator"
		}
		return s
	case *agentpb.SetStandbyRequest:
		if r.Standby {
			return "standby true"
		}
		return "standby false"
	case *agentpb.RewindRequest:
		s := "rewind from " + net.JoinHostPort(r.SourceHost, strconv.Itoa(int(r.SourcePort))) + " as " + r.ApplicationName
		if r.WriteRecoveryConf {
			s += " recovery"
		}
		if r.Secrets != nil {
			s += " secrets"
		}
		return s
	}
	return "?"
}

// TestAgentsErrorsTranslated: the agent's errors come back with their
// SQLSTATE, and the parts of MakeStandbyOf say which one failed.
func TestAgentsErrorsTranslated(t *testing.T) {
	a := &fakeAgent{fail: map[string]error{
		"PgCtl":      status.Error(codes.Internal, "start /d/n: pg_ctl failed (exit status 1): FATAL: boom"),
		"EditConf":   status.Error(codes.InvalidArgument, `"x" is not a parameter`),
		"SetStandby": status.Error(codes.FailedPrecondition, "no data directory"),
	}}
	f, m := fleetOf(t, a)
	ctx := context.Background()
	_, err := f.Start(ctx, m)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.Internal || pe.Detail != "FATAL: boom" {
		t.Errorf("Start: %#v", err)
	}
	err = f.SetConf(ctx, m, false, map[string]string{"x": "1"}, nil)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.InvalidParameterValue {
		t.Errorf("SetConf: %#v", err)
	}
	// Each part of the procedure says which part failed.
	a.fail["EditConf"] = nil
	err = f.WriteStandby(ctx, m, m)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ObjectNotInPrereqState || !strings.HasPrefix(err.Error(), "create standby.signal: ") {
		t.Errorf("WriteStandby: %v", err)
	}
	a.fail["SetStandby"] = nil
	a.fail["EditConf"] = status.Error(codes.Internal, "disk full")
	if err := f.WriteStandby(ctx, m, m); err == nil || !strings.HasPrefix(err.Error(), "write recovery settings: disk full") {
		t.Errorf("WriteStandby: %v", err)
	}
	// MakeStandbyOf needs the parent's slot first, over SQL: no login here.
	if err := f.MakeStandbyOf(ctx, m, m); err == nil || !strings.HasPrefix(err.Error(), `create replication slot "n" on n: `) {
		t.Errorf("MakeStandbyOf: %v", err)
	}
}

// TestAgentsUnreachable: a dead agent is 08006 with the hint to start it;
// a cancelled call is the statement's cancel.
func TestAgentsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f, m := fleetOf(t, &fakeAgent{})
	dead := m
	dead.Host.AgentPort = port
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = f.Running(ctx, dead)
	pe, ok := pgerror.As(err)
	if !ok || pe.Code != pgerror.ConnectionFailure || !strings.Contains(pe.Hint, "START AGENT h1") || !Unreachable(err) {
		t.Errorf("Running on a dead agent: %#v", err)
	}
	if err := f.AgentUp(ctx, dead.Host); !Unreachable(err) {
		t.Errorf("AgentUp on a dead agent: %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := f.Stop(cctx, m, Fast); err == nil {
		t.Error("a cancelled Stop succeeded")
	} else if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.QueryCanceled {
		t.Errorf("cancelled Stop: %#v", err)
	}
}

// TestAgentsSQLWithoutLogin: the SQL side reports the login failure; Probe
// makes it the zero Probe; WaitReplay ends with its context.
func TestAgentsSQLWithoutLogin(t *testing.T) {
	f, m := fleetOf(t, &fakeAgent{})
	ctx := context.Background()
	if p := f.Probe(ctx, m); p != (cluster.Probe{}) {
		t.Errorf("Probe = %+v", p)
	}
	for name, err := range map[string]error{
		"InRecovery": func() error { _, err := f.InRecovery(ctx, m); return err }(),
		"Checkpoint": f.Checkpoint(ctx, m),
		"EnsureSlot": f.EnsureSlot(ctx, m, "s"),
		"DropSlots":  f.DropInactiveSlots(ctx, m),
		"Rename":     f.RenameServer(ctx, m, "a", "b"),
		"Configure":  f.ConfigureCoordinator(ctx, &cluster.State{}, m, nil),
	} {
		if err == nil || !strings.Contains(err.Error(), "no nodes here") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := f.WaitReplay(ctx, m, 1, 0); err == nil || !strings.Contains(err.Error(), "did not replay beyond 0/1") {
		t.Errorf("WaitReplay: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := f.WaitReplay(cctx, m, 1, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReplay past its context: %v", err)
	}
	if _, err := f.SetSyncNames(ctx, m, "", nil, false); err != nil {
		t.Errorf("SetSyncNames without slaves: %v", err)
	}
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if _, err := f.SetSyncNames(sctx, m, "x", map[string]string{"a": "sync"}, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SetSyncNames without a login: %v", err)
	}
}

// TestAgentsUpkeep: the DBA commands' agent calls are built from the
// member and their answers read back; a kept socket directory says why.
func TestAgentsUpkeep(t *testing.T) {
	a := &fakeAgent{running: true}
	f, m := fleetOf(t, a)
	ctx := context.Background()
	if st, err := f.Status(ctx, m); err != nil || !st.Running {
		t.Errorf("Status = %+v, %v", st, err)
	}
	if d, err := f.CheckDir(ctx, m); err != nil || d != (DirState{Exists: true}) {
		t.Errorf("CheckDir = %+v, %v", d, err)
	}
	if err := f.CleanDir(ctx, m); err != nil {
		t.Errorf("CleanDir: %v", err)
	}
	if kept, err := f.RemoveSocketDir(ctx, m, "10.9.9.9"); err != nil || kept != "" {
		t.Errorf("RemoveSocketDir = %q, %v", kept, err)
	}
	a.output = "the node runs"
	if kept, err := f.RemoveSocketDir(ctx, m, ""); err != nil || kept != "the node runs" {
		t.Errorf("RemoveSocketDir of a running node = %q, %v", kept, err)
	}
	line := cluster.HBALine{Type: "host", Database: "all", User: "all", Address: "10.0.0.0/8", Method: "scram-sha-256"}
	if err := f.EditHBA(ctx, m, HBAEdit{AddTail: []cluster.HBALine{line}, Remove: []cluster.HBALine{line, line}}); err != nil {
		t.Errorf("EditHBA: %v", err)
	}
	if lines, err := f.ReadHBA(ctx, m); err != nil || len(lines) != 1 {
		t.Errorf("ReadHBA = %q, %v", lines, err)
	}
	var got []string
	for _, r := range a.requests() {
		got = append(got, describe(r))
	}
	old := m
	old.Host.Address = "10.9.9.9"
	want := []string{"status /d/n", "checkdir /d/n", "cleandir /d/n",
		"removesocketdir " + cluster.SocketDir(old.Node, old.Host), "removesocketdir " + cluster.SocketDir(m.Node, m.Host),
		"edithba 0 tail 1 remove 2", "readhba /d/n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	a.fail = map[string]error{"CleanDir": status.Error(codes.FailedPrecondition, "the node runs")}
	if pe, ok := pgerror.As(f.CleanDir(ctx, m)); !ok || pe.Code != pgerror.ObjectNotInPrereqState {
		t.Errorf("CleanDir of a running node: %v", pe)
	}
}

// TestAgentsReadsWithoutLogin: the reads report a failed login as a
// ConnectError, which unwraps to the login's error.
func TestAgentsReadsWithoutLogin(t *testing.T) {
	f, m := fleetOf(t, &fakeAgent{})
	ctx := context.Background()
	_, e1 := f.SQLStatus(ctx, m, time.Second)
	_, e2 := f.Replication(ctx, m)
	_, e3 := f.Settings(ctx, m, []string{"port"})
	_, e4 := f.ShowSettings(ctx, m, "wal")
	_, e5 := f.GUCs(ctx, m)
	for i, err := range []error{e1, e2, e3, e4, e5} {
		var ce *ConnectError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no nodes here") {
			t.Errorf("read %d: %v", i+1, err)
		}
	}
}
