package switches

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// afterFailover is a rig where dn1 failed over to dn1s and was kicked out.
func afterFailover(t *testing.T) *rig {
	t.Helper()
	r := newRig(world())
	if _, err := failover(r, Failover{}); err != nil {
		t.Fatal(err)
	}
	r.f.Reset()
	r.cat.Rows, r.p.Lines = nil, nil
	return r
}

func rewind(r *rig, slave string) (Result, error) {
	return r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: slave}, r.p)
}

func TestRewind(t *testing.T) {
	r := afterFailover(t)
	res, err := rewind(r, "dn1")
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{"dn1", "rewind success"}) {
		t.Errorf("result = %+v", res)
	}
	r.nodes(t, map[string]string{"dn1": "datanode slave dn1s potential true true true", "dn1p": "datanode slave dn1s sync true true true"})
	r.steps(t, fleettest.Join([]string{"stop dn1 fast", "checkpoint dn1s", "slot dn1 on dn1s", "rewind dn1 from dn1s", "configure dn1",
		"standby dn1 of dn1s", "start dn1", `syncnames dn1s FIRST 1 ("dn1p", "dn1")`}, coordinatorSteps("", ""))...)
	r.journal(t, "REWIND dn1 running start", "REWIND dn1 running rejoined", "REWIND dn1 done end")
	r.p.Has(t, "pg_rewind dn1 from dn1s", "pg_rewind: Done!", `refresh datanode master "dn1s" synchronous_standby_names='FIRST 1 ("dn1p", "dn1")'`)
}

// TestRewindAfterACrash: pg_rewind needs a clean shutdown; a node that
// crashed is started once as a standby, never as a primary.
func TestRewindAfterACrash(t *testing.T) {
	r := afterFailover(t)
	r.f.Nodes["dn1"].Control = fleet.ControlData{"Database cluster state": "in production"}
	if _, err := rewind(r, "dn1"); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, "dn1 was not shut down cleanly (in production): starting it once as a standby")
	steps := r.f.StepList()
	want := []string{"stop dn1 fast", "standby dn1 of dn1s", "start dn1", "stop dn1 fast", "checkpoint dn1s"}
	if len(steps) < len(want) || strings.Join(steps[:len(want)], "|") != strings.Join(want, "|") {
		t.Errorf("steps = %q, want them to begin with %q", steps, want)
	}
}

func TestRewindRefusals(t *testing.T) {
	tests := []struct {
		name  string
		slave string
		setup func(*rig)
		code  string
		msg   string
	}{
		{"no such slave", "nope", nil, pgerror.UndefinedObject, `datanode slave "nope" does not exist`},
		{"its master is out", "dn1", func(r *rig) { r.cat.sn.State.Nodes[3].InCluster = false }, pgerror.ObjectNotInPrereqState, "is not in the cluster"},
		{"its agent is down", "dn1", func(r *rig) { r.f.AgentDown["h1"] = true }, pgerror.ObjectNotInPrereqState, `the agent on host "h1" is not running`},
		{"its master is down", "dn1", func(r *rig) { r.f.Nodes["dn1s"].Running = false }, pgerror.ObjectNotInPrereqState, "does not running normal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := afterFailover(t)
			if tt.setup != nil {
				tt.setup(r)
			}
			_, err := rewind(r, tt.slave)
			if pe := wantCode(t, err, tt.code); !strings.Contains(pe.Message, tt.msg) {
				t.Errorf("message = %q, want %q", pe.Message, tt.msg)
			}
			r.steps(t)
			r.journal(t)
		})
	}
}

// TestRewindFailures: a failed step is journaled by name and the node stays
// out of the cluster.
func TestRewindFailures(t *testing.T) {
	for _, step := range []struct{ fail, name string }{
		{"stop dn1 fast", "stop"},
		{"checkpoint dn1s", "checkpoint on dn1s"},
		{"slot dn1 on dn1s", "replication slot"},
		{"rewind dn1 from dn1s", "pg_rewind"},
		{"configure dn1", "configure"},
		{"standby dn1 of dn1s", "standby"},
		{"start dn1", "start"},
	} {
		t.Run(step.name, func(t *testing.T) {
			r := afterFailover(t)
			r.f.Fail[step.fail] = fleettest.ErrBoom
			_, err := rewind(r, "dn1")
			pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
			if want := "rewind dn1: " + step.name + ": boom"; pe.Message != want {
				t.Errorf("message = %q, want %q", pe.Message, want)
			}
			r.nodes(t, map[string]string{"dn1": "datanode slave dn1s async false false false"})
			r.journal(t, "REWIND dn1 running start", "REWIND dn1 failed "+step.name)
		})
	}
}

func TestRewindRejoinFails(t *testing.T) {
	r := afterFailover(t)
	r.cat.fail["running rejoined"] = fleettest.ErrBoom
	if _, err := rewind(r, "dn1"); err != fleettest.ErrBoom {
		t.Fatalf("err = %v", err)
	}
}
