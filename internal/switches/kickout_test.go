package switches

import (
	"slices"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

// TestSwitchoverKickOutCommitFails: the old master cannot follow and the
// catalog write that kicks it out fails (after its retries). The switch
// happened: nothing is reverted, the other slaves and the coordinators
// are still re-pointed at the new master, the journal entry ends (not
// left "running"), and what happened is said.
func TestSwitchoverKickOutCommitFails(t *testing.T) {
	r := newRig(world())
	r.f.Fail["start dn1"] = fleettest.ErrBoom
	c := r.flaky("running kick out dn1", 1000)
	_, err := switchover(r, Switchover{})
	if c.tries != 5 {
		t.Errorf("kick-out commit tried %d times, want 5 (commitRetry: it follows the promotion)", c.tries)
	}
	rows := r.cat.Rows
	last := ""
	if len(rows) > 0 {
		last = rows[len(rows)-1]
	}
	switch {
	case err == nil && last == "SWITCHOVER dn1s done end":
		r.p.Has(t, "Switch the datanode master from dn1 to dn1s has been successfully completed")
	case err != nil && strings.HasPrefix(last, "SWITCHOVER dn1s failed "):
	default:
		t.Errorf("err = %v, journal %q: want success ending done, or an error ending failed", err, rows)
	}
	r.p.Has(t, "WARNING: dn1 could not follow dn1s: boom; REWIND DATANODE SLAVE dn1 repairs it", "boom")
	// Nothing reverted: dn1 was started once (the rejoin), dn1s stays master.
	steps := r.f.StepList()
	if n := strings.Count(strings.Join(steps, "\n"), "start dn1\n"); n > 1 || slices.Contains(steps, "promote dn1") {
		t.Errorf("steps %q: a revert after the promotion", steps)
	}
	for _, want := range []string{"standby dn1p of dn1s", "reload dn1p", "repoint cn1 dn1 to dn1s", "repoint gc dn1 to dn1s"} {
		if !slices.Contains(steps, want) {
			t.Errorf("steps %q lack %q: the cluster was left pointing at the old master", steps, want)
		}
	}
	r.nodes(t, map[string]string{"dn1s": "datanode master   true true true"})
	if n := r.f.Node("dn1s"); !n.Running || n.InRecovery {
		t.Errorf("dn1s after the switchover: %+v", n)
	}
}
