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
	j := &Journal{Command: "REWIND " + n.Name}
	x.note(ctx, j, "running", "start", "")
	if step, err := x.rewound(ctx, sn, nm, pm, p); err != nil {
		x.note(ctx, j, "failed", step, err.Error())
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, "rewind %s: %s: %s", n.Name, step, err)
	}
	err = x.Catalog.Commit(ctx, j, Step{"running", "rejoined", ""}, func(sn Snapshot) (cluster.Plan, error) {
		return cluster.PlanRewound(sn.State, parent.Name, n.Name), nil
	})
	if err != nil {
		return Result{}, err
	}
	ctx = context.WithoutCancel(ctx)
	after, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	pa, _ := after.State.Node(parent.Name)
	if err := SyncNames(ctx, x.Fleet, after.State, pa, inCluster, true, p); err != nil {
		p.Notice("WARNING", err.Error())
	} else {
		p.Notice("NOTICE", fmt.Sprintf(`refresh %s synchronous_standby_names='%s'`, cluster.Describe(pa), cluster.SyncNames(after.State, pa.Name, inCluster)))
	}
	RefreshCoordinators(ctx, x.Fleet, after.State, "", "", p)
	x.note(ctx, j, "done", "end", "")
	return Result{Node: n.Name, Description: "rewind success"}, nil
}

// rewound rewinds nm from pm and starts it as pm's standby; on failure it
// names the step that failed.
func (x *Switches) rewound(ctx context.Context, sn Snapshot, nm, pm fleet.Member, p Progress) (string, error) {
	if err := x.cleanShutdown(ctx, nm, pm, p); err != nil {
		return "stop", err
	}
	// The master's control file must show the timeline it runs on now,
	// which a promotion only writes at its next checkpoint.
	if err := x.Fleet.Checkpoint(ctx, pm); err != nil {
		return "checkpoint on " + pm.Name(), err
	}
	if err := x.Fleet.EnsureSlot(ctx, pm, nm.Name()); err != nil {
		return "replication slot", err
	}
	p.Notice("NOTICE", fmt.Sprintf("pg_rewind %s from %s", nm.Name(), pm.Name()))
	out, err := x.Fleet.Rewind(ctx, nm, pm)
	if err != nil {
		return "pg_rewind", err
	}
	if out != "" {
		p.Notice("NOTICE", out)
	}
	// pg_rewind copied the source's configuration files: the node's own
	// settings and pg_hba.conf go back.
	conf, err := x.Conf(sn, nm.Node)
	if err == nil {
		err = x.Fleet.Configure(ctx, nm, conf)
	}
	if err != nil {
		return "configure", err
	}
	if err := x.Fleet.MakeStandbyOf(ctx, nm, pm); err != nil {
		return "standby", err
	}
	if _, err := x.Fleet.Start(ctx, nm); err != nil {
		return "start", err
	}
	return "", nil
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
