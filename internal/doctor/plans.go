package doctor

import (
	"fmt"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// The catalog side of the doctor's actions, decided here (pure) and
// written by the manager in one transaction with the action's journal row.

func notice(format string, args ...any) cluster.Notice {
	return cluster.Notice{Severity: "NOTICE", Message: fmt.Sprintf(format, args...)}
}

// AfterFailover marks, once the doctor's failover of old has run, the
// nodes it left out of the cluster as waiting for the doctor: the old
// master (AntDB's curestatus oldmaster, with its NOTICE) and the slaves
// that were in the cluster before and could not follow the new master
// (followfail). They become curable again, so the doctor rewinds them when
// their hosts' agents answer. before is the catalog the failover's
// catalog step starts from, after the one its rows make: the manager
// writes these rows in that same transaction (switches.Failover.Mark), so
// no crash comes between them. A failover that did not switch marks
// nothing.
func AfterFailover(before, after *cluster.State, old string) cluster.Plan {
	var p cluster.Plan
	was, ok := before.Node(old)
	o, ok2 := after.Node(old)
	if !ok || !ok2 || !was.Type.IsMaster() || o.Type.IsMaster() || o.InCluster || o.Master == "" {
		return p
	}
	o.CureStatus, o.AllowCure = OldMaster, true
	p.UpdateNodes = append(p.UpdateNodes, o)
	p.Notices = append(p.Notices, notice("%s is waiting for rewinding. If the doctor is enabled, the doctor will automatically rewind it", old))
	for _, c := range after.Children(o.Master) {
		b, ok := before.Node(c.Name)
		if c.Name == old || c.InCluster || !ok || !b.InCluster || b.Master != old {
			continue
		}
		c.CureStatus, c.AllowCure = FollowFail, true
		p.UpdateNodes = append(p.UpdateNodes, c)
		p.Notices = append(p.Notices, notice("%s could not follow %s; the doctor will make it follow when it answers", c.Name, o.Master))
	}
	return p
}

// PlanIsolate takes node out of the cluster because the doctor cannot
// repair it in place (AntDB's curestatus isolated): not initialised, not
// in the cluster, a slave async and its sync role handed to a potential
// sibling (cluster.PlanRemove), but still curable, so the doctor brings it
// back when it answers again, with the sync state it had (cluster.TakenOut,
// cluster.RewoundSyncState). The manager then writes the master's sync
// names (no commit waits for the node) and the coordinators' node lists.
func PlanIsolate(s *cluster.State, node, reason string) cluster.Plan {
	p := cluster.PlanRemove(s, []string{node})
	was, _ := s.Node(node)
	for i := range p.UpdateNodes {
		if u := &p.UpdateNodes[i]; u.Name == node {
			u.CureStatus, u.AllowCure = Isolated, true
			u.PreSync = cluster.TakenOut(was).PreSync
		}
	}
	p.Notices = append([]cluster.Notice{notice("%s is isolated from the cluster: %s", node, reason)}, p.Notices...)
	return p
}

// PlanRejoin takes a waiting coordinator back once it runs: initialised,
// in the cluster, curable, its cure done.
func PlanRejoin(s *cluster.State, node string) cluster.Plan {
	n, ok := s.Node(node)
	if !ok {
		return cluster.Plan{}
	}
	n.Initialized, n.InCluster, n.AllowCure, n.CureStatus = true, true, true, Normal
	return cluster.Plan{UpdateNodes: []cluster.Node{n},
		Notices: []cluster.Notice{notice("%s is back in the cluster", cluster.Describe(n))}}
}

// RewoundNotice is the NOTICE said when a rewind brought node back under
// its master in s: the sync state it took (cluster.RewoundSyncState — async
// when it was async or lives in another zone than its master, else sync
// when the master had no sync slave, potential otherwise).
func RewoundNotice(s *cluster.State, node string) (cluster.Notice, bool) {
	n, ok := s.Node(node)
	if !ok || !n.InCluster || n.Type.IsMaster() {
		return cluster.Notice{}, false
	}
	return notice("%s is back in the cluster as %s of %s", node, cluster.ASlave(n.SyncState), n.Master), true
}

// StepUp names the async slave that master takes as its synchronous slave,
// or "" for none. The doctor keeps a master's sync-slave count only where
// the catalog shows that a failure, not a DBA, took it away — a DBA who
// made every slave async (ALTER … sync_state, ADD … async) or kicked one
// out with FAILOVER decided so, and gets no change:
//
//   - master is a datanode or gtmcoord master in the cluster, with no
//     sync or potential slave in the cluster (one with a potential slave
//     is protected: its first potential slave acts as sync);
//   - a slave of it waits out of the cluster for the doctor (isolated,
//     followfail, or the old master of the doctor's failover): it lost its
//     sync slave to a failure, and that slave would come back sync;
//   - the slave stepped up is the first direct one in the catalog's order
//     that is in the cluster, async, curable, in its master's zone (a slave
//     of another zone stays async, as APPEND makes it), and streaming
//     (streaming says so, from the master's pg_stat_replication).
//
// The waiting slave comes back potential then (cluster.RewoundSyncState).
func StepUp(s *cluster.State, master string, streaming func(string) bool) string {
	m, ok := s.Node(master)
	if !ok || !m.InCluster || (m.Type != cluster.DatanodeMaster && m.Type != cluster.GtmcoordMaster) {
		return ""
	}
	lost := false
	for _, c := range s.Children(master) {
		if c.InCluster && (c.SyncState == cluster.Sync || c.SyncState == cluster.Potential) {
			return ""
		}
		if !c.InCluster && c.AllowCure && Waiting(c.CureStatus) {
			lost = true
		}
	}
	if !lost {
		return ""
	}
	for _, c := range s.Children(master) {
		if c.InCluster && c.AllowCure && c.SyncState == cluster.Async && c.Zone == m.Zone && streaming(c.Name) {
			return c.Name
		}
	}
	return ""
}

// PlanStepUp makes slave, which StepUp chose, its master's sync slave.
func PlanStepUp(s *cluster.State, slave string) cluster.Plan {
	n, ok := s.Node(slave)
	if !ok {
		return cluster.Plan{}
	}
	master := cluster.Node{Name: n.Master, Type: cluster.DatanodeMaster}
	if m, ok := s.Node(n.Master); ok {
		master = m
	}
	n.SyncState = cluster.Sync
	return cluster.Plan{UpdateNodes: []cluster.Node{n}, Notices: []cluster.Notice{
		notice("%s has no synchronous slave node, make %s as synchronous node", cluster.Describe(master), cluster.Describe(n))}}
}

// After is s with p's updated rows: the catalog once p is written, for
// what depends on it (a master's sync names) before it is.
func After(s *cluster.State, p cluster.Plan) *cluster.State {
	out := &cluster.State{Hosts: s.Hosts, Nodes: append([]cluster.Node(nil), s.Nodes...), Moved: s.Moved}
	for _, u := range p.UpdateNodes {
		for i := range out.Nodes {
			if out.Nodes[i].Name == u.Name {
				out.Nodes[i] = u
			}
		}
	}
	return out
}
