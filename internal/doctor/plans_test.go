package doctor

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/google/go-cmp/cmp"
)

func node(id int64, name string, t cluster.NodeType, master, sync string, in bool) cluster.Node {
	return cluster.Node{ID: id, Name: name, Host: "h", Type: t, Master: master, SyncState: sync, Initialized: in, InCluster: in,
		AllowCure: in, CureStatus: Normal}
}

func state(nodes ...cluster.Node) *cluster.State {
	return &cluster.State{Hosts: []cluster.Host{{Name: "h"}}, Nodes: nodes}
}

// names lists a plan's rows as name=curestatus/incluster/allowcure/sync.
func rows(p cluster.Plan) []string {
	var out []string
	for _, n := range p.UpdateNodes {
		out = append(out, n.Name+"="+n.CureStatus+"/"+onOff(n.InCluster)+"/"+onOff(n.AllowCure)+"/"+n.SyncState)
	}
	return out
}

func onOff(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

func noticesOf(p cluster.Plan) []string {
	var out []string
	for _, n := range p.Notices {
		out = append(out, n.Message)
	}
	return out
}

func TestAfterFailover(t *testing.T) {
	before := state(
		node(1, "dn1", cluster.DatanodeMaster, "", "", true),
		node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Sync, true),
		node(3, "s2", cluster.DatanodeSlave, "dn1", cluster.Potential, true),
		node(4, "s3", cluster.DatanodeSlave, "dn1", cluster.Async, false), // kicked out by a DBA before
	)
	// What the failover to s1 left: dn1 kicked out, s2 lost (it did not
	// answer), s3 as it was.
	dn1 := node(1, "dn1", cluster.DatanodeSlave, "s1", cluster.Async, false)
	s2 := node(3, "s2", cluster.DatanodeSlave, "s1", cluster.Async, false)
	after := state(dn1, node(2, "s1", cluster.DatanodeMaster, "", "", true), s2, node(4, "s3", cluster.DatanodeSlave, "s1", cluster.Async, false))
	p := AfterFailover(before, after, "dn1")
	if diff := cmp.Diff([]string{"dn1=oldmaster/f/t/async", "s2=followfail/f/t/async"}, rows(p)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"dn1 is waiting for rewinding. If the doctor is enabled, the doctor will automatically rewind it",
		"s2 could not follow s1; the doctor will make it follow when it answers",
	}, noticesOf(p)); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	// A failover that did not switch marks nothing.
	if p := AfterFailover(before, before, "dn1"); len(p.UpdateNodes) != 0 {
		t.Errorf("no switch: %v", rows(p))
	}
}

func TestPlanIsolate(t *testing.T) {
	s := state(
		node(1, "dn1", cluster.DatanodeMaster, "", "", true),
		node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Sync, true),
		node(3, "s2", cluster.DatanodeSlave, "dn1", cluster.Potential, true),
		node(4, "cn1", cluster.CoordinatorMaster, "", "", true),
	)
	p := PlanIsolate(s, "s1", "down")
	if diff := cmp.Diff([]string{"s1=isolated/f/t/async", "s2=normal/t/t/sync"}, rows(p)); diff != "" {
		t.Errorf("isolating the sync slave (-want +got):\n%s", diff)
	}
	if got := noticesOf(p); len(got) < 1 || got[0] != "s1 is isolated from the cluster: down" {
		t.Errorf("notices = %q", got)
	}
	if diff := cmp.Diff([]string{"cn1=isolated/f/t/"}, rows(PlanIsolate(s, "cn1", "down"))); diff != "" {
		t.Errorf("isolating a coordinator (-want +got):\n%s", diff)
	}
}

// TestIsolatedSlaveComesBackAsItWas: an isolated slave remembers its sync
// state, so a rewind brings a DBA's async slave back async, and a sync one
// potential when its sibling took the sync role meanwhile (docs/HA.md §4).
func TestIsolatedSlaveComesBackAsItWas(t *testing.T) {
	s := state(
		node(1, "dn1", cluster.DatanodeMaster, "", "", true),
		node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Sync, true),
		node(3, "s2", cluster.DatanodeSlave, "dn1", cluster.Potential, true),
		node(4, "a", cluster.DatanodeSlave, "dn1", cluster.Async, true),
	)
	for _, tt := range []struct{ node, want string }{{"s1", cluster.Potential}, {"a", cluster.Async}} {
		out := After(s, PlanIsolate(s, tt.node, "down"))
		again := After(out, PlanIsolate(out, tt.node, "down again")) // isolated twice: the first state is kept
		back := After(again, cluster.PlanRewound(again, "dn1", tt.node))
		if n, _ := back.Node(tt.node); n.SyncState != tt.want || !n.InCluster || n.PreSync != "" {
			t.Errorf("%s back as %q (in cluster %v, presync %q), want %s", tt.node, n.SyncState, n.InCluster, n.PreSync, tt.want)
		}
	}
}

func TestPlanRejoinAndRewoundNotice(t *testing.T) {
	cn := node(4, "cn1", cluster.CoordinatorMaster, "", "", false)
	cn.CureStatus, cn.AllowCure = Isolated, true
	s := state(node(1, "dn1", cluster.DatanodeMaster, "", "", true), cn, node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Sync, true))
	if diff := cmp.Diff([]string{"cn1=normal/t/t/"}, rows(PlanRejoin(s, "cn1"))); diff != "" {
		t.Errorf("rejoin (-want +got):\n%s", diff)
	}
	if n, ok := RewoundNotice(s, "s1"); !ok || n.Message != "s1 is back in the cluster as a sync slave of dn1" {
		t.Errorf("RewoundNotice = %v %v", n, ok)
	}
	if _, ok := RewoundNotice(s, "cn1"); ok {
		t.Errorf("RewoundNotice of a node out of the cluster")
	}
}

// TestIsolatingTheOnlySyncSlaveForbidsFailover is docs/HA.md's rule (b):
// the doctor may empty a master's synchronous_standby_names by isolating
// its only sync slave (the master then acknowledges commits alone, and
// keeps serving), but from then on no failover of that master happens
// without FORCE — the async slave left may lack acknowledged commits — so
// the doctor (which never uses FORCE) never makes a second master of it.
func TestIsolatingTheOnlySyncSlaveForbidsFailover(t *testing.T) {
	s := state(
		node(1, "dn1", cluster.DatanodeMaster, "", "", true),
		node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Sync, true),
		node(3, "s2", cluster.DatanodeSlave, "dn1", cluster.Async, true),
	)
	probes := map[string]cluster.Probe{"s2": {Reachable: true, InRecovery: true, LSN: 100}}
	p := PlanIsolate(s, "s1", "down, and the agent of its host does not answer")
	after := After(s, p)
	in := func(n cluster.Node) bool { return n.InCluster }
	if names := cluster.SyncNames(after, "dn1", in); names != "" {
		t.Errorf("dn1's sync names after isolating its only sync slave = %q, want empty", names)
	}
	if err := cluster.CheckCandidate(after, "dn1", "", false, probes); err == nil {
		t.Errorf("a failover of dn1 without FORCE is allowed after its only sync slave was isolated")
	}
	if err := cluster.CheckCandidate(after, "dn1", "", true, probes); err != nil {
		t.Errorf("FORCE: %v", err)
	}
	// Until the doctor steps s2 up (it streams, and s1 waits isolated):
	// then dn1 lists it, and a failover without FORCE is possible again.
	up := StepUp(after, "dn1", func(string) bool { return true })
	if up != "s2" {
		t.Fatalf("StepUp after isolating s1 = %q, want s2", up)
	}
	stepped := After(after, PlanStepUp(after, up))
	if names := cluster.SyncNames(stepped, "dn1", in); names != `FIRST 1 ("s2")` {
		t.Errorf("dn1's sync names after stepping s2 up = %q", names)
	}
	if err := cluster.CheckCandidate(stepped, "dn1", "", false, probes); err != nil {
		t.Errorf("a failover after stepping s2 up: %v", err)
	}
}

func TestStepUp(t *testing.T) {
	waiting := func(n cluster.Node, cure string) cluster.Node {
		n.InCluster, n.Initialized, n.AllowCure, n.CureStatus = false, false, true, cure
		return n
	}
	zone := func(n cluster.Node, z string) cluster.Node { n.Zone = z; return n }
	dn1 := node(1, "dn1", cluster.DatanodeMaster, "", "", true)
	isolated := waiting(node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Async, true), Isolated)
	a2 := node(3, "a2", cluster.DatanodeSlave, "dn1", cluster.Async, true)
	a3 := node(4, "a3", cluster.DatanodeSlave, "dn1", cluster.Async, true)
	all := func(string) bool { return true }
	only := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, x := range names {
				if x == n {
					return true
				}
			}
			return false
		}
	}
	noCure := a2
	noCure.AllowCure = false
	tests := []struct {
		name      string
		s         *cluster.State
		master    string
		streaming func(string) bool
		want      string
	}{
		{"the first streaming async slave, when the sync one was isolated", state(dn1, isolated, a2, a3), "dn1", all, "a2"},
		{"one that does not stream is passed over", state(dn1, isolated, a2, a3), "dn1", only("a3"), "a3"},
		{"none streams", state(dn1, isolated, a2, a3), "dn1", only(), ""},
		{"after the doctor's failover (old master waits)",
			state(dn1, waiting(node(2, "old", cluster.DatanodeSlave, "dn1", cluster.Async, true), OldMaster), a2), "dn1", all, "a2"},
		{"a slave that could not follow", state(dn1, waiting(node(2, "s1", cluster.DatanodeSlave, "dn1", cluster.Async, true), FollowFail), a2),
			"dn1", all, "a2"},
		{"a DBA's choice: every slave async, none waits", state(dn1, a2, a3), "dn1", all, ""},
		{"a DBA's kick-out (allowcure off) is not a failure", state(dn1,
			func() cluster.Node {
				n := waiting(node(2, "old", cluster.DatanodeSlave, "dn1", cluster.Async, true), Normal)
				n.AllowCure = false
				return n
			}(),
			a2), "dn1", all, ""},
		{"a sync slave in the cluster: nothing", state(dn1, isolated, node(5, "s5", cluster.DatanodeSlave, "dn1", cluster.Sync, true), a2), "dn1", all, ""},
		{"a potential slave acts as sync: nothing", state(dn1, isolated, node(5, "p5", cluster.DatanodeSlave, "dn1", cluster.Potential, true), a2),
			"dn1", all, ""},
		{"a slave of another zone stays async", state(dn1, isolated, zone(a2, "z2")), "dn1", all, ""},
		{"a slave the doctor may not cure is left alone", state(dn1, isolated, noCure, a3), "dn1", all, "a3"},
		{"coordinators are not kept", state(node(1, "cn1", cluster.CoordinatorMaster, "", "", true),
			waiting(node(2, "cs", cluster.CoordinatorSlave, "cn1", cluster.Async, true), Isolated),
			node(3, "cs2", cluster.CoordinatorSlave, "cn1", cluster.Async, true)), "cn1", all, ""},
		{"a gtmcoord master is kept", state(node(1, "gc", cluster.GtmcoordMaster, "", "", true),
			waiting(node(2, "gs", cluster.GtmcoordSlave, "gc", cluster.Async, true), Isolated),
			node(3, "gs2", cluster.GtmcoordSlave, "gc", cluster.Async, true)), "gc", all, "gs2"},
		{"a master out of the cluster", state(waiting(dn1, Normal), isolated, a2), "dn1", all, ""},
		{"not a master", state(dn1, isolated, a2), "a2", all, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StepUp(tt.s, tt.master, tt.streaming); got != tt.want {
				t.Errorf("StepUp = %q, want %q", got, tt.want)
			}
		})
	}
	p := PlanStepUp(state(dn1, isolated, a2), "a2")
	if diff := cmp.Diff([]string{"a2=normal/t/t/sync"}, rows(p)); diff != "" {
		t.Errorf("PlanStepUp rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`datanode master "dn1" has no synchronous slave node, make datanode slave "a2" as synchronous node`}, noticesOf(p)); diff != "" {
		t.Errorf("PlanStepUp notices (-want +got):\n%s", diff)
	}
}
