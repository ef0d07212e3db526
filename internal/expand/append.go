package expand

import (
	"context"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Append is APPEND of one node (cluster.PlanAppend), with initdb's
// options for a datanode master.
type Append struct {
	cluster.AppendRequest
	WalSegMB  int32
	Checksums bool
}

// Append makes a node ADDed after INIT ALL join the running cluster — a
// slave by base backup from its master, a datanode master by initdb, a
// coordinator master by a clone of the gtmcoord master — or, for APPEND
// COORDINATOR … FOR …, makes it a copy waiting for APPEND ACTIVATE. It
// returns the result row's description. A refusal of the plan is returned
// as it is (a cluster.FieldError names name or source).
func (x *Expander) Append(ctx context.Context, req Append, p Progress) (string, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return "", err
	}
	s := sn.State
	plan, err := cluster.PlanAppend(s, req.AppendRequest)
	if err != nil {
		return "", err
	}
	if err := x.check(ctx, s, req.Name); err != nil {
		return "", err
	}
	if src, ok := s.Node(plan.AppendSource()); ok {
		if m, err := fleet.At(s, src); err != nil || !x.Fleet.Listening(m) {
			return "", pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not running, so you can't perform the current operation.`, cluster.Describe(src))
		}
	}
	j := x.open(ctx, "APPEND "+req.Name)
	// The running nodes must trust the new node's host before it connects.
	if err := x.Prepare(ctx, s, p); err != nil {
		j.end(ctx, "prepare", err)
		return "", err
	}
	// APPEND COORDINATOR … FOR …: a copy that waits for APPEND ACTIVATE;
	// every other APPEND: a node that joined the cluster.
	done := func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.AppendJoined(s, req.Name)
	}
	if req.Type == cluster.CoordinatorMaster && req.Source != "" {
		done = func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
			return cluster.AppendCopied(s, req.Name, req.Source)
		}
	}
	r := &run{x: x, p: p, sn: sn, j: j, walseg: req.WalSegMB, checksums: req.Checksums, done: done}
	err = r.steps(ctx, plan.Steps)
	j.end(ctx, string(r.failed.Kind), err)
	if err != nil && !r.committed {
		return "", fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "Fix the cause; CLEAN the node if its directory is not empty, then APPEND it again.",
			"APPEND %s failed", req.Name)
	}
	if err != nil {
		return "", err
	}
	return r.result.Result, nil
}

// AppendActivate is APPEND ACTIVATE COORDINATOR name
// (cluster.PlanAppendActivate): the copy is promoted and joins the
// cluster as a coordinator. A refusal of the plan is returned as it is.
func (x *Expander) AppendActivate(ctx context.Context, name string, p Progress) (string, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return "", err
	}
	plan, err := cluster.PlanAppendActivate(sn.State, sn.Copies, name)
	if err != nil {
		return "", err
	}
	if err := reachable(sn.State, plan.Steps); err != nil {
		return "", err
	}
	j := x.open(ctx, "APPEND ACTIVATE COORDINATOR "+name)
	r := &run{x: x, p: p, sn: sn, j: j, done: func(s *cluster.State, st cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.AppendActivated(s, st.Node)
	}}
	err = r.steps(ctx, plan.Steps)
	j.end(ctx, string(r.failed.Kind), err)
	if err != nil {
		return "", err
	}
	return r.result.Result, nil
}
