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
	if _, err := fleet.At(s, n); err != nil {
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
	run, err := x.start(ctx, "SWITCHOVER "+n.Name, sn, oldM, p)
	if err != nil {
		return Result{}, err
	}
	run.fail = run.quietFailed
	run.plan = cluster.SwitchoverSteps(s, old.Name, n.Name, r.MaxTrys, r.Force, probes)
	defer run.releaseHolds(ctx)
	ctx, err = run.run(ctx, run.plan.Steps)
	if err != nil {
		return Result{}, err
	}
	run.finish(ctx)
	return Result{Node: n.Name, Description: fmt.Sprintf("switchover %s success", old.Type.Family())}, nil
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
		return replayError(ctx, err, oldM.Name(), newM.Name(), ckpt)
	}
	return nil
}

// replayError is the failed wait for newM to replay oldM's shutdown
// checkpoint at ckpt: a statement cancelled meanwhile (its client gone) is
// said as such, not as a replay that fell short; either way the cause is
// kept.
func replayError(ctx context.Context, err error, oldM, newM string, ckpt uint64) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fleet.WrapAs(err, pgerror.QueryCanceled, "", "SWITCHOVER cancelled while waiting for %s to replay the shutdown checkpoint of %s at %s",
			newM, oldM, cluster.FormatLSN(ckpt))
	}
	return fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "check %s and %s have the same xlog position failed: the shutdown checkpoint of %s is at %s",
		oldM, newM, oldM, cluster.FormatLSN(ckpt))
}
