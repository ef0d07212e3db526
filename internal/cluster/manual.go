package cluster

import (
	"fmt"
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// The manual step commands (reference §4.17), with which a DBA finishes a
// failover by hand: PROMOTE (the node's PostgreSQL), CONFIG DATANODE SLAVE
// (the coordinators), ADBMGR PROMOTE (the node table). Their decisions.

// CheckPromote is the node PROMOTE t name names: an initialised node of
// that type.
func CheckPromote(s *State, t NodeType, name string) (Node, error) {
	n, err := findTyped(s, t, name)
	if err != nil {
		return n, named(err)
	}
	if !n.Initialized {
		return n, pgerror.New(pgerror.ObjectNotInPrereqState, `%s has not been initialized`, Describe(n))
	}
	return n, nil
}

// PromoteReady decides on the probes of n and of its master (the zero
// Probe when it has none) whether PROMOTE may run: n must answer as a
// standby, and a master that still answers as a primary refuses it — two
// masters must never run at once.
func PromoteReady(n Node, probe Probe, master Node, masterProbe Probe) error {
	if !probe.Reachable {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not running`, Describe(n)).
			WithHint("Start it first.")
	}
	if !probe.InRecovery {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not in recovery: it runs as a primary already`, Describe(n))
	}
	if master.Name != "" && masterProbe.Reachable && !masterProbe.InRecovery {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s still runs as a primary: promoting %s would make two masters`, Describe(master), n.Name).
			WithHint("Stop it first (STOP … MODE immediate), or use FAILOVER, which fences it.")
	}
	return nil
}

// CheckConfigSlave is CONFIG DATANODE SLAVE n's node and its master: n a
// datanode slave in the cluster, directly under a datanode master.
func CheckConfigSlave(s *State, name string) (n, master Node, err error) {
	if n, err = findTyped(s, DatanodeSlave, name); err != nil {
		return n, master, named(err)
	}
	if !n.InCluster {
		return n, master, pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not in the cluster`, Describe(n))
	}
	master, ok := s.Node(n.Master)
	if !ok || master.Type != DatanodeMaster {
		return n, master, pgerror.New(pgerror.ObjectNotInPrereqState, `the master "%s" of %s is not a datanode master`, n.Master, Describe(n))
	}
	return n, master, nil
}

// CheckAdbmgrPromote is ADBMGR PROMOTE t SLAVE name's node and its master:
// a slave of type t in the cluster, directly under a master.
func CheckAdbmgrPromote(s *State, t NodeType, name string) (n, old Node, err error) {
	if n, err = findTyped(s, t, name); err != nil {
		return n, old, named(err)
	}
	if !n.InCluster {
		return n, old, pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not in the cluster`, Describe(n))
	}
	old, ok := s.Node(n.Master)
	if !ok || !old.Type.IsMaster() {
		return n, old, pgerror.New(pgerror.ObjectNotInPrereqState, `%s follows slave "%s": only a direct slave of a master can be promoted`, Describe(n), n.Master)
	}
	return n, old, nil
}

// AdbmgrPromoteReady decides whether ADBMGR PROMOTE of n, a slave of
// old, may run, each manual step refused unless the one before it was
// done: n must answer as a primary (PROMOTE was run) — or the command
// would stop old and delete its row, leaving the group with no writable
// node — and, for a datanode, no coordinator may still route old's data
// to old (routing: the coordinators that still have a server named old;
// CONFIG DATANODE SLAVE was not run), or its slots would point at a
// deleted node. Nothing has changed when it refuses.
func AdbmgrPromoteReady(n Node, probe Probe, old Node, routing []string) error {
	family := strings.ToUpper(string(n.Type.Family()))
	next := fmt.Sprintf("PROMOTE %s SLAVE %s", family, n.Name)
	if n.Type.Family() == Datanode {
		next += fmt.Sprintf(", then CONFIG DATANODE SLAVE %s", n.Name)
	}
	if !probe.Reachable {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not running: it cannot be told from a standby`, Describe(n)).
			WithHint("Start it, then %s first.", next)
	}
	if probe.InRecovery {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s still runs as a standby: the group would have no writable master`, Describe(n)).
			WithHint("%s first.", next)
	}
	if len(routing) > 0 {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `the data of %s is still routed to it by %s`, old.Name, strings.Join(routing, ", ")).
			WithHint("CONFIG DATANODE SLAVE %s first.", n.Name)
	}
	return nil
}

// PlanAdbmgrPromote is the node table after ADBMGR PROMOTE of old's slave
// n, as if a failover had happened: n the master, old's other slaves its
// slaves (a potential one steps up to sync when no sync one is left, an
// async one when none is either), old a slave of n out of the cluster —
// the row PlanAdbmgrDropOld then deletes (a separate transaction: its
// slaves must have left it first). A WARNING when n has no slave.
func PlanAdbmgrPromote(s *State, old, n string) Plan {
	p, stepUp := failoverRows(s, old, n)
	p.Notices = stepUp
	var kids []int
	hasSync := false
	for i, u := range p.UpdateNodes {
		if u.Master == n && u.Name != old && u.InCluster {
			kids = append(kids, i)
			hasSync = hasSync || u.SyncState == Sync
		}
	}
	for _, i := range kids {
		u := p.UpdateNodes[i]
		p.Notices = append(p.Notices, notice(`%s is listed under %s now; it follows it once rewound: REWIND %s SLAVE %s`,
			Describe(u), n, strings.ToUpper(string(u.Type.Family())), u.Name))
	}
	if !hasSync && len(kids) > 0 {
		u := &p.UpdateNodes[kids[0]]
		u.SyncState = Sync
		p.Notices = append(p.Notices, notice(`make async node %s as synchronous node`, Describe(*u)))
	}
	if len(kids) == 0 {
		nn, _ := s.Node(n)
		p.Notices = append(p.Notices, warning(`%s has no slave node now; it is better to append a new %s slave node`, Describe(nn), nn.Type.Family()))
	}
	return p
}

// PlanAdbmgrDropOld deletes the old master's row once ADBMGR PROMOTE
// moved its slaves away (PlanAdbmgrPromote); the DBA adds it again as a
// slave of the new master and REWINDs it.
func PlanAdbmgrDropOld(s *State, old string) Plan {
	if len(s.Children(old)) > 0 {
		return Plan{}
	}
	if _, ok := s.Node(old); !ok {
		return Plan{}
	}
	return Plan{DeleteNodes: []string{old}, Notices: []Notice{
		notice(`%s was deleted from the node table; ADD it again as a slave of the new master and REWIND it`, old)}}
}

// Applied is a copy of s with p's node updates applied (the coordinators
// are configured from it before the node table changes: CONFIG DATANODE
// SLAVE).
func Applied(s *State, p Plan) *State {
	c := *s
	c.Nodes = slices.Clone(s.Nodes)
	for _, u := range p.UpdateNodes {
		for i := range c.Nodes {
			if c.Nodes[i].Name == u.Name {
				c.Nodes[i] = u
			}
		}
	}
	c.Nodes = slices.DeleteFunc(c.Nodes, func(n Node) bool { return slices.Contains(p.DeleteNodes, n.Name) })
	return &c
}

// named marks a refusal about the node a statement names, so the caret
// points at its name.
func named(err error) error {
	if pe, ok := pgerror.As(err); ok {
		return &FieldError{Field: "name", Err: pe}
	}
	return err
}
