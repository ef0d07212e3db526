package switches

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Switchover is SWITCHOVER {DATANODE|GTMCOORD} SLAVE s [FORCE] [maxTrys]
// (reference §4.12).
type Switchover struct {
	Family  cluster.Family
	Slave   string
	Force   bool
	MaxTrys int // seconds to wait for the slave to catch up; 10 to 3600
}

// Switchover is a planned swap without losing anything. The master is
// stopped cleanly — its walsenders hand every WAL record, the shutdown
// checkpoint included, to the connected standbys — then the slave must
// have received all of it (waited for up to MaxTrys seconds) before it is
// promoted, and the old master follows it as its slave, without a rewind.
// Anything short of the promotion is undone: the old master is started
// again.
func (x *Switches) Switchover(ctx context.Context, r Switchover, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	old, n, err := cluster.CheckSwitchover(s, r.Family, r.Slave)
	if err != nil {
		return Result{}, err
	}
	oldM, err := fleet.At(s, old)
	if err != nil {
		return Result{}, err
	}
	newM, err := fleet.At(s, n)
	if err != nil {
		return Result{}, err
	}
	probes := x.probeSlaves(ctx, s, old.Name)
	if err := cluster.SwitchoverReady(s, old.Name, n.Name, r.Force, probes); err != nil {
		return Result{}, err
	}
	rec, err := x.Fleet.InRecovery(ctx, oldM)
	if err == nil && rec {
		err = fmt.Errorf("it is in recovery")
	}
	if err != nil {
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s expected running status is master mode, but actually is not: %s`, old.Name, err)
	}
	run, err := x.fenced(ctx, "SWITCHOVER "+n.Name, "stop old master", oldM, p)
	if err != nil {
		return Result{}, err
	}
	// Whatever the fence found, a revert starts the master again: it ran
	// a moment ago.
	run.stopped = true
	if err := x.caughtUp(ctx, oldM, newM, min(max(r.MaxTrys, 10), 3600), p); err != nil {
		return Result{}, run.revert(ctx, err)
	}
	if err := run.takeOver(ctx, newM); err != nil {
		return Result{}, err
	}
	return x.afterSwitchover(context.WithoutCancel(ctx), run, n.Name, cluster.SwitchoverFollowers(s, old.Name, n.Name, probes))
}

// caughtUp checks that every record of the stopped old master, its
// shutdown checkpoint included, reached the new one within maxTrys
// seconds.
func (x *Switches) caughtUp(ctx context.Context, oldM, newM fleet.Member, maxTrys int, p Progress) error {
	cd, err := x.Fleet.ControlData(ctx, oldM)
	if err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "read the control data of %s: %s", oldM.Name(), err)
	}
	// Only a clean shutdown ends with a checkpoint the standby can be
	// checked against; after an immediate stop or a crash the last
	// checkpoint says nothing about the last commits.
	if st := cd.ClusterState(); st != "shut down" {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "%s did not shut down cleanly (%s): cannot prove %s has all its WAL", oldM.Name(), st, newM.Name()).
			WithHint("Use FAILOVER for a master that cannot be stopped cleanly.")
	}
	ckpt, err := cd.Checkpoint()
	if err != nil {
		return pgerror.New(pgerror.Internal, "control data of %s: %s", oldM.Name(), err)
	}
	p.Notice("NOTICE", fmt.Sprintf("wait max %d seconds to check %s and %s have the same xlog position", maxTrys, oldM.Name(), newM.Name()))
	if err := x.Fleet.WaitReplay(ctx, newM, ckpt, time.Duration(maxTrys)*time.Second); err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "check %s and %s have the same xlog position failed", oldM.Name(), newM.Name())
	}
	return nil
}

// afterSwitchover records a promoted switchover, makes the old master a
// standby of the new one and re-points the cluster.
func (x *Switches) afterSwitchover(ctx context.Context, run *switchRun, newMaster string, followers []string) (Result, error) {
	old, p := run.old.Node, run.p
	var plan cluster.Plan
	err := x.commitRetry(ctx, run.j, Step{"running", "catalog", newMaster}, func(sn Snapshot) (cluster.Plan, error) {
		plan = cluster.PlanSwitchover(sn.State, old.Name, newMaster)
		return switched(sn, plan, old.Name, newMaster), nil
	})
	if err != nil {
		x.note(ctx, run.j, "failed", "catalog", err.Error())
		return Result{}, pgerror.New(pgerror.Internal, "%s was promoted but the node table could not be updated: %s", newMaster, err)
	}
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	if sn, err = x.oldFollows(ctx, run, sn, newMaster); err != nil {
		return Result{}, err
	}
	after := sn.State
	newM, err := fleet.Of(after, newMaster)
	if err != nil {
		return Result{}, err
	}
	x.follow(ctx, after, newM, followers, p)
	if err := SyncNames(ctx, x.Fleet, after, newM.Node, inCluster, true, p); err != nil {
		p.Notice("WARNING", err.Error())
	}
	RefreshCoordinators(ctx, x.Fleet, after, old.Name, newMaster, p)
	notices(p, plan.Notices)
	p.Notice("NOTICE", fmt.Sprintf("Switch the %s master from %s to %s has been successfully completed", old.Type.Family(), old.Name, newMaster))
	x.note(ctx, run.j, "done", "end", newMaster)
	return Result{Node: newMaster, Description: fmt.Sprintf("switchover %s success", old.Type.Family())}, nil
}

// oldFollows makes the old master a standby of the new one: it shut down
// cleanly and the new master has all its WAL, so it only has to switch
// timelines. One that cannot follow leaves the cluster until REWIND; the
// snapshot returned is the catalog after that.
func (x *Switches) oldFollows(ctx context.Context, run *switchRun, sn Snapshot, newMaster string) (Snapshot, error) {
	oldM, err := fleet.Of(sn.State, run.old.Name())
	if err != nil {
		return sn, err
	}
	newM, err := fleet.Of(sn.State, newMaster)
	if err != nil {
		return sn, err
	}
	err = x.Fleet.MakeStandbyOf(ctx, oldM, newM)
	if err == nil {
		_, err = x.Fleet.Start(ctx, oldM)
	}
	if err == nil {
		run.p.Notice("NOTICE", fmt.Sprintf("%s has followed %s success", oldM.Name(), newMaster))
		// The slots it kept for its slaves would hold WAL on a standby.
		x.Fleet.DropInactiveSlots(ctx, oldM)
		return sn, nil
	}
	run.p.Notice("WARNING", fmt.Sprintf("%s could not follow %s: %s; REWIND %s SLAVE %s repairs it", oldM.Name(), newMaster, err,
		strings.ToUpper(string(oldM.Node.Type.Family())), oldM.Name()))
	if err := x.Catalog.Commit(ctx, run.j, Step{"running", "kick out " + oldM.Name(), err.Error()}, func(sn Snapshot) (cluster.Plan, error) {
		return cluster.PlanKickOut(sn.State, oldM.Name()), nil
	}); err != nil {
		return sn, err
	}
	return x.Catalog.Read(ctx)
}
