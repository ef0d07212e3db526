package fleet

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/agent"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An agent's refusal to start a node whose host lacks the node library is
// 58P01 naming the host, with the hint to install it; a wrapping caller
// (INIT's "pg_ctl start: …") keeps both.
func TestAgentErrorMissingLibrary(t *testing.T) {
	const msg = `node /d/dn1 preloads the library "adb" (shared_preload_libraries), but /pg/lib/adb.so does not exist`
	st, err := status.New(codes.FailedPrecondition, msg).WithDetails(&errdetails.PreconditionFailure{
		Violations: []*errdetails.PreconditionFailure_Violation{{Type: agent.MissingLibraryType, Subject: "/pg/lib/adb.so", Description: msg}}})
	if err != nil {
		t.Fatal(err)
	}
	got := Wrap(AgentError(cluster.Host{Name: "h9"}, st.Err()), "pg_ctl start")
	pe, ok := pgerror.As(got)
	if !ok || pe.Code != pgerror.UndefinedFile || pe.Message != `pg_ctl start: host "h9": `+msg ||
		pe.Hint != "Install adbmgr's node library on that host: make ext-install, or the adbmgr package." {
		t.Fatalf("got %#v", pe)
	}
	// Another violation type stays an ordinary precondition.
	st, _ = status.New(codes.FailedPrecondition, "x").WithDetails(&errdetails.PreconditionFailure{
		Violations: []*errdetails.PreconditionFailure_Violation{{Type: "OTHER"}}})
	if pe, _ := pgerror.As(AgentError(cluster.Host{Name: "h9"}, st.Err())); pe.Code != pgerror.ObjectNotInPrereqState {
		t.Errorf("OTHER: %#v", pe)
	}
}
