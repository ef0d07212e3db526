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
	after := state(s.Nodes...)
	for _, u := range p.UpdateNodes {
		for i := range after.Nodes {
			if after.Nodes[i].Name == u.Name {
				after.Nodes[i] = u
			}
		}
	}
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
}
