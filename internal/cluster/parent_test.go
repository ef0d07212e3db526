package cluster

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

func TestReparent(t *testing.T) {
	// group(): m with sync s, potential p, async a; c cascaded under s.
	withOthers := func() *State {
		s := group()
		s.Nodes = append(s.Nodes,
			Node{ID: 20, Name: "m2", Host: "h1", Type: DatanodeMaster, Zone: DefaultZone, Initialized: true, InCluster: true},
			Node{ID: 21, Name: "k", Host: "h3", Type: DatanodeSlave, Master: "m", SyncState: Async, Zone: DefaultZone},
			Node{ID: 22, Name: "g", Host: "h3", Type: GtmcoordMaster, Zone: DefaultZone, Initialized: true, InCluster: true},
			Node{ID: 23, Name: "out", Host: "h1", Type: DatanodeSlave, Master: "m", SyncState: Async, Zone: DefaultZone})
		return s
	}
	str := func(s string) *string { return &s }
	type row struct{ name, master, sync string }
	tests := []struct {
		name, node, parent string
		sync               *string
		code, msg, field   string
		rows               []row
		live               bool
	}{
		{name: "cascade under a sibling", node: "a", parent: "p", rows: []row{{"a", "p", Async}}, live: true},
		{name: "a cascade back to the master", node: "c", parent: "m", rows: []row{{"c", "m", Potential}}, live: true},
		{name: "asked sync under the master", node: "c", parent: "m", sync: str(Sync), rows: []row{{"c", "m", Sync}}, live: true},
		{name: "the sync slave hands its role over", node: "s", parent: "p",
			rows: []row{{"s", "p", Async}, {"p", "m", Sync}}, live: true},
		{name: "not in the cluster: the node table only", node: "k", parent: "s", rows: []row{{"k", "s", Async}}},
		{name: "itself", node: "a", parent: "a", code: pgerror.InvalidParameterValue, msg: "cannot alter the parent node to itself", field: "parent"},
		{name: "already its parent", node: "a", parent: "m", code: pgerror.InvalidParameterValue, msg: "is already the parent", field: "parent"},
		{name: "another tree", node: "a", parent: "m2", code: pgerror.InvalidParameterValue, msg: "are not in the same group", field: "parent"},
		{name: "another family", node: "a", parent: "g", code: pgerror.InvalidParameterValue, msg: "are not in the same group", field: "parent"},
		{name: "a cycle", node: "s", parent: "c", code: pgerror.InvalidParameterValue, msg: "cannot support to revert child and parent relationship", field: "parent"},
		{name: "missing parent", node: "a", parent: "nope", code: pgerror.UndefinedObject, msg: `"nope" does not exist`, field: "parent"},
		{name: "a parent out of the cluster", node: "a", parent: "out", code: pgerror.ObjectNotInPrereqState, msg: "is not initialized in the cluster", field: "parent"},
		{name: "a master", node: "m", parent: "s", code: pgerror.UndefinedObject, msg: "does not exist", field: ""},
		{name: "missing node", node: "nope", parent: "m", code: pgerror.UndefinedObject, msg: "does not exist", field: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Reparent(withOthers(), ReparentRequest{Name: tt.node, Type: DatanodeSlave, Parent: tt.parent, SyncState: tt.sync, CurrentZone: DefaultZone})
			refusal(t, err, tt.code, tt.msg, tt.field)
			if err != nil {
				return
			}
			var got []row
			for _, n := range p.UpdateNodes {
				got = append(got, row{n.Name, n.Master, n.SyncState})
			}
			if d := cmp.Diff(tt.rows, got, cmp.AllowUnexported(row{})); d != "" {
				t.Errorf("rows (-want +got):\n%s", d)
			}
			if live := len(p.Live) > 0; live != tt.live {
				t.Errorf("live = %v, want %v", live, tt.live)
			}
		})
	}
}

func TestRootAndBelow(t *testing.T) {
	s := group()
	c, _ := s.Node("c")
	if r := Root(s, c); r.Name != "m" {
		t.Errorf("Root(c) = %s", r.Name)
	}
	if !Below(s, c, "m") || !Below(s, c, "s") || Below(s, c, "p") || Below(s, c, "c") {
		t.Error("Below is wrong for c")
	}
}
