package expand

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// replayWait bounds EXPAND ACTIVATE's wait for the destination, writes
// being paused meanwhile.
const replayWait = 20 * time.Second

// Copy is EXPAND DATANODE MASTER src TO dst (cluster.PlanExpandCopy): dst
// becomes a streaming copy of src, and the expansion waits, phase copied,
// for EXPAND ACTIVATE. It returns the result row's description. A refusal
// of the plan is returned as it is (a cluster.FieldError names src or
// dst).
func (x *Expander) Copy(ctx context.Context, src, dst string, p Progress) (string, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return "", err
	}
	plan, err := cluster.PlanExpandCopy(sn.State, sn.Expansions, src, dst)
	if err != nil {
		return "", err
	}
	if err := x.check(ctx, sn.State, dst); err != nil {
		return "", err
	}
	if err := x.Prepare(ctx, sn.State, p); err != nil {
		return "", err
	}
	j := x.open(ctx, "EXPAND DATANODE MASTER "+src+" TO "+dst)
	r := &run{x: x, p: p, sn: sn, j: j, done: func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandCopied(s, src, dst)
	}}
	err = r.steps(ctx, plan.Steps)
	j.end(ctx, string(r.failed.Kind), err)
	if err != nil && !r.committed {
		return "", fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, fmt.Sprintf("CLEAN DATANODE MASTER %s, then run EXPAND DATANODE MASTER again.", dst),
			"expand %s to %s", src, dst)
	}
	if err != nil {
		return "", err
	}
	return r.result.Result, nil
}

// check checks that node name can be made (Check).
func (x *Expander) check(ctx context.Context, s *cluster.State, name string) error {
	n, _ := s.Node(name)
	if _, err := fleet.At(s, n); err != nil {
		return err
	}
	return x.Check(ctx, s, n)
}

// Activate is EXPAND ACTIVATE: every copied expansion is activated
// (cluster.PlanExpandActivate), one result row each; a failed one keeps
// waiting, its row says why.
func (x *Expander) Activate(ctx context.Context, p Progress) ([]Row, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return nil, err
	}
	todo := cluster.ExpansionsToActivate(sn.Expansions)
	if len(todo) == 0 {
		return []Row{{OK: true, Description: "no node need activate"}}, nil
	}
	// Each source's slots are read once, before any of its destinations
	// takes its share of them.
	with := map[string][]string{}
	for _, e := range todo {
		with[e.Src] = append(with[e.Src], e.Dst)
	}
	type owned struct {
		slots []int
		err   error
	}
	owns := map[string]owned{}
	for src := range with {
		slots, err := x.slotsOf(ctx, sn.State, src)
		owns[src] = owned{slots, err}
	}
	j := x.open(ctx, "EXPAND ACTIVATE")
	var rows []Row
	var failed []string
	for _, e := range todo {
		var desc string
		err := owns[e.Src].err
		if err == nil {
			desc, err = x.activateOne(ctx, j, e, owns[e.Src].slots, with[e.Src], p)
		}
		if err != nil {
			desc = err.Error()
			failed = append(failed, e.Dst+": "+desc)
		}
		rows = append(rows, Row{Node: e.Dst, OK: err == nil, Description: desc})
	}
	if len(failed) > 0 {
		j.end(ctx, "activate", fmt.Errorf("%s", strings.Join(failed, "; ")))
	} else {
		j.end(ctx, "", nil)
	}
	return rows, nil
}

// slotsOf reads, from the first coordinator, the slots a datanode owns.
func (x *Expander) slotsOf(ctx context.Context, s *cluster.State, node string) ([]int, error) {
	c, err := firstCoordinator(s)
	if err != nil {
		return nil, err
	}
	return x.Fleet.SlotsOf(ctx, c, node)
}

// activateOne activates one expansion and returns its result row's
// description.
func (x *Expander) activateOne(ctx context.Context, j *journal, e cluster.Expansion, owned []int, with []string, p Progress) (string, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return "", err
	}
	plan, err := cluster.PlanExpandActivate(sn.State, e, owned, with)
	if err != nil {
		return "", err
	}
	r := &run{x: x, p: p, sn: sn, j: j, done: func(s *cluster.State, st cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandActivated(s, e.Src, e.Dst, st.Slots)
	}}
	defer r.release(ctx)
	if err := r.steps(ctx, plan.Steps); err != nil {
		return "", err
	}
	return r.result.Result, nil
}

// Clean is EXPAND CLEAN (cluster.PlanExpandClean): on each side of every
// activated expansion the shard tables of the slots it does not own are
// emptied, then the expansion ends. One result row per node cleaned.
func (x *Expander) Clean(ctx context.Context, p Progress) ([]Row, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return nil, err
	}
	c, err := firstCoordinator(sn.State)
	if err != nil {
		return nil, err
	}
	tables, err := x.Fleet.DistributedTables(ctx, c)
	if err != nil {
		return nil, err
	}
	plans := cluster.PlanExpandClean(sn.Expansions)
	if len(plans) == 0 {
		return []Row{{OK: true, Description: "No database need expand clean."}}, nil
	}
	j := x.open(ctx, "EXPAND CLEAN")
	r := &run{x: x, p: p, sn: sn, j: j, tables: tables, done: func(_ *cluster.State, st cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandCleaned(st.Node), nil
	}}
	for _, plan := range plans {
		if err = r.steps(ctx, plan.Steps); err != nil {
			break
		}
	}
	j.end(ctx, string(r.failed.Kind), err)
	if err != nil {
		return nil, err
	}
	return r.rows, nil
}

// Status is EXPAND SHOW STATUS: a row per expansion.
func (x *Expander) Status(ctx context.Context) ([]Row, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, e := range sn.Expansions {
		rows = append(rows, Row{Node: e.Dst, OK: true, Description: e.Status()})
	}
	return rows, nil
}
