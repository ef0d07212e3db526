package cluster

import (
	"path"
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// NodeSpec holds the options of ADD/ALTER node; nil means "not given".
// Values are already checked for form (port is a number, path is absolute,
// sync state is one of sync/potential/async) by the executor.
type NodeSpec struct {
	Host      *string
	Port      *int
	SyncState *string
	Path      *string
	Zone      *string
	ReadOnly  *bool
}

// AddNodeRequest is ADD {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE … FOR …}.
type AddNodeRequest struct {
	Name        string
	Type        NodeType
	For         string // parent name, slaves only
	Spec        NodeSpec
	CurrentZone string // the session's mgr_zone
}

// describe names a node for messages: `datanode slave "db1s"`.
func describe(t NodeType, name string) string {
	return string(t) + ` "` + name + `"`
}

// AddNode decides ADD … node: validation in AntDB's order (reference §4.1)
// and the new row's sync_state (§2.7).
func AddNode(s *State, req AddNodeRequest) (Plan, error) {
	var p Plan
	zone := req.CurrentZone
	if req.Spec.Zone != nil {
		zone = *req.Spec.Zone
	}
	if req.Type.IsMaster() && zone != req.CurrentZone {
		return p, fieldErr("zone", pgerror.InvalidParameterValue,
			`the node "%s" is master type, should be in the current zone "%s", not "%s" zone`, req.Name, req.CurrentZone, zone)
	}
	if old, ok := s.Node(req.Name); ok {
		return p, pgerror.New(pgerror.DuplicateObject, `the name "%s" already exists in the node table (as %s)`, req.Name, old.Type).
			WithHint("Node names are unique across all node types.")
	}
	if req.Type == GtmcoordMaster {
		for _, n := range s.Nodes {
			if n.Type == GtmcoordMaster {
				return p, pgerror.New(pgerror.DuplicateObject,
					`Only one gtm coordinator master is supported in the cluster, you can't add gtm coordinator master again ("%s" exists).`, n.Name)
			}
		}
	}
	var parent Node
	if !req.Type.IsMaster() {
		var err error
		if parent, err = checkParent(s, req.Type, req.Name, req.For, zone); err != nil {
			return p, err
		}
	}
	if req.Spec.SyncState != nil && req.Type.IsMaster() {
		return p, fieldErr("sync_state", pgerror.InvalidParameterValue, "synchronous relationship must set on the slave node")
	}
	if req.Spec.ReadOnly != nil && req.Type != CoordinatorMaster {
		return p, fieldErr("readonly", pgerror.InvalidParameterValue, `option "readonly" is only valid for coordinator masters, not for %s`, req.Type)
	}
	for _, o := range []struct {
		name  string
		given bool
	}{{"host", req.Spec.Host != nil}, {"port", req.Spec.Port != nil}, {"path", req.Spec.Path != nil}} {
		if !o.given {
			return p, pgerror.New(pgerror.SyntaxError, `option "%s" must be given`, o.name).
				WithHint("ADD %s needs HOST, PORT and PATH.", strings.ToUpper(string(req.Type.Family())))
		}
	}
	n := Node{
		Name:       req.Name,
		Host:       *req.Spec.Host,
		Type:       req.Type,
		Master:     req.For,
		Port:       *req.Spec.Port,
		Path:       path.Clean(*req.Spec.Path),
		Zone:       zone,
		CureStatus: "normal",
	}
	if req.Spec.ReadOnly != nil {
		n.ReadOnly = *req.Spec.ReadOnly
	}
	if err := checkPlacement(s, n); err != nil {
		return p, err
	}
	if !n.Type.IsMaster() {
		n.SyncState, p.Notices = slaveSyncState(s, n, parent, req.Spec.SyncState, req.CurrentZone)
		if n.SyncState == Async && parent.Type.IsMaster() && parent.Type != CoordinatorMaster && !hasSyncChild(s, parent.Name, "") {
			p.Notices = append(p.Notices, warning(`%s has no synchronous slave node`, describe(parent.Type, parent.Name)))
		}
	}
	p.InsertNode = &n
	return p, nil
}

// checkParent validates the FOR target of a new slave.
func checkParent(s *State, t NodeType, name, parentName, zone string) (Node, error) {
	parent, ok := s.Node(parentName)
	if !ok {
		return parent, pgerror.New(pgerror.UndefinedObject, `%s "%s" does not exist in the node table`, t.Family(), parentName).
			WithHint(`Add the master first; try "list node;".`)
	}
	if parent.Type.Family() != t.Family() {
		return parent, pgerror.New(pgerror.InvalidParameterValue, `%s "%s" cannot follow %s: a %s follows a %s node`,
			t, name, describe(parent.Type, parent.Name), t, t.Family())
	}
	if parent.Type == CoordinatorSlave {
		return parent, pgerror.New(pgerror.FeatureNotSupported,
			`%s cannot follow coordinator slave "%s": coordinator slaves cannot be cascaded`, describe(t, name), parent.Name)
	}
	if zone != parent.Zone {
		for _, c := range s.Children(parent.Name) {
			if c.Zone == zone && c.Name != name {
				return parent, fieldErr("zone", pgerror.DuplicateObject, `%s already has slave node "%s" in zone "%s"`,
					describe(parent.Type, parent.Name), c.Name, zone)
			}
		}
	}
	return parent, nil
}

// checkPlacement enforces host existence and the (host, port) and
// (host, path) uniqueness of n against every other node. A data directory
// nested inside another node's directory on the same host is refused too:
// initdb and CLEAN of one would destroy the other.
func checkPlacement(s *State, n Node) error {
	if _, ok := s.Host(n.Host); !ok {
		return fieldErr("host", pgerror.UndefinedObject, `host "%s" does not exist`, n.Host)
	}
	for _, o := range s.Nodes {
		if o.Name == n.Name || o.Host != n.Host {
			continue
		}
		if o.Path == n.Path {
			return withHint(fieldErr("path", pgerror.DuplicateObject, `on host "%s" the path "%s" has already been used in node table (by node "%s")`,
				n.Host, n.Path, o.Name), `try "list node;" for more information`)
		}
		if within(n.Path, o.Path) || within(o.Path, n.Path) {
			return withHint(fieldErr("path", pgerror.InvalidParameterValue, `on host "%s" the path "%s" overlaps the path "%s" of node "%s"`,
				n.Host, n.Path, o.Path, o.Name), "data directories of two nodes must not be nested")
		}
		if o.Port == n.Port {
			return withHint(fieldErr("port", pgerror.DuplicateObject, `on host "%s" the port "%d" has already been used in node table (by node "%s")`,
				n.Host, n.Port, o.Name), `try "list node;" for more information`)
		}
	}
	return nil
}

func withHint(err error, hint string) error {
	if pe, ok := pgerror.As(err); ok {
		pe.Hint = hint
	}
	return err
}

// within reports whether dir is strictly inside root.
func within(dir, root string) bool {
	if root == "/" {
		return dir != "/"
	}
	return strings.HasPrefix(dir, root+"/")
}

// hasSyncChild reports whether the node named master has a direct slave in
// state sync, other than the node named except.
func hasSyncChild(s *State, master, except string) bool {
	for _, c := range s.Children(master) {
		if c.Name != except && c.SyncState == Sync {
			return true
		}
	}
	return false
}

// slaveSyncState computes a slave's sync_state from the request (nil = not
// given), reference §2.7. One departure from AntDB, on purpose: a cascaded
// slave (whose parent is itself a slave) is always async, because
// PostgreSQL's synchronous replication only exists between a primary and its
// direct standbys; AntDB stores "sync" with a warning, which would make
// LIST NODE disagree with pg_stat_replication.
func slaveSyncState(s *State, n, parent Node, want *string, currentZone string) (string, []Notice) {
	asked := ""
	if want != nil {
		asked = *want
	}
	if s.Depth(parent) >= 2 {
		if asked == Sync || asked == Potential {
			return Async, []Notice{notice(`%s follows slave "%s": a cascaded slave replicates asynchronously, sync_state set to async`,
				describe(n.Type, n.Name), parent.Name)}
		}
		return Async, nil
	}
	if n.Zone != currentZone && n.Zone != parent.Zone {
		if asked == Sync || asked == Potential {
			return Async, []Notice{notice(`%s is in zone "%s", outside the current zone and its master's zone: sync_state set to async`,
				describe(n.Type, n.Name), n.Zone)}
		}
		return Async, nil
	}
	switch asked {
	case Sync, Async:
		return asked, nil
	case Potential:
		if !hasSyncChild(s, parent.Name, n.Name) {
			return Sync, []Notice{notice("the master of this node has no synchronous slave node, make this node as synchronous node")}
		}
		return Potential, nil
	}
	if hasSyncChild(s, parent.Name, n.Name) {
		return Potential, nil
	}
	return Sync, nil
}

// promotePotential makes the first potential sibling of a departing or
// demoted sync slave the new sync one, when no other sync sibling remains.
// It returns the updated sibling, if any.
func promotePotential(s *State, master, leaving string) (Node, []Notice, bool) {
	if hasSyncChild(s, master, leaving) {
		return Node{}, nil, false
	}
	for _, c := range s.Children(master) {
		if c.Name != leaving && c.SyncState == Potential {
			c.SyncState = Sync
			return c, []Notice{notice(`make potential node %s as synchronous node`, describe(c.Type, c.Name))}, true
		}
	}
	return Node{}, nil, false
}

// findTyped looks a node up by name and requires the given type.
func findTyped(s *State, t NodeType, name string) (Node, error) {
	n, ok := s.Node(name)
	if !ok {
		return n, pgerror.New(pgerror.UndefinedObject, `%s does not exist, check the node table`, describe(t, name))
	}
	if n.Type != t {
		return n, pgerror.New(pgerror.UndefinedObject, `%s does not exist, check the node table`, describe(t, name)).
			WithHint(`"%s" is a %s.`, name, n.Type)
	}
	return n, nil
}

// AlterNodeRequest is ALTER {family} {MASTER|SLAVE} name (options).
type AlterNodeRequest struct {
	Name        string
	Type        NodeType
	Spec        NodeSpec
	CurrentZone string
}

// AlterNode decides ALTER … node (reference §4.2). Before a node is
// initialised everything may change; afterwards only a slave's sync_state
// and the port, and those are marked Live for the executor to apply to the
// running processes.
func AlterNode(s *State, req AlterNodeRequest) (Plan, error) {
	var p Plan
	old, err := findTyped(s, req.Type, req.Name)
	if err != nil {
		return p, err
	}
	n := old
	if req.Spec.SyncState != nil && n.Type.IsMaster() {
		return p, fieldErr("sync_state", pgerror.InvalidParameterValue, "synchronous relationship must set on the slave node")
	}
	if req.Spec.ReadOnly != nil && n.Type != CoordinatorMaster {
		return p, fieldErr("readonly", pgerror.InvalidParameterValue, `option "readonly" is only valid for coordinator masters, not for %s`, n.Type)
	}
	if req.Spec.Host != nil {
		n.Host = *req.Spec.Host
	}
	if req.Spec.Port != nil {
		n.Port = *req.Spec.Port
	}
	if req.Spec.Path != nil {
		n.Path = path.Clean(*req.Spec.Path)
	}
	if req.Spec.Zone != nil {
		n.Zone = *req.Spec.Zone
	}
	if req.Spec.ReadOnly != nil {
		n.ReadOnly = *req.Spec.ReadOnly
	}
	if old.Initialized || old.InCluster {
		for _, f := range []struct {
			field   string
			changed bool
		}{{"host", n.Host != old.Host}, {"path", n.Path != old.Path}, {"zone", n.Zone != old.Zone}, {"readonly", n.ReadOnly != old.ReadOnly}} {
			if f.changed {
				return p, withHint(fieldErr(f.field, pgerror.ObjectNotInPrereqState, `%s has been initialized in the cluster, its %s cannot be changed`,
					describe(n.Type, n.Name), f.field), "After initialization only the port and a slave's sync_state can be altered.")
			}
		}
	}
	if n.Type.IsMaster() && n.Zone != old.Zone && n.Zone != req.CurrentZone {
		return p, fieldErr("zone", pgerror.InvalidParameterValue,
			`the node "%s" is master type, should be in the current zone "%s", not "%s" zone`, n.Name, req.CurrentZone, n.Zone)
	}
	if n.Host != old.Host || n.Port != old.Port || n.Path != old.Path {
		if err := checkPlacement(s, n); err != nil {
			return p, err
		}
	}
	if !n.Type.IsMaster() && (req.Spec.SyncState != nil || n.Zone != old.Zone) {
		parent, _ := s.Node(n.Master)
		want := req.Spec.SyncState
		if want == nil {
			want = &old.SyncState
		}
		n.SyncState, p.Notices = slaveSyncState(s, n, parent, want, req.CurrentZone)
		promoted := false
		if old.SyncState == Sync && n.SyncState != Sync {
			var sib Node
			var ns []Notice
			if sib, ns, promoted = promotePotential(s, n.Master, n.Name); promoted {
				p.UpdateNodes = append(p.UpdateNodes, sib)
				p.Notices = append(p.Notices, ns...)
			}
		}
		if n.SyncState != Sync && !promoted && parent.Type.IsMaster() && parent.Type != CoordinatorMaster && !hasSyncChild(s, parent.Name, n.Name) {
			p.Notices = append(p.Notices, warning(`%s has no synchronous slave node`, describe(parent.Type, parent.Name)))
		}
	}
	if old.Initialized || old.InCluster {
		if n.Port != old.Port {
			p.Live = append(p.Live, "port")
		}
		if n.SyncState != old.SyncState || len(p.UpdateNodes) > 0 {
			p.Live = append(p.Live, "sync_state")
		}
	}
	p.UpdateNodes = append([]Node{n}, p.UpdateNodes...)
	return p, nil
}

// DropNodes decides DROP {family} {MASTER|SLAVE} name [, …] (reference
// §4.3). Names are dropped in the order given, each against the state left by
// the previous ones, so "DROP DATANODE SLAVE child, parent" works; any
// refusal refuses the whole statement.
func DropNodes(s *State, t NodeType, names []string) (Plan, error) {
	var p Plan
	work := State{Hosts: s.Hosts, Nodes: slices.Clone(s.Nodes)}
	for _, name := range names {
		n, err := findTyped(&work, t, name)
		if err != nil {
			return Plan{}, err
		}
		if err := dropOne(&work, n, &p); err != nil {
			return Plan{}, err
		}
	}
	return p, nil
}

func dropOne(work *State, n Node, p *Plan) error {
	if n.Initialized || n.InCluster {
		err := pgerror.New(pgerror.ObjectInUse, `%s has been initialized in the cluster, cannot be dropped`, describe(n.Type, n.Name))
		if n.Type == GtmcoordMaster || n.Type == DatanodeMaster {
			// REMOVE refuses these masters (reference §4.7): they leave
			// only with the whole cluster, or as a slave after a failover.
			return err.WithHint("A %s leaves the cluster only with it: STOP ALL and CLEAN ALL first, or FAILOVER to a slave, which kicks the old master out.", n.Type)
		}
		return err.WithHint("Stop it, REMOVE it from the cluster and CLEAN it first.")
	}
	if kids := work.Children(n.Name); len(kids) > 0 {
		names := make([]string, len(kids))
		for i, k := range kids {
			names[i] = k.Name
		}
		return pgerror.New(pgerror.ObjectInUse, `%s has been used by slave, cannot be dropped`, describe(n.Type, n.Name)).
			WithHint("Drop the slaves first: %s.", strings.Join(names, ", "))
	}
	if n.SyncState == Sync {
		if sib, ns, ok := promotePotential(work, n.Master, n.Name); ok {
			replaceNode(work, sib)
			p.UpdateNodes = upsert(p.UpdateNodes, sib)
			p.Notices = append(p.Notices, ns...)
		}
	}
	work.Nodes = slices.DeleteFunc(work.Nodes, func(o Node) bool { return o.Name == n.Name })
	p.UpdateNodes = slices.DeleteFunc(p.UpdateNodes, func(o Node) bool { return o.Name == n.Name })
	p.DeleteNodes = append(p.DeleteNodes, n.Name)
	return nil
}

func replaceNode(s *State, n Node) {
	for i := range s.Nodes {
		if s.Nodes[i].ID == n.ID {
			s.Nodes[i] = n
		}
	}
}

func upsert(list []Node, n Node) []Node {
	for i := range list {
		if list[i].ID == n.ID {
			list[i] = n
			return list
		}
	}
	return append(list, n)
}

// DropZone decides DROP ZONE z (reference §4.16): every node located in z is
// dropped with the DROP rules, children before parents; refused when a node of
// z still has a slave in another zone.
func DropZone(s *State, zone string) (Plan, error) {
	var in []Node
	for _, n := range s.Nodes {
		if n.Zone == zone {
			in = append(in, n)
		}
	}
	if len(in) == 0 {
		return Plan{}, pgerror.New(pgerror.UndefinedObject, `zone "%s" has no node in the node table`, zone)
	}
	for _, n := range in {
		for _, c := range s.Children(n.Name) {
			if c.Zone != zone {
				return Plan{}, pgerror.New(pgerror.ObjectInUse, `zone %s has slave node in other zone, so can't drop zone %s.`, zone, zone).
					WithDetail(`%s has slave "%s" in zone "%s".`, describe(n.Type, n.Name), c.Name, c.Zone)
			}
		}
	}
	// Deepest first, so that every node is childless at its turn.
	slices.SortStableFunc(in, func(a, b Node) int { return s.Depth(b) - s.Depth(a) })
	var p Plan
	work := State{Hosts: s.Hosts, Nodes: slices.Clone(s.Nodes)}
	for _, n := range in {
		if err := dropOne(&work, n, &p); err != nil {
			return Plan{}, err
		}
	}
	return p, nil
}
