package fleet

import (
	"errors"
	"fmt"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestWrap(t *testing.T) {
	h := cluster.Host{Name: "h1"}
	dead := AgentError(h, status.Error(codes.Unavailable, "connection refused"))
	tool := pgerror.New(pgerror.Internal, "pg_ctl failed").WithDetail("last lines")
	plain := errors.New("boom")
	tests := []struct {
		name       string
		err        error
		code       string
		msg, hint  string
		detail     string
		translated bool
	}{
		{"a dead agent keeps 08006 and its hint", dead, pgerror.ConnectionFailure,
			"status of dn1: agent not reachable: connection refused", "Start the agent (START AGENT h1); MONITOR AGENT shows every agent.", "", true},
		{"a tool failure keeps XX000 and its detail", tool, pgerror.Internal, "status of dn1: pg_ctl failed", "", "last lines", true},
		{"an error wrapped on the way is still found", fmt.Errorf("on the way: %w", dead), pgerror.ConnectionFailure,
			"status of dn1: on the way: agent not reachable: connection refused", "Start the agent (START AGENT h1); MONITOR AGENT shows every agent.", "", true},
		{"an untranslated error stays one", plain, "", "status of dn1: boom", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Wrap(tt.err, "status of %s", "dn1")
			if err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", err.Error(), tt.msg)
			}
			if !errors.Is(err, tt.err) {
				t.Error("the wrapped error left the chain")
			}
			pe, ok := pgerror.As(err)
			if ok != tt.translated {
				t.Fatalf("translated = %v, want %v", ok, tt.translated)
			}
			if ok && (pe.Code != tt.code || pe.Message != tt.msg || pe.Hint != tt.hint || pe.Detail != tt.detail) {
				t.Errorf("pgerror = %+v", pe)
			}
			if inner, _ := pgerror.As(tt.err); ok && inner.Message == pe.Message {
				t.Error("the inner error's message was changed")
			}
		})
	}
	if Wrap(nil, "x") != nil || WrapAs(nil, pgerror.ObjectNotInPrereqState, "h", "x") != nil {
		t.Error("nil was wrapped")
	}
}

func TestWrapAs(t *testing.T) {
	dead := AgentError(cluster.Host{Name: "h2"}, status.Error(codes.Unavailable, "connection refused"))
	const hint = "Fix the cause and run FLUSH HOST again."
	tests := []struct {
		name, code, msg, hint string
		err                   error
	}{
		{"an untranslated error gets the code and hint", pgerror.ObjectNotInPrereqState, "FLUSH HOST failed at agents: boom", hint, errors.New("boom")},
		{"a translated one keeps its code, both hints said", pgerror.ConnectionFailure, "FLUSH HOST failed at agents: agent not reachable: connection refused",
			"Start the agent (START AGENT h2); MONITOR AGENT shows every agent. " + hint, dead},
		{"a 55000 without hint gets the command's", pgerror.ObjectNotInPrereqState, "FLUSH HOST failed at agents: dn2 is not running", hint,
			pgerror.New(pgerror.ObjectNotInPrereqState, "dn2 is not running")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WrapAs(tt.err, pgerror.ObjectNotInPrereqState, hint, "FLUSH HOST failed at %s", "agents")
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != tt.code || pe.Message != tt.msg || pe.Hint != tt.hint || err.Error() != tt.msg {
				t.Errorf("err = %v (%+v)", err, pe)
			}
			if !errors.Is(err, tt.err) {
				t.Error("the wrapped error left the chain")
			}
		})
	}
}
