package switches

import (
	"context"
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// The manual step commands (reference §4.17): a FAILOVER done by hand, one
// step at a time — PROMOTE n (its PostgreSQL), CONFIG DATANODE SLAVE n
// (the coordinators), ADBMGR PROMOTE … SLAVE n (the node table), then ADD
// … SLAVE old FOR n and REWIND. Each is journaled.

// PromoteNode is PROMOTE {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE} n:
// pg_ctl promote of a node that answers as a standby, refused while its
// master still answers as a primary (two masters must never run). The
// node table does not change.
func (x *Switches) PromoteNode(ctx context.Context, t cluster.NodeType, name string, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	n, err := cluster.CheckPromote(s, t, name)
	if err != nil {
		return Result{}, err
	}
	nm, err := fleet.At(s, n)
	if err != nil {
		return Result{}, err
	}
	var master cluster.Node
	var mp cluster.Probe
	if root := cluster.Root(s, n); root.Name != n.Name {
		if rm, err := fleet.At(s, root); err == nil {
			master, mp = root, x.Fleet.Probe(ctx, rm)
		}
	}
	if err := cluster.PromoteReady(n, x.Fleet.Probe(ctx, nm), master, mp); err != nil {
		return Result{}, err
	}
	j := &Journal{Command: "PROMOTE " + n.Name}
	x.note(ctx, j, "running", "promote", "")
	if err := Promote(ctx, x.Fleet, nm, p); err != nil {
		x.note(ctx, j, "failed", "promote", err.Error())
		return Result{}, err
	}
	ctx = context.WithoutCancel(ctx)
	// As a failover's: the recovery settings would point it back at its
	// old master if it were ever made a standby by hand.
	fleet.Standalone(ctx, x.Fleet, nm)
	p.Notice("NOTICE", fmt.Sprintf("%s was successfully promoted; the node table is unchanged", n.Name))
	if n.Type == cluster.DatanodeSlave {
		p.Notice("NOTICE", fmt.Sprintf("CONFIG DATANODE SLAVE %s points the coordinators at it, ADBMGR PROMOTE DATANODE SLAVE %s records it", n.Name, n.Name))
	} else if !n.Type.IsMaster() {
		p.Notice("NOTICE", fmt.Sprintf("ADBMGR PROMOTE %s SLAVE %s records it", strings.ToUpper(string(n.Type.Family())), n.Name))
	}
	x.note(ctx, j, "done", "end", "")
	return Result{Node: n.Name, Description: "promote success"}, nil
}

// ConfigSlave is CONFIG DATANODE SLAVE n: every coordinator in the
// cluster routes to n in place of its master — the foreign server renamed
// to n and pointed at it, the node list as ADBMGR PROMOTE will record it.
// n must run as a primary (PROMOTE first) and every coordinator answer.
func (x *Switches) ConfigSlave(ctx context.Context, name string, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	n, master, err := cluster.CheckConfigSlave(s, name)
	if err != nil {
		return Result{}, err
	}
	nm, err := fleet.At(s, n)
	if err != nil {
		return Result{}, err
	}
	rec, err := x.Fleet.InRecovery(ctx, nm)
	if err != nil {
		return Result{}, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "%s is not running", cluster.Describe(n))
	}
	if rec {
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s is still a standby: the coordinators cannot write to it", cluster.Describe(n)).
			WithHint("PROMOTE DATANODE SLAVE %s first.", n.Name)
	}
	for _, c := range s.Nodes {
		if !coord.IsCoordinator(c) || !c.InCluster {
			continue
		}
		cm, err := fleet.At(s, c)
		if err == nil {
			_, err = x.Fleet.InRecovery(ctx, cm)
		}
		if err != nil {
			return Result{}, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "connect to %s failed", cluster.Describe(c))
		}
	}
	j := &Journal{Command: "CONFIG " + n.Name}
	x.note(ctx, j, "running", "coordinators", master.Name+" to "+n.Name)
	after := cluster.Applied(s, cluster.PlanAdbmgrPromote(s, master.Name, n.Name))
	RefreshCoordinators(context.WithoutCancel(ctx), x.Fleet, after, master.Name, n.Name, p)
	p.Notice("NOTICE", fmt.Sprintf("the coordinators route %s's data to %s; ADBMGR PROMOTE DATANODE SLAVE %s records it in the node table", master.Name, n.Name, n.Name))
	x.note(ctx, j, "done", "end", "")
	return Result{Node: n.Name, Description: "config datanode slave success"}, nil
}

// AdbmgrPromote is ADBMGR PROMOTE {GTMCOORD|COORDINATOR|DATANODE} SLAVE n:
// the node table as after a failover to n (cluster.PlanAdbmgrPromote, the
// parameter rows retyped), the old master stopped when it runs and its row
// deleted (cluster.PlanAdbmgrDropOld). Nothing else is done to the nodes.
func (x *Switches) AdbmgrPromote(ctx context.Context, t cluster.NodeType, name string, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	n, old, err := cluster.CheckAdbmgrPromote(s, t, name)
	if err != nil {
		return Result{}, err
	}
	oldM, err := fleet.At(s, old)
	if err != nil {
		return Result{}, err
	}
	nm, err := fleet.At(s, n)
	if err != nil {
		return Result{}, err
	}
	if err := cluster.AdbmgrPromoteReady(n, x.Fleet.Probe(ctx, nm), old, x.routing(ctx, s, n, old)); err != nil {
		return Result{}, err
	}
	run, err := x.start(ctx, "ADBMGR PROMOTE "+n.Name, sn, oldM, p)
	if err != nil {
		return Result{}, err
	}
	if _, err := x.fence(ctx, oldM, p); err != nil {
		x.Catalog.Commit(ctx, run.j, Step{"failed", "stop " + old.Name, err.Error()}, allowCure(old.Name, old.AllowCure))
		return Result{}, err
	}
	ctx = context.WithoutCancel(ctx)
	var ns []cluster.Notice
	if err := x.Catalog.Commit(ctx, run.j, Step{"running", "catalog", n.Name}, func(sn Snapshot) (cluster.Plan, error) {
		plan := cluster.PlanAdbmgrPromote(sn.State, old.Name, n.Name)
		ns = plan.Notices
		return retyped(sn, plan, old.Name, n.Name), nil
	}); err != nil {
		x.note(ctx, run.j, "failed", "catalog", err.Error())
		return Result{}, err
	}
	if err := x.Catalog.Commit(ctx, run.j, Step{"running", "delete " + old.Name, ""}, func(sn Snapshot) (cluster.Plan, error) {
		plan := cluster.PlanAdbmgrDropOld(sn.State, old.Name)
		ns = append(ns, plan.Notices...)
		return plan, nil
	}); err != nil {
		p.Notice("WARNING", fmt.Sprintf("%s stays in the node table as a slave of %s out of the cluster: %s", old.Name, n.Name, err))
	}
	notices(p, ns)
	x.note(ctx, run.j, "done", "end", "")
	return Result{Node: n.Name, Description: "adbmgr promote success"}, nil
}

// routing names the coordinators in the cluster that still have a
// foreign server named old, datanode master of n: CONFIG DATANODE SLAVE
// n has not re-pointed them. One that cannot be read is left out: the
// doctor's refresh re-points it when it answers again (coord.Configure
// follows the slots of a deleted master to the new one).
func (x *Switches) routing(ctx context.Context, s *cluster.State, n, old cluster.Node) []string {
	if n.Type.Family() != cluster.Datanode {
		return nil
	}
	var out []string
	for _, c := range s.Nodes {
		if !coord.IsCoordinator(c) || !c.InCluster {
			continue
		}
		cm, err := fleet.At(s, c)
		if err != nil {
			continue
		}
		have, err := x.Fleet.ForeignServers(ctx, cm)
		if _, found := have[old.Name]; err == nil && found {
			out = append(out, c.Name)
		}
	}
	return out
}
