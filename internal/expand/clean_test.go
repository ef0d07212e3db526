package expand

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

const cleanCmd = "EXPAND CLEAN"

// activated puts the world in the state EXPAND ACTIVATE of dn1 TO dn2 left.
func (r *rig) activated() {
	r.copied("dn2")
	for i, n := range r.cat.sn.State.Nodes {
		if n.Name == "dn2" {
			r.cat.sn.State.Nodes[i].InCluster = true
		}
	}
	moved := slotsWhere(func(k int) bool { return k%2 == 1 })
	for _, k := range moved {
		r.f.SlotMap[k] = "dn2"
	}
	r.f.Nodes["dn2"].InRecovery, r.f.Nodes["dn2"].Parent = false, ""
	r.cat.sn.Expansions = []cluster.Expansion{{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated, Slots: moved}}
}

func TestClean(t *testing.T) {
	r := newRig(world())
	r.activated()
	got, err := r.x.Clean(context.Background(), r.p)
	if err != nil {
		t.Fatal(err)
	}
	rows(t, got, Row{Node: "dn1", OK: true, Description: "32 shard tables emptied"}, Row{Node: "dn2", OK: true, Description: "32 shard tables emptied"})
	r.steps(t, "truncate dn1 1 tables slots "+odd, "truncate dn2 1 tables slots "+even)
	r.journal(t, cleanCmd+": running start", cleanCmd+": running cleaned dn2", cleanCmd+": done end")
	r.growth(t)
}

func TestCleanNothing(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	got, err := r.x.Clean(context.Background(), r.p)
	if err != nil {
		t.Fatal(err)
	}
	rows(t, got, Row{OK: true, Description: "No database need expand clean."})
	r.steps(t)
	r.journal(t)
	r.growth(t, "dn2<dn1 copied ")
}

func TestCleanFails(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*rig)
		want  string
		steps []string
		rows  []string
	}{
		{"no coordinator in the cluster", func(r *rig) {
			for i := range r.cat.sn.State.Nodes[:2] {
				r.cat.sn.State.Nodes[i].InCluster = false
			}
		}, "no coordinator in the cluster", nil, nil},
		{"the coordinator does not answer", func(r *rig) { r.f.Nodes["gc"].Running = false }, "connection refused", nil, nil},
		{"a datanode cannot be emptied", func(r *rig) { r.f.Fail["truncate dn2 1 tables slots "+even] = fleettest.ErrBoom }, "clean dn2: boom",
			[]string{"truncate dn1 1 tables slots " + odd, "truncate dn2 1 tables slots " + even},
			[]string{cleanCmd + ": running start", cleanCmd + ": failed truncate"}},
		{"the catalog write fails", func(r *rig) { r.cat.fail["running cleaned dn2"] = fleettest.ErrBoom }, "boom",
			[]string{"truncate dn1 1 tables slots " + odd, "truncate dn2 1 tables slots " + even},
			[]string{cleanCmd + ": running start", cleanCmd + ": failed catalog"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			r.activated()
			tt.setup(r)
			_, err := r.x.Clean(context.Background(), r.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Clean = %v, want %q", err, tt.want)
			}
			r.steps(t, tt.steps...)
			r.journal(t, tt.rows...)
			r.growth(t, "dn2<dn1 activated "+odd)
		})
	}
}

func TestStatus(t *testing.T) {
	r := newRig(world())
	r.copied("dn3")
	r.cat.sn.Expansions = append(r.cat.sn.Expansions, cluster.Expansion{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated, Slots: []int{1, 3}})
	got, err := r.x.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	rows(t, got, Row{Node: "dn3", OK: true, Description: "streaming from dn1; run EXPAND ACTIVATE"},
		Row{Node: "dn2", OK: true, Description: "activated (dn1:1,3); run EXPAND CLEAN"})
	// EXPAND DOCHECK STATUS: not while an expansion waits for its clean.
	if _, err := r.x.Status(context.Background(), true); err == nil || !strings.Contains(err.Error(), "cluster status is expanding") {
		t.Errorf("DOCHECK = %v", err)
	}
}

// TestStatusAfterInterruption: the rows say what the nodes show and the
// command that takes each expansion up.
func TestStatusAfterInterruption(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	r.f.Nodes["dn2"].Running = false
	r.f.ReplSlots = map[string]bool{"dn1 dn3": true}
	r.cat.sn.Journal = []cluster.JournalRecord{{Command: "EXPAND DATANODE MASTER dn1 TO dn3", Status: "interrupted", Step: "start"}}
	got, err := r.x.Status(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	rows(t, got, Row{Node: "dn2", Description: "dn2 is not running; run EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn2 to start it again as a copy of dn1"},
		Row{Node: "dn3", Description: `EXPAND DATANODE MASTER dn1 TO dn3 was interrupted (step "start"): dn1 keeps a replication slot for dn3; ` +
			"run EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3 to drop it, then EXPAND DATANODE MASTER dn1 TO dn3 again"})
}

// TestCopyActivateClean runs one expansion through its three statements.
func TestCopyActivateClean(t *testing.T) {
	r := newRig(world())
	ctx := context.Background()
	if _, err := r.x.Copy(ctx, "dn1", "dn2", r.p); err != nil {
		t.Fatal(err)
	}
	if got, err := r.x.Activate(ctx, r.p); err != nil || !got[0].OK {
		t.Fatalf("Activate = %+v, %v", got, err)
	}
	if _, err := r.x.Clean(ctx, r.p); err != nil {
		t.Fatal(err)
	}
	r.growth(t)
	r.nodes(t, map[string]string{"dn2": "datanode master   true true"})
	if len(r.f.Owned("dn1")) != coord.Slots/2 || len(r.f.Owned("dn2")) != coord.Slots/2 {
		t.Errorf("slots: dn1 %v, dn2 %v", r.f.Owned("dn1"), r.f.Owned("dn2"))
	}
}
