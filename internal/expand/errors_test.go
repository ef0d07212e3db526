package expand

import (
	"context"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// TestFailureKeepsTranslatedCode: an agent that dies during EXPAND or
// APPEND reaches the client as 08006 with its START AGENT hint (and the
// command's own hint after it), not as a 55000 that hides it.
func TestFailureKeepsTranslatedCode(t *testing.T) {
	const startAgent = "Start the agent (START AGENT h3); MONITOR AGENT shows every agent. "
	tests := []struct {
		name string
		run  func(r *rig) error
		msg  string
		hint string
	}{
		{"EXPAND", func(r *rig) error {
			_, err := r.x.Copy(context.Background(), "dn1", "dn2", r.p)
			return err
		}, "expand dn1 to dn2: pg_basebackup from dn1: agent not reachable: connection refused",
			startAgent + "CLEAN DATANODE MASTER dn2, then run EXPAND DATANODE MASTER again."},
		{"APPEND", func(r *rig) error {
			_, err := r.x.Append(context.Background(), appendOf("dn3", cluster.DatanodeMaster, ""), r.p)
			return err
		}, "APPEND dn3 failed: initdb: agent not reachable: connection refused",
			startAgent + "Fix the cause; CLEAN the node if its directory is not empty, then APPEND it again."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			r.f.AgentDown["h3"] = true
			err := tt.run(r)
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != pgerror.ConnectionFailure || pe.Message != tt.msg || pe.Hint != tt.hint || err.Error() != tt.msg {
				t.Fatalf("err = %v (%+v)", err, pe)
			}
		})
	}
}
