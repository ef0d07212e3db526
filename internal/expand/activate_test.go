package expand

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/switches"
	"github.com/google/go-cmp/cmp"
)

const activateCmd = "EXPAND ACTIVATE"

// holding is what blocking the writes of slots of dn1 issues.
func holding(slots string) []string {
	return []string{"hold gc dn1 " + slots, "hold cn1 dn1 " + slots}
}

// switched is what follows the wait: re-point, promote, commit, the slot.
func switched(dst string) []string {
	return []string{"repoint gc to " + dst, "repoint cn1 to " + dst, "prepare gc adbmgr_expand:" + dst, "prepare cn1 adbmgr_expand:" + dst, "promote " + dst,
		"auto.conf " + dst + " -primary_conninfo -primary_slot_name", "commit gc", "commit cn1", "dropslot " + dst + " on dn1"}
}

func rows(t *testing.T, got []Row, want ...Row) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestActivate(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	got, err := r.x.Activate(context.Background(), r.p)
	if err != nil {
		t.Fatal(err)
	}
	rows(t, got, Row{Node: "dn2", OK: true, Description: "slots " + odd + " moved from dn1"})
	r.steps(t, fleettest.Join(holding(odd), switched("dn2"), refresh("gc", "cn1"))...)
	r.journal(t, activateCmd+": running start", activateCmd+": running prepare dn2", activateCmd+": running promote dn2",
		activateCmd+": running commit dn2", activateCmd+": running activated dn2", activateCmd+": done end")
	r.nodes(t, map[string]string{"dn2": "datanode master   true true"})
	r.growth(t, "dn2<dn1 activated "+odd)
	if got := r.f.Owned("dn2"); cluster.SlotList(got) != odd {
		t.Errorf("the coordinators give dn2 %v, want %s", got, odd)
	}
	r.p.Has(t, "NOTICE: writes to slots "+odd+" of dn1 are blocked; waiting for dn2 to catch up")
}

// TestActivateSeveral activates two copies of one source: each takes a
// third of its slots, read once before either moved.
func TestActivateSeveral(t *testing.T) {
	r := newRig(world())
	r.copied("dn2", "dn3")
	got, err := r.x.Activate(context.Background(), r.p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].OK || !got[1].OK {
		t.Fatalf("rows %+v", got)
	}
	two, three := r.f.Owned("dn2"), r.f.Owned("dn3")
	if len(two) != 21 || len(three) != 21 || two[0] != 1 || three[0] != 2 {
		t.Errorf("dn2 owns %v, dn3 %v", two, three)
	}
	var want []string
	for _, d := range []string{"dn2", "dn3"} {
		for _, step := range []string{"prepare", "promote", "commit", "activated"} {
			want = append(want, activateCmd+": running "+step+" "+d)
		}
	}
	r.journal(t, append(append([]string{activateCmd + ": running start"}, want...), activateCmd+": done end")...)
}

func TestActivateNothing(t *testing.T) {
	r := newRig(world())
	got, err := r.x.Activate(context.Background(), r.p)
	if err != nil {
		t.Fatal(err)
	}
	rows(t, got, Row{OK: true, Description: "no node need activate"})
	r.steps(t)
	r.journal(t)
}

// TestActivateFails fails each step of an activation. Up to the
// promotion everything is rolled back with the destination still a
// standby and the expansion still waiting; the row and the journal say
// why.
func TestActivateFails(t *testing.T) {
	cancelled := errors.New("cancelled")
	tests := []struct {
		name   string
		setup  func(r *rig, cancel func())
		steps  []string
		desc   string // in the row
		phase  string // the expansion after
		dstRec bool   // dst still in recovery
	}{
		{"the source does not answer", func(r *rig, _ func()) { r.f.Nodes["dn1"].Running = false },
			nil, "connect dn1: it does not answer", "copied", true},
		{"a coordinator is unreachable", func(r *rig, _ func()) { r.f.Nodes["cn1"].Running = false },
			nil, "cn1: connection refused", "copied", true},
		{"the replay wait times out", func(r *rig, _ func()) { r.f.Nodes["dn2"].LSN = 50 },
			fleettest.Join(holding(odd), []string{"rollback gc", "rollback cn1"}), "expend src node and dst node can not sync in 20 seconds", "copied", true},
		{"the replay wait is cancelled", func(r *rig, cancel func()) {
			r.f.Before = func(_ *fleettest.Fleet, step string) error {
				if step == "waitreplay dn2" {
					cancel()
				}
				return nil
			}
		}, fleettest.Join(holding(odd), []string{"rollback gc", "rollback cn1"}), "context canceled", "copied", true},
		{"re-pointing fails on a coordinator", func(r *rig, _ func()) { r.f.Fail["repoint cn1 to dn2"] = fleettest.ErrBoom },
			fleettest.Join(holding(odd), []string{"repoint gc to dn2", "repoint cn1 to dn2", "rollback gc", "rollback cn1"}),
			"re-point the slots on a coordinator: boom", "copied", true},
		{"the promotion fails, dst still a standby", func(r *rig, _ func()) { r.f.Fail["promote dn2"] = fleettest.ErrBoom },
			fleettest.Join(holding(odd), []string{"repoint gc to dn2", "repoint cn1 to dn2", "prepare gc adbmgr_expand:dn2", "prepare cn1 adbmgr_expand:dn2", "promote dn2", "rollback gc", "rollback cn1"}),
			"promote dn2: boom", "copied", true},
		{"the destination dies at its promotion", func(r *rig, _ func()) {
			r.f.Before = func(f *fleettest.Fleet, step string) error {
				if step == "promote dn2" {
					f.Nodes["dn2"].Running = false
					return cancelled
				}
				return nil
			}
		}, fleettest.Join(holding(odd), []string{"repoint gc to dn2", "repoint cn1 to dn2", "prepare gc adbmgr_expand:dn2", "prepare cn1 adbmgr_expand:dn2", "promote dn2", "rollback gc", "rollback cn1"}),
			"its state is unknown", "copied", true},
		{"a coordinator does not commit", func(r *rig, _ func()) { r.f.Fail["commit cn1"] = fleettest.ErrBoom },
			fleettest.Join(holding(odd), []string{"repoint gc to dn2", "repoint cn1 to dn2", "prepare gc adbmgr_expand:dn2", "prepare cn1 adbmgr_expand:dn2",
				"promote dn2", "auto.conf dn2 -primary_conninfo -primary_slot_name", "commit gc", "commit cn1"}),
			"dn2 was promoted but the new slot map did not commit on every coordinator (boom)", "copied", false},
		{"the catalog write fails after the promotion", func(r *rig, _ func()) { r.cat.fail["running activated dn2"] = fleettest.ErrBoom },
			fleettest.Join(holding(odd), switched("dn2")), "boom", "copied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := newRig(world())
			r.copied("dn2")
			tt.setup(r, cancel)
			got, err := r.x.Activate(ctx, r.p)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].OK || got[0].Node != "dn2" || !strings.Contains(got[0].Description, tt.desc) {
				t.Errorf("rows %+v, want dn2 failed with %q", got, tt.desc)
			}
			r.steps(t, tt.steps...)
			if n := len(r.cat.Rows); n < 2 || r.cat.Rows[n-1] != activateCmd+": failed activate" {
				t.Errorf("journal %q", r.cat.Rows)
			}
			r.nodes(t, map[string]string{"dn2": "datanode master   true false"})
			r.growth(t, "dn2<dn1 "+tt.phase+" ")
			if n := r.f.Node("dn2"); n.InRecovery != tt.dstRec {
				t.Errorf("dn2 in recovery = %v, want %v", n.InRecovery, tt.dstRec)
			}
		})
	}
}

// TestActivateUnclear: an unclear promotion is ErrUnclearPromotion in
// the row (switches.Promote), and nothing commits.
func TestActivateUnclear(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	r.f.Fail["promote dn2"] = fleettest.ErrBoom
	r.f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "promote dn2" {
			f.Fail["inrecovery dn2"] = fleettest.ErrBoom
		}
		return nil
	}
	got, _ := r.x.Activate(context.Background(), r.p)
	if len(got) != 1 || got[0].OK || !strings.Contains(got[0].Description, "its state is unknown") {
		t.Errorf("rows %+v", got)
	}
	if !strings.Contains(got[0].Description, switches.ErrUnclearPromotion.Error()) {
		t.Errorf("row %q does not say the promotion is unclear", got[0].Description)
	}
	if len(r.f.Owned("dn2")) != 0 {
		t.Error("the slot map moved")
	}
}

// TestActivateCatalogRetried: after the promotion the catalog write is
// retried, so the catalog follows the nodes.
func TestActivateCatalogRetried(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	r.cat.failOnce["running activated dn2"] = fleettest.ErrBoom
	got, err := r.x.Activate(context.Background(), r.p)
	if err != nil || len(got) != 1 || !got[0].OK {
		t.Fatalf("rows %+v, %v", got, err)
	}
	r.growth(t, "dn2<dn1 activated "+odd)
	r.nodes(t, map[string]string{"dn2": "datanode master   true true"})
}

// TestActivateCoordinatorAfter: a coordinator that cannot be refreshed
// once the slots moved is a warning; the activation stands.
func TestActivateCoordinatorAfter(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	r.f.Fail["coordinator cn1"] = fleettest.ErrBoom
	got, err := r.x.Activate(context.Background(), r.p)
	if err != nil || len(got) != 1 || !got[0].OK {
		t.Fatalf("rows %+v, %v", got, err)
	}
	r.p.Has(t, `WARNING: could not update coordinator master "cn1": boom`)
	r.growth(t, "dn2<dn1 activated "+odd)
}

// TestActivateSlotsUnread: the slots of the source cannot be read (no
// coordinator answers): every expansion of it fails, nothing is touched.
func TestActivateSlotsUnread(t *testing.T) {
	r := newRig(world())
	r.copied("dn2")
	r.f.Nodes["gc"].Running = false
	got, err := r.x.Activate(context.Background(), r.p)
	if err != nil || len(got) != 1 || got[0].OK {
		t.Fatalf("rows %+v, %v", got, err)
	}
	r.steps(t)
	r.growth(t, "dn2<dn1 copied ")
}
