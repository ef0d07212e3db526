package switches

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// What a switchover of dn1 in world() does to the coordinators gc and cn1:
// hold the writes to dn1's tables, re-point in the hold and commit, or
// release the hold.
var (
	holdSteps    = []string{"hold writes gc dn1", "hold writes cn1 dn1"}
	releaseSteps = []string{"release gc", "release cn1"}
	routeSteps   = []string{"repoint gc dn1 to dn1s", "commit gc", "repoint cn1 dn1 to dn1s", "commit cn1"}
)

// canonHolds sorts each run of steps on the coordinators' holds, which
// are made in parallel.
func canonHolds(steps []string) []string {
	out := append([]string(nil), steps...)
	held := func(s string) bool {
		return strings.HasPrefix(s, "hold writes ") || strings.HasPrefix(s, "repoint ") || strings.HasPrefix(s, "commit ")
	}
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && held(out[j]) {
			j++
		}
		sort.Strings(out[i:j])
		i = j + 1
	}
	return out
}

// quickRig is a rig whose maxTrys seconds last a millisecond.
func quickRig() *rig {
	r := newRig(world())
	r.x.Second = time.Millisecond
	return r
}

// TestSwitchoverWaitsForTransactions: busy sessions on the master and a
// coordinator are waited for; once they end the switch goes on.
func TestSwitchoverWaitsForTransactions(t *testing.T) {
	r := newRig(world())
	r.f.Nodes["dn1"].Sessions, r.f.Nodes["cn1"].Sessions = 2, 1
	asked := 0
	r.f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "busy dn1" {
			if asked++; asked == 3 {
				f.Nodes["dn1"].Sessions, f.Nodes["cn1"].Sessions = 0, 0
			}
		}
		return nil
	}
	if _, err := switchover(r, Switchover{MaxTrys: 30}); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, "NOTICE: wait max 30 seconds to wait there are no active connections on coordinators and master nodes",
		"NOTICE: dn1 has 2 active connections", "NOTICE: cn1 has 1 active connections")
	if got := r.f.StepList(); len(got) < 3 || got[2] != "stop dn1 fast" {
		t.Errorf("steps = %q, want the holds then the stop", got)
	}
	if len(r.f.Held) != 0 {
		t.Errorf("writes still held: %v", r.f.Held)
	}
}

// TestSwitchoverBusyRefused: sessions that stay past maxTrys, or a hold
// that cannot lock, refuse the switchover with nothing changed: the holds
// released, the master not touched.
func TestSwitchoverBusyRefused(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*rig)
		notice string
	}{
		{"a transaction on a coordinator", func(r *rig) { r.f.Nodes["cn1"].Sessions = 1 }, "NOTICE: cn1 has 1 active connections"},
		{"a transaction on the master", func(r *rig) { r.f.Nodes["dn1"].Sessions = 3 }, "NOTICE: dn1 has 3 active connections"},
		{"a coordinator that does not answer", func(r *rig) { r.f.Fail["busy gc"] = fleettest.ErrBoom }, ""},
		{"a hold that cannot lock", func(r *rig) { r.f.Fail["lock cn1"] = fleettest.ErrBoom }, "NOTICE: cn1: the writes could not be held: transactions in the way"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := quickRig()
			tt.setup(r)
			_, err := switchover(r, Switchover{})
			pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
			want := "there are some active connections on coordinators or datanode masters"
			if tt.notice == "" {
				want = "cannot count the client sessions of every node before the switch: gc: boom"
			}
			if pe.Message != want {
				t.Errorf("message = %q", pe.Message)
			}
			if tt.notice != "" {
				r.p.Has(t, tt.notice)
			}
			r.steps(t, fleettest.Join(holdSteps, releaseSteps)...)
			r.nodes(t, unchanged)
			if len(r.f.Held) != 0 {
				t.Errorf("writes still held: %v", r.f.Held)
			}
			if n := r.f.Node("dn1"); !n.Running || n.InRecovery {
				t.Errorf("dn1 after a refused switchover: %+v", n)
			}
			r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s failed quiesce")
		})
	}
}

// TestSwitchoverForce: FORCE ends the busy sessions and goes on; a hold
// that cannot lock is released and the switch goes on without it.
func TestSwitchoverForce(t *testing.T) {
	r := quickRig()
	r.f.Nodes["dn1"].Sessions, r.f.Nodes["cn1"].Sessions = 2, 1
	r.f.Fail["lock gc"] = fleettest.ErrBoom
	if _, err := switchover(r, Switchover{Force: true}); err != nil {
		t.Fatal(err)
	}
	var ended []string
	for _, s := range r.f.StepList() {
		if strings.HasPrefix(s, "terminate") {
			ended = append(ended, s)
		}
	}
	sort.Strings(ended)
	fleettest.Diff(t, "ended sessions", []string{"terminate 1 on cn1", "terminate 2 on dn1"}, ended)
	r.p.Has(t, "NOTICE: dn1: ended 2 client sessions", "NOTICE: cn1: ended 1 client sessions",
		"WARNING: the writes through gc are not held during the switch")
	steps := r.f.StepList()
	want := fleettest.Join([]string{"release gc", "stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name",
		"repoint cn1 dn1 to dn1s", "commit cn1", "rename dn1 to dn1s on gc", "coordinator gc", "checkpoint dn1s"})
	i := len(steps) - len(want)
	for k, s := range steps {
		if s == "release gc" {
			i = k
		}
	}
	fleettest.Diff(t, "steps from the release", want, steps[i:min(i+len(want), len(steps))])
	if len(r.f.Held) != 0 {
		t.Errorf("writes still held: %v", r.f.Held)
	}
	r.nodes(t, map[string]string{"dn1s": "datanode master   true true true"})
}

// TestSwitchoverGtmcoordHoldsNothing: a gtmcoord switchover counts the
// sessions on the gtmcoord master and the coordinators but holds no
// writes: no datanode's data moves.
func TestSwitchoverGtmcoordHoldsNothing(t *testing.T) {
	s := world()
	fleettest.AddNode(s, "gcs", "h2", "gtmcoord slave", "gc", "sync", true)
	r := newRig(s)
	r.x.Second = time.Millisecond
	r.f.Nodes["gc"].Sessions = 1
	_, err := switchover(r, Switchover{Family: "gtmcoord", Slave: "gcs"})
	wantCode(t, err, pgerror.ObjectNotInPrereqState)
	r.p.Has(t, "NOTICE: gc has 1 active connections")
	r.steps(t)
}
