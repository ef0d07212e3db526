package expand

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// halfCopy is what a base backup of dn2 cut short left: a directory,
// nothing in the catalog, nothing running.
func (r *rig) halfCopy(dst string) {
	r.f.Nodes[dst] = &fleettest.Node{Conf: map[string]string{}}
}

// prepared is what an activation of dst from dn1 interrupted after its
// GrowPrepare left on the coordinators: slots wait to go to dst.
func (r *rig) prepare(dst string, slots []int) {
	r.f.Prepared = map[string]fleettest.PreparedHold{}
	for _, c := range []string{"gc", "cn1"} {
		r.f.Prepared[c+" "+coord.HoldGID(dst)] = fleettest.PreparedHold{Dst: dst, Slots: slots}
	}
}

// refused checks that err is a refusal with code whose message holds msg.
func refused(t *testing.T, err error, code, msg string) {
	t.Helper()
	var pe *pgerror.Error
	if !errors.As(err, &pe) || pe.Code != code || !strings.Contains(err.Error()+" "+pe.Hint, msg) {
		t.Errorf("error %v, want %s with %q", err, code, msg)
	}
}

func TestRecoverFail(t *testing.T) {
	ctx := context.Background()
	t.Run("a base backup cut short", func(t *testing.T) {
		r := newRig(world())
		r.halfCopy("dn2")
		desc, err := r.x.RecoverFail(ctx, "dn1", "dn2", r.p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(desc, "run EXPAND DATANODE MASTER dn1 TO dn2 again") {
			t.Errorf("description %q", desc)
		}
		r.steps(t, "clean dn2", "dropslot dn2 on dn1")
		r.nodes(t, map[string]string{"dn2": "datanode master   false false"})
		r.journal(t, "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2: running start", "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2: done rolled back")
	})
	t.Run("a copy waiting for its activation, running", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		if _, err := r.x.RecoverFail(ctx, "dn1", "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		r.steps(t, "stop dn2 immediate", "clean dn2", "dropslot dn2 on dn1")
		r.growth(t)
		r.nodes(t, map[string]string{"dn2": "datanode master   false false"})
	})
	t.Run("an activation interrupted after the prepare", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		r.f.Nodes["dn2"].InRecovery = false // promoted even: nothing committed
		r.prepare("dn2", slotsWhere(func(k int) bool { return k%2 == 1 }))
		if _, err := r.x.RecoverFail(ctx, "dn1", "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		if len(r.f.Prepared) != 0 || len(r.f.Owned("dn1")) != coord.Slots {
			t.Errorf("prepared %v, dn1 owns %d slots", r.f.Prepared, len(r.f.Owned("dn1")))
		}
		r.p.Has(t, "NOTICE: gc: rolled back what the interrupted activation of dn2 prepared")
		r.p.Has(t, "NOTICE: dn2 was promoted by the interrupted activation: its copy is discarded")
		r.growth(t)
	})
	t.Run("a copy promoted, then killed", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		r.f.Nodes["dn2"].Running, r.f.Nodes["dn2"].InRecovery = false, false
		r.cat.sn.Journal = []cluster.JournalRecord{{Command: "EXPAND ACTIVATE", Status: "interrupted", Step: "promote dn2"}}
		if _, err := r.x.RecoverFail(ctx, "dn1", "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		r.p.Has(t, "NOTICE: dn2 was promoted by the interrupted activation: its copy is discarded. No coordinator routes a slot to dn2")
		r.steps(t, "clean dn2", "dropslot dn2 on dn1")
	})
	t.Run("only the slot of a base backup cut short", func(t *testing.T) {
		r := newRig(world())
		r.f.ReplSlots = map[string]bool{"dn1 dn2": true}
		desc, err := r.x.RecoverFail(ctx, "dn1", "dn2", r.p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(desc, "run EXPAND DATANODE MASTER dn1 TO dn2 again") {
			t.Errorf("description %q", desc)
		}
		r.steps(t, "dropslot dn2 on dn1")
		r.p.Has(t, `NOTICE: replication slot "dn2" dropped on dn1: no copy is behind it`)
		if len(r.f.ReplSlots) != 0 {
			t.Errorf("slots left: %v", r.f.ReplSlots)
		}
		r.journal(t, "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2: running start", "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2: done rolled back")
	})
	for _, tt := range []struct {
		name     string
		setup    func(r *rig)
		src, dst string
		code     string
		msg      string
	}{
		{"nothing to recover", func(*rig) {}, "dn1", "dn2", pgerror.ObjectNotInPrereqState, "nothing to recover: dn2 holds no copy of dn1"},
		{"a coordinator routes to it", func(r *rig) { r.copied("dn2"); r.f.SlotMap[1] = "dn2" }, "dn1", "dn2", pgerror.ObjectNotInPrereqState,
			"EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn2"},
		{"a coordinator does not answer", func(r *rig) { r.copied("dn2"); r.f.Nodes["cn1"].Running = false }, "dn1", "dn2",
			pgerror.ObjectNotInPrereqState, "cannot tell whether cn1 route slots to dn2"},
		{"activated already", func(r *rig) {
			r.cat.sn.Expansions = []cluster.Expansion{{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated, Slots: []int{1}}}
		}, "dn1", "dn2", pgerror.ObjectNotInPrereqState, "Run EXPAND CLEAN"},
		{"a copy of another source", func(r *rig) { r.copied("dn2") }, "dn3", "dn2", pgerror.ObjectNotInPrereqState, "dn2 is a copy of dn1, not of dn3"},
		{"no copy, the source down", func(r *rig) { r.f.Nodes["dn1"].Running = false }, "dn1", "dn2", pgerror.ObjectNotInPrereqState,
			"cannot tell whether it keeps a replication slot for dn2"},
		{"not a datanode master", func(*rig) {}, "dn1", "cn2", pgerror.UndefinedObject, `datanode master "cn2" does not exist`},
		{"in the cluster", func(*rig) {}, "dn1", "dn1", pgerror.ObjectNotInPrereqState, "dn1 is in the cluster"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			before := len(r.f.StepList())
			_, err := r.x.RecoverFail(ctx, tt.src, tt.dst, r.p)
			refused(t, err, tt.code, tt.msg)
			if len(r.f.StepList()) != before || len(r.cat.Rows) != 0 {
				t.Errorf("a refusal changed something: %v %v", r.f.StepList(), r.cat.Rows)
			}
		})
	}
}

func TestRecoverSuccess(t *testing.T) {
	ctx := context.Background()
	t.Run("the catalog mark failed after the base backup", func(t *testing.T) {
		r := newRig(world())
		r.halfCopy("dn2")
		desc, err := r.x.RecoverSuccess(ctx, "dn1", "dn2", r.p)
		if err != nil {
			t.Fatal(err)
		}
		if desc != "streaming from dn1; run EXPAND ACTIVATE" {
			t.Errorf("description %q", desc)
		}
		r.steps(t, "slot dn2 on dn1", "configure dn2", "standby signal dn2 of dn1", "start dn2")
		r.nodes(t, map[string]string{"dn2": "datanode master   true false"})
		r.growth(t, "dn2<dn1 copied ")
		if n := r.f.Node("dn2"); !n.Running || !n.InRecovery {
			t.Errorf("dn2 %+v, want a running standby", n)
		}
	})
	t.Run("a copy that was killed", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		r.f.Nodes["dn2"].Running = false
		if _, err := r.x.RecoverSuccess(ctx, "dn1", "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		r.growth(t, "dn2<dn1 copied ")
		if n := r.f.Node("dn2"); !n.Running || !n.InRecovery {
			t.Errorf("dn2 %+v, want a running standby", n)
		}
	})
	t.Run("a copy already streaming", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		if _, err := r.x.RecoverSuccess(ctx, "dn1", "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		r.steps(t)
	})
	for _, tt := range []struct {
		name  string
		setup func(r *rig)
		msg   string
	}{
		{"no base backup", func(*rig) {}, "Run EXPAND DATANODE MASTER dn1 TO dn2 again (EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2 drops a replication slot"},
		{"promoted", func(r *rig) { r.copied("dn2"); r.f.Nodes["dn2"].InRecovery = false }, "dn2 was promoted"},
		{"routed", func(r *rig) { r.copied("dn2"); r.f.SlotMap[3] = "dn2" }, "cn1 route slots to dn2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			_, err := r.x.RecoverSuccess(ctx, "dn1", "dn2", r.p)
			refused(t, err, pgerror.ObjectNotInPrereqState, tt.msg)
			if len(r.cat.Rows) != 0 {
				t.Errorf("journal %v", r.cat.Rows)
			}
		})
	}
}

func TestDoPromote(t *testing.T) {
	ctx := context.Background()
	oddSlots := slotsWhere(func(k int) bool { return k%2 == 1 })
	t.Run("promoted, the coordinators prepared", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		r.f.Nodes["dn2"].InRecovery = false
		r.prepare("dn2", oddSlots)
		desc, err := r.x.DoPromote(ctx, "dn2", r.p)
		if err != nil {
			t.Fatal(err)
		}
		if desc != "slots "+odd+" moved from dn1" {
			t.Errorf("description %q", desc)
		}
		r.steps(t, "commit prepared gc adbmgr_expand:dn2", "commit prepared cn1 adbmgr_expand:dn2",
			"auto.conf dn2 -primary_conninfo -primary_slot_name", "dropslot dn2 on dn1", "coordinator gc", "coordinator cn1")
		r.growth(t, "dn2<dn1 activated "+odd)
		r.nodes(t, map[string]string{"dn2": "datanode master   true true"})
		cmd := "EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn2"
		r.journal(t, cmd+": running start", cmd+": running activated dn2", cmd+": done end")
	})
	t.Run("promoted and committed, the catalog not written", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		r.f.Nodes["dn2"].InRecovery = false
		for _, k := range oddSlots {
			r.f.SlotMap[k] = "dn2"
		}
		if _, err := r.x.DoPromote(ctx, "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		r.growth(t, "dn2<dn1 activated "+odd)
	})
	t.Run("killed after its promotion", func(t *testing.T) {
		r := newRig(world())
		r.copied("dn2")
		r.f.Nodes["dn2"].InRecovery, r.f.Nodes["dn2"].Running, r.f.Nodes["dn2"].Parent = false, false, ""
		r.prepare("dn2", oddSlots)
		if _, err := r.x.DoPromote(ctx, "dn2", r.p); err != nil {
			t.Fatal(err)
		}
		r.p.Has(t, "NOTICE: dn2 was not running: started")
		r.growth(t, "dn2<dn1 activated "+odd)
	})
	for _, tt := range []struct {
		name  string
		setup func(r *rig)
		code  string
		msg   string
	}{
		{"not promoted", func(r *rig) { r.copied("dn2"); r.prepare("dn2", oddSlots) }, pgerror.ObjectNotInPrereqState, "Run EXPAND ACTIVATE"},
		{"not being expanded", func(*rig) {}, pgerror.ObjectNotInPrereqState, "dn2 is not being expanded"},
		{"promoted, nothing routed", func(r *rig) { r.copied("dn2"); r.f.Nodes["dn2"].InRecovery = false }, pgerror.ObjectNotInPrereqState,
			"EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			_, err := r.x.DoPromote(ctx, "dn2", r.p)
			refused(t, err, tt.code, tt.msg)
			if len(r.f.Owned("dn2")) != 0 {
				t.Errorf("dn2 owns %v", r.f.Owned("dn2"))
			}
		})
	}
}

// TestActivateResumes: EXPAND ACTIVATE takes up what an interrupted one
// left — a promoted copy is finished, one still a standby has its
// prepared transactions rolled back and is activated again.
func TestActivateResumes(t *testing.T) {
	ctx := context.Background()
	r := newRig(world())
	r.copied("dn2", "dn3")
	third := func(m int) []int { return slotsWhere(func(k int) bool { return k%3 == m }) }
	r.f.Nodes["dn2"].InRecovery = false
	r.prepare("dn2", third(1))
	r.f.Prepared["gc "+coord.HoldGID("dn3")] = fleettest.PreparedHold{Dst: "dn3", Slots: third(2)}
	got, err := r.x.Activate(ctx, r.p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].OK || !got[1].OK {
		t.Fatalf("rows %+v", got)
	}
	r.p.Has(t, "NOTICE: gc: committed what the interrupted activation of dn2 prepared")
	r.p.Has(t, "NOTICE: gc: rolled back what the interrupted activation of dn3 prepared")
	// dn3 takes half of what dn1 kept.
	if two, three, one := len(r.f.Owned("dn2")), len(r.f.Owned("dn3")), len(r.f.Owned("dn1")); two != 21 || three != 21 || one != 22 {
		t.Errorf("slots: dn1 %d, dn2 %d, dn3 %d", one, two, three)
	}
	if len(r.f.Prepared) != 0 {
		t.Errorf("prepared left: %v", r.f.Prepared)
	}
}

// TestActivateLeavesPrepared: a commit that fails after the promotion
// leaves the prepared transaction for DOPROMOTE SUCCESS, which finishes.
func TestActivateLeavesPrepared(t *testing.T) {
	ctx := context.Background()
	r := newRig(world())
	r.copied("dn2")
	r.f.Fail["commit cn1"] = fleettest.ErrBoom
	got, _ := r.x.Activate(ctx, r.p)
	if len(got) != 1 || got[0].OK || !strings.Contains(got[0].Description, "did not commit on every coordinator") {
		t.Fatalf("rows %+v", got)
	}
	if _, ok := r.f.Prepared["cn1 "+coord.HoldGID("dn2")]; !ok {
		t.Fatalf("cn1's prepared transaction is gone: %v", r.f.Prepared)
	}
	delete(r.f.Fail, "commit cn1")
	if _, err := r.x.DoPromote(ctx, "dn2", r.p); err != nil {
		t.Fatal(err)
	}
	r.growth(t, "dn2<dn1 activated "+odd)
}
