package expand

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func appendOf(name string, t cluster.NodeType, source string) Append {
	return Append{AppendRequest: cluster.AppendRequest{Name: name, Type: t, Source: source}, WalSegMB: 16}
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name   string
		req    Append
		result string
		steps  []string
		row    string
		growth []string
		notes  []string
	}{
		{"a datanode slave", appendOf("dn1a", cluster.DatanodeSlave, ""), "success",
			fleettest.Join([]string{"slot dn1a on dn1", "basebackup dn1a from dn1", "configure dn1a", "standby signal dn1a of dn1", "start dn1a",
				`syncnames dn1 FIRST 1 ("dn1s")`}, refresh("gc", "cn1")),
			"datanode slave dn1 async true true", nil, nil},
		{"a datanode master", appendOf("dn3", cluster.DatanodeMaster, ""), "success",
			fleettest.Join([]string{"initdb dn3", "configure dn3", "start dn3"}, refresh("gc", "cn1")),
			"datanode master   true true", nil, nil},
		{"a coordinator, cloned from the gtmcoord master", appendOf("cn2", cluster.CoordinatorMaster, ""), "success",
			fleettest.Join([]string{"slot cn2 on gc", "basebackup cn2 from gc", "configure cn2", "auto.conf cn2 -primary_conninfo -primary_slot_name",
				"standby.signal cn2 false", "start cn2", "dropslot cn2 on gc"}, refresh("gc", "cn1", "cn2")),
			"coordinator master   true true", nil, nil},
		{"a coordinator copy of cn1", appendOf("cn2", cluster.CoordinatorMaster, "cn1"), "streaming from cn1; run APPEND ACTIVATE COORDINATOR cn2",
			[]string{"slot cn2 on cn1", "basebackup cn2 from cn1", "configure cn2", "standby signal cn2 of cn1", "start cn2"},
			"coordinator master   true false", []string{"cn2<cn1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			got, err := r.x.Append(context.Background(), tt.req, r.p)
			if err != nil || got != tt.result {
				t.Fatalf("Append = %q, %v", got, err)
			}
			r.steps(t, tt.steps...)
			r.nodes(t, map[string]string{tt.req.Name: tt.row})
			r.growth(t, tt.growth...)
			cmd := "APPEND " + tt.req.Name
			last := "running joined"
			if tt.req.Source != "" {
				last = "done copy"
			}
			want := []string{cmd + ": running start", cmd + ": running initialized " + tt.req.Name, cmd + ": " + last}
			if last != "done copy" {
				want = append(want, cmd+": done end")
			}
			r.journal(t, want...)
		})
	}
}

func TestAppendRefused(t *testing.T) {
	tests := []struct {
		name        string
		req         Append
		setup       func(*rig)
		code, field string
		msg         string
	}{
		{"in the cluster already", appendOf("dn1s", cluster.DatanodeSlave, ""), nil, pgerror.ObjectNotInPrereqState, "name", "already exists in cluster"},
		{"not in the node table", appendOf("dn9", cluster.DatanodeSlave, ""), nil, pgerror.UndefinedObject, "name", "does not exist"},
		{"the source is not a coordinator", appendOf("cn2", cluster.CoordinatorMaster, "dn1"), nil, pgerror.ObjectNotInPrereqState, "source", "does not exist in cluster"},
		{"the master does not run", appendOf("dn1a", cluster.DatanodeSlave, ""), func(r *rig) { r.f.Nodes["dn1"].Running = false },
			pgerror.ObjectNotInPrereqState, "", `datanode master "dn1" is not running`},
		{"the precheck refuses", appendOf("dn3", cluster.DatanodeMaster, ""), func(r *rig) {
			r.x.Check = func(context.Context, *cluster.State, cluster.Node) error {
				return pgerror.New(pgerror.ObjectInUse, "port in use")
			}
		}, pgerror.ObjectInUse, "", "port in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			if tt.setup != nil {
				tt.setup(r)
			}
			_, err := r.x.Append(context.Background(), tt.req, r.p)
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != tt.code || cluster.ErrorField(err) != tt.field || !strings.Contains(pe.Message, tt.msg) {
				t.Fatalf("Append = %v (field %q)", err, cluster.ErrorField(err))
			}
			r.steps(t)
			r.journal(t)
		})
	}
}

func TestAppendFails(t *testing.T) {
	tests := []struct {
		name  string
		req   Append
		setup func(*rig)
		msg   string
		step  string
		row   string
	}{
		{"the base backup", appendOf("dn1a", cluster.DatanodeSlave, ""), func(r *rig) { r.f.Fail["basebackup dn1a from dn1"] = fleettest.ErrBoom },
			"APPEND dn1a failed: pg_basebackup from dn1: boom", "basebackup", "datanode slave dn1 async false false"},
		{"initdb", appendOf("dn3", cluster.DatanodeMaster, ""), func(r *rig) { r.f.Fail["initdb dn3"] = fleettest.ErrBoom },
			"APPEND dn3 failed: initdb: boom", "initdb", "datanode master   false false"},
		{"the start of a new master", appendOf("dn3", cluster.DatanodeMaster, ""), func(r *rig) { r.f.Fail["start dn3"] = fleettest.ErrBoom },
			"APPEND dn3 failed: pg_ctl start: boom", "start", "datanode master   true false"},
		{"the clone's slot", appendOf("cn2", cluster.CoordinatorMaster, ""), func(r *rig) { r.f.Fail["slot cn2 on gc"] = fleettest.ErrBoom },
			"APPEND cn2 failed: replication slot on gc: boom", "clone", "coordinator master   false false"},
		{"the clone's recovery settings", appendOf("cn2", cluster.CoordinatorMaster, ""), func(r *rig) {
			r.f.Fail["auto.conf cn2 -primary_conninfo -primary_slot_name"] = fleettest.ErrBoom
		}, "APPEND cn2 failed: recovery settings: boom", "clone", "coordinator master   false false"},
		{"the clone's standby.signal", appendOf("cn2", cluster.CoordinatorMaster, ""), func(r *rig) { r.f.Fail["standby.signal cn2 false"] = fleettest.ErrBoom },
			"APPEND cn2 failed: standby.signal: boom", "clone", "coordinator master   false false"},
		{"the clone's base backup", appendOf("cn2", cluster.CoordinatorMaster, ""), func(r *rig) { r.f.Fail["basebackup cn2 from gc"] = fleettest.ErrBoom },
			"APPEND cn2 failed: pg_basebackup from gc: boom", "clone", "coordinator master   false false"},
		{"the catalog", appendOf("dn1a", cluster.DatanodeSlave, ""), func(r *rig) { r.cat.fail["running joined"] = fleettest.ErrBoom },
			"APPEND dn1a failed: boom", "catalog", "datanode slave dn1 async true false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			_, err := r.x.Append(context.Background(), tt.req, r.p)
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != pgerror.ObjectNotInPrereqState || pe.Message != tt.msg || !strings.Contains(pe.Hint, "APPEND it again") {
				t.Fatalf("Append = %#v", err)
			}
			cmd := "APPEND " + tt.req.Name
			want := []string{cmd + ": running start"}
			if strings.HasSuffix(tt.row, " true false") {
				// initialised before it failed: that was journaled too
				want = append(want, cmd+": running initialized "+tt.req.Name)
			}
			r.journal(t, append(want, cmd+": failed "+tt.step)...)
			r.nodes(t, map[string]string{tt.req.Name: tt.row})
		})
	}
}

func TestAppendPrepareFails(t *testing.T) {
	r := newRig(world())
	r.x.Prepare = func(context.Context, *cluster.State, Progress) error { return fleettest.ErrBoom }
	if _, err := r.x.Append(context.Background(), appendOf("dn1a", cluster.DatanodeSlave, ""), r.p); err != fleettest.ErrBoom {
		t.Fatalf("Append = %v", err)
	}
	r.steps(t)
	r.journal(t, "APPEND dn1a: running start", "APPEND dn1a: failed prepare")
}

// TestAppendAfterJoined: once the node joined, a master or coordinator
// that cannot follow is a warning, not a failure.
func TestAppendAfterJoined(t *testing.T) {
	r := newRig(world())
	r.f.Fail[`syncnames dn1 FIRST 1 ("dn1s")`] = fleettest.ErrBoom
	r.f.Fail["coordinator gc"] = fleettest.ErrBoom
	got, err := r.x.Append(context.Background(), appendOf("dn1a", cluster.DatanodeSlave, ""), r.p)
	if err != nil || got != "success" {
		t.Fatalf("Append = %q, %v", got, err)
	}
	r.p.Has(t, "WARNING: boom", `WARNING: could not update gtmcoord master "gc": boom`)
	r.nodes(t, map[string]string{"dn1a": "datanode slave dn1 async true true"})
}

// TestCloneSlotLeft: the clone's slot that cannot be dropped is named in
// a WARNING after a few tries.
func TestCloneSlotLeft(t *testing.T) {
	r := newRig(world())
	r.f.Fail["dropslot cn2 on gc"] = fleettest.ErrBoom
	if _, err := r.x.Append(context.Background(), appendOf("cn2", cluster.CoordinatorMaster, ""), r.p); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, `WARNING: replication slot "cn2" is left on gc; drop it there: SELECT pg_drop_replication_slot('cn2')`)
	n := 0
	for _, s := range r.f.StepList() {
		if s == "dropslot cn2 on gc" {
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d tries to drop the slot, want 10", n)
	}
}

const activateCn2 = "APPEND ACTIVATE COORDINATOR cn2"

// copiedCoordinator puts the world in the state APPEND COORDINATOR cn2
// FOR cn1 left.
func (r *rig) copiedCoordinator() {
	for i, n := range r.cat.sn.State.Nodes {
		if n.Name == "cn2" {
			r.cat.sn.State.Nodes[i].Initialized = true
		}
	}
	r.f.Nodes["cn2"] = &fleettest.Node{Running: true, InRecovery: true, LSN: 100, Parent: "cn1", Conf: map[string]string{}}
	r.cat.sn.Copies = []cluster.CoordinatorCopy{{Node: "cn2", Source: "cn1"}}
}

func TestAppendActivate(t *testing.T) {
	r := newRig(world())
	r.copiedCoordinator()
	got, err := r.x.AppendActivate(context.Background(), "cn2", r.p)
	if err != nil || got != "success" {
		t.Fatalf("AppendActivate = %q, %v", got, err)
	}
	r.steps(t, fleettest.Join([]string{"promote cn2", "auto.conf cn2 -primary_conninfo -primary_slot_name", "dropslot cn2 on cn1"}, refresh("gc", "cn1", "cn2"))...)
	r.journal(t, activateCn2+": running start", activateCn2+": running joined", activateCn2+": done end")
	r.nodes(t, map[string]string{"cn2": "coordinator master   true true"})
	r.growth(t)
}

func TestAppendActivateFails(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*rig)
		msg    string
		field  string
		steps  []string
		jrows  []string
		row    string
		growth []string
	}{
		{"not a copy", func(r *rig) { r.cat.sn.Copies = nil }, "was not copied", "name", nil, nil, "coordinator master   true false", nil},
		{"the source was dropped", func(r *rig) { r.cat.sn.Copies[0].Source = "cn9" }, `the source "cn9"`, "name", nil, nil, "coordinator master   true false", []string{"cn2<cn9"}},
		{"the promotion fails", func(r *rig) { r.f.Fail["promote cn2"] = fleettest.ErrBoom }, "promote cn2: boom", "",
			[]string{"promote cn2"}, []string{activateCn2 + ": running start", activateCn2 + ": failed promote"}, "coordinator master   true false", []string{"cn2<cn1"}},
		{"the promotion is unclear", func(r *rig) {
			r.f.Fail["promote cn2"] = fleettest.ErrBoom
			r.f.Fail["inrecovery cn2"] = fleettest.ErrBoom
		}, "its state is unknown", "",
			[]string{"promote cn2"}, []string{activateCn2 + ": running start", activateCn2 + ": failed promote"}, "coordinator master   true false", []string{"cn2<cn1"}},
		{"the catalog write fails, retried", func(r *rig) { r.cat.fail["running joined"] = fleettest.ErrBoom }, "boom", "",
			[]string{"promote cn2", "auto.conf cn2 -primary_conninfo -primary_slot_name", "dropslot cn2 on cn1"},
			[]string{activateCn2 + ": running start", activateCn2 + ": failed catalog"}, "coordinator master   true false", []string{"cn2<cn1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			r.copiedCoordinator()
			tt.setup(r)
			_, err := r.x.AppendActivate(context.Background(), "cn2", r.p)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || cluster.ErrorField(err) != tt.field {
				t.Fatalf("AppendActivate = %v", err)
			}
			r.steps(t, tt.steps...)
			r.journal(t, tt.jrows...)
			r.nodes(t, map[string]string{"cn2": tt.row})
			r.growth(t, tt.growth...)
		})
	}
}
