package fleet

import (
	"errors"
	"testing"

	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAgentError(t *testing.T) {
	h := cluster.Host{Name: "h1"}
	tests := []struct {
		name              string
		err               error
		code, msg, detail string
		hint              bool
	}{
		{"unreachable", status.Error(codes.Unavailable, "connection refused"), pgerror.ConnectionFailure, "agent not reachable: connection refused", "", true},
		{"timed out", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), pgerror.ConnectionFailure, "agent not reachable: context deadline exceeded", "", true},
		{"bad argument", status.Error(codes.InvalidArgument, "path is relative"), pgerror.InvalidParameterValue, "path is relative", "", false},
		{"precondition", status.Error(codes.FailedPrecondition, "not initialized"), pgerror.ObjectNotInPrereqState, "not initialized", "", false},
		{"cancelled", status.Error(codes.Canceled, "context canceled"), pgerror.QueryCanceled, "context canceled", "", false},
		{"a tool failed", status.Error(codes.Internal, "start /d: pg_ctl failed (exit status 1): FATAL: x\nlast"), pgerror.Internal,
			"start /d: pg_ctl failed (exit status 1): FATAL: x\nlast", "FATAL: x\nlast", false},
		{"internal, no tool", status.Error(codes.Internal, "disk full"), pgerror.Internal, "disk full", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AgentError(h, tt.err)
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != tt.code || pe.Message != tt.msg || pe.Detail != tt.detail || (pe.Hint != "") != tt.hint {
				t.Fatalf("got %#v", pe)
			}
			// Shown as before: the agent's message, once.
			if m := agentclient.Message(err); m != tt.msg || err.Error() != tt.msg {
				t.Errorf("Message = %q, Error = %q", m, err.Error())
			}
			var ae *agentError
			if !errors.As(err, &ae) || ae.Cause() != tt.err || ae.PG() != pe {
				t.Error("the gRPC status is lost")
			}
			if Unreachable(err) != (tt.code == pgerror.ConnectionFailure) {
				t.Errorf("Unreachable = %v", Unreachable(err))
			}
		})
	}
	plain := errors.New("plain")
	if AgentError(h, nil) != nil || AgentError(h, plain) != plain {
		t.Error("non-agent errors must pass unchanged")
	}
	pe := pgerror.New(pgerror.Internal, "x")
	if AgentError(h, pe) != error(pe) {
		t.Error("a translated error must pass unchanged")
	}
	if Unreachable(plain) {
		t.Error("Unreachable(plain)")
	}
}

func TestControlData(t *testing.T) {
	cd := ControlData{"Database cluster state": "shut down in recovery", "Latest checkpoint location": "0/3000028"}
	if !cd.CleanlyShutDown() || cd.ClusterState() != "shut down in recovery" {
		t.Error("clean shutdown in recovery not seen")
	}
	if lsn, err := cd.Checkpoint(); err != nil || lsn != 0x3000028 {
		t.Errorf("Checkpoint = %x, %v", lsn, err)
	}
	if (ControlData{"Database cluster state": "in production"}).CleanlyShutDown() {
		t.Error("a crashed node taken as clean")
	}
}

func TestMember(t *testing.T) {
	s := &cluster.State{Hosts: []cluster.Host{{Name: "h1", Address: "10.0.0.1", PGHome: "/pg", User: "pg"}},
		Nodes: []cluster.Node{{Name: "n", Host: "h1", Port: 5, Path: "/d"}, {Name: "o", Host: "nope"}}}
	m, err := Of(s, "n")
	if err != nil || m.Name() != "n" || m.Host.Address != "10.0.0.1" {
		t.Fatalf("Of = %+v, %v", m, err)
	}
	if r := Ref(m); r.Path != "/d" || r.Port != 5 || r.Address != "10.0.0.1" || r.SocketDir == "" {
		t.Errorf("Ref = %+v", r)
	}
	if _, err := Of(s, "missing"); err == nil {
		t.Error("a missing node resolved")
	}
	if _, err := Of(s, "o"); err == nil {
		t.Error("a node without host resolved")
	}
}

func TestCompareReplication(t *testing.T) {
	want := map[string]string{"a": "sync", "b": "potential", "c": "async"}
	absent, diff := compareReplication(want, map[string]string{"a": "sync", "c": "async"}, false)
	if len(absent) != 1 || absent[0] != "b" || diff != "" {
		t.Errorf("absent %q diff %q", absent, diff)
	}
	_, diff = compareReplication(want, map[string]string{"a": "async", "b": "potential", "c": "async"}, true)
	if diff != ` a is "async" (want "sync");` {
		t.Errorf("diff %q", diff)
	}
	_, diff = compareReplication(want, map[string]string{"a": "sync", "c": "async"}, true)
	if diff == "" {
		t.Error("waitAll accepted a slave not streaming")
	}
}
