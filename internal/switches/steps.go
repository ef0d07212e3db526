package switches

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// switchRun is one switch under way: the steps of its cluster.SwitchPlan
// executed in order over the fleet, and what a failure needs to decide
// between reverting, stopping and finishing.
type switchRun struct {
	x *Switches
	p Progress
	j *Journal
	// sn is the catalog the steps resolve nodes in: the switch's first
	// snapshot, read again after each catalog write.
	sn   Snapshot
	plan cluster.SwitchPlan
	// old is the old master of a failover or switchover, which a revert
	// starts again when stopped is set (the fence stopped it).
	old     fleet.Member
	stopped bool
	// promoted: the new master was promoted; from then on the switch is
	// finished, never reverted.
	promoted bool
	// rows are what the catalog step wrote; their notices are said last.
	rows cluster.Plan
	// fail decides what a failed step means for this kind of switch
	// (switched or rewound).
	fail func(ctx context.Context, st cluster.SwitchStep, err error) error
	// mark adds rows to a failover's catalog step (Failover.Mark).
	mark func(before, after *cluster.State) cluster.Plan
	// holds are the coordinators holding a switchover's writes
	// (switchover_quiesce.go).
	holds []*heldCoord
	// fallback: a REWIND that may go on with a base backup when a step on
	// the node's data fails (Rewind.FallbackBaseBackup); fellBack is set
	// when that happened.
	fallback, fellBack bool
}

// run executes steps in order and stops at the first failure, which fail
// turns into the switch's error. After a promotion or a catalog write the
// rest runs even if the statement is cancelled: the cluster has changed
// and must be made consistent.
func (r *switchRun) run(ctx context.Context, steps []cluster.SwitchStep) (context.Context, error) {
	for _, st := range steps {
		if st.Journal != nil && st.Kind != cluster.GrowCatalog {
			r.x.note(ctx, r.j, st.Journal.Status, st.Journal.Step, st.Journal.Detail)
		}
		if err := r.step(ctx, st); err != nil {
			// fail may let the switch go on (a problem after the promotion).
			if err := r.fail(ctx, st, err); err != nil {
				return ctx, err
			}
			continue
		}
		if r.x.AfterStep != nil {
			r.x.AfterStep(r.j.Command, st)
		}
		switch st.Kind {
		case cluster.GrowPromote:
			r.promoted = true
			ctx = context.WithoutCancel(ctx)
		case cluster.GrowCatalog:
			ctx = context.WithoutCancel(ctx)
			if err := r.reread(ctx); err != nil {
				return ctx, err
			}
		}
	}
	return ctx, nil
}

// member resolves name in the run's snapshot.
func (r *switchRun) member(name string) (fleet.Member, error) {
	return fleet.Of(r.sn.State, name)
}

// step does one step. The steps after a promotion report their problems
// and return nil, except those that leave the catalog unknown.
func (r *switchRun) step(ctx context.Context, st cluster.SwitchStep) error {
	switch st.Kind {
	case cluster.SwitchFence, cluster.SwitchStopMaster:
		stopped, err := r.x.fence(ctx, r.old, r.p)
		// A switchover's master ran a moment ago: a revert starts it
		// again whatever the fence found.
		r.stopped = stopped || st.Kind == cluster.SwitchStopMaster
		return err
	case cluster.GrowCatalog:
		return r.catalog(ctx, st)
	case cluster.SwitchRejoin:
		return r.rejoin(ctx, st)
	case cluster.SwitchFollow:
		r.follow(ctx, st)
		return nil
	case cluster.GrowSyncNames:
		r.syncNames(ctx, st)
		return nil
	case cluster.GrowRefreshCoordinators:
		r.route(ctx, st)
		return nil
	case cluster.SwitchQuiesce:
		return r.quiesce(ctx, st)
	}
	m, err := r.member(st.Node)
	if err != nil {
		return err
	}
	if st.From == "" {
		return r.on(ctx, st, m, fleet.Member{})
	}
	from, err := r.member(st.From)
	if err != nil {
		return err
	}
	return r.on(ctx, st, m, from)
}

// on does a step on node m (and from, the node its From names).
func (r *switchRun) on(ctx context.Context, st cluster.SwitchStep, m, from fleet.Member) error {
	f := r.x.Fleet
	switch st.Kind {
	case cluster.SwitchCaughtUp:
		return r.x.caughtUp(ctx, from, m, st.Seconds, r.p)
	case cluster.GrowPromote:
		promote := Promote
		if st.Quick {
			promote = func(ctx context.Context, _ fleet.Fleet, m fleet.Member, _ Progress) error {
				return r.promoteQuick(ctx, m)
			}
		}
		if err := promote(ctx, f, m, r.p); err != nil {
			return err
		}
		r.p.Notice("NOTICE", fmt.Sprintf("%s was successfully promoted to the new master", m.Name()))
		return nil
	case cluster.GrowStandalone:
		// A primary keeps the recovery settings it had as a standby; they
		// would point it at the old master if it were ever made a standby
		// by hand. Best effort.
		fleet.Standalone(context.WithoutCancel(ctx), f, m)
		return nil
	case cluster.SwitchCleanShutdown:
		return r.x.cleanShutdown(ctx, m, from, r.p)
	case cluster.SwitchCheckpoint:
		err := f.Checkpoint(ctx, m)
		if err != nil && r.promoted {
			// The new master runs; only its control file lags (REWIND).
			r.p.Notice("WARNING", fmt.Sprintf("the checkpoint that records the new timeline of %s failed: %s", m.Name(), err))
			return nil
		}
		return err
	case cluster.SwitchSlot:
		return f.EnsureSlot(ctx, from, m.Name())
	case cluster.SwitchRewind:
		r.p.Notice("NOTICE", fmt.Sprintf("pg_rewind %s from %s", m.Name(), from.Name()))
		out, err := f.Rewind(ctx, m, from)
		if err == nil && out != "" {
			r.p.Notice("NOTICE", out)
		}
		return err
	case cluster.SwitchConfigure:
		// pg_rewind copied the source's configuration files: the node's
		// own settings and pg_hba.conf go back.
		conf, err := r.x.Conf(r.sn, m.Node)
		if err != nil {
			return err
		}
		return f.Configure(ctx, m, conf)
	case cluster.SwitchStandbyOf:
		return f.MakeStandbyOf(ctx, m, from)
	case cluster.SwitchStop:
		return r.x.stop(ctx, m)
	case cluster.SwitchCleanDir:
		return r.cleanDir(ctx, m)
	case cluster.GrowBaseBackup:
		r.p.Notice("NOTICE", fmt.Sprintf("pg_basebackup %s from %s", m.Name(), from.Name()))
		return f.BaseBackup(ctx, m, from, fleet.BackupProgress(func(msg string) { r.p.Notice("NOTICE", msg) }, m, from))
	case cluster.GrowStart:
		_, err := f.Start(ctx, m)
		return err
	}
	return fmt.Errorf("unknown step %q", st.Kind)
}

// catalog writes the plan's rows with the step's journal row, in one
// transaction (run reads the catalog again for the steps that follow).
// After a promotion it is tried a few times (commitRetry).
func (r *switchRun) catalog(ctx context.Context, st cluster.SwitchStep) error {
	decide := func(sn Snapshot) (cluster.Plan, error) {
		r.rows = r.plan.Rows(sn.State)
		if r.plan.Kind == "rewind" {
			return r.rows, nil
		}
		rows := retyped(sn, r.rows, r.plan.Old, r.plan.New)
		if r.mark != nil {
			rows = overlay(rows, r.mark(sn.State, cluster.Applied(sn.State, rows)))
			r.rows = rows
		}
		return rows, nil
	}
	step := Step{st.Journal.Status, st.Journal.Step, st.Journal.Detail}
	commit := r.x.Catalog.Commit
	if r.promoted {
		commit = r.x.commitRetry
	}
	return commit(ctx, r.j, step, decide)
}

// overlay is p with q's node rows on top (a row of q replaces p's row of
// the same node) and q's notices after p's.
func overlay(p, q cluster.Plan) cluster.Plan {
	p.UpdateNodes = slices.Clone(p.UpdateNodes)
	for _, u := range q.UpdateNodes {
		i := slices.IndexFunc(p.UpdateNodes, func(n cluster.Node) bool { return n.Name == u.Name })
		if i < 0 {
			p.UpdateNodes = append(p.UpdateNodes, u)
		} else {
			p.UpdateNodes[i] = u
		}
	}
	p.Notices = append(slices.Clone(p.Notices), q.Notices...)
	return p
}

// reread refreshes the run's snapshot.
func (r *switchRun) reread(ctx context.Context) error {
	sn, err := r.x.Catalog.Read(ctx)
	if err != nil {
		return err
	}
	r.sn = sn
	return nil
}

// follow re-points the running slave st.Node at the new master st.From: a
// slot on it, its recovery settings reloaded (PostgreSQL 13+ reconnects
// without a restart, and recovery_target_timeline = latest takes the new
// timeline). A slave that cannot follow is left to REWIND, with a warning.
func (r *switchRun) follow(ctx context.Context, st cluster.SwitchStep) {
	newM, err := r.member(st.From)
	if err != nil {
		r.p.Notice("WARNING", err.Error())
		return
	}
	f, err := r.member(st.Node)
	if err == nil {
		err = r.x.Fleet.MakeStandbyOf(ctx, f, newM)
	}
	if err == nil {
		err = r.x.Fleet.Reload(ctx, f)
	}
	if err != nil {
		r.p.Notice("WARNING", fmt.Sprintf("%s could not follow %s: %s; REWIND %s SLAVE %s repairs it",
			st.Node, newM.Name(), err, strings.ToUpper(string(newM.Node.Type.Family())), st.Node))
		return
	}
	r.p.Notice("NOTICE", fmt.Sprintf("%s has followed %s success", st.Node, newM.Name()))
}

// rejoin makes the old master st.Node a standby of the new one: it shut
// down cleanly and the new master has all its WAL, so it only has to
// switch timelines. One that cannot follow leaves the cluster until
// REWIND.
func (r *switchRun) rejoin(ctx context.Context, st cluster.SwitchStep) error {
	oldM, err := r.member(st.Node)
	if err != nil {
		return err
	}
	newM, err := r.member(st.From)
	if err != nil {
		return err
	}
	err = r.x.Fleet.MakeStandbyOf(ctx, oldM, newM)
	if err == nil {
		_, err = r.x.Fleet.Start(ctx, oldM)
	}
	if err == nil {
		r.p.Notice("NOTICE", fmt.Sprintf("%s has followed %s success", oldM.Name(), newM.Name()))
		// The slots it kept for its slaves would hold WAL on a standby.
		r.x.Fleet.DropInactiveSlots(ctx, oldM)
		return nil
	}
	r.p.Notice("WARNING", fmt.Sprintf("%s could not follow %s: %s; REWIND %s SLAVE %s repairs it", oldM.Name(), newM.Name(), err,
		strings.ToUpper(string(oldM.Node.Type.Family())), oldM.Name()))
	// After the promotion: tried a few times, as the catalog step.
	if err := r.x.commitRetry(ctx, r.j, Step{"running", "kick out " + oldM.Name(), err.Error()}, func(sn Snapshot) (cluster.Plan, error) {
		return cluster.PlanKickOut(sn.State, oldM.Name()), nil
	}); err != nil {
		return fmt.Errorf("the node table still lists %s in the cluster: %w", oldM.Name(), err)
	}
	return r.reread(ctx)
}

// syncNames writes the synchronous_standby_names of the master st.From; a
// failure is a warning. With st.Node (a slave that joined) the new names
// are said.
func (r *switchRun) syncNames(ctx context.Context, st cluster.SwitchStep) {
	master, _ := r.sn.State.Node(st.From)
	if err := SyncNames(ctx, r.x.Fleet, r.sn.State, master, inCluster, st.WaitAll, r.p); err != nil {
		r.p.Notice("WARNING", err.Error())
	} else if st.Node != "" {
		r.p.Notice("NOTICE", fmt.Sprintf(`refresh %s synchronous_standby_names='%s'`, cluster.Describe(master), cluster.SyncNames(r.sn.State, master.Name, inCluster)))
	}
}

// switched is the failure rule of FAILOVER and SWITCHOVER: a fence that
// fails gives the doctor its node back; a promotion that fails is
// reverted, an unclear one stops the switch with nothing reverted; once
// promoted nothing is reverted: a catalog that cannot follow is an
// internal error, any other problem a WARNING after which the remaining
// steps run and the switch finishes; anything else before the promotion
// is reverted.
func (r *switchRun) switched(ctx context.Context, st cluster.SwitchStep, err error) error {
	switch {
	case st.Kind == cluster.SwitchFence || st.Kind == cluster.SwitchStopMaster:
		r.x.Catalog.Commit(ctx, r.j, Step{"failed", string(st.Kind), err.Error()}, allowCure(r.old.Name(), r.old.Node.AllowCure))
		return err
	case st.Kind == cluster.GrowPromote && errors.Is(err, ErrUnclearPromotion):
		r.x.note(ctx, r.j, "failed", "promote", err.Error())
		return err
	case st.Kind == cluster.GrowCatalog:
		r.x.note(ctx, r.j, "failed", "catalog", err.Error())
		pe := pgerror.New(pgerror.Internal, "%s was promoted but the node table could not be updated: %s", r.plan.New, err)
		if r.plan.Kind == "failover" {
			pe = pe.WithHint("Run FAILOVER again is not possible; fix the node table with care.")
		}
		return pe
	case r.promoted:
		// The switch happened: the problem is said, the rest goes on
		// and the switch finishes.
		r.p.Notice("WARNING", err.Error())
		return nil
	}
	return r.revert(ctx, err)
}

// rewound is the failure rule of REWIND: a step before the catalog write
// is journaled by name and refused; the node stays out of the cluster.
// When the run may fall back (fallback) and the step was on the node's
// own data directory, the failure is journaled as running and the caller
// goes on with a base backup.
func (r *switchRun) rewound(ctx context.Context, st cluster.SwitchStep, err error) error {
	var label string
	switch st.Kind {
	case cluster.GrowCatalog, cluster.GrowSyncNames, cluster.GrowRefreshCoordinators:
		return err
	case cluster.SwitchCleanShutdown:
		label = "stop"
	case cluster.SwitchCheckpoint:
		label = "checkpoint on " + st.Node
	case cluster.GrowBaseBackup:
		label = "pg_basebackup"
	default:
		label = string(st.Kind)
	}
	if r.fallback && cluster.RewindFallsBack(st) {
		r.fellBack = true
		r.x.note(ctx, r.j, "running", label+" failed", err.Error())
		return err
	}
	r.x.note(ctx, r.j, "failed", label, err.Error())
	return r.rewindError(st, label, err)
}

// rewindError is a REWIND refused at the step labelled label. A failed
// tool's last lines (the fleet's DETAIL) stay the DETAIL; a failure on
// the node's own data directory offers REWIND … BASEBACKUP.
func (r *switchRun) rewindError(st cluster.SwitchStep, label string, err error) error {
	pe := pgerror.New(pgerror.ObjectNotInPrereqState, "rewind %s: %s: %s", r.plan.New, label, err)
	if e, ok := pgerror.As(err); ok && e.Detail != "" {
		pe = pgerror.New(pgerror.ObjectNotInPrereqState, "rewind %s: %s failed", r.plan.New, label).WithDetail("%s", e.Detail)
	} else if ok && e.Code == pgerror.ConnectionFailure {
		// A dead agent stays 08006 with its START AGENT hint.
		pe.Code, pe.Hint = e.Code, e.Hint
	}
	if cluster.RewindFallsBack(st) && r.plan.Done.Detail != cluster.ByBaseBackup {
		n, _ := r.sn.State.Node(r.plan.New)
		pe = pe.WithHint("REWIND %s SLAVE %s BASEBACKUP makes it a slave of %s from a new base backup.",
			strings.ToUpper(string(n.Type.Family())), n.Name, r.plan.Old)
	}
	return pe
}

// revert undoes a switch that did not promote: the old master runs again
// (if the fence stopped it) and the doctor may act on it again.
func (r *switchRun) revert(ctx context.Context, cause error) error {
	ctx = context.WithoutCancel(ctx)
	r.releaseHolds(ctx)
	if r.stopped {
		if _, err := r.x.Fleet.Start(ctx, r.old); err != nil {
			r.p.Notice("WARNING", fmt.Sprintf("could not start the old master %s again: %s", r.old.Name(), err))
		} else {
			r.p.Notice("NOTICE", fmt.Sprintf("%s is running again as the master; nothing was switched", r.old.Name()))
		}
	}
	r.x.Catalog.Commit(ctx, r.j, Step{"failed", "revert", cause.Error()}, allowCure(r.old.Name(), r.old.Node.AllowCure))
	return cause
}

// finish ends a switch that promoted: the catalog plan's notices, the
// success notice, the journal's last row.
func (r *switchRun) finish(ctx context.Context) {
	old := r.old.Node
	notices(r.p, r.rows.Notices)
	r.p.Notice("NOTICE", fmt.Sprintf("Switch the %s master from %s to %s has been successfully completed", old.Type.Family(), old.Name, r.plan.New))
	r.x.note(ctx, r.j, r.plan.Done.Status, r.plan.Done.Step, r.plan.Done.Detail)
}
