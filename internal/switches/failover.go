package switches

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Failover is FAILOVER {DATANODE|GTMCOORD} master [TO slave] [FORCE]
// (reference §4.11), or the doctor's failover of a master it could not
// restart.
type Failover struct {
	Family cluster.Family
	Master string
	To     string // the slave to promote; "" chooses the best
	Force  bool
	// Zone is the session's current zone: the master must be in it.
	Zone string
	// Doctor: the doctor asks, and is refused when a DBA stopped the
	// master meanwhile (STOP clears allowcure).
	Doctor bool
	// Mark, when set, adds rows to the failover's own catalog
	// transaction, made from the catalog before and after its rows: the
	// doctor marks the nodes the failover leaves out as waiting for it
	// (doctor.AfterFailover), so that no crash of the manager can come
	// between the switch and the marking.
	Mark func(before, after *cluster.State) cluster.Plan
}

// retryWarning is AntDB's advice after a refused switch.
const retryWarning = "An exception occurred during the switching operation, It is recommended to use command such as 'monitor all', 'monitor ha' to check the failure point in the cluster first, and then retry the switching operation!!!"

// Failover chooses the slave that holds every acknowledged commit, fences
// the old master, promotes, re-points the other slaves and the
// coordinators, and kicks the old master out until REWIND. Until the
// promotion nothing is changed for good: a refusal or a failure before it
// starts the old master again.
func (x *Switches) Failover(ctx context.Context, r Failover, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	old, err := cluster.CheckFailover(s, r.Family, r.Master, r.Zone)
	if err != nil {
		return Result{}, err
	}
	// Decide before touching anything: a refusal leaves the master as it is.
	if err := cluster.CheckCandidate(s, old.Name, r.To, r.Force, x.probeSlaves(ctx, s, old.Name)); err != nil {
		p.Notice("WARNING", retryWarning)
		return Result{}, err
	}
	if r.Doctor && !old.AllowCure {
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s was stopped by a DBA meanwhile", old.Name)
	}
	oldM, err := fleet.At(s, old)
	if err != nil {
		return Result{}, err
	}
	run, err := x.start(ctx, "FAILOVER "+old.Name, sn, oldM, p)
	if err != nil {
		return Result{}, err
	}
	run.fail, run.mark = run.switched, r.Mark
	if _, err := run.run(ctx, cluster.FenceSteps(old.Name)); err != nil {
		return Result{}, err
	}
	// The slaves received what the master sent while it shut down: decide
	// again on their final positions.
	probes := x.probeSlaves(ctx, s, old.Name)
	cand, err := cluster.ChooseCandidate(s, old.Name, r.To, r.Force, probes)
	if err != nil {
		return Result{}, run.revert(ctx, err)
	}
	run.plan = cluster.FailoverSteps(old.Name, cluster.FollowOrRewind(cand, probes))
	notices(p, run.plan.Notices)
	// From the promotion on the switch is done: the rest is finished even
	// if the statement is cancelled, and problems are reported, not
	// reverted.
	ctx, err = run.run(ctx, run.plan.Steps)
	if err != nil {
		return Result{}, err
	}
	run.finish(ctx)
	return Result{Node: cand.Name, Description: fmt.Sprintf("failover %s success", old.Type.Family())}, nil
}

// start opens a switch's journal entry and keeps the doctor off the old
// master (restarting it during or after the switch would make two
// masters); the fence comes next. A failed fence gives the doctor its node
// back (switchRun.switched).
func (x *Switches) start(ctx context.Context, command string, sn Snapshot, old fleet.Member, p Progress) (*switchRun, error) {
	run := &switchRun{x: x, p: p, j: &Journal{Command: command}, sn: sn, old: old}
	if err := x.Catalog.Commit(ctx, run.j, Step{"running", "start", ""}, allowCure(old.Name(), false)); err != nil {
		return nil, err
	}
	return run, nil
}

// fence makes sure the old master no longer accepts writes: stopped through
// its agent (fast, then immediate). With its agent down and the node still
// answering there is no way to stop it, and two masters must never run at
// once, so the switch is refused. It reports whether it stopped a running
// node (to start it again on a revert).
func (x *Switches) fence(ctx context.Context, m fleet.Member, p Progress) (bool, error) {
	// An agent answers Status in milliseconds; one behind a cut link
	// would hold the switch for the call's whole 3 s. One that is only
	// slow is safe too: a node still listening refuses the switch below.
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	running, err := x.Fleet.Running(rctx, m)
	cancel()
	if err != nil {
		if x.Fleet.Listening(m) {
			return false, pgerror.New(pgerror.ObjectNotInPrereqState,
				`cannot stop the old master %s: it answers on %s:%d but the agent on host "%s" is not running`, m.Name(), m.Host.Address, m.Node.Port, m.Host.Name).
				WithHint("Start the agent (START AGENT %s) or stop the node by hand; two masters must never run at once.", m.Host.Name)
		}
		p.Notice("NOTICE", fmt.Sprintf("the old master %s does not answer and its agent is unreachable; taking it as down", m.Name()))
		return false, nil
	}
	if !running {
		return false, nil
	}
	if _, err := x.Fleet.Stop(ctx, m, fleet.Fast); err != nil {
		if _, err := x.Fleet.Stop(ctx, m, fleet.Immediate); err != nil {
			return false, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "try shut down node %s failed", m.Name())
		}
	}
	p.Notice("NOTICE", fmt.Sprintf("the old master %s was stopped", m.Name()))
	return true, nil
}

// ErrUnclearPromotion marks a promotion whose outcome is unknown: the
// switch stops and nothing is reverted.
var ErrUnclearPromotion = errors.New("unclear promotion")

// Promote promotes m. A promotion, once signalled, completes even if
// pg_ctl gives up waiting or the statement is cancelled, so it runs to the
// end, and a failure is believed only when the node still answers as a
// standby: starting the old master next to a node that did become a
// primary would make two masters. An unclear outcome is ErrUnclearPromotion.
func Promote(ctx context.Context, f fleet.Fleet, m fleet.Member, p Progress) error {
	return promoteWith(ctx, f, m, p, f.Promote)
}

// promoteWith is Promote with promote as the promotion.
func promoteWith(ctx context.Context, f fleet.Fleet, m fleet.Member, p Progress, promote func(context.Context, fleet.Member) error) error {
	ctx = context.WithoutCancel(ctx)
	perr := promote(ctx, m)
	if perr == nil {
		return nil
	}
	rec, err := f.InRecovery(ctx, m)
	switch {
	case err == nil && rec:
		// Still a standby: make sure it stays one, then revert.
		return fleet.WrapAs(perr, pgerror.ObjectNotInPrereqState, "", "promote %s", m.Name())
	case err == nil:
		p.Notice("WARNING", fmt.Sprintf("pg_ctl promote of %s reported %s, but it runs as a primary: the switch goes on", m.Name(), perr))
		return nil
	}
	return fmt.Errorf("%w: %w", ErrUnclearPromotion, pgerror.New(pgerror.Internal,
		"promote %s: %s; its state is unknown (%v), so the old master is NOT started again", m.Name(), perr, err).
		WithHint("Check both nodes with MONITOR ALL before anything else; at most one of them may run as a primary."))
}
