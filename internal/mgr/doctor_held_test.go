package mgr

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// TestWarnSyncDiffers: MONITOR HA warns of a datanode or gtmcoord slave
// the catalog calls sync or potential that its master streams to
// asynchronously (its live list does not name it), and of nothing else.
func TestWarnSyncDiffers(t *testing.T) {
	slaves := []cluster.Node{
		{Name: "dn1a", Type: cluster.DatanodeSlave, Master: "dn1s", SyncState: cluster.Sync},
		{Name: "dn1b", Type: cluster.DatanodeSlave, Master: "dn1s", SyncState: cluster.Potential},
		{Name: "dn1c", Type: cluster.DatanodeSlave, Master: "dn1s", SyncState: cluster.Async},
		{Name: "cn1s", Type: cluster.CoordinatorSlave, Master: "cn1", SyncState: cluster.Sync},
		{Name: "dn2s", Type: cluster.DatanodeSlave, Master: "dn2", SyncState: cluster.Sync},
	}
	rows := []map[string]string{{"sync_state": "async"}, {"sync_state": "potential"}, {"sync_state": "async"},
		{"sync_state": "async"}, {"state": "not streaming"}}
	var r recorder
	warnSyncDiffers(&r, slaves, rows)
	if len(r.notices) != 1 || !strings.Contains(r.notices[0], "dn1a streams asynchronously from dn1s") {
		t.Errorf("notices = %q", r.notices)
	}
}

// TestHeldComment: LIST DOCTOR's held row names what was interrupted.
func TestHeldComment(t *testing.T) {
	c := heldComment([]string{`DOCTOR FAILOVER dn1 (at step "promote")`})
	if !strings.HasPrefix(c, `held: the previous manager ended during DOCTOR FAILOVER dn1 (at step "promote");`) || !strings.Contains(c, "START DOCTOR") {
		t.Errorf("heldComment = %q", c)
	}
}

// TestSameGroup: FAILOVER's refusal after an interrupted doctor switch
// covers the group of the node the entry names, whoever is its master now.
func TestSameGroup(t *testing.T) {
	s := &cluster.State{Nodes: []cluster.Node{
		{Name: "dn1s", Type: cluster.DatanodeMaster},
		{Name: "dn1", Type: cluster.DatanodeSlave, Master: "dn1s"},
		{Name: "dn1c", Type: cluster.DatanodeSlave, Master: "dn1"},
		{Name: "dn2", Type: cluster.DatanodeMaster},
	}}
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"dn1", "dn1s", true}, {"dn1c", "dn1s", true}, {"dn1", "dn2", false}, {"gone", "dn1s", false}} {
		if got := sameGroup(s, tt.a, tt.b); got != tt.want {
			t.Errorf("sameGroup(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}
