package switches

import (
	"context"
	"fmt"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Rewind is REWIND {GTMCOORD|COORDINATOR|DATANODE} SLAVE n (reference
// §4.13).
type Rewind struct {
	Family cluster.Family
	Slave  string
}

// Rewind makes a node — typically the old master a FAILOVER kicked out —
// a streaming slave of the master the node table names, with pg_rewind
// instead of a new base backup.
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
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s does not running normal: %s`, cluster.Describe(parent), err)
	}
	run := &switchRun{x: x, p: p, j: &Journal{Command: "REWIND " + n.Name}, sn: sn, plan: cluster.RewindSteps(parent.Name, n.Name)}
	run.fail = run.rewound
	x.note(ctx, run.j, "running", "start", "")
	ctx, err = run.run(ctx, run.plan.Steps)
	if err != nil {
		return Result{}, err
	}
	x.note(ctx, run.j, run.plan.Done.Status, run.plan.Done.Step, run.plan.Done.Detail)
	return Result{Node: n.Name, Description: "rewind success"}, nil
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
