package expand

import (
	"context"
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// The recovery commands of an expansion cut short (cluster's
// expand_recover.go decides; here they run): EXPAND RECOVER BASEBACKUP
// FAIL rolls a copy back, EXPAND RECOVER BASEBACKUP SUCCESS redoes what
// follows its base backup, EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS
// finishes an activation whose promotion happened. Each looks at the
// nodes first (see) and refuses, changing nothing, what does not fit.

// RecoverFail is EXPAND RECOVER BASEBACKUP FAIL src TO dst
// (cluster.PlanExpandRecoverFail). It returns the result row's
// description; a refusal is returned as it is (a cluster.FieldError names
// src or dst).
func (x *Expander) RecoverFail(ctx context.Context, src, dst string, p Progress) (string, error) {
	return x.recoverCopy(ctx, "FAIL", src, dst, p, cluster.PlanExpandRecoverFail,
		func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
			return cluster.ExpandRolledBack(s, src, dst)
		})
}

// RecoverSuccess is EXPAND RECOVER BASEBACKUP SUCCESS src TO dst
// (cluster.PlanExpandRecoverSuccess): the expansion then waits, copied,
// for EXPAND ACTIVATE.
func (x *Expander) RecoverSuccess(ctx context.Context, src, dst string, p Progress) (string, error) {
	return x.recoverCopy(ctx, "SUCCESS", src, dst, p, cluster.PlanExpandRecoverSuccess,
		func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
			return cluster.ExpandCopied(s, src, dst)
		})
}

// recoverCopy runs one of the EXPAND RECOVER BASEBACKUP commands.
func (x *Expander) recoverCopy(ctx context.Context, how, src, dst string, p Progress,
	plan func(*cluster.State, []cluster.Expansion, string, string, cluster.CopySeen) (cluster.GrowPlan, error),
	done func(*cluster.State, cluster.GrowStep) (cluster.GrowPlan, error)) (string, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return "", err
	}
	// The names first: what see asks needs dst's host.
	if err := cluster.CheckRecoverable(sn.State, sn.Expansions, src, dst); err != nil {
		return "", err
	}
	seen, err := x.see(ctx, sn, dst, false, p)
	if err != nil {
		return "", err
	}
	x.seeSlot(ctx, sn.State, src, dst, &seen)
	gp, err := plan(sn.State, sn.Expansions, src, dst, seen)
	if err != nil {
		return "", err
	}
	j := x.open(ctx, "EXPAND RECOVER BASEBACKUP "+how+" "+src+" TO "+dst)
	r := &run{x: x, p: p, sn: sn, j: j, done: done}
	err = r.steps(ctx, gp.Steps)
	j.end(ctx, string(r.failed.Kind), err)
	if err != nil {
		return "", fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "Fix the cause, then run the command again: it starts from what the nodes show.",
			"EXPAND RECOVER BASEBACKUP %s %s TO %s", how, src, dst)
	}
	return r.result.Result, nil
}

// DoPromote is EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dst
// (cluster.PlanExpandFinish). A copy that does not run is started first:
// a promoted one comes back a primary, one that was not a standby.
func (x *Expander) DoPromote(ctx context.Context, dst string, p Progress) (string, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return "", err
	}
	e, err := cluster.CopiedExpansion(sn.State, sn.Expansions, dst)
	if err != nil {
		return "", err
	}
	seen, err := x.see(ctx, sn, dst, true, p)
	if err != nil {
		return "", err
	}
	gp, err := cluster.PlanExpandFinish(sn.State, e, seen)
	if err != nil {
		return "", err
	}
	j := x.open(ctx, "EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS "+dst)
	desc, err := x.finish(ctx, j, sn, e, gp, p)
	j.end(ctx, "finish", err)
	return desc, err
}

// finish runs a PlanExpandFinish of e under journal j.
func (x *Expander) finish(ctx context.Context, j *journal, sn Snapshot, e cluster.Expansion, gp cluster.GrowPlan, p Progress) (string, error) {
	r := &run{x: x, p: p, sn: sn, j: j}
	r.done = func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandActivated(s, e.Src, e.Dst, r.slots)
	}
	if err := r.steps(ctx, gp.Steps); err != nil {
		return "", err
	}
	return r.result.Result, nil
}

// see looks at copy dst and at the coordinators (cluster.CopySeen), and
// reads the journal's interrupted entry about dst. With start, a copy
// whose postmaster does not run is started first (p hears it; without
// start p may be nil).
func (x *Expander) see(ctx context.Context, sn Snapshot, dst string, start bool, p Progress) (cluster.CopySeen, error) {
	var seen cluster.CopySeen
	s := sn.State
	if at, ok := cluster.InterruptedFor(sn.Journal, dst); ok {
		seen.Interrupted = at.Step
	}
	for _, cn := range coordinators(s) {
		c, err := fleet.At(s, cn)
		if err != nil {
			return seen, err
		}
		slots, err := x.Fleet.SlotsOf(ctx, c, dst)
		switch {
		case err != nil:
			seen.Unknown = append(seen.Unknown, cn.Name)
		case len(slots) > 0:
			seen.Routed = append(seen.Routed, cn.Name)
		}
	}
	m, err := member(s, dst)
	if err != nil {
		return seen, err
	}
	st, err := x.Fleet.Status(ctx, m)
	if err != nil {
		return seen, fmt.Errorf("ask the agent of %s: %w", dst, err)
	}
	if start && st.Initialized && !st.Running {
		if _, err := x.Fleet.Start(ctx, m); err != nil {
			return seen, fmt.Errorf("start %s: %w", dst, err)
		}
		p.Notice("NOTICE", fmt.Sprintf("%s was not running: started", dst))
		st.Running = true
	}
	seen.Running, seen.HasData = st.Running, st.Initialized
	if dir, err := x.Fleet.CheckDir(ctx, m); err == nil {
		seen.DirUsed = dir.Exists && !dir.Empty
	} else {
		return seen, fmt.Errorf("look at the data directory of %s: %w", dst, err)
	}
	if seen.Running {
		rec, err := x.Fleet.InRecovery(ctx, m)
		seen.Answers, seen.Standby = err == nil, rec
	}
	return seen, nil
}

// seeSlot looks on src for the replication slot named after copy dst
// (CopySeen.SlotOnSrc; SlotUnknown when src cannot be asked).
func (x *Expander) seeSlot(ctx context.Context, s *cluster.State, src, dst string, seen *cluster.CopySeen) {
	m, err := member(s, src)
	if err == nil {
		seen.SlotOnSrc, err = x.Fleet.HasSlot(ctx, m, dst)
	}
	seen.SlotUnknown = err != nil
}

// abandonHolds rolls back, on every coordinator, what an interrupted
// activation of dst prepared.
func (r *run) abandonHolds(ctx context.Context, dst string) error {
	return r.eachCoordinator(func(c fleet.Member) error {
		found, err := r.x.Fleet.FinishHold(ctx, c, coord.HoldGID(dst), false)
		if found && err == nil {
			r.p.Notice("NOTICE", fmt.Sprintf("%s: rolled back what the interrupted activation of %s prepared", c.Name(), dst))
		}
		return err
	})
}

// finishHolds commits, on every coordinator, what an interrupted
// activation of st.Node prepared, then checks that every coordinator
// routes the same slots to it; they are the slots the catalog writes.
func (r *run) finishHolds(ctx context.Context, st cluster.GrowStep) error {
	routes := map[string]string{}
	err := r.eachCoordinator(func(c fleet.Member) error {
		found, err := r.x.Fleet.FinishHold(ctx, c, coord.HoldGID(st.Node), true)
		if err != nil {
			return err
		}
		if found {
			r.p.Notice("NOTICE", fmt.Sprintf("%s: committed what the interrupted activation of %s prepared", c.Name(), st.Node))
		}
		slots, err := r.x.Fleet.SlotsOf(ctx, c, st.Node)
		if err != nil {
			return err
		}
		routes[c.Name()] = cluster.SlotList(slots)
		r.slots = slots
		return nil
	})
	if err != nil {
		return err
	}
	var names, lists []string
	same := true
	for name, l := range routes {
		names = append(names, name+": "+l)
		lists = append(lists, l)
		same = same && l == lists[0]
	}
	switch {
	case !same:
		return pgerror.New(pgerror.ObjectNotInPrereqState, "the coordinators route different slots to %s (%s)", st.Node, strings.Join(names, "; ")).
			WithHint("Compare adb.slot on the coordinators before anything else.")
	case len(r.slots) == 0:
		return pgerror.New(pgerror.ObjectNotInPrereqState,
			"%s was promoted, but no coordinator routes a slot to it: the writes since its promotion went to %s", st.Node, st.From).
			WithHint("Roll the copy back with EXPAND RECOVER BASEBACKUP FAIL %s TO %s, then run EXPAND DATANODE MASTER %s TO %s again.",
				st.From, st.Node, st.From, st.Node)
	}
	return nil
}

// eachCoordinator runs f on every coordinator of the snapshot, and
// returns the first error, naming the coordinator.
func (r *run) eachCoordinator(f func(fleet.Member) error) error {
	for _, cn := range coordinators(r.sn.State) {
		c, err := fleet.At(r.sn.State, cn)
		if err == nil {
			err = f(c)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", cn.Name, err)
		}
	}
	return nil
}

// resume redoes what follows the base backup of st.Node from st.From
// (Maker.Resume).
func (r *run) resume(ctx context.Context, st cluster.GrowStep) error {
	s := r.sn.State
	n, _ := s.Node(st.Node)
	n.Master = st.From
	m, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	src, err := member(s, st.From)
	if err != nil {
		return err
	}
	conf, err := r.x.Conf(r.sn, n)
	if err != nil {
		return err
	}
	mk := Maker{Fleet: r.x.Fleet, Progress: r.p, Pause: r.x.Pause, Mark: r.mark}
	return mk.Resume(ctx, m, src, conf)
}
