package expand

import (
	"context"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// NameError is a refusal about the Index-th name of a statement, so that
// the caret points at it.
type NameError struct {
	Index int
	Err   error
}

func (e *NameError) Error() string { return e.Err.Error() }
func (e *NameError) Unwrap() error { return e.Err }

// Remove is REMOVE of nodes of type want (reference §4.7): stopped nodes
// leave the cluster but keep their rows (cluster.PlanRemove); their
// masters' sync names, their replication slots and the coordinators
// follow. A refusal about one name is a *NameError.
func (x *Expander) Remove(ctx context.Context, want cluster.NodeType, names []string, p Progress) error {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return err
	}
	s := sn.State
	var nodes []cluster.Node
	leaving := map[string]bool{}
	for i, name := range names {
		n, err := x.removable(s, want, name)
		if err != nil {
			return &NameError{Index: i, Err: err}
		}
		nodes = append(nodes, n)
		leaving[n.Name] = true
	}
	if want == cluster.CoordinatorMaster {
		left := 0
		for _, n := range s.Nodes {
			if n.Type == cluster.CoordinatorMaster && n.InCluster && !leaving[n.Name] {
				left++
			}
		}
		if left == 0 {
			return pgerror.New(pgerror.ObjectInUse, "the cluster only has one coordinator, cannot be removed")
		}
	}
	// The nodes leave with the journal row that says so, in one
	// transaction.
	j := &journal{cat: x.Catalog, j: Journal{Command: "REMOVE " + strings.ToUpper(string(want)) + " " + strings.Join(names, ", ")}}
	if _, err := j.commit(ctx, p, func(s *cluster.State) (cluster.GrowPlan, error) {
		return cluster.GrowPlan{Plan: cluster.PlanRemove(s, names), Journal: cluster.JournalEntry{Status: "running", Step: "removed"}}, nil
	}); err != nil {
		return err
	}
	// The nodes have left: what follows runs even if the statement is
	// cancelled.
	ctx = context.WithoutCancel(ctx)
	after, err := x.Catalog.Read(ctx)
	if err == nil {
		x.afterRemove(ctx, after.State, nodes, p)
	}
	j.end(ctx, "after", err)
	return err
}

// removable is node name if REMOVE may take it out of the cluster.
func (x *Expander) removable(s *cluster.State, want cluster.NodeType, name string) (cluster.Node, error) {
	n, ok := s.Node(name)
	if !ok || n.Type != want {
		return n, pgerror.New(pgerror.UndefinedObject, `%s "%s" does not exist`, want, name)
	}
	if !n.InCluster {
		return n, pgerror.New(pgerror.ObjectNotInPrereqState, `%s does not exist in cluster`, cluster.Describe(n))
	}
	for _, c := range s.Children(n.Name) {
		if c.InCluster {
			return n, pgerror.New(pgerror.ObjectInUse, "%s has slave node, cannot remove it. please drop the slave node first.", n.Name)
		}
	}
	h, _ := s.Host(n.Host)
	if x.Fleet.Listening(fleet.Member{Node: n, Host: h}) {
		return n, pgerror.New(pgerror.ObjectInUse, `"%s" is running, stop it first`, n.Name)
	}
	return n, nil
}

// afterRemove brings the running nodes up to date once nodes left: their
// masters' sync names, their slots on their masters, the coordinators.
func (x *Expander) afterRemove(ctx context.Context, s *cluster.State, nodes []cluster.Node, p Progress) {
	done := map[string]bool{}
	for _, n := range nodes {
		if n.Type.IsMaster() || done[n.Master] {
			continue
		}
		done[n.Master] = true
		m, _ := s.Node(n.Master)
		if err := switches.SyncNames(ctx, x.Fleet, s, m, inCluster, false, p); err != nil {
			p.Notice("WARNING", err.Error())
		}
	}
	for _, n := range nodes {
		if !n.Type.IsMaster() {
			fleet.DropSlaveSlot(ctx, x.Fleet, s, n, p)
		}
	}
	switches.RefreshCoordinators(ctx, x.Fleet, s, "", "", p)
}
