package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// growState is a running cluster — gc, cn1, dn1 (with slave dn1s), dn2 —
// and the datanode masters dn3, dn4 added after INIT ALL.
func growState() *State {
	nodes := inCluster(
		Node{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 1, Path: "/d/gc"},
		Node{Name: "cn1", Host: "h2", Type: CoordinatorMaster, Port: 2, Path: "/d/cn1"},
		dn("dn1", "h1", 3), dns("dn1s", "dn1", Sync, "h2", 3), dn("dn2", "h2", 4),
	)
	return state(append(nodes, dn("dn3", "h3", 5), dn("dn4", "h3", 6),
		Node{Name: "cn2", Host: "h3", Type: CoordinatorMaster, Port: 7, Path: "/d/cn2"},
		dns("dn2s", "dn2", Sync, "h3", 8))...)
}

// with returns s with name changed by f.
func with(s *State, name string, f func(*Node)) *State {
	out := &State{Hosts: s.Hosts, Nodes: append([]Node(nil), s.Nodes...)}
	for i := range out.Nodes {
		if out.Nodes[i].Name == name {
			f(&out.Nodes[i])
		}
	}
	return out
}

func copied(src, dst string) Expansion { return Expansion{Src: src, Dst: dst, Phase: ExpansionCopied} }

func activated(src, dst string, slots ...int) Expansion {
	return Expansion{Src: src, Dst: dst, Phase: ExpansionActivated, Slots: slots}
}

func TestPlanExpandCopy(t *testing.T) {
	initialised := func(n *Node) { n.Initialized = true }
	tests := []struct {
		name     string
		s        *State
		exps     []Expansion
		src, dst string
		code     string // refusal, or "" for the copy
		field    string
		msg      string
	}{
		{"copy", growState(), nil, "dn1", "dn3", "", "", ""},
		{"several copies wait for one ACTIVATE", growState(), []Expansion{copied("dn1", "dn3")}, "dn2", "dn4", "", "", ""},
		{"one source to several destinations", growState(), []Expansion{copied("dn1", "dn3")}, "dn1", "dn4", "", "", ""},
		{"source unknown", growState(), nil, "nope", "dn3", pgerror.ObjectNotInPrereqState, "src", "nope is not a datanode master in the cluster"},
		{"source a slave", growState(), nil, "dn1s", "dn3", pgerror.ObjectNotInPrereqState, "src", "not a datanode master"},
		{"source not in the cluster", growState(), nil, "dn4", "dn3", pgerror.ObjectNotInPrereqState, "src", "not a datanode master in the cluster"},
		{"destination unknown", growState(), nil, "dn1", "nope", pgerror.UndefinedObject, "dst", `datanode master "nope" does not exist`},
		{"destination a coordinator", growState(), nil, "dn1", "cn2", pgerror.UndefinedObject, "dst", `datanode master "cn2" does not exist`},
		{"destination in the cluster", growState(), nil, "dn1", "dn2", pgerror.ObjectNotInPrereqState, "dst", "It should be not initialized and not in cluster"},
		{"destination initialised (a copy already)", with(growState(), "dn3", initialised), []Expansion{copied("dn1", "dn3")}, "dn2", "dn3", pgerror.ObjectNotInPrereqState, "dst", "status is error"},
		{"an expansion not cleaned", growState(), []Expansion{activated("dn2", "dn4", 1)}, "dn1", "dn3", pgerror.ObjectNotInPrereqState, "", "not cleaned yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanExpandCopy(tt.s, tt.exps, tt.src, tt.dst)
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
			want := []GrowStep{{Kind: GrowBaseBackup, Node: tt.dst, From: tt.src}, {Kind: GrowCatalog, Node: tt.dst}}
			if diff := cmp.Diff(want, p.Steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpandCopied(t *testing.T) {
	s := with(growState(), "dn3", func(n *Node) { n.Initialized = true })
	p, err := ExpandCopied(s, "dn1", "dn3")
	if err != nil {
		t.Fatal(err)
	}
	dn3, _ := s.Node("dn3")
	want := GrowPlan{
		Plan:    Plan{UpdateNodes: []Node{dn3}, PutExpansions: []Expansion{copied("dn1", "dn3")}},
		Journal: JournalEntry{Status: "done", Step: "copy", Detail: "dn1"},
		Result:  "streaming from dn1; run EXPAND ACTIVATE",
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if _, err := ExpandCopied(s, "dn1", "gone"); err == nil {
		t.Error("a destination dropped meanwhile: no error")
	}
}

func TestExpansionsToActivate(t *testing.T) {
	got := ExpansionsToActivate([]Expansion{copied("dn2", "dn4"), activated("dn1", "dn5", 1), copied("dn1", "dn3")})
	want := []Expansion{copied("dn1", "dn3"), copied("dn2", "dn4")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSplitSlots(t *testing.T) {
	tests := []struct {
		name  string
		owned []int
		dsts  []string
		want  map[string][]int
	}{
		{"every second slot moves", []int{0, 2, 4, 6, 8, 10}, []string{"b"}, map[string][]int{"b": {2, 6, 10}}},
		{"owned in any order", []int{10, 0, 6, 2, 8, 4}, []string{"b"}, map[string][]int{"b": {2, 6, 10}}},
		{"two destinations take a third each", []int{0, 1, 2, 3, 4, 5, 6}, []string{"b", "c"}, map[string][]int{"b": {1, 4}, "c": {2, 5}}},
		{"one slot stays", []int{7}, []string{"b"}, map[string][]int{}},
		{"nothing owned", nil, []string{"b"}, map[string][]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, SplitSlots(tt.owned, tt.dsts)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// 64 slots over two datanodes, then doubled: each keeps 16.
	var dn1 []int
	for k := 0; k < 64; k += 2 {
		dn1 = append(dn1, k)
	}
	if got := len(SplitSlots(dn1, []string{"dn3"})["dn3"]); got != 16 {
		t.Errorf("doubling moves %d of 32 slots, want 16", got)
	}
}

func TestPlanExpandActivate(t *testing.T) {
	copy3 := with(growState(), "dn3", func(n *Node) { n.Initialized = true })
	p, err := PlanExpandActivate(copy3, copied("dn1", "dn3"), []int{0, 2, 4, 6}, []string{"dn3"})
	if err != nil {
		t.Fatal(err)
	}
	want := []GrowStep{
		{Kind: GrowAbandonHolds, Node: "dn3"},
		{Kind: GrowBlockWrites, Node: "dn3", From: "dn1", Slots: []int{2, 6}, Notice: "writes to slots 2,6 of dn1 are blocked; waiting for dn3 to catch up"},
		{Kind: GrowWaitReplay, Node: "dn3", From: "dn1"},
		{Kind: GrowRepoint, Node: "dn3", From: "dn1", Slots: []int{2, 6}},
		{Kind: GrowPrepare, Node: "dn3"},
		{Kind: GrowPromote, Node: "dn3"},
		{Kind: GrowStandalone, Node: "dn3"},
		{Kind: GrowCommit, Node: "dn3"},
		{Kind: GrowDropSlot, Node: "dn3", From: "dn1"},
		{Kind: GrowCatalog, Node: "dn3", From: "dn1", Slots: []int{2, 6}},
		{Kind: GrowRefreshCoordinators},
	}
	if diff := cmp.Diff(want, p.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	// Activated together from one source, each destination takes its share.
	both := with(copy3, "dn4", func(n *Node) { n.Initialized = true })
	p, err = PlanExpandActivate(both, copied("dn1", "dn4"), []int{0, 1, 2, 3, 4, 5}, []string{"dn3", "dn4"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Steps[1].Slots; fmt.Sprint(got) != "[2 5]" {
		t.Errorf("dn4's share = %v, want [2 5]", got)
	}

	for _, tt := range []struct {
		name  string
		s     *State
		exp   Expansion
		owned []int
		msg   string
	}{
		{"one slot: nothing to move", copy3, copied("dn1", "dn3"), []int{4}, "dn1 owns 1 slot(s): nothing to move"},
		{"destination not a copy", growState(), copied("dn1", "dn3"), []int{0, 2}, "dn3 is not a copy of dn1"},
		{"destination joined already", copy3, copied("dn1", "dn2"), []int{0, 2}, "dn2 is not a copy of dn1"},
		{"source gone", copy3, copied("gone", "dn3"), []int{0, 2}, "gone is not a datanode master in the cluster"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanExpandActivate(tt.s, tt.exp, tt.owned, []string{tt.exp.Dst})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestExpandActivated(t *testing.T) {
	s := with(growState(), "dn3", func(n *Node) { n.Initialized = true })
	p, err := ExpandActivated(s, "dn1", "dn3", []int{2, 6})
	if err != nil {
		t.Fatal(err)
	}
	dn3, _ := s.Node("dn3")
	dn3.Initialized, dn3.InCluster, dn3.AllowCure, dn3.CureStatus = true, true, true, "normal"
	want := GrowPlan{
		Plan:    Plan{UpdateNodes: []Node{dn3}, PutExpansions: []Expansion{activated("dn1", "dn3", 2, 6)}},
		Journal: JournalEntry{Status: "running", Step: "activated dn3", Detail: "slots 2,6 moved from dn1"},
		Result:  "slots 2,6 moved from dn1",
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if _, err := ExpandActivated(s, "dn1", "gone", []int{2}); err == nil {
		t.Error("a destination dropped meanwhile: no error")
	}
}

func TestPlanExpandClean(t *testing.T) {
	if got := PlanExpandClean([]Expansion{copied("dn1", "dn3")}); len(got) != 0 {
		t.Errorf("nothing activated: %+v", got)
	}
	got := PlanExpandClean([]Expansion{activated("dn1", "dn4", 3), copied("dn2", "dn5"), activated("dn1", "dn3", 1)})
	want := []GrowPlan{
		{Steps: []GrowStep{{Kind: GrowTruncate, Node: "dn1"}, {Kind: GrowTruncate, Node: "dn3"}, {Kind: GrowCatalog, Node: "dn3", From: "dn1"}}},
		// dn1 was cleaned for dn3's expansion already.
		{Steps: []GrowStep{{Kind: GrowTruncate, Node: "dn4"}, {Kind: GrowCatalog, Node: "dn4", From: "dn1"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	cleaned := ExpandCleaned("dn3")
	if diff := cmp.Diff(GrowPlan{Plan: Plan{DeleteExpansions: []string{"dn3"}}, Journal: JournalEntry{Status: "running", Step: "cleaned dn3"}}, cleaned); diff != "" {
		t.Errorf("ExpandCleaned (-want +got):\n%s", diff)
	}
}

func TestUnowned(t *testing.T) {
	if diff := cmp.Diff([]int{1, 3, 4}, Unowned([]int{0, 2, 5}, 5)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := Unowned([]int{0, 1}, 2); len(got) != 0 {
		t.Errorf("owning every slot: %v", got)
	}
}

func TestExpansionStatus(t *testing.T) {
	if got := copied("dn1", "dn3").Status(); got != "streaming from dn1; run EXPAND ACTIVATE" {
		t.Errorf("copied: %q", got)
	}
	if got := activated("dn1", "dn3", 1, 3).Status(); got != "activated (dn1:1,3); run EXPAND CLEAN" {
		t.Errorf("activated: %q", got)
	}
}

func TestCheckInitAll(t *testing.T) {
	if err := CheckInitAll([]Expansion{activated("dn1", "dn3", 1)}, nil); err != nil {
		t.Errorf("an activated expansion: %v", err)
	}
	checkErr(t, CheckInitAll([]Expansion{copied("dn1", "dn3")}, nil), pgerror.ObjectInUse, "datanode dn3 is being expanded")
	checkErr(t, CheckInitAll(nil, []CoordinatorCopy{{Node: "cn2", Source: "cn1"}}), pgerror.ObjectInUse, "coordinator cn2 is a copy")
}

func TestSlotList(t *testing.T) {
	for _, slots := range [][]int{nil, {5}, {1, 3, 63}} {
		got, err := ParseSlots(SlotList(slots))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(slots) {
			t.Errorf("ParseSlots(SlotList(%v)) = %v, %v", slots, got, err)
		}
	}
	if _, err := ParseSlots("1,x"); err == nil {
		t.Error("ParseSlots(1,x): no error")
	}
}
