package expand

import (
	"context"
	"fmt"
	"sort"
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
// waiting, its row says why. An activation a manager's end interrupted is
// taken up from what the nodes show (cluster.ResumeActivation): a copy
// promoted already is finished, one still a standby activated again.
func (x *Expander) Activate(ctx context.Context, p Progress) ([]Row, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return nil, err
	}
	todo := cluster.ExpansionsToActivate(sn.Expansions)
	if len(todo) == 0 {
		return []Row{{OK: true, Description: "no node need activate"}}, nil
	}
	j := x.open(ctx, "EXPAND ACTIVATE")
	var rows []Row
	add := func(dst, desc string, err error) {
		if err != nil {
			desc = err.Error()
		}
		rows = append(rows, Row{Node: dst, OK: err == nil, Description: desc})
	}
	var fresh []cluster.Expansion
	for _, e := range todo {
		seen, err := x.see(ctx, sn, e.Dst, true, p)
		finish := false
		if err == nil {
			finish, err = cluster.ResumeActivation(e, seen)
		}
		switch {
		case err != nil:
			add(e.Dst, "", err)
		case finish:
			var gp cluster.GrowPlan
			gp, err = cluster.PlanExpandFinish(sn.State, e, seen)
			desc := ""
			if err == nil {
				desc, err = x.finish(ctx, j, sn, e, gp, p)
			}
			add(e.Dst, desc, err)
		default:
			fresh = append(fresh, e)
		}
	}
	// Each source's slots are read once, before any of its destinations
	// takes its share of them (and after the interrupted activations
	// above took theirs).
	with := map[string][]string{}
	for _, e := range fresh {
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
	for _, e := range fresh {
		var desc string
		err := owns[e.Src].err
		if err == nil {
			desc, err = x.activateOne(ctx, j, e, owns[e.Src].slots, with[e.Src], p)
		}
		add(e.Dst, desc, err)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].Node < rows[b].Node })
	var failed []string
	for _, r := range rows {
		if !r.OK {
			failed = append(failed, r.Node+": "+r.Description)
		}
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

// Status is EXPAND SHOW STATUS: a row per expansion, and one per copy
// the manager's end interrupted before its expansion was recorded. Each
// says what the nodes show (see, seeSlot) and the command that takes it
// up (cluster.ExpansionAdvice, cluster.CopyAdvice). With check (EXPAND
// DOCHECK STATUS) an expansion that waits for EXPAND CLEAN is an error,
// as AntDB's: no new expansion may start before it is cleaned.
func (x *Expander) Status(ctx context.Context, check bool) ([]Row, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return nil, err
	}
	if check {
		for _, e := range sn.Expansions {
			if e.Phase == cluster.ExpansionActivated {
				return nil, pgerror.New(pgerror.ObjectNotInPrereqState, "cluster status is expanding, can't expand again: the expansion of %s is not cleaned", e.Dst).
					WithHint("Run EXPAND CLEAN first.")
			}
		}
	}
	var rows []Row
	for _, e := range sn.Expansions {
		if e.Phase == cluster.ExpansionActivated {
			rows = append(rows, Row{Node: e.Dst, OK: true, Description: e.Status()})
			continue
		}
		seen, err := x.see(ctx, sn, e.Dst, false, nil)
		if err != nil {
			rows = append(rows, Row{Node: e.Dst, Description: fmt.Sprintf("%s; cannot look at %s: %v", e.Status(), e.Dst, err)})
			continue
		}
		at, _ := cluster.InterruptedFor(sn.Journal, e.Dst)
		ok, desc := cluster.ExpansionAdvice(e, seen, at)
		rows = append(rows, Row{Node: e.Dst, OK: ok, Description: desc})
	}
	for _, c := range cluster.InterruptedCopies(sn.State, sn.Expansions, sn.Journal) {
		seen, err := x.see(ctx, sn, c.Dst, false, nil)
		if err != nil {
			rows = append(rows, Row{Node: c.Dst, Description: fmt.Sprintf("%s was interrupted; cannot look at %s: %v", c.Entry.Command, c.Dst, err)})
			continue
		}
		x.seeSlot(ctx, sn.State, c.Src, c.Dst, &seen)
		rows = append(rows, Row{Node: c.Dst, Description: cluster.CopyAdvice(sn.State, sn.Expansions, c, seen)})
	}
	return rows, nil
}
