package cluster

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

func TestPlanAppend(t *testing.T) {
	s := growState()
	noGtm := with(s, "gc", func(n *Node) { n.InCluster = false })
	masterOut := with(s, "dn2", func(n *Node) { n.InCluster = false })
	tests := []struct {
		name  string
		s     *State
		req   AppendRequest
		steps []GrowStep
		code  string
		field string
		msg   string
	}{
		{"slave", s, AppendRequest{Name: "dn2s", Type: DatanodeSlave}, []GrowStep{
			{Kind: GrowBaseBackup, Node: "dn2s", From: "dn2"}, {Kind: GrowCatalog, Node: "dn2s"},
			{Kind: GrowSyncNames, Node: "dn2s", From: "dn2"}, {Kind: GrowRefreshCoordinators},
		}, "", "", ""},
		{"datanode master", s, AppendRequest{Name: "dn3", Type: DatanodeMaster}, []GrowStep{
			{Kind: GrowInitDB, Node: "dn3"}, {Kind: GrowStart, Node: "dn3"}, {Kind: GrowCatalog, Node: "dn3"}, {Kind: GrowRefreshCoordinators},
		}, "", "", ""},
		{"coordinator: a clone of the gtmcoord master", s, AppendRequest{Name: "cn2", Type: CoordinatorMaster}, []GrowStep{
			{Kind: GrowClone, Node: "cn2", From: "gc"}, {Kind: GrowCatalog, Node: "cn2"}, {Kind: GrowRefreshCoordinators},
		}, "", "", ""},
		{"coordinator FOR another: a streaming copy", s, AppendRequest{Name: "cn2", Type: CoordinatorMaster, Source: "cn1"}, []GrowStep{
			{Kind: GrowBaseBackup, Node: "cn2", From: "cn1"}, {Kind: GrowCatalog, Node: "cn2", From: "cn1"},
		}, "", "", ""},
		{"coordinator FOR the gtmcoord master", s, AppendRequest{Name: "cn2", Type: CoordinatorMaster, Source: "gc"}, []GrowStep{
			{Kind: GrowBaseBackup, Node: "cn2", From: "gc"}, {Kind: GrowCatalog, Node: "cn2", From: "gc"},
		}, "", "", ""},
		{"unknown node", s, AppendRequest{Name: "nope", Type: DatanodeSlave}, nil, pgerror.UndefinedObject, "name", `datanode slave "nope" does not exist in the node table`},
		{"node of another type", s, AppendRequest{Name: "dn3", Type: DatanodeSlave}, nil, pgerror.UndefinedObject, "name", `datanode slave "dn3" does not exist`},
		{"in the cluster already", s, AppendRequest{Name: "dn1s", Type: DatanodeSlave}, nil, pgerror.ObjectNotInPrereqState, "name", `datanode slave "dn1s" already exists in cluster`},
		{"before INIT ALL", noGtm, AppendRequest{Name: "dn3", Type: DatanodeMaster}, nil, pgerror.ObjectNotInPrereqState, "", "gtm master is not initialized"},
		{"master not in the cluster", masterOut, AppendRequest{Name: "dn2s", Type: DatanodeSlave}, nil, pgerror.ObjectNotInPrereqState, "", `the master "dn2" of datanode slave "dn2s" is not in the cluster`},
		{"FOR a datanode", s, AppendRequest{Name: "cn2", Type: CoordinatorMaster, Source: "dn1"}, nil, pgerror.ObjectNotInPrereqState, "source", `coordinator "dn1" does not exist in cluster`},
		{"FOR a coordinator not in the cluster", s, AppendRequest{Name: "cn2", Type: CoordinatorMaster, Source: "cn2"}, nil, pgerror.ObjectNotInPrereqState, "source", `coordinator "cn2" does not exist in cluster`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanAppend(tt.s, tt.req)
			if tt.code != "" {
				checkErr(t, err, tt.code, tt.msg)
				if f := ErrorField(err); f != tt.field {
					t.Errorf("field = %q, want %q", f, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.steps, p.Steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if got, want := p.AppendSource(), tt.steps[0].From; got != want {
				t.Errorf("source = %q, want %q", got, want)
			}
		})
	}
}

func TestAppendJoinedAndCopied(t *testing.T) {
	s := with(growState(), "dn2s", func(n *Node) { n.Initialized = true })
	p, err := AppendJoined(s, "dn2s")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.Node("dn2s")
	n.Initialized, n.InCluster, n.AllowCure, n.CureStatus = true, true, true, "normal"
	want := GrowPlan{Plan: Plan{UpdateNodes: []Node{n}}, Journal: JournalEntry{Status: "running", Step: "joined", Detail: "dn2s"}, Result: "success"}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("AppendJoined (-want +got):\n%s", diff)
	}
	if _, err := AppendJoined(s, "gone"); err == nil {
		t.Error("AppendJoined of a dropped node: no error")
	}

	p, err = AppendCopied(s, "cn2", "cn1")
	if err != nil {
		t.Fatal(err)
	}
	cn2, _ := s.Node("cn2")
	cn2.Initialized = true
	want = GrowPlan{
		Plan:    Plan{UpdateNodes: []Node{cn2}, PutCoordinatorCopies: []CoordinatorCopy{{Node: "cn2", Source: "cn1"}}},
		Journal: JournalEntry{Status: "done", Step: "copy", Detail: "cn1"},
		Result:  "streaming from cn1; run APPEND ACTIVATE COORDINATOR cn2",
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("AppendCopied (-want +got):\n%s", diff)
	}
	if _, err := AppendCopied(s, "cn2", "gone"); err == nil {
		t.Error("AppendCopied from a dropped node: no error")
	}
}

func TestPlanAppendActivate(t *testing.T) {
	s := with(growState(), "cn2", func(n *Node) { n.Initialized = true })
	copies := []CoordinatorCopy{{Node: "cn2", Source: "cn1"}}
	p, err := PlanAppendActivate(s, copies, "cn2")
	if err != nil {
		t.Fatal(err)
	}
	want := []GrowStep{
		{Kind: GrowPromote, Node: "cn2"}, {Kind: GrowStandalone, Node: "cn2"}, {Kind: GrowDropSlot, Node: "cn2", From: "cn1"},
		{Kind: GrowCatalog, Node: "cn2", From: "cn1"}, {Kind: GrowRefreshCoordinators},
	}
	if diff := cmp.Diff(want, p.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	_, err = PlanAppendActivate(s, nil, "cn2")
	checkErr(t, err, pgerror.ObjectNotInPrereqState, `coordinator "cn2" was not copied with APPEND COORDINATOR cn2 FOR`)
	if ErrorField(err) != "name" {
		t.Errorf("field = %q", ErrorField(err))
	}
	_, err = PlanAppendActivate(s, []CoordinatorCopy{{Node: "cn2", Source: "gone"}}, "cn2")
	checkErr(t, err, pgerror.ObjectNotInPrereqState, `the source "gone"`)

	p, err = AppendActivated(s, "cn2")
	if err != nil {
		t.Fatal(err)
	}
	cn2, _ := s.Node("cn2")
	cn2.Initialized, cn2.InCluster, cn2.AllowCure, cn2.CureStatus = true, true, true, "normal"
	wantPlan := GrowPlan{Plan: Plan{UpdateNodes: []Node{cn2}, DeleteCoordinatorCopies: []string{"cn2"}},
		Journal: JournalEntry{Status: "running", Step: "joined", Detail: "cn2"}, Result: "success"}
	if diff := cmp.Diff(wantPlan, p); diff != "" {
		t.Errorf("AppendActivated (-want +got):\n%s", diff)
	}
	if _, err := AppendActivated(s, "gone"); err == nil {
		t.Error("AppendActivated of a dropped node: no error")
	}
}
