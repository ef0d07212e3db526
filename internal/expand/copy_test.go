package expand

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

const expandCmd = "EXPAND DATANODE MASTER dn1 TO dn2"

func TestCopy(t *testing.T) {
	r := newRig(world())
	desc, err := r.x.Copy(context.Background(), "dn1", "dn2", r.p)
	if err != nil || desc != "streaming from dn1; run EXPAND ACTIVATE" {
		t.Fatalf("Copy = %q, %v", desc, err)
	}
	r.steps(t, "slot dn2 on dn1", "basebackup dn2 from dn1", "configure dn2", "standby signal dn2 of dn1", "start dn2")
	r.journal(t, expandCmd+": running start", expandCmd+": running initialized dn2", expandCmd+": done copy")
	r.nodes(t, map[string]string{"dn2": "datanode master   true false"})
	r.growth(t, "dn2<dn1 copied ")
	if n := r.f.Node("dn2"); !n.Running || !n.InRecovery || n.Parent != "dn1" {
		t.Errorf("dn2 = %+v, want a running standby of dn1", n)
	}
	if len(r.checked) != 1 || r.checked[0] != "dn2" || r.prepared != 1 {
		t.Errorf("checked %v, prepared %d", r.checked, r.prepared)
	}
}

func TestCopyRefused(t *testing.T) {
	tests := []struct {
		name, src, dst, field string
		setup                 func(*rig)
		code                  string
	}{
		{"source not a master in the cluster", "dn1s", "dn2", "src", nil, pgerror.ObjectNotInPrereqState},
		{"destination unknown", "dn1", "dn9", "dst", nil, pgerror.UndefinedObject},
		{"destination initialised", "dn1", "dn2", "dst", func(r *rig) { r.copied("dn2"); r.cat.sn.Expansions = nil }, pgerror.ObjectNotInPrereqState},
		{"an expansion waits for CLEAN", "dn1", "dn3", "", func(r *rig) {
			r.cat.sn.Expansions = []cluster.Expansion{{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated}}
		}, pgerror.ObjectNotInPrereqState},
		{"the precheck refuses", "dn1", "dn2", "", func(r *rig) {
			r.x.Check = func(context.Context, *cluster.State, cluster.Node) error {
				return pgerror.New(pgerror.ObjectNotInPrereqState, "not empty")
			}
		}, pgerror.ObjectNotInPrereqState},
		{"preparing the nodes fails", "dn1", "dn2", "", func(r *rig) {
			r.x.Prepare = func(context.Context, *cluster.State, Progress) error {
				return pgerror.New(pgerror.Internal, "no address")
			}
		}, pgerror.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			if tt.setup != nil {
				tt.setup(r)
			}
			before := r.cat.growth()
			_, err := r.x.Copy(context.Background(), tt.src, tt.dst, r.p)
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != tt.code || cluster.ErrorField(err) != tt.field {
				t.Fatalf("Copy = %v (field %q), want %s on %q", err, cluster.ErrorField(err), tt.code, tt.field)
			}
			r.steps(t)
			r.journal(t)
			r.growth(t, before...)
		})
	}
}

// TestCopyFails fails each step of the copy: the error says to CLEAN dst
// and run EXPAND again, no expansion is recorded, and the journal names
// the step.
func TestCopyFails(t *testing.T) {
	tests := []struct {
		name    string
		fail    string // fleet step
		catalog string // catalog commit
		steps   []string
		dst     string // dst's row
		step    string
	}{
		{"the slot on the source", "slot dn2 on dn1", "", []string{"slot dn2 on dn1"}, "datanode master   false false", "basebackup"},
		{"the base backup", "basebackup dn2 from dn1", "", []string{"slot dn2 on dn1", "basebackup dn2 from dn1"}, "datanode master   false false", "basebackup"},
		{"the configuration", "configure dn2", "", []string{"slot dn2 on dn1", "basebackup dn2 from dn1", "configure dn2"}, "datanode master   false false", "basebackup"},
		{"the recovery settings", "standby signal dn2 of dn1", "", []string{"slot dn2 on dn1", "basebackup dn2 from dn1", "configure dn2", "standby signal dn2 of dn1"}, "datanode master   false false", "basebackup"},
		{"marking it initialised", "", "running initialized dn2", []string{"slot dn2 on dn1", "basebackup dn2 from dn1", "configure dn2", "standby signal dn2 of dn1"}, "datanode master   false false", "basebackup"},
		{"the start", "start dn2", "", []string{"slot dn2 on dn1", "basebackup dn2 from dn1", "configure dn2", "standby signal dn2 of dn1", "start dn2"}, "datanode master   true false", "basebackup"},
		{"the catalog", "", "done copy", []string{"slot dn2 on dn1", "basebackup dn2 from dn1", "configure dn2", "standby signal dn2 of dn1", "start dn2"}, "datanode master   true false", "catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			if tt.fail != "" {
				r.f.Fail[tt.fail] = fleettest.ErrBoom
			}
			if tt.catalog != "" {
				r.cat.fail[tt.catalog] = fleettest.ErrBoom
			}
			_, err := r.x.Copy(context.Background(), "dn1", "dn2", r.p)
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != pgerror.ObjectNotInPrereqState || !strings.HasPrefix(pe.Message, "expand dn1 to dn2: ") ||
				!strings.Contains(pe.Message, "boom") || !strings.Contains(pe.Hint, "CLEAN DATANODE MASTER dn2") {
				t.Fatalf("Copy = %#v", err)
			}
			r.steps(t, tt.steps...)
			want := []string{expandCmd + ": running start"}
			if strings.HasSuffix(tt.dst, " true false") {
				// initialised before it failed: that was journaled too
				want = append(want, expandCmd+": running initialized dn2")
			}
			r.journal(t, append(want, expandCmd+": failed "+tt.step)...)
			r.nodes(t, map[string]string{"dn2": tt.dst})
			r.growth(t)
		})
	}
}

func TestCopyMessages(t *testing.T) {
	r := newRig(world())
	r.f.Fail["basebackup dn2 from dn1"] = fleettest.ErrBoom
	_, err := r.x.Copy(context.Background(), "dn1", "dn2", r.p)
	if want := "expand dn1 to dn2: pg_basebackup from dn1: boom"; err == nil || err.Error() != want {
		t.Errorf("Copy = %v, want %q", err, want)
	}
	r = newRig(world())
	r.f.Fail["slot dn2 on dn1"] = fleettest.ErrBoom
	_, err = r.x.Copy(context.Background(), "dn1", "dn2", r.p)
	if want := `expand dn1 to dn2: create replication slot "dn2" on dn1: boom`; err == nil || err.Error() != want {
		t.Errorf("Copy = %v, want %q", err, want)
	}
}
