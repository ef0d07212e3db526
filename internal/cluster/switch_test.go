package cluster

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// group is a datanode master m with sync s, potential p, async a and c
// cascaded under s, all in the cluster.
func group() *State {
	return state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("p", "m", Potential, "h3", 1),
		dns("a", "m", Async, "h2", 2), dns("c", "s", Async, "h3", 2))...)
}

func up(lsn uint64) Probe { return Probe{Reachable: true, InRecovery: true, LSN: lsn} }

// refusal checks err's SQLSTATE, message and field ("" code: no error).
func refusal(t *testing.T, err error, code, msg, field string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	pe, ok := pgerror.As(err)
	if !ok || pe.Code != code || !strings.Contains(pe.Message, msg) {
		t.Fatalf("err = %v, want %s %q", err, code, msg)
	}
	if f := ErrorField(err); f != field {
		t.Errorf("field = %q, want %q", f, field)
	}
}

func TestCheckFailover(t *testing.T) {
	s := group()
	s.Nodes = append(s.Nodes, Node{ID: 9, Name: "x", Type: DatanodeMaster, Zone: DefaultZone, Initialized: true},
		Node{ID: 10, Name: "y", Type: DatanodeMaster, Zone: DefaultZone})
	tests := []struct {
		name, node, zone string
		f                Family
		code, msg, field string
	}{
		{"a master", "m", DefaultZone, Datanode, "", "", ""},
		{"missing", "nope", DefaultZone, Datanode, pgerror.UndefinedObject, "nope does not exist or is not a datanode master node", "name"},
		{"a slave", "s", DefaultZone, Datanode, pgerror.UndefinedObject, "is not a datanode master node", "name"},
		{"another family", "m", DefaultZone, Gtmcoord, pgerror.UndefinedObject, "is not a gtmcoord master node", "name"},
		{"another zone", "m", "z2", Datanode, pgerror.ObjectNotInPrereqState, "is not in current zone(z2)", ""},
		{"kicked out", "x", DefaultZone, Datanode, pgerror.ObjectNotInPrereqState, "x has been kicked out of the cluster", ""},
		{"not initialised", "y", DefaultZone, Datanode, pgerror.ObjectNotInPrereqState, "y has not been initialized", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CheckFailover(s, tt.f, tt.node, tt.zone)
			refusal(t, err, tt.code, tt.msg, tt.field)
			if err == nil && n.Name != tt.node {
				t.Errorf("node = %s", n.Name)
			}
		})
	}
}

func TestCheckSwitchover(t *testing.T) {
	s := group()
	s.Nodes = append(s.Nodes, dns("o", "m", Async, "h1", 9))
	tests := []struct {
		name, node       string
		code, msg, field string
	}{
		{"a direct slave", "s", "", "", ""},
		{"missing", "nope", pgerror.UndefinedObject, "nope is not a slave node", "name"},
		{"a master", "m", pgerror.UndefinedObject, "m is not a slave node", "name"},
		{"cascaded", "c", pgerror.ObjectNotInPrereqState, `datanode slave "c" follows slave "s"`, ""},
		{"out of the cluster", "o", pgerror.ObjectNotInPrereqState, "and its master must be in the cluster", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, n, err := CheckSwitchover(s, Datanode, tt.node)
			refusal(t, err, tt.code, tt.msg, tt.field)
			if err == nil && (old.Name != "m" || n.Name != tt.node) {
				t.Errorf("old, new = %s, %s", old.Name, n.Name)
			}
		})
	}
}

func TestSwitchoverReady(t *testing.T) {
	all := map[string]Probe{"s": up(1), "p": up(1), "a": up(1)}
	without := func(name string) map[string]Probe {
		out := map[string]Probe{}
		for k, v := range all {
			if k != name {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name   string
		node   string
		force  bool
		probes map[string]Probe
		code   string
		msg    string
	}{
		{"all answer", "s", false, all, "", ""},
		{"the candidate is down", "s", true, without("s"), pgerror.ObjectNotInPrereqState, "s expected running status is slave mode"},
		{"the candidate is a primary", "s", true, map[string]Probe{"s": {Reachable: true}}, pgerror.ObjectNotInPrereqState, "slave mode"},
		{"a potential sibling is down", "s", false, without("p"), pgerror.ObjectNotInPrereqState, "p failed, but it is a Synchronous standby node of old master m"},
		{"the sync sibling is down", "p", false, without("s"), pgerror.ObjectNotInPrereqState, "s failed"},
		{"an async sibling may be down", "s", false, without("a"), "", ""},
		{"FORCE with a sibling down", "s", true, without("p"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SwitchoverReady(group(), "m", tt.node, tt.force, tt.probes)
			refusal(t, err, tt.code, tt.msg, "")
			if pe, ok := pgerror.As(err); ok && strings.Contains(pe.Message, "failed") && !strings.Contains(pe.Hint, "REWIND") {
				t.Errorf("hint = %q", pe.Hint)
			}
		})
	}
	if got := SwitchoverFollowers(group(), "m", "s", without("p")); !cmp.Equal(got, []string{"a"}) {
		t.Errorf("followers = %q", got)
	}
}

func TestFollowOrRewind(t *testing.T) {
	tests := []struct {
		name      string
		probes    map[string]Probe
		followers []string
		lost      []string
		warnings  int
	}{
		{"all behind", map[string]Probe{"p": up(100), "a": up(50)}, []string{"p", "a"}, []string{"x"}, 0},
		{"one equal", map[string]Probe{"p": up(200), "a": up(50)}, []string{"p", "a"}, []string{"x"}, 0},
		{"one ahead", map[string]Probe{"p": up(300), "a": up(50)}, []string{"a"}, []string{"x", "p"}, 1},
		{"all ahead", map[string]Probe{"p": up(300), "a": up(301)}, nil, []string{"x", "p", "a"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := FollowOrRewind(Candidate{Name: "s", LSN: 200, Followers: []string{"p", "a"}, Lost: []string{"x"}}, tt.probes)
			if !cmp.Equal(c.Followers, tt.followers) || !cmp.Equal(c.Lost, tt.lost) || len(c.Notices) != tt.warnings {
				t.Errorf("followers %q lost %q notices %v", c.Followers, c.Lost, c.Notices)
			}
			for _, n := range c.Notices {
				if n.Severity != "WARNING" || !strings.Contains(n.Message, "cannot follow it; REWIND it") {
					t.Errorf("notice %+v", n)
				}
			}
		})
	}
}

func TestCheckRewind(t *testing.T) {
	s := group()
	s.Nodes = append(s.Nodes, dns("o", "gone", Async, "h1", 9))
	tests := []struct {
		name, node       string
		code, msg, field string
	}{
		{"a slave", "s", "", "", ""},
		{"a cascaded slave", "c", "", "", ""},
		{"missing", "nope", pgerror.UndefinedObject, `datanode slave "nope" does not exist`, "name"},
		{"a master", "m", pgerror.UndefinedObject, `datanode slave "m" does not exist`, "name"},
		{"its master is gone", "o", pgerror.ObjectNotInPrereqState, `the master "gone" of datanode slave "o" is not in the cluster`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, parent, err := CheckRewind(s, Datanode, tt.node)
			refusal(t, err, tt.code, tt.msg, tt.field)
			if err == nil && (n.Name != tt.node || parent.Name != n.Master) {
				t.Errorf("n, parent = %s, %s", n.Name, parent.Name)
			}
		})
	}
}

// TestSwitchPlans: the small catalog plans of the switches.
func TestSwitchPlans(t *testing.T) {
	s := group()
	z := s.Nodes[0].Zone
	s.Nodes = append(s.Nodes, Node{ID: 9, Name: "old", Type: DatanodeSlave, Master: "m", SyncState: Async, Zone: z},
		Node{ID: 10, Name: "far", Type: DatanodeSlave, Master: "m", SyncState: Async, Zone: "z2", PreSync: Sync},
		Node{ID: 11, Name: "kept", Type: DatanodeSlave, Master: "m", SyncState: Async, Zone: z, PreSync: Async},
		Node{ID: 12, Name: "was", Type: DatanodeSlave, Master: "m", SyncState: Async, Zone: z, PreSync: Potential})
	row := func(p Plan) []string {
		var out []string
		for _, n := range p.UpdateNodes {
			out = append(out, n.Name+" "+n.SyncState+" "+boolText(n.Initialized)+boolText(n.InCluster)+boolText(n.AllowCure))
		}
		return out
	}
	tests := []struct {
		name string
		plan Plan
		want []string
	}{
		{"rewound under a master with a sync slave", PlanRewound(s, "m", "old"), []string{"old potential ttt"}},
		{"rewound under a cascading slave", PlanRewound(s, "s", "c"), []string{"c async ttt"}},
		{"rewound, missing", PlanRewound(s, "m", "nope"), nil},
		{"rewound in another zone than its master", PlanRewound(s, "m", "far"), []string{"far async ttt"}},
		{"rewound after a DBA's async", PlanRewound(s, "m", "kept"), []string{"kept async ttt"}},
		{"rewound after potential", PlanRewound(s, "m", "was"), []string{"was potential ttt"}},
		{"kicked out", PlanKickOut(s, "s", "nope"), []string{"s async fff"}},
		{"doctor on", PlanAllowCure(s, true, "m", "p"), []string{"m  ttt", "p potential ttt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, row(tt.plan)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSyncTarget(t *testing.T) {
	all := func(Node) bool { return true }
	tests := []struct {
		name  string
		node  string
		ok    func(Node) bool
		names string
		want  map[string]string
	}{
		{"a master", "m", all, `FIRST 1 ("s", "p")`, map[string]string{"s": Sync, "p": Potential, "a": Async}},
		{"a cascading slave", "s", all, "", map[string]string{"c": Async}},
		{"without its sync slave", "m", func(n Node) bool { return n.Name != "s" }, `FIRST 1 ("p")`, map[string]string{"p": Sync, "a": Async}},
		{"no slave", "a", all, "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := group()
			n, _ := s.Node(tt.node)
			names, want := SyncTarget(s, n, tt.ok)
			if names != tt.names {
				t.Errorf("names = %q, want %q", names, tt.names)
			}
			if diff := cmp.Diff(tt.want, want); diff != "" {
				t.Errorf("want (-want +got):\n%s", diff)
			}
		})
	}
	if d := Describe(Node{Type: DatanodeSlave, Name: "x"}); d != `datanode slave "x"` {
		t.Errorf("Describe = %s", d)
	}
}
