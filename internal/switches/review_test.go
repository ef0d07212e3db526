package switches

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// flakyCatalog is a memCatalog whose commits of one journal step ("status
// step") fail a number of times before they succeed; tries counts them.
type flakyCatalog struct {
	*memCatalog
	step  string
	fails int
	tries int
}

func (c *flakyCatalog) Commit(ctx context.Context, j *Journal, step Step, decide func(Snapshot) (cluster.Plan, error)) error {
	if step.Status+" "+step.Name == c.step {
		c.tries++
		if c.tries <= c.fails {
			return fleettest.ErrBoom
		}
	}
	return c.memCatalog.Commit(ctx, j, step, decide)
}

// flaky makes r's catalog fail the commits of step fails times.
func (r *rig) flaky(step string, fails int) *flakyCatalog {
	c := &flakyCatalog{memCatalog: r.cat, step: step, fails: fails}
	r.x.Catalog = c
	return c
}

// switched is the node table after a switch from dn1 to dn1s that the
// catalog recorded: dn1 kicked out (failover) or a slave (switchover).
var (
	failedOver = map[string]string{
		"dn1":  "datanode slave dn1s async false false false",
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s sync true true true",
	}
	switchedOver = map[string]string{
		"dn1":  "datanode slave dn1s sync true true true",
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s potential true true true",
	}
	// promotedOnly is the node table when the catalog could not follow a
	// promotion: as before, the doctor kept off the old master.
	promotedOnly = map[string]string{
		"dn1":  "datanode master   true true false",
		"dn1s": "datanode slave dn1 sync true true true",
		"dn1p": "datanode slave dn1 potential true true true",
	}
)

// TestCatalogRetriedAfterPromotion: after a promotion the catalog write is
// tried five times (commitRetry); four failures are forgotten once the
// fifth try succeeds, for both switches.
func TestCatalogRetriedAfterPromotion(t *testing.T) {
	for _, kind := range []string{"failover", "switchover"} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(world())
			c := r.flaky("running catalog", 4)
			var err error
			want, command := failedOver, "FAILOVER dn1"
			if kind == "failover" {
				_, err = failover(r, Failover{})
			} else {
				_, err = switchover(r, Switchover{})
				want, command = switchedOver, "SWITCHOVER dn1s"
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.tries != 5 {
				t.Errorf("catalog tried %d times, want 5", c.tries)
			}
			r.nodes(t, want)
			if rows := r.cat.Rows; len(rows) == 0 || rows[len(rows)-1] != command+" done end" {
				t.Errorf("journal = %q, want it to end with %q", rows, command+" done end")
			}
			r.p.Has(t, "Switch the datanode master from dn1 to dn1s has been successfully completed")
		})
	}
}

// TestCatalogRetryGivesUp: five failures end the switch with the
// documented internal error; the promotion is not reverted, the node
// table is as before the switch (the doctor still kept off the old
// master), the journal says the catalog failed.
func TestCatalogRetryGivesUp(t *testing.T) {
	tests := []struct {
		kind, command, hint string
		steps               []string
	}{
		{"failover", "FAILOVER dn1", "Run FAILOVER again is not possible; fix the node table with care.",
			[]string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"}},
		{"switchover", "SWITCHOVER dn1s", "",
			// The coordinators' holds are rolled back: without a node
			// table naming dn1s they must not be re-pointed at it.
			fleettest.Join(holdSteps, []string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"}, releaseSteps)},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			r := newRig(world())
			c := r.flaky("running catalog", 1000)
			var err error
			if tt.kind == "failover" {
				_, err = failover(r, Failover{})
			} else {
				_, err = switchover(r, Switchover{})
			}
			pe := wantCode(t, err, pgerror.Internal)
			if pe.Message != "dn1s was promoted but the node table could not be updated: boom" || pe.Hint != tt.hint {
				t.Errorf("error = %q, hint %q", pe.Message, pe.Hint)
			}
			if c.tries != 5 {
				t.Errorf("catalog tried %d times, want 5", c.tries)
			}
			r.nodes(t, promotedOnly)
			r.steps(t, tt.steps...)
			if rows := r.cat.Rows; len(rows) == 0 || rows[len(rows)-1] != tt.command+" failed catalog" {
				t.Errorf("journal = %q, want it to end with %q", rows, tt.command+" failed catalog")
			}
			if n := r.f.Node("dn1"); n.Running {
				t.Error("the old master was started again next to the promoted dn1s")
			}
		})
	}
}

// TestCatalogFailsAfterPromotionNodeTable: the final node table of a
// catalog write that fails for good after the promotion (the existing
// Test…CatalogFailsAfterPromotion check the error and journal).
func TestCatalogFailsAfterPromotionNodeTable(t *testing.T) {
	for _, kind := range []string{"failover", "switchover"} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(world())
			r.cat.fail["running catalog"] = fleettest.ErrBoom
			if kind == "failover" {
				_, _ = failover(r, Failover{})
			} else {
				_, _ = switchover(r, Switchover{})
			}
			r.nodes(t, promotedOnly)
		})
	}
}

// TestSwitchoverUnclearPromotion: a promotion whose outcome is unknown
// stops the switchover with nothing reverted: the old master stays down
// (starting it could make two masters), the doctor off it.
func TestSwitchoverUnclearPromotion(t *testing.T) {
	r := newRig(world())
	r.f.Fail["end recovery dn1s"], r.f.Fail["inrecovery dn1s"] = fleettest.ErrBoom, fleettest.ErrBoom
	_, err := switchover(r, Switchover{})
	if err == nil || !strings.Contains(err.Error(), "unclear promotion") {
		t.Fatalf("err = %v, want an unclear promotion", err)
	}
	pe := wantCode(t, err, pgerror.Internal)
	if !strings.Contains(pe.Message, "the old master is NOT started again") || !strings.Contains(pe.Hint, "MONITOR ALL") {
		t.Errorf("error = %q, hint %q", pe.Message, pe.Hint)
	}
	r.steps(t, fleettest.Join(holdSteps, []string{"stop dn1 fast", "end recovery dn1s"}, releaseSteps)...)
	r.nodes(t, promotedOnly)
	r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s running stop old master dn1", "SWITCHOVER dn1s running promote dn1s", "SWITCHOVER dn1s failed promote")
	if n := r.f.Node("dn1"); n.Running {
		t.Error("the old master was started again")
	}
}

// TestSwitchoverCoordinatorUnreachable: without FORCE a coordinator
// whose clients cannot be counted refuses the switchover at once, with
// nothing changed (AntDB connects every coordinator first); with FORCE
// the switch goes on and the coordinator is a WARNING.
func TestSwitchoverCoordinatorUnreachable(t *testing.T) {
	r := newRig(world())
	r.f.Nodes["cn1"].Running = false
	_, err := switchover(r, Switchover{})
	pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
	if !strings.Contains(pe.Message, "cn1") || !strings.Contains(pe.Hint, "FORCE") {
		t.Errorf("error = %q, hint %q", pe.Message, pe.Hint)
	}
	r.nodes(t, unchanged)
	if n := r.f.Node("dn1"); !n.Running || n.InRecovery {
		t.Errorf("dn1 after a refused switchover: %+v", n)
	}

	r = newRig(world())
	r.f.Nodes["cn1"].Running = false
	res, err := switchover(r, Switchover{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Node != "dn1s" {
		t.Errorf("result = %+v", res)
	}
	r.p.Has(t, "Switch the datanode master from dn1 to dn1s has been successfully completed")
	r.nodes(t, switchedOver)
	if rows := r.cat.Rows; rows[len(rows)-1] != "SWITCHOVER dn1s done end" {
		t.Errorf("journal = %q", rows)
	}
	if !slices.Contains(r.f.StepList(), "repoint gc dn1 to dn1s") {
		t.Errorf("steps %q: gc not re-pointed", r.f.StepList())
	}
}

// TestSwitchoverCandidateDiesBeforePromotion: the slave stops answering
// after the master was stopped: the switchover is reverted, the old
// master runs again.
func TestSwitchoverCandidateDiesBeforePromotion(t *testing.T) {
	r := newRig(world())
	r.f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "stop dn1 fast" {
			f.Nodes["dn1s"].Running = false
		}
		return nil
	}
	if _, err := switchover(r, Switchover{}); err == nil {
		t.Fatal("a switchover to a dead slave succeeded")
	}
	r.nodes(t, unchanged)
	r.steps(t, fleettest.Join(holdSteps, []string{"stop dn1 fast"}, releaseSteps, []string{"start dn1"})...)
	r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s running stop old master dn1", "SWITCHOVER dn1s failed revert")
	r.p.Has(t, "dn1 is running again as the master; nothing was switched")
}
