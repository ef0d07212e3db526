package expand

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// withPotential adds dn1p, a potential slave of dn1 in the cluster.
func withPotential(s *cluster.State) *cluster.State {
	s.Nodes = append(s.Nodes, cluster.Node{ID: 99, Name: "dn1p", Host: "h3", Type: cluster.DatanodeSlave, Master: "dn1", Port: 6000,
		SyncState: cluster.Potential, Path: "/data/dn1p", Initialized: true, InCluster: true, Zone: cluster.DefaultZone})
	return s
}

func TestRemove(t *testing.T) {
	r := newRig(withPotential(world()))
	r.f.Nodes["dn1s"].Running = false
	if err := r.x.Remove(context.Background(), cluster.DatanodeSlave, []string{"dn1s"}, r.p); err != nil {
		t.Fatal(err)
	}
	r.nodes(t, map[string]string{"dn1s": "datanode slave dn1 async false false", "dn1p": "datanode slave dn1 sync true true"})
	r.steps(t, fleettest.Join([]string{`syncnames dn1 FIRST 1 ("dn1p")`, "dropslot dn1s on dn1"}, refresh("gc", "cn1"))...)
	r.journal(t, "REMOVE DATANODE SLAVE dn1s: running removed", "REMOVE DATANODE SLAVE dn1s: done end")
	r.p.Has(t, "dn1p")
}

func TestRemoveRefused(t *testing.T) {
	tests := []struct {
		name  string
		want  cluster.NodeType
		names []string
		setup func(*rig)
		index int
		code  string
		msg   string
	}{
		{"unknown", cluster.DatanodeSlave, []string{"dn9"}, nil, 0, pgerror.UndefinedObject, `datanode slave "dn9" does not exist`},
		{"another type", cluster.CoordinatorMaster, []string{"dn1s"}, nil, 0, pgerror.UndefinedObject, `coordinator master "dn1s" does not exist`},
		{"not in the cluster", cluster.DatanodeSlave, []string{"dn1a"}, nil, 0, pgerror.ObjectNotInPrereqState, "does not exist in cluster"},
		{"running", cluster.DatanodeSlave, []string{"dn1s"}, nil, 0, pgerror.ObjectInUse, `"dn1s" is running, stop it first`},
		{"the second name runs", cluster.CoordinatorMaster, []string{"cn1", "gc"}, func(r *rig) { r.f.Nodes["cn1"].Running = false }, 1, pgerror.UndefinedObject, "does not exist"},
		{"has a slave", cluster.CoordinatorMaster, []string{"cn1"}, func(r *rig) {
			r.cat.sn.State.Nodes = append(r.cat.sn.State.Nodes, cluster.Node{ID: 98, Name: "cn1s", Host: "h3", Type: cluster.CoordinatorSlave, Master: "cn1", InCluster: true})
		}, 0, pgerror.ObjectInUse, "has slave node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			if tt.setup != nil {
				tt.setup(r)
			}
			err := r.x.Remove(context.Background(), tt.want, tt.names, r.p)
			var ne *NameError
			pe, ok := pgerror.As(err)
			if !errors.As(err, &ne) || ne.Index != tt.index || !ok || pe.Code != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Remove = %v", err)
			}
			r.steps(t)
		})
	}
}

func TestRemoveLastCoordinator(t *testing.T) {
	r := newRig(world())
	r.f.Nodes["cn1"].Running = false
	err := r.x.Remove(context.Background(), cluster.CoordinatorMaster, []string{"cn1"}, r.p)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ObjectInUse || !strings.Contains(pe.Message, "only has one coordinator") {
		t.Fatalf("Remove = %v", err)
	}
	r.nodes(t, map[string]string{"cn1": "coordinator master   true true"})
}

// TestRemoveFollowUp: once the nodes left, a master that is down keeps
// the slot (a NOTICE says how to drop it) and a catalog failure stops.
func TestRemoveFollowUp(t *testing.T) {
	r := newRig(world())
	r.f.Nodes["dn1s"].Running = false
	r.f.Fail["dropslot dn1s on dn1"] = fleettest.ErrBoom
	if err := r.x.Remove(context.Background(), cluster.DatanodeSlave, []string{"dn1s"}, r.p); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, `NOTICE: replication slot "dn1s" on datanode master "dn1" was not dropped (boom)`)

	r = newRig(world())
	r.f.Nodes["dn1s"].Running = false
	r.cat.fail["running removed"] = fleettest.ErrBoom
	if err := r.x.Remove(context.Background(), cluster.DatanodeSlave, []string{"dn1s"}, r.p); err != fleettest.ErrBoom {
		t.Fatalf("Remove = %v", err)
	}
	r.steps(t)
	r.nodes(t, map[string]string{"dn1s": "datanode slave dn1 sync true true"})
}

// TestMaker covers what INIT ALL asks of the Maker beyond EXPAND and
// APPEND: a parent not initialised, a node initialised already.
func TestMaker(t *testing.T) {
	s := world()
	r := newRig(s)
	var marked []string
	mk := Maker{Fleet: r.f, Progress: r.p, Mark: func(_ context.Context, n string) error { marked = append(marked, n); return nil }}
	at := func(name string) fleet.Member {
		m, err := fleet.Of(s, name)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dn2, dn1a := at("dn2"), at("dn1a")
	if err := mk.Standby(context.Background(), dn1a, dn2, fleet.Conf{}); err == nil || err.Error() != `its master "dn2" was not initialized` {
		t.Errorf("Standby of a parent not initialised = %v", err)
	}
	dn1a.Node.Initialized = true
	if err := mk.Standby(context.Background(), dn1a, at("dn1"), fleet.Conf{}); err != nil {
		t.Fatal(err)
	}
	r.steps(t, "start dn1a")
	if len(marked) != 0 {
		t.Errorf("marked %v", marked)
	}
	r.f.Reset()
	r.f.Fail["configure dn2"] = fleettest.ErrBoom
	if err := mk.InitDB(context.Background(), dn2, fleet.Conf{}, 0, true); err != fleettest.ErrBoom {
		t.Errorf("InitDB = %v", err)
	}
	r.steps(t, "initdb dn2", "configure dn2")
	// Progress: nothing within the first seconds.
	mk.progress(dn2, at("dn1"))(1, 2)
	if len(r.p.Lines) != 0 {
		t.Errorf("notices %q", r.p.Lines)
	}
}
