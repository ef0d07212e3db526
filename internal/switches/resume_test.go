package switches

import (
	"context"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

// doctorFailover is the doctor's failover request of dn1 (the manager's
// doctorHands.failover): the nodes left out are marked in the failover's
// own catalog step.
func doctorFailover() Failover {
	return Failover{Family: cluster.Datanode, Master: "dn1", Zone: cluster.DefaultZone, Doctor: true,
		Mark: func(before, after *cluster.State) cluster.Plan { return doctor.AfterFailover(before, after, "dn1") }}
}

// crashed is what the manager's kill -9 right after the step kind of the
// doctor's failover of dn1 leaves: the fleet and the catalog as they were
// then, the steps cleared.
func crashed(t *testing.T, kind cluster.GrowStepKind) *rig {
	t.Helper()
	r := newRig(world())
	r.f.Nodes["dn1"].Running = false // dead: why the doctor fails it over
	r.x.AfterStep = func(_ string, st cluster.SwitchStep) {
		if st.Kind == kind {
			panic("killed")
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatalf("the failover did not reach %q", kind)
			}
		}()
		r.x.Failover(context.Background(), doctorFailover(), r.p)
	}()
	r.x.AfterStep = nil
	r.f.Reset()
	r.p = &fleettest.Notes{}
	return r
}

func (r *rig) cure(t *testing.T, node, want string, allow bool) {
	t.Helper()
	n, _ := r.cat.sn.State.Node(node)
	if n.CureStatus != want || n.AllowCure != allow {
		t.Errorf("%s: curestatus %q allowcure %v, want %q %v", node, n.CureStatus, n.AllowCure, want, allow)
	}
}

// TestDoctorFailoverMarksInItsCatalogStep: the old master of the doctor's
// failover is oldmaster (and curable) in the very transaction that kicks
// it out — a crash right after the catalog step cannot leave it kicked
// out without the doctor's mark, which nobody would rewind.
func TestDoctorFailoverMarksInItsCatalogStep(t *testing.T) {
	r := crashed(t, cluster.GrowCatalog)
	r.nodes(t, map[string]string{
		"dn1":  "datanode slave dn1s async false false true",
		"dn1s": "datanode master   true true true",
	})
	r.cure(t, "dn1", doctor.OldMaster, true)
	r.journal(t, "FAILOVER dn1 running start", "FAILOVER dn1 running promote dn1s", "FAILOVER dn1 running catalog")

	r = newRig(world())
	r.f.Nodes["dn1"].Running = false
	if _, err := r.x.Failover(context.Background(), doctorFailover(), r.p); err != nil {
		t.Fatal(err)
	}
	r.cure(t, "dn1", doctor.OldMaster, true)
	r.p.Has(t, "dn1 is waiting for rewinding. If the doctor is enabled, the doctor will automatically rewind it")
}

// TestResumeFailoverAfterPromote: killed after the promotion, before the
// catalog step: the promoted slave stays the master and the switch goes on.
func TestResumeFailoverAfterPromote(t *testing.T) {
	r := crashed(t, cluster.GrowPromote)
	r.nodes(t, unchangedBut("dn1", "datanode master   true true false"))
	res, err := r.x.ResumeFailover(context.Background(), doctorFailover(), r.p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Node != "dn1s" {
		t.Errorf("result = %+v", res)
	}
	r.nodes(t, map[string]string{
		"dn1":  "datanode slave dn1s async false false true",
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s sync true true true",
	})
	r.cure(t, "dn1", doctor.OldMaster, true)
	r.steps(t, fleettest.Join([]string{"auto.conf dn1s -primary_conninfo -primary_slot_name"},
		coordinatorSteps("dn1", "dn1s"), []string{"checkpoint dn1s", "standby dn1p of dn1s", "reload dn1p", `syncnames dn1s FIRST 1 ("dn1p")`})...)
	r.journal(t, "FAILOVER dn1 running start", "FAILOVER dn1 running promote dn1s",
		"RESUME FAILOVER dn1 running start", "RESUME FAILOVER dn1 running catalog", "RESUME FAILOVER dn1 running coordinators",
		"RESUME FAILOVER dn1 running follow dn1p", "RESUME FAILOVER dn1 done end")
}

// TestResumeFailoverBeforePromote: killed after the fence: nothing was
// switched, and the old master is the doctor's again.
func TestResumeFailoverBeforePromote(t *testing.T) {
	r := crashed(t, cluster.SwitchFence)
	if _, err := r.x.ResumeFailover(context.Background(), doctorFailover(), r.p); err != nil {
		t.Fatal(err)
	}
	r.nodes(t, unchanged)
	r.steps(t)
	r.p.Has(t, "no slave of dn1 was promoted")
}

// TestResumeFailoverAfterCatalog: killed after the catalog step: the
// coordinators, the other slave and the sync names are done again.
func TestResumeFailoverAfterCatalog(t *testing.T) {
	r := crashed(t, cluster.GrowCatalog)
	if _, err := r.x.ResumeFailover(context.Background(), doctorFailover(), r.p); err != nil {
		t.Fatal(err)
	}
	r.nodes(t, map[string]string{
		"dn1":  "datanode slave dn1s async false false true",
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s sync true true true",
	})
	r.steps(t, fleettest.Join(coordinatorSteps("dn1", "dn1s"), []string{"standby dn1p of dn1s", "reload dn1p", `syncnames dn1s FIRST 1 ("dn1p")`})...)
	if n := r.f.Node("dn1p"); n.Parent != "dn1s" {
		t.Errorf("dn1p follows %q", n.Parent)
	}
}

// TestResumeFailoverTwoPrimaries: two slaves answering as primaries are
// for a DBA.
func TestResumeFailoverTwoPrimaries(t *testing.T) {
	r := crashed(t, cluster.GrowPromote)
	r.f.Nodes["dn1p"].InRecovery = false
	if _, err := r.x.ResumeFailover(context.Background(), doctorFailover(), r.p); err == nil {
		t.Fatal("resumed with two primaries")
	}
	r.steps(t)
}

// unchangedBut is unchanged with node's line replaced.
func unchangedBut(node, line string) map[string]string {
	out := map[string]string{}
	for k, v := range unchanged {
		out[k] = v
	}
	out[node] = line
	return out
}
