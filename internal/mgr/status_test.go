package mgr

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// summary is what TestStatus compares of a NodeState.
type summary struct {
	Name, Role, Parent, State string
	Up, Recovery, Primary     bool
}

func summarise(st Status) []summary {
	var out []summary
	for _, n := range st.Nodes {
		out = append(out, summary{n.Name, n.Role, n.Parent, n.State, n.Up, n.Recovery, n.LivePrimary()})
	}
	return out
}

// Status shows every node as MONITOR ALL probes it and each slave's row
// in its parent's pg_stat_replication; a slave that dies is down and not
// streaming. The journal gives the doctor's actions and the last switch.
func TestStatus(t *testing.T) {
	m, cat, f := handsRig(t)
	ctx := context.Background()
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []summary{
		{"cn1", "master", "", "", true, false, true},
		{"dn1", "master", "", "", true, false, true},
		{"dn1s", "slave", "dn1", "streaming", true, true, false},
	}
	if d := cmp.Diff(want, summarise(st)); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}
	if len(st.Hosts) != 2 || st.Doctor != nil || !st.LastFailover.IsZero() {
		t.Errorf("hosts %+v, doctor %+v, last failover %v", st.Hosts, st.Doctor, st.LastFailover)
	}

	f.Nodes["dn1s"].Running = false
	for _, j := range [][3]string{{"DOCTOR RESTART dn1s", "done"}, {"DOCTOR RESTART dn1", "failed"}, {"DOCTOR RESTART dn1s", "done"}, {"FAILOVER dn1", "done"}, {"SWITCHOVER dn1s", "failed"}} {
		if _, err := cat.Journal(ctx, 0, j[0], j[1], "end", ""); err != nil {
			t.Fatal(err)
		}
	}
	st, err = m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want[2] = summary{"dn1s", "slave", "dn1", "not streaming", false, false, false}
	if d := cmp.Diff(want, summarise(st)); d != "" {
		t.Errorf("status with dn1s down (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]ActionCount{{"restart", "done", 2}, {"restart", "failed", 1}}, st.DoctorActions); d != "" {
		t.Errorf("doctor actions (-want +got):\n%s", d)
	}
	if len(st.Doctor) != 3 || st.Doctor[0].Command != "DOCTOR RESTART dn1s" || st.Doctor[1].Status != "failed" {
		t.Errorf("doctor entries: %+v", st.Doctor)
	}
	if time.Since(st.LastFailover) > time.Minute {
		t.Errorf("last failover %v", st.LastFailover)
	}
	if err := m.CatalogWritable(ctx); err != nil {
		t.Errorf("CatalogWritable: %v", err)
	}
}
