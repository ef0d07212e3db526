package switches

import (
	"context"
	"errors"
	"fmt"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Rewind is REWIND {GTMCOORD|COORDINATOR|DATANODE} SLAVE n [BASEBACKUP]
// (reference §4.13), or the doctor's rewind of a node it kicked out.
type Rewind struct {
	Family cluster.Family
	Slave  string
	// BaseBackup: REWIND … BASEBACKUP — the node's data directory is
	// emptied and copied again from its master instead of pg_rewind.
	BaseBackup bool
	// FallbackBaseBackup: when a step on the node's own data directory
	// fails (its clean shutdown, pg_rewind, its start:
	// cluster.RewindFallsBack), go on with a base backup instead of
	// failing — what the doctor asks for. The journal and a WARNING say
	// so.
	FallbackBaseBackup bool
}

// Rewind makes a node — typically the old master a FAILOVER kicked out —
// a streaming slave of the master the node table names, with pg_rewind
// (or, with BaseBackup or after a failure with FallbackBaseBackup, with a
// new base backup). A failed pg_rewind says why (the tool's last lines as
// DETAIL) and offers REWIND … BASEBACKUP.
func (x *Switches) Rewind(ctx context.Context, r Rewind, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	n, parent, err := cluster.CheckRewind(s, r.Family, r.Slave)
	if err != nil {
		return Result{}, err
	}
	nm, err := fleet.At(s, n)
	if err != nil {
		return Result{}, err
	}
	pm, err := fleet.At(s, parent)
	if err != nil {
		return Result{}, err
	}
	if err := x.Fleet.AgentUp(ctx, nm.Host); err != nil {
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, `the agent on host "%s" is not running`, nm.Host.Name).
			WithHint("Run START AGENT %s first.", nm.Host.Name)
	}
	if _, err := x.Fleet.InRecovery(ctx, pm); err != nil {
		return Result{}, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "%s does not running normal", cluster.Describe(parent))
	}
	run := &switchRun{x: x, p: p, j: &Journal{Command: "REWIND " + n.Name}, sn: sn, plan: cluster.RewindSteps(parent.Name, n.Name),
		fallback: r.FallbackBaseBackup && !r.BaseBackup}
	if r.BaseBackup {
		run.plan = cluster.RewindBaseBackupSteps(parent.Name, n.Name)
	}
	run.fail = run.rewound
	x.note(ctx, run.j, "running", "start", "")
	done, err := run.run(ctx, run.plan.Steps)
	if err != nil && run.fellBack && ctx.Err() == nil {
		p.Notice("WARNING", fmt.Sprintf("%s could not be rewound (%s); making it a slave of %s from a new base backup instead", n.Name, err, parent.Name))
		run.fallback, run.fellBack = false, false
		run.plan = cluster.RewindBaseBackupSteps(parent.Name, n.Name)
		done, err = run.run(ctx, run.plan.Steps)
	}
	if err != nil {
		return Result{}, err
	}
	x.note(done, run.j, run.plan.Done.Status, run.plan.Done.Step, run.plan.Done.Detail)
	if run.plan.Done.Detail == cluster.ByBaseBackup {
		return Result{Node: n.Name, Description: "rewind " + cluster.ByBaseBackup + " success"}, nil
	}
	return Result{Node: n.Name, Description: "rewind success"}, nil
}

// stop stops m whatever its state: fast, then immediate (a base backup
// replaces its data directory, so a clean shutdown does not matter).
func (x *Switches) stop(ctx context.Context, m fleet.Member) error {
	if _, err := x.Fleet.Stop(ctx, m, fleet.Fast); err != nil {
		if _, err2 := x.Fleet.Stop(ctx, m, fleet.Immediate); err2 != nil {
			return errors.Join(err, err2)
		}
	}
	return nil
}

// cleanDir empties the stopped m's data directory for a base backup. A
// node the catalog still counts as initialised is kicked out first (one
// transaction with its journal row), so that the catalog never lists an
// empty directory as a node: a failure from here on leaves it for another
// REWIND.
func (r *switchRun) cleanDir(ctx context.Context, m fleet.Member) error {
	if n, ok := r.sn.State.Node(m.Name()); ok && (n.Initialized || n.InCluster) {
		if err := r.x.Catalog.Commit(ctx, r.j, Step{"running", "kick out " + m.Name(), "its data directory is copied again"},
			func(sn Snapshot) (cluster.Plan, error) { return cluster.PlanKickOut(sn.State, m.Name()), nil }); err != nil {
			return err
		}
		if err := r.reread(ctx); err != nil {
			return err
		}
	}
	return r.x.Fleet.CleanDir(ctx, m)
}

// cleanShutdown leaves nm stopped cleanly, which pg_rewind requires. A
// node that crashed (or was stopped in immediate mode) is started once as
// a standby of the master — never as a primary, which could take writes —
// and stopped again.
func (x *Switches) cleanShutdown(ctx context.Context, nm, pm fleet.Member, p Progress) error {
	if _, err := x.Fleet.Stop(ctx, nm, fleet.Fast); err != nil {
		return err
	}
	cd, err := x.Fleet.ControlData(ctx, nm)
	if err != nil {
		return err
	}
	if cd.CleanlyShutDown() {
		return nil
	}
	p.Notice("NOTICE", fmt.Sprintf("%s was not shut down cleanly (%s): starting it once as a standby to finish its recovery", nm.Name(), cd.ClusterState()))
	if err := x.Fleet.MakeStandbyOf(ctx, nm, pm); err != nil {
		return err
	}
	if _, err := x.Fleet.Start(ctx, nm); err != nil {
		return err
	}
	_, err = x.Fleet.Stop(ctx, nm, fleet.Fast)
	return err
}
