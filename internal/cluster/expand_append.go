package cluster

import (
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// APPEND's decisions (reference §4.9, §4.10): a node ADDed after INIT ALL
// joins the running cluster. They live beside EXPAND's because both grow
// the cluster through the same steps and the same "joined" state.

// AppendRequest is APPEND of one node: Name of Type, and for APPEND
// COORDINATOR Name FOR Source the coordinator to copy.
type AppendRequest struct {
	Name   string
	Type   NodeType
	Source string
}

// PlanAppend decides APPEND: a slave is a base backup of its master; a
// datanode master is initdb'ed (it owns no slot until EXPAND); a
// coordinator master is a clone of the gtmcoord master, which carries the
// adb schema and every distributed table's definition — or, with FOR, a
// streaming copy of Source until APPEND ACTIVATE. Refusals name the field
// they are about: "name" or "source".
func PlanAppend(s *State, req AppendRequest) (GrowPlan, error) {
	n, ok := s.Node(req.Name)
	if !ok || n.Type != req.Type {
		return GrowPlan{}, &FieldError{Field: "name", Err: pgerror.New(pgerror.UndefinedObject,
			`%s "%s" does not exist in the node table`, req.Type, req.Name).WithHint("ADD the node first.")}
	}
	if n.InCluster {
		return GrowPlan{}, fieldErr("name", pgerror.ObjectNotInPrereqState, `%s already exists in cluster`, describe(n.Type, n.Name))
	}
	var gtm Node
	for _, x := range s.Nodes {
		if x.Type == GtmcoordMaster && x.InCluster {
			gtm = x
		}
	}
	if gtm.Name == "" {
		return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, "gtm master is not initialized").WithHint("Run INIT ALL first.")
	}
	var p GrowPlan
	switch {
	case !n.Type.IsMaster():
		if m, _ := s.Node(n.Master); !m.InCluster {
			return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, `the master "%s" of %s is not in the cluster`, n.Master, describe(n.Type, n.Name))
		}
		p.Steps = []GrowStep{
			{Kind: GrowBaseBackup, Node: n.Name, From: n.Master},
			{Kind: GrowCatalog, Node: n.Name},
			{Kind: GrowSyncNames, Node: n.Name, From: n.Master},
			{Kind: GrowRefreshCoordinators},
		}
	case n.Type == DatanodeMaster:
		p.Steps = []GrowStep{
			{Kind: GrowInitDB, Node: n.Name},
			{Kind: GrowStart, Node: n.Name},
			{Kind: GrowCatalog, Node: n.Name},
			{Kind: GrowRefreshCoordinators},
		}
	case n.Type == CoordinatorMaster && req.Source != "":
		src, ok := s.Node(req.Source)
		if !ok || (src.Type != CoordinatorMaster && src.Type != GtmcoordMaster) || !src.InCluster {
			return GrowPlan{}, fieldErr("source", pgerror.ObjectNotInPrereqState, `coordinator "%s" does not exist in cluster`, req.Source)
		}
		p.Steps = []GrowStep{
			{Kind: GrowBaseBackup, Node: n.Name, From: src.Name},
			{Kind: GrowCatalog, Node: n.Name, From: src.Name},
		}
	case n.Type == CoordinatorMaster:
		p.Steps = []GrowStep{
			{Kind: GrowClone, Node: n.Name, From: gtm.Name},
			{Kind: GrowCatalog, Node: n.Name},
			{Kind: GrowRefreshCoordinators},
		}
	default:
		// A gtmcoord master is made by INIT ALL only.
		return GrowPlan{}, pgerror.New(pgerror.FeatureNotSupported, "APPEND of a %s is not supported", n.Type).WithHint("INIT ALL creates it.")
	}
	return p, nil
}

// AppendSource is the node a plan's first step copies, or "" (initdb).
func (p GrowPlan) AppendSource() string {
	if len(p.Steps) == 0 {
		return ""
	}
	return p.Steps[0].From
}

// AppendJoined is the state after APPEND: the node joined the cluster.
// The command goes on (sync names, coordinators), so its journal entry
// still runs.
func AppendJoined(s *State, name string) (GrowPlan, error) {
	p, err := joined(s, name)
	if err != nil {
		return GrowPlan{}, err
	}
	p.Journal = JournalEntry{Status: "running", Step: "joined", Detail: name}
	p.Result = "success"
	return p, nil
}

// AppendCopied is the state after APPEND COORDINATOR name FOR source:
// name is initialised, not in the cluster, and a copy of source waiting
// for APPEND ACTIVATE.
func AppendCopied(s *State, name, source string) (GrowPlan, error) {
	p, err := copyOf(s, name, source, "APPEND")
	if err != nil {
		return GrowPlan{}, err
	}
	p.PutCoordinatorCopies = []CoordinatorCopy{{Node: name, Source: source}}
	p.Result = "streaming from " + source + "; run APPEND ACTIVATE COORDINATOR " + name
	return p, nil
}

// PlanAppendActivate decides APPEND ACTIVATE COORDINATOR name: the copy
// is promoted, forgets its source and joins the cluster.
func PlanAppendActivate(s *State, copies []CoordinatorCopy, name string) (GrowPlan, error) {
	var c *CoordinatorCopy
	for i := range copies {
		if copies[i].Node == name {
			c = &copies[i]
		}
	}
	if c == nil {
		return GrowPlan{}, fieldErr("name", pgerror.ObjectNotInPrereqState, `coordinator "%s" was not copied with APPEND COORDINATOR %s FOR …`, name, name)
	}
	if _, ok := s.Node(c.Source); !ok {
		return GrowPlan{}, fieldErr("name", pgerror.ObjectNotInPrereqState, `the source "%s" of coordinator "%s" does not exist`, c.Source, name)
	}
	return GrowPlan{Steps: []GrowStep{
		{Kind: GrowPromote, Node: name},
		{Kind: GrowStandalone, Node: name},
		{Kind: GrowDropSlot, Node: name, From: c.Source},
		{Kind: GrowCatalog, Node: name, From: c.Source},
		{Kind: GrowRefreshCoordinators},
	}}, nil
}

// AppendActivated is the state after APPEND ACTIVATE COORDINATOR name: a
// coordinator in the cluster, no longer a copy.
func AppendActivated(s *State, name string) (GrowPlan, error) {
	p, err := AppendJoined(s, name)
	if err != nil {
		return GrowPlan{}, err
	}
	p.DeleteCoordinatorCopies = []string{name}
	return p, nil
}
