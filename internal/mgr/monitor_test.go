package mgr

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/google/go-cmp/cmp"
)

// TestMonitorWrongRoles: MONITOR ALL says a node whose role is not the
// catalog's is wrong (status f), both ways — a slave that runs as a
// primary (two masters), a master that runs as a standby (no writable
// master) — and MONITOR HA says so of the slaves of such a master.
func TestMonitorWrongRoles(t *testing.T) {
	m, _, f := handsRig(t)
	f.Nodes["dn1"].InRecovery = true
	f.Nodes["cn1"].InRecovery = true
	f.Nodes["dn1s"].InRecovery, f.Nodes["dn1s"].Parent = false, ""
	got := map[string][2]string{}
	for _, r := range mustRun(t, m, "MONITOR ALL").rows {
		got[r[0]] = [2]string{r[2], r[3]}
	}
	want := map[string][2]string{
		"cn1":  {"f", standbyMaster},
		"dn1":  {"f", standbyMaster},
		"dn1s": {"f", doctor.FenceReason("dn1")},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("MONITOR ALL (-want +got):\n%s", d)
	}
	rows := mustRun(t, m, "MONITOR HA (nodename, state)").rows
	if d := cmp.Diff([][]string{{"dn1s", doctor.FenceReason("dn1")}}, rows); d != "" {
		t.Errorf("MONITOR HA (-want +got):\n%s", d)
	}
	f.Nodes["dn1s"].InRecovery, f.Nodes["dn1s"].Parent = true, "dn1"
	rows = mustRun(t, m, "MONITOR HA (nodename, state)").rows
	if d := cmp.Diff([][]string{{"dn1s", "its master dn1 " + standbyMaster}}, rows); d != "" {
		t.Errorf("MONITOR HA, dn1s a standby (-want +got):\n%s", d)
	}
}
