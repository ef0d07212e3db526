package switches

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func switchover(r *rig, req Switchover) (Result, error) {
	if req.Family == "" {
		req.Family = cluster.Datanode
	}
	if req.Slave == "" {
		req.Slave = "dn1s"
	}
	return r.x.Switchover(context.Background(), req, r.p)
}

func TestSwitchover(t *testing.T) {
	r := newRig(world())
	res, err := switchover(r, Switchover{})
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{"dn1s", "switchover datanode success"}) {
		t.Errorf("result = %+v", res)
	}
	r.nodes(t, map[string]string{
		"dn1":  "datanode slave dn1s sync true true true",
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s potential true true true",
	})
	r.steps(t, fleettest.Join(holdSteps, []string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"},
		routeSteps, []string{"checkpoint dn1s", "standby dn1 of dn1s", "start dn1", "dropslots dn1", "standby dn1p of dn1s", "reload dn1p",
			`syncnames dn1s FIRST 1 ("dn1", "dn1p")`}, coordinatorSteps("", ""))...)
	r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s running stop old master dn1", "SWITCHOVER dn1s running promote dn1s", "SWITCHOVER dn1s running catalog", "SWITCHOVER dn1s done end")
	r.p.Has(t, "wait max 10 seconds to wait there are no active connections on coordinators and master nodes",
		"wait max 10 seconds to check dn1 and dn1s have the same xlog position", "dn1 has followed dn1s success",
		"Switch the datanode master from dn1 to dn1s has been successfully completed")
	if n := r.f.Node("dn1"); !n.Running || !n.InRecovery || n.Parent != "dn1s" {
		t.Errorf("dn1 after the switchover: %+v", n)
	}
}

func TestSwitchoverRefusals(t *testing.T) {
	tests := []struct {
		name  string
		req   Switchover
		setup func(*rig)
		code  string
		msg   string
	}{
		{"no such slave", Switchover{Slave: "nope"}, nil, pgerror.UndefinedObject, "nope is not a slave node"},
		{"a cascaded slave", Switchover{Slave: "c"}, func(r *rig) {
			r.cat.sn.State.Nodes = append(r.cat.sn.State.Nodes, cluster.Node{ID: 9, Name: "c", Host: "h3", Type: cluster.DatanodeSlave, Master: "dn1s", InCluster: true})
		}, pgerror.ObjectNotInPrereqState, "only a direct slave of a master can take over"},
		{"out of the cluster", Switchover{}, func(r *rig) { r.cat.sn.State.Nodes[3].InCluster = false }, pgerror.ObjectNotInPrereqState, "must be in the cluster"},
		{"the slave is down", Switchover{}, func(r *rig) { r.f.Nodes["dn1s"].Running = false }, pgerror.ObjectNotInPrereqState, "expected running status is slave mode"},
		{"a sync sibling is down", Switchover{}, func(r *rig) { r.f.Nodes["dn1p"].Running = false }, pgerror.ObjectNotInPrereqState, "dn1p failed"},
		{"the master is a standby", Switchover{}, func(r *rig) { r.f.Nodes["dn1"].InRecovery = true }, pgerror.ObjectNotInPrereqState, "it is in recovery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			if tt.setup != nil {
				tt.setup(r)
			}
			_, err := switchover(r, tt.req)
			pe := wantCode(t, err, tt.code)
			if !strings.Contains(pe.Message, tt.msg) {
				t.Errorf("message = %q, want %q", pe.Message, tt.msg)
			}
			r.steps(t)
			r.journal(t)
		})
	}
}

func TestSwitchoverForceWithASiblingDown(t *testing.T) {
	r := newRig(world())
	r.f.Nodes["dn1p"].Running = false
	if _, err := switchover(r, Switchover{Force: true}); err != nil {
		t.Fatal(err)
	}
	// dn1p did not answer before the switch: it is not re-pointed now.
	for _, s := range r.f.StepList() {
		if strings.Contains(s, "dn1p") && !strings.HasPrefix(s, "syncnames") {
			t.Errorf("step %q on the dead dn1p", s)
		}
	}
}

func TestSwitchoverReverts(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*rig)
		msg     string
		steps   []string
		journal string
	}{
		{"the old master's agent is down", func(r *rig) { r.f.AgentDown["h1"] = true }, "agent on host \"h1\" is not running",
			fleettest.Join(holdSteps, releaseSteps), "SWITCHOVER dn1s failed stop old master"},
		{"the old master did not stop cleanly", func(r *rig) { r.f.Fail["stop dn1 fast"] = fleettest.ErrBoom }, "did not shut down cleanly (in production)",
			fleettest.Join(holdSteps, []string{"stop dn1 fast", "stop dn1 immediate"}, releaseSteps, []string{"start dn1"}), "SWITCHOVER dn1s failed revert"},
		{"its control data cannot be read", func(r *rig) { r.f.Fail["controldata dn1"] = fleettest.ErrBoom }, "read the control data of dn1: boom",
			fleettest.Join(holdSteps, []string{"stop dn1 fast"}, releaseSteps, []string{"start dn1"}), "SWITCHOVER dn1s failed revert"},
		{"the slave does not catch up", func(r *rig) { r.f.Fail["waitreplay dn1s"] = fleettest.ErrBoom }, "check dn1 and dn1s have the same xlog position failed",
			fleettest.Join(holdSteps, []string{"stop dn1 fast"}, releaseSteps, []string{"start dn1"}), "SWITCHOVER dn1s failed revert"},
		{"the promotion fails", func(r *rig) { r.f.Fail["end recovery dn1s"] = fleettest.ErrBoom }, "promote dn1s: boom",
			fleettest.Join(holdSteps, []string{"stop dn1 fast", "end recovery dn1s"}, releaseSteps, []string{"start dn1"}), "SWITCHOVER dn1s failed revert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			_, err := switchover(r, Switchover{})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			r.nodes(t, unchanged)
			r.steps(t, tt.steps...)
			if len(r.f.Held) != 0 {
				t.Errorf("writes still held: %v", r.f.Held)
			}
			if rows := r.cat.Rows; len(rows) == 0 || rows[len(rows)-1] != tt.journal {
				t.Errorf("journal = %q, want it to end with %q", rows, tt.journal)
			}
		})
	}
}

// TestSwitchoverOldMasterCannotFollow: after the promotion nothing is
// reverted; the old master leaves the cluster until REWIND, so that no
// commit waits for it.
func TestSwitchoverOldMasterCannotFollow(t *testing.T) {
	r := newRig(world())
	r.f.Fail["start dn1"] = fleettest.ErrBoom
	if _, err := switchover(r, Switchover{}); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, "WARNING: dn1 could not follow dn1s: boom; REWIND DATANODE SLAVE dn1 repairs it")
	r.nodes(t, map[string]string{"dn1": "datanode slave dn1s async false false true", "dn1s": "datanode master   true true true"})
	r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s running stop old master dn1", "SWITCHOVER dn1s running promote dn1s", "SWITCHOVER dn1s running catalog", "SWITCHOVER dn1s running kick out dn1", "SWITCHOVER dn1s done end")
	r.steps(t, fleettest.Join(holdSteps, []string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"},
		routeSteps, []string{"checkpoint dn1s", "standby dn1 of dn1s", "start dn1", "standby dn1p of dn1s", "reload dn1p",
			`syncnames dn1s FIRST 1 ("dn1p")`}, coordinatorSteps("", ""))...)
}

func TestSwitchoverCatalogFailsAfterPromotion(t *testing.T) {
	r := newRig(world())
	r.cat.fail["running catalog"] = fleettest.ErrBoom
	_, err := switchover(r, Switchover{})
	wantCode(t, err, pgerror.Internal)
	r.steps(t, fleettest.Join(holdSteps, []string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"}, releaseSteps)...)
	r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s running stop old master dn1", "SWITCHOVER dn1s running promote dn1s", "SWITCHOVER dn1s failed catalog")
}
