package cluster

import "github.com/adbmgr/adbmgr/internal/pgerror"

// The switches' preconditions and follow-up decisions (FAILOVER,
// SWITCHOVER, REWIND): pure checks over a snapshot and the probes of the
// nodes, shared by the statements and the doctor. Refusals about the node
// the statement names carry the field "name", so the caret points at it.

// CheckFailover is the master a FAILOVER of family f names, refused when
// it is not an initialised master of the cluster in the session's zone.
func CheckFailover(s *State, f Family, name, zone string) (Node, error) {
	want := TypeOf(f, true)
	old, ok := s.Node(name)
	if !ok || old.Type != want {
		return Node{}, fieldErr("name", pgerror.UndefinedObject, `%s does not exist or is not a %s node`, name, want)
	}
	if !old.Initialized {
		return Node{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s has not been initialized`, old.Name)
	}
	if !old.InCluster {
		return Node{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s has been kicked out of the cluster`, old.Name)
	}
	if old.Zone != zone {
		return Node{}, pgerror.New(pgerror.ObjectNotInPrereqState, `the node(%s) is not in current zone(%s), can't operator it.`, old.Name, zone)
	}
	return old, nil
}

// syncRefusal refuses a switch away from master while one of its sync or
// potential slaves in the cluster (other than skip) does not answer as a
// standby: with 'FIRST n (sync…, potential…)' it may hold the last
// acknowledged commits (ChooseCandidate explains why). FAILOVER, SWITCHOVER
// and the doctor share it.
func syncRefusal(s *State, master, skip string, probes map[string]Probe) *pgerror.Error {
	for _, n := range s.Children(master) {
		if n.Name == skip || !n.InCluster || (n.SyncState != Sync && n.SyncState != Potential) {
			continue
		}
		if p := probes[n.Name]; !(p.Reachable && p.InRecovery) {
			return pgerror.New(pgerror.ObjectNotInPrereqState,
				`%s failed, but it is a Synchronous standby node of old master %s, abort switching to avoid data loss`, n.Name, master).
				WithHint("It may hold the last acknowledged commits. Bring it back, or use FORCE to accept losing them.")
		}
	}
	return nil
}

// CheckSwitchover is the slave a SWITCHOVER of family f names and its
// master, refused unless it is a direct slave of a master, both in the
// cluster.
func CheckSwitchover(s *State, f Family, name string) (old, n Node, err error) {
	want := TypeOf(f, false)
	n, ok := s.Node(name)
	if !ok || n.Type != want {
		return Node{}, Node{}, &FieldError{Field: "name", Err: pgerror.New(pgerror.UndefinedObject, `%s is not a slave node`, name).
			WithHint("SWITCHOVER names a %s.", want)}
	}
	old, ok = s.Node(n.Master)
	if !ok || !old.Type.IsMaster() {
		return Node{}, Node{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s follows slave "%s": only a direct slave of a master can take over`, describe(n.Type, n.Name), n.Master)
	}
	if !n.InCluster || !old.InCluster {
		return Node{}, Node{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s and its master must be in the cluster`, describe(n.Type, n.Name))
	}
	return old, n, nil
}

// SwitchoverReady checks, on the probes of old's direct slaves, that n
// runs as a standby and, without force, that no sync or potential sibling
// is down (it would miss the switch's last records and need a REWIND).
func SwitchoverReady(s *State, old, n string, force bool, probes map[string]Probe) error {
	if p := probes[n]; !p.Reachable || !p.InRecovery {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s expected running status is slave mode, but actually is not`, n)
	}
	if force {
		return nil
	}
	if err := syncRefusal(s, old, n, probes); err != nil {
		return err.WithHint("Use FORCE to switch anyway; it will need a REWIND.")
	}
	return nil
}

// SwitchoverFollowers are the direct slaves of old, other than newMaster,
// that answered before the switch: they follow the new master.
func SwitchoverFollowers(s *State, old, newMaster string, probes map[string]Probe) []string {
	var out []string
	for _, c := range s.Children(old) {
		if c.Name != newMaster && probes[c.Name].Reachable {
			out = append(out, c.Name)
		}
	}
	return out
}

// FollowOrRewind splits a failover's followers on the slaves' final
// positions: one ahead of the new master (possible with TO … FORCE)
// cannot stream from it and must be rewound like the old master, so it
// joins Lost, with a warning.
func FollowOrRewind(c Candidate, probes map[string]Probe) Candidate {
	var followers []string
	for _, f := range c.Followers {
		if probes[f].LSN > c.LSN {
			c.Lost = append(c.Lost, f)
			c.Notices = append(c.Notices, warning("%s is ahead of %s and cannot follow it; REWIND it", f, c.Name))
			continue
		}
		followers = append(followers, f)
	}
	c.Followers = followers
	return c
}

// CheckRewind is the slave a REWIND of family f names and the master it
// is rewound from (the one the node table names), refused when that
// master is not in the cluster.
func CheckRewind(s *State, f Family, name string) (n, parent Node, err error) {
	want := TypeOf(f, false)
	n, ok := s.Node(name)
	if !ok || n.Type != want {
		return Node{}, Node{}, fieldErr("name", pgerror.UndefinedObject, `%s "%s" does not exist`, want, name)
	}
	parent, ok = s.Node(n.Master)
	if !ok || !parent.InCluster {
		return Node{}, Node{}, pgerror.New(pgerror.ObjectNotInPrereqState, `the master "%s" of %s is not in the cluster`, n.Master, describe(n.Type, n.Name))
	}
	return n, parent, nil
}

// PlanRewound is the catalog side of a REWIND of node under master: back
// in the cluster, initialised, curable, with RewoundSyncState.
func PlanRewound(s *State, master, node string) Plan {
	n, ok := s.Node(node)
	if !ok {
		return Plan{}
	}
	n.Initialized, n.InCluster, n.AllowCure, n.CureStatus, n.SyncState = true, true, true, "normal", RewoundSyncState(s, master, node)
	n.PreSync = ""
	return Plan{UpdateNodes: []Node{n}}
}

// PlanKickOut takes a node that could not follow a switch out of the
// cluster until REWIND: listed as sync it would make every commit on its
// new master wait for a node that does not stream.
func PlanKickOut(s *State, names ...string) Plan {
	var p Plan
	for _, name := range names {
		if n, ok := s.Node(name); ok {
			n = TakenOut(n)
			n.SyncState, n.InCluster, n.Initialized = Async, false, false
			p.UpdateNodes = append(p.UpdateNodes, n)
		}
	}
	return p
}

// PlanAllowCure sets whether the doctor may act on the named nodes.
func PlanAllowCure(s *State, allow bool, names ...string) Plan {
	var p Plan
	for _, name := range names {
		if n, ok := s.Node(name); ok {
			n.AllowCure = allow
			p.UpdateNodes = append(p.UpdateNodes, n)
		}
	}
	return p
}

// SyncTarget is what a node's synchronous replication must be per the
// catalog: its synchronous_standby_names (empty on a cascading slave,
// whose walsenders are always asynchronous) and the sync_state
// pg_stat_replication must show for each direct slave selected by ok.
func SyncTarget(s *State, n Node, ok func(Node) bool) (names string, want map[string]string) {
	if n.Type.IsMaster() {
		names = SyncNames(s, n.Name, ok)
	}
	want = ExpectedReplication(s, n.Name, ok)
	if !n.Type.IsMaster() {
		for k := range want {
			want[k] = Async
		}
	}
	return names, want
}

// Describe is a node as messages name it: `datanode slave "dn1s"`.
func Describe(n Node) string { return describe(n.Type, n.Name) }
