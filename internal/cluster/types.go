// Package cluster is the manager's pure domain: node types, the sync-state
// algebra, the replication tree and the rules that every change of the host
// and node tables must obey. It does no I/O. Each decision is a function from
// the current State and a request to a Plan (rows to insert, update, delete,
// and the notices to show), table-tested in the style of Stolon's sentinel.
package cluster

import (
	"cmp"
	"slices"
)

// NodeType is a node's type as LIST NODE shows it.
type NodeType string

const (
	GtmcoordMaster    NodeType = "gtmcoord master"
	GtmcoordSlave     NodeType = "gtmcoord slave"
	CoordinatorMaster NodeType = "coordinator master"
	CoordinatorSlave  NodeType = "coordinator slave"
	DatanodeMaster    NodeType = "datanode master"
	DatanodeSlave     NodeType = "datanode slave"
)

// Family is the part of a NodeType before the role.
type Family string

const (
	Gtmcoord    Family = "gtmcoord"
	Coordinator Family = "coordinator"
	Datanode    Family = "datanode"
)

// TypeOf returns the node type of a family and role.
func TypeOf(f Family, master bool) NodeType {
	if master {
		return NodeType(string(f) + " master")
	}
	return NodeType(string(f) + " slave")
}

// Family returns the family of t.
func (t NodeType) Family() Family {
	switch t {
	case GtmcoordMaster, GtmcoordSlave:
		return Gtmcoord
	case CoordinatorMaster, CoordinatorSlave:
		return Coordinator
	}
	return Datanode
}

// IsMaster reports whether t is a master type.
func (t NodeType) IsMaster() bool {
	return t == GtmcoordMaster || t == CoordinatorMaster || t == DatanodeMaster
}

// order is AntDB's LIST NODE type order (reference §2.2).
func (t NodeType) order() int {
	switch t {
	case GtmcoordMaster:
		return 0
	case GtmcoordSlave:
		return 1
	case CoordinatorMaster:
		return 2
	case CoordinatorSlave:
		return 3
	case DatanodeMaster:
		return 4
	}
	return 5
}

// Sync states of a slave. Masters have NoSync.
const (
	NoSync    = ""
	Sync      = "sync"
	Potential = "potential"
	Async     = "async"
)

// ASlave is "a sync slave", "a potential slave", "an async slave": the
// sync state with its article, for messages.
func ASlave(syncState string) string {
	if syncState == Async {
		return "an async slave"
	}
	return "a " + syncState + " slave"
}

// DefaultZone is the zone of nodes added without ZONE, and the manager's
// current zone (AntDB's mgr_zone GUC) unless a session sets another.
const DefaultZone = "local"

// Host is a row of the host table.
type Host struct {
	Name      string
	User      string
	Port      int
	Protocol  string // "ssh" or "local"
	AgentPort int
	Address   string
	ADBHome   string
	PGHome    string
	// AllowCure: the doctor may act on the host's nodes (SET DOCTOR HOST;
	// a new host allows it).
	AllowCure bool
}

// Host protocols.
const (
	ProtocolSSH   = "ssh"
	ProtocolLocal = "local"
)

// Node is a row of the node table. Master is the parent's name ("" for
// masters); the parent of a cascaded slave is itself a slave.
type Node struct {
	ID          int64 // insertion order; AntDB's catalog scan order
	Name        string
	Host        string
	Type        NodeType
	Master      string
	Port        int
	SyncState   string
	Path        string
	Initialized bool
	InCluster   bool
	ReadOnly    bool
	Zone        string
	AllowCure   bool
	CureStatus  string
	// PreSync is the sync state a slave had before the doctor took it out
	// of the cluster (isolated, or unable to follow a failover): it comes
	// back with it (RewoundSyncState). "" while in the cluster.
	PreSync string
}

// State is a consistent snapshot of the host and node tables. Nodes are in
// insertion order.
type State struct {
	Hosts []Host
	Nodes []Node
	// Moved lists, per host whose address changed while it had
	// initialised nodes, the earlier addresses its agent and nodes may
	// still use: FLUSH HOST has to move them (flush.go).
	Moved map[string][]string
}

// Host returns the host named name.
func (s *State) Host(name string) (Host, bool) {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// Node returns the node named name.
func (s *State) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Children returns the direct slaves of the node named name, in insertion order.
func (s *State) Children(name string) []Node {
	var out []Node
	for _, n := range s.Nodes {
		if n.Master == name && name != "" {
			out = append(out, n)
		}
	}
	return out
}

// Depth is 1 for a master, 2 for its direct slaves, 3 for their slaves…
func (s *State) Depth(n Node) int {
	d := 1
	for seen := 0; n.Master != "" && seen < len(s.Nodes); seen++ {
		p, ok := s.Node(n.Master)
		if !ok {
			break
		}
		n = p
		d++
	}
	return d
}

// SortForList orders nodes as AntDB's LIST NODE does: by type (gtmcoord
// master, gtmcoord slave, coordinator master, coordinator slave, datanode
// master, datanode slave), then master name, then sync_state descending
// (sync, potential, async), then insertion order.
func SortForList(nodes []Node) {
	slices.SortStableFunc(nodes, func(a, b Node) int {
		if c := cmp.Compare(a.Type.order(), b.Type.order()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Master, b.Master); c != 0 {
			return c
		}
		if c := cmp.Compare(b.SyncState, a.SyncState); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// Param is a parameter set with SET {GTMCOORD|COORDINATOR|DATANODE} …: Node
// is a node name or "*", Type a node type ("datanode master") or a family
// ("datanode") meaning masters and slaves.
type Param struct {
	Node  string
	Type  string
	Key   string
	Value string
}

// HBARule is a pg_hba.conf line added with ADD HBA: Node is a node name or
// "*" for every node of Family.
type HBARule struct {
	Node   string
	Family Family
	Line   string
}

// GUC describes one server parameter (postgres --describe-config).
type GUC struct {
	Name       string
	Context    string // postmaster, sighup, superuser, user, internal, backend, superuser-backend
	VarType    string // bool, integer, real, string, enum
	Default    string
	Min, Max   string
	EnumValues []string
	Unit       string
}

// Applies reports whether p applies to node n.
func (p Param) Applies(n Node) bool {
	if p.Node != "*" && p.Node != n.Name {
		return false
	}
	return p.Type == string(n.Type) || p.Type == string(n.Type.Family())
}

// Applies reports whether r applies to node n.
func (r HBARule) Applies(n Node) bool {
	return r.Family == n.Type.Family() && (r.Node == "*" || r.Node == n.Name)
}
