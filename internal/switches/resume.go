package switches

import (
	"context"
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// ResumeFailover finishes a FAILOVER of r.Master that the manager's end
// cut short (its journal entry interrupted), from what the catalog and the
// nodes say now — the doctor's, once it runs again. Whatever the point:
//
//   - the catalog step was committed (r.Master is no longer a master): the
//     steps after it are done again — the coordinators re-pointed, the
//     running slaves of the new master re-pointed, its sync names written;
//     all of them may be done twice;
//   - it was not, and exactly one slave of r.Master answers as a primary:
//     the promotion happened (the switch fenced the old master first), so
//     the switch goes on from there: the old master fenced again, the
//     catalog step (with r.Mark's rows), then the steps after it;
//   - it was not, and no slave answers as a primary: nothing was
//     switched; the old master is given back to the doctor (allowcure on,
//     as a doctor's failover found it), which restarts it or fails it over
//     again.
//
// Two or more slaves answering as primaries, or a new master the catalog
// does not know, are refused: a DBA must look.
func (x *Switches) ResumeFailover(ctx context.Context, r Failover, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	old, ok := s.Node(r.Master)
	if !ok {
		return Result{}, pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, r.Master)
	}
	oldM, err := fleet.At(s, old)
	if err != nil {
		return Result{}, err
	}
	run := &switchRun{x: x, p: p, j: &Journal{Command: "RESUME FAILOVER " + old.Name}, sn: sn, old: oldM, mark: r.Mark}
	run.fail = run.switched
	if !old.Type.IsMaster() {
		// The catalog step was committed: old is a slave of the new master.
		newMaster, ok := s.Node(old.Master)
		if !ok || !newMaster.Type.IsMaster() {
			return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s is no longer a master, but its master %q is not one either", old.Name, old.Master)
		}
		x.note(ctx, run.j, "running", "start", "after the catalog step")
		run.promoted = true
		run.plan = cluster.SwitchPlan{Kind: "failover", Old: old.Name, New: newMaster.Name, Done: cluster.JournalEntry{Status: "done", Step: "end", Detail: newMaster.Name}}
		run.plan.Steps = tail(old.Name, newMaster.Name, standbys(x.probeSlaves(ctx, s, newMaster.Name), s, newMaster.Name))
		ctx, err = run.run(ctx, run.plan.Steps)
		if err != nil {
			return Result{}, err
		}
		run.finish(ctx)
		return Result{Node: newMaster.Name, Description: "failover finished"}, nil
	}
	probes := x.probeSlaves(ctx, s, old.Name)
	var primaries []string
	for name, pr := range probes {
		if pr.Reachable && !pr.InRecovery {
			primaries = append(primaries, name)
		}
	}
	switch len(primaries) {
	case 0:
		// Nothing was promoted: the switch never happened.
		if err := x.Catalog.Commit(ctx, run.j, Step{"done", "end", "no slave of " + old.Name + " was promoted; nothing was switched"},
			allowCure(old.Name, r.Doctor || old.AllowCure)); err != nil {
			return Result{}, err
		}
		p.Notice("NOTICE", fmt.Sprintf("no slave of %s was promoted: nothing was switched", old.Name))
		return Result{Node: old.Name, Description: "nothing was switched"}, nil
	case 1:
	default:
		err := pgerror.New(pgerror.ObjectNotInPrereqState, "slaves of %s answer as primaries: %s", old.Name, strings.Join(primaries, ", ")).
			WithHint("Keep one, stop the others, and fix the node table with care (MONITOR ALL shows them).")
		x.note(ctx, run.j, "failed", "start", err.Error())
		return Result{}, err
	}
	newMaster := primaries[0]
	x.note(ctx, run.j, "running", "start", newMaster+" was promoted")
	// The switch fenced the old master before promoting; a restart by
	// hand since then must not leave two masters.
	if _, err := x.fence(ctx, oldM, p); err != nil {
		x.note(ctx, run.j, "failed", string(cluster.SwitchFence), err.Error())
		return Result{}, err
	}
	run.promoted = true
	ctx = context.WithoutCancel(ctx)
	c := cluster.Candidate{Name: newMaster}
	for _, n := range s.Children(old.Name) {
		pr := probes[n.Name]
		switch {
		case n.Name == newMaster:
		case !n.InCluster:
		case pr.Reachable && pr.InRecovery:
			c.Followers = append(c.Followers, n.Name)
		default:
			c.Lost = append(c.Lost, n.Name)
		}
	}
	run.plan = cluster.FailoverSteps(old.Name, c)
	// Its promotion is done: the steps after it.
	var steps []cluster.SwitchStep
	for _, st := range run.plan.Steps {
		if st.Kind != cluster.GrowPromote {
			steps = append(steps, st)
		}
	}
	if ctx, err = run.run(ctx, steps); err != nil {
		return Result{}, err
	}
	run.finish(ctx)
	return Result{Node: newMaster, Description: "failover finished"}, nil
}

// standbys are the slaves of master in the cluster that answer as
// standbys in probes.
func standbys(probes map[string]cluster.Probe, s *cluster.State, master string) []string {
	var out []string
	for _, n := range s.Children(master) {
		if pr := probes[n.Name]; pr.Reachable && pr.InRecovery && n.InCluster {
			out = append(out, n.Name)
		}
	}
	return out
}

// tail is what a failover from old to newMaster does after its catalog
// step (cluster.FailoverSteps): the coordinators, the followers, the sync
// names.
func tail(old, newMaster string, followers []string) []cluster.SwitchStep {
	steps := []cluster.SwitchStep{{Kind: cluster.GrowRefreshCoordinators, Node: newMaster, From: old}}
	for _, f := range followers {
		steps = append(steps, cluster.SwitchStep{Kind: cluster.SwitchFollow, Node: f, From: newMaster})
	}
	return append(steps, cluster.SwitchStep{Kind: cluster.GrowSyncNames, From: newMaster})
}
