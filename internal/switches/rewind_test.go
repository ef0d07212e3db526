package switches

import (
	"context"
	"fmt"
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

// baseBackup is what REWIND dn1 BASEBACKUP issues from its stop to its
// start (the node was stopped already).
var baseBackup = []string{"stop dn1 fast", "clean dn1", "slot dn1 on dn1s", "basebackup dn1 from dn1s", "configure dn1",
	"standby dn1 of dn1s", "start dn1"}

// rejoined are a REWIND's steps after the start of dn1.
var rejoined = fleettest.Join([]string{`syncnames dn1s FIRST 1 ("dn1p", "dn1")`}, coordinatorSteps("", ""))

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
	r.journal(t, "REWIND dn1 running start", "REWIND dn1 running pg_rewind", "REWIND dn1 running configure", "REWIND dn1 running rejoined", "REWIND dn1 done end")
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

// TestRewindFailures: a failed step of REWIND, or of REWIND … BASEBACKUP,
// is journaled by name and the node stays out of the cluster; a failure on
// the node's own data directory offers the base backup.
func TestRewindFailures(t *testing.T) {
	const hint = "REWIND DATANODE SLAVE dn1 BASEBACKUP makes it a slave of dn1s from a new base backup."
	// The rows written before the step, after "running start".
	copied, rewound := []string{"pg_rewind"}, []string{"pg_rewind", "configure"}
	backedUp, restored := []string{"pg_basebackup"}, []string{"pg_basebackup", "configure"}
	for _, step := range []struct {
		base             bool
		fail, name, hint string
		rows             []string
	}{
		{false, "stop dn1 fast", "stop", hint, nil},
		{false, "checkpoint dn1s", "checkpoint on dn1s", "", nil},
		{false, "slot dn1 on dn1s", "replication slot", "", nil},
		{false, "rewind dn1 from dn1s", "pg_rewind", hint, copied},
		{false, "configure dn1", "configure", hint, rewound},
		{false, "standby dn1 of dn1s", "standby", hint, rewound},
		{false, "start dn1", "start", hint, rewound},
		{true, "clean dn1", "clean", "", nil},
		{true, "slot dn1 on dn1s", "replication slot", "", nil},
		{true, "basebackup dn1 from dn1s", "pg_basebackup", "", backedUp},
		{true, "configure dn1", "configure", "", restored},
		{true, "standby dn1 of dn1s", "standby", "", restored},
		{true, "start dn1", "start", "", restored},
	} {
		t.Run(fmt.Sprintf("%s base backup %v", step.name, step.base), func(t *testing.T) {
			r := afterFailover(t)
			r.f.Fail[step.fail] = fleettest.ErrBoom
			_, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", BaseBackup: step.base}, r.p)
			pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
			if want := "rewind dn1: " + step.name + ": boom"; pe.Message != want || pe.Hint != step.hint {
				t.Errorf("error = %q (hint %q), want %q (hint %q)", pe.Message, pe.Hint, want, step.hint)
			}
			r.nodes(t, map[string]string{"dn1": "datanode slave dn1s async false false false"})
			want := []string{"REWIND dn1 running start"}
			for _, row := range step.rows {
				want = append(want, "REWIND dn1 running "+row)
			}
			r.journal(t, append(want, "REWIND dn1 failed "+step.name)...)
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

// TestRewindToolFails: a failed pg_rewind says why — the tool's last lines
// as the DETAIL — and offers the base backup.
func TestRewindToolFails(t *testing.T) {
	r := afterFailover(t)
	r.f.Fail["rewind dn1 from dn1s"] = pgerror.New(pgerror.Internal, "node /d/dn1: pg_rewind failed (exit status 1): pg_rewind: servers diverged").
		WithDetail("pg_rewind: servers diverged at WAL location 0/410D620 on timeline 2\npg_rewind: error: could not find previous WAL record")
	_, err := rewind(r, "dn1")
	pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
	if pe.Message != "rewind dn1: pg_rewind failed" || !strings.Contains(pe.Detail, "could not find previous WAL record") ||
		!strings.Contains(pe.Hint, "REWIND DATANODE SLAVE dn1 BASEBACKUP") {
		t.Errorf("error = %q / %q / %q", pe.Message, pe.Detail, pe.Hint)
	}
	r.journal(t, "REWIND dn1 running start", "REWIND dn1 running pg_rewind", "REWIND dn1 failed pg_rewind")
}

// TestRewindBaseBackup: REWIND … BASEBACKUP empties the node's directory,
// copies its master again and ends as REWIND does.
func TestRewindBaseBackup(t *testing.T) {
	r := afterFailover(t)
	res, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", BaseBackup: true}, r.p)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{"dn1", "rewind by base backup success"}) {
		t.Errorf("result = %+v", res)
	}
	r.nodes(t, map[string]string{"dn1": "datanode slave dn1s potential true true true", "dn1p": "datanode slave dn1s sync true true true"})
	r.steps(t, fleettest.Join(baseBackup, rejoined)...)
	r.journal(t, "REWIND dn1 running start", "REWIND dn1 running pg_basebackup", "REWIND dn1 running configure", "REWIND dn1 running rejoined", "REWIND dn1 done end")
	r.p.Has(t, "pg_basebackup dn1 from dn1s")
	if n := r.f.Node("dn1"); !n.Running || !n.InRecovery || n.Parent != "dn1s" {
		t.Errorf("dn1 after the base backup: %+v", n)
	}
}

// TestRewindBaseBackupOfAnInitialisedNode: a node the catalog counts as
// initialised is kicked out before its directory is emptied, so that a
// failure never leaves the catalog naming an empty directory a node.
func TestRewindBaseBackupOfAnInitialisedNode(t *testing.T) {
	r := newRig(world())
	r.f.Fail["basebackup dn1p from dn1"] = fleettest.ErrBoom
	_, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1p", BaseBackup: true}, r.p)
	pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
	if pe.Message != "rewind dn1p: pg_basebackup: boom" || pe.Hint != "" {
		t.Errorf("error = %q, hint %q", pe.Message, pe.Hint)
	}
	r.nodes(t, map[string]string{"dn1p": "datanode slave dn1 async false false true"})
	r.journal(t, "REWIND dn1p running start", "REWIND dn1p running kick out dn1p", "REWIND dn1p running pg_basebackup", "REWIND dn1p failed pg_basebackup")
}

// TestRewindBaseBackupStop: a node that does not stop fast is stopped in
// immediate mode; one that stops in neither is refused.
func TestRewindBaseBackupStop(t *testing.T) {
	r := afterFailover(t)
	r.f.Nodes["dn1"].Running = true
	r.f.Fail["stop dn1 fast"] = fleettest.ErrBoom
	if _, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", BaseBackup: true}, r.p); err != nil {
		t.Fatal(err)
	}
	if steps := r.f.StepList(); len(steps) < 3 || steps[1] != "stop dn1 immediate" || steps[2] != "clean dn1" {
		t.Errorf("steps = %q", steps)
	}
	r = afterFailover(t)
	r.f.Fail["stop dn1 fast"], r.f.Fail["stop dn1 immediate"] = fleettest.ErrBoom, fleettest.ErrBoom
	_, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", BaseBackup: true}, r.p)
	if pe := wantCode(t, err, pgerror.ObjectNotInPrereqState); !strings.HasPrefix(pe.Message, "rewind dn1: stop: boom") {
		t.Errorf("message = %q", pe.Message)
	}
	r.steps(t, "stop dn1 fast", "stop dn1 immediate")
}

// TestRewindFallsBackToBaseBackup: the doctor's REWIND goes on with a base
// backup when a step on the node's data fails, journaled and warned; a
// failure on the master does not fall back.
func TestRewindFallsBackToBaseBackup(t *testing.T) {
	for _, step := range []string{"rewind dn1 from dn1s", "start dn1"} {
		t.Run(step, func(t *testing.T) {
			r := afterFailover(t)
			fails := 1
			r.f.Before = func(_ *fleettest.Fleet, s string) error {
				if s == step && fails > 0 {
					fails--
					return fleettest.ErrBoom
				}
				return nil
			}
			res, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", FallbackBaseBackup: true}, r.p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Description != "rewind by base backup success" {
				t.Errorf("result = %+v", res)
			}
			r.nodes(t, map[string]string{"dn1": "datanode slave dn1s potential true true true"})
			label := map[string]string{"rewind dn1 from dn1s": "pg_rewind", "start dn1": "start"}[step]
			want := []string{"REWIND dn1 running start", "REWIND dn1 running pg_rewind"}
			if step == "start dn1" {
				want = append(want, "REWIND dn1 running configure")
			}
			r.journal(t, append(want, "REWIND dn1 running "+label+" failed", "REWIND dn1 running pg_basebackup",
				"REWIND dn1 running configure", "REWIND dn1 running rejoined", "REWIND dn1 done end")...)
			r.p.Has(t, "WARNING: dn1 could not be rewound (boom); making it a slave of dn1s from a new base backup instead")
			steps := r.f.StepList()
			if tail := fleettest.Join(baseBackup, rejoined); len(steps) < len(tail) ||
				strings.Join(steps[len(steps)-len(tail):], "|") != strings.Join(tail, "|") {
				t.Errorf("steps = %q, want them to end with %q", steps, tail)
			}
		})
	}
	t.Run("the master cannot checkpoint", func(t *testing.T) {
		r := afterFailover(t)
		r.f.Fail["checkpoint dn1s"] = fleettest.ErrBoom
		_, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", FallbackBaseBackup: true}, r.p)
		if pe := wantCode(t, err, pgerror.ObjectNotInPrereqState); pe.Message != "rewind dn1: checkpoint on dn1s: boom" {
			t.Errorf("message = %q", pe.Message)
		}
		r.journal(t, "REWIND dn1 running start", "REWIND dn1 failed checkpoint on dn1s")
	})
	t.Run("the base backup fails too", func(t *testing.T) {
		r := afterFailover(t)
		r.f.Fail["rewind dn1 from dn1s"], r.f.Fail["basebackup dn1 from dn1s"] = fleettest.ErrBoom, fleettest.ErrBoom
		_, err := r.x.Rewind(context.Background(), Rewind{Family: cluster.Datanode, Slave: "dn1", FallbackBaseBackup: true}, r.p)
		if pe := wantCode(t, err, pgerror.ObjectNotInPrereqState); pe.Message != "rewind dn1: pg_basebackup: boom" {
			t.Errorf("message = %q", pe.Message)
		}
		r.nodes(t, map[string]string{"dn1": "datanode slave dn1s async false false false"})
		r.journal(t, "REWIND dn1 running start", "REWIND dn1 running pg_rewind", "REWIND dn1 running pg_rewind failed",
			"REWIND dn1 running pg_basebackup", "REWIND dn1 failed pg_basebackup")
	})
}
