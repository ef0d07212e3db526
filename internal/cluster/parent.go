package cluster

import "github.com/adbmgr/adbmgr/internal/pgerror"

// ReparentRequest is ALTER {DATANODE|GTMCOORD} SLAVE n (PARENT = m [,
// SYNC_STATE = s]): n follows m from now on — another node of its
// replication tree, a slave (a cascade) or the master.
type ReparentRequest struct {
	Name        string
	Type        NodeType
	Parent      string
	SyncState   *string // nil: the default under the new parent
	CurrentZone string
}

// LiveParent marks, in Plan.Live, a re-parent that must reach the running
// slave (ReparentLive).
const LiveParent = "parent"

// Reparent decides a re-parent (reference §4.2 "parent"): m must be a node
// of n's replication tree, not n, not below n (a cycle), not already its
// parent; coordinator slaves cannot cascade. n's sync state is decided as
// under its new parent (a cascaded slave is async); a sync slave leaving
// its master hands its role to a potential sibling. A node in the cluster
// is re-pointed live (Plan.Live has LiveParent), which needs m initialised
// and in the cluster; a node out of the cluster (not initialised yet, or
// kicked out until REWIND) changes in the node table only.
func Reparent(s *State, r ReparentRequest) (Plan, error) {
	var p Plan
	n, err := findTyped(s, r.Type, r.Name)
	if err != nil {
		return p, err
	}
	if n.Type.IsMaster() || n.Type == CoordinatorSlave {
		return p, fieldErr("parent", pgerror.InvalidParameterValue, `the parent of %s cannot be changed: only gtmcoord and datanode slaves follow another node`, Describe(n))
	}
	if r.Parent == n.Name {
		return p, fieldErr("parent", pgerror.InvalidParameterValue, "cannot alter the parent node to itself.")
	}
	m, ok := s.Node(r.Parent)
	if !ok {
		return p, fieldErr("parent", pgerror.UndefinedObject, `%s "%s" does not exist in the node table`, n.Type.Family(), r.Parent)
	}
	if m.Name == n.Master {
		return p, fieldErr("parent", pgerror.InvalidParameterValue, `%s is already the parent of %s`, Describe(m), Describe(n))
	}
	if Root(s, m).Name != Root(s, n).Name || m.Type.Family() != n.Type.Family() {
		return p, withHint(fieldErr("parent", pgerror.InvalidParameterValue, `%s and %s are not in the same group: a slave follows a node of its own replication tree`,
			Describe(n), Describe(m)), `The tree of `+n.Name+` is rooted at "`+Root(s, n).Name+`".`)
	}
	if Below(s, m, n.Name) {
		return p, withHint(fieldErr("parent", pgerror.InvalidParameterValue, `%s follows %s: cannot support to revert child and parent relationship`,
			Describe(m), Describe(n)), "Re-parent "+m.Name+" first.")
	}
	if _, err := checkParent(s, n.Type, n.Name, m.Name, n.Zone); err != nil {
		return p, err
	}
	if n.InCluster && !(m.Initialized && m.InCluster) {
		return p, fieldErr("parent", pgerror.ObjectNotInPrereqState, `%s is not initialized in the cluster: a running slave can only follow a node of the cluster`, Describe(m))
	}
	if n.InCluster && !n.Initialized {
		return p, pgerror.New(pgerror.ObjectNotInPrereqState, `%s is in the cluster but not initialized`, Describe(n))
	}
	old := n
	n.Master = m.Name
	n.SyncState, p.Notices = slaveSyncState(s, n, m, r.SyncState, r.CurrentZone)
	p.UpdateNodes = []Node{n}
	if oldParent, ok := s.Node(old.Master); ok && oldParent.Type.IsMaster() && old.SyncState == Sync {
		if sib, ns, ok := promotePotential(s, oldParent.Name, n.Name); ok {
			p.UpdateNodes = append(p.UpdateNodes, sib)
			p.Notices = append(p.Notices, ns...)
		} else if oldParent.Type != CoordinatorMaster && !hasSyncChild(s, oldParent.Name, n.Name) {
			p.Notices = append(p.Notices, warning(`%s has no synchronous slave node`, Describe(oldParent)))
		}
	}
	if n.InCluster {
		p.Live = []string{LiveParent}
	}
	return p, nil
}

// Root is the master at the top of n's replication tree (n itself for a
// master, or when a parent is missing).
func Root(s *State, n Node) Node {
	for seen := 0; n.Master != "" && seen < len(s.Nodes); seen++ {
		p, ok := s.Node(n.Master)
		if !ok {
			break
		}
		n = p
	}
	return n
}

// Below reports whether n is below the node named name in its tree (a
// slave of it, or a slave of one of its slaves…).
func Below(s *State, n Node, name string) bool {
	for seen := 0; n.Master != "" && seen < len(s.Nodes); seen++ {
		if n.Master == name {
			return true
		}
		p, ok := s.Node(n.Master)
		if !ok {
			return false
		}
		n = p
	}
	return false
}
