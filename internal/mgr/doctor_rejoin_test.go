package mgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/google/go-cmp/cmp"
)

// rejoinRig is a manager over gc, cn1 and dn1 (h1) and cn2 (h2), which
// the doctor isolated and which is stopped; its fleet is the fake.
func rejoinRig(t *testing.T) (*Manager, *catalog.SQLite, *fleettest.Fleet) {
	t.Helper()
	m, cat := newManager(t)
	mustRun(t, m, `ADD HOST h1 (address='127.0.0.2', user=adb); ADD HOST h2 (address='127.0.0.3', user=adb);
		ADD GTMCOORD MASTER gc (HOST=h1, PORT=15430, PATH='/data/gc');
		ADD COORDINATOR MASTER cn1 (HOST=h1, PORT=15431, PATH='/data/cn1');
		ADD COORDINATOR MASTER cn2 (HOST=h2, PORT=15432, PATH='/data/cn2');
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15433, PATH='/data/dn1')`)
	markInitialized(t, cat)
	s, err := m.state(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.New(s)
	setNodes(t, cat, func(n *cluster.Node) {
		n.AllowCure = true
		if n.Name == "cn2" {
			n.Initialized, n.InCluster, n.CureStatus = false, false, doctor.Isolated
		}
	})
	f.Nodes["cn2"].Running = false
	f.Prints = map[string]string{}
	m.fleet = f
	return m, cat, f
}

// rejoinJournal is the DOCTOR REJOIN cn2 entry as the journal view
// shows it, its last step: "status step: detail".
func rejoinJournal(t *testing.T, m *Manager) []string {
	t.Helper()
	var out []string
	for _, r := range mustRun(t, m, "SELECT status, step, detail FROM journal WHERE command = 'DOCTOR REJOIN cn2' ORDER BY id").rows {
		out = append(out, fmt.Sprintf("%s %s: %s", r[0], r[1], r[2]))
	}
	return out
}

func cn2Row(t *testing.T, m *Manager) string {
	t.Helper()
	s, err := m.state(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.Node("cn2")
	return fmt.Sprintf("[[%s %s %s]]", onOff(n.Initialized), onOff(n.InCluster), n.CureStatus)
}

// withoutRefreshes drops the node lists and sync names every refresh
// writes from steps.
func withoutRefreshes(steps []string) []string {
	var out []string
	for _, s := range steps {
		if !strings.HasPrefix(s, "coordinator ") && !strings.HasPrefix(s, "syncnames ") {
			out = append(out, s)
		}
	}
	return out
}

// rejoined runs the doctor's Rejoin of cn2, which must take it back with
// steps (node-list writes left out).
func rejoined(t *testing.T, m *Manager, f *fleettest.Fleet, steps ...string) {
	t.Helper()
	if err := (doctorHands{m}).Rejoin(context.Background(), "cn2"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(steps, withoutRefreshes(f.Steps)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got := cn2Row(t, m); got != "[[on on normal]]" {
		t.Errorf("cn2 = %s", got)
	}
}

// TestHandsRejoinAlike: a coordinator that missed nothing is started,
// compared and taken back without a copy.
func TestHandsRejoinAlike(t *testing.T) {
	m, _, f := rejoinRig(t)
	rejoined(t, m, f, "start cn2")
	want := []string{"done end: started; its catalog matches gc's"}
	if diff := cmp.Diff(want, rejoinJournal(t, m)); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
}

// TestHandsRejoinRebuilds: a coordinator whose catalog differs from the
// gtmcoord master's is rebuilt from it as APPEND COORDINATOR copies one —
// stopped, emptied, a base backup over a slot dropped after, its own
// configuration, no standby.signal — and only then joins.
func TestHandsRejoinRebuilds(t *testing.T) {
	m, _, f := rejoinRig(t)
	f.Prints["cn2"] = "stale"
	rejoined(t, m, f, "start cn2", "stop cn2 fast", "clean cn2", "slot cn2 on gc", "basebackup cn2 from gc", "configure cn2",
		"auto.conf cn2 -primary_conninfo -primary_slot_name", "standby.signal cn2 false", "start cn2", "dropslot cn2 on gc")
	done := "rebuilt from gc (its catalog differs from gc's)"
	wantJ := []string{"done end: " + done}
	if diff := cmp.Diff(wantJ, rejoinJournal(t, m)); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
}

// TestHandsRejoinRebuildFails: a copy that fails leaves the coordinator
// isolated and stopped, for the next round.
func TestHandsRejoinRebuildFails(t *testing.T) {
	m, _, f := rejoinRig(t)
	f.Prints["cn2"] = "stale"
	f.Fail["basebackup cn2 from gc"] = errors.New("pg_basebackup: no space left on device")
	err := (doctorHands{m}).Rejoin(context.Background(), "cn2")
	if err == nil || !strings.Contains(err.Error(), "rebuild from gc") {
		t.Fatalf("Rejoin = %v", err)
	}
	if got := cn2Row(t, m); got != "[[off off isolated]]" {
		t.Errorf("cn2 = %s", got)
	}
	if n := f.Nodes["cn2"]; n != nil && n.Running {
		t.Errorf("cn2 runs after a failed rebuild")
	}
	j := rejoinJournal(t, m)
	if len(j) == 0 || !strings.HasPrefix(j[len(j)-1], "failed end: rebuild from gc") {
		t.Errorf("journal = %q", j)
	}
}

// TestHandsRejoinSourceDown: with no live coordinator to compare it
// with, it is not taken back (nor started); alone, it is only started.
func TestHandsRejoinSourceDown(t *testing.T) {
	m, cat, f := rejoinRig(t)
	f.Nodes["gc"].Running, f.Nodes["cn1"].Running = false, false
	if err := (doctorHands{m}).Rejoin(context.Background(), "cn2"); err == nil || !strings.Contains(err.Error(), "no coordinator in the cluster answers") {
		t.Fatalf("Rejoin = %v", err)
	}
	if got := cn2Row(t, m); got != "[[off off isolated]]" || f.Nodes["cn2"].Running {
		t.Errorf("cn2 = %s, running %v", got, f.Nodes["cn2"].Running)
	}
	setNodes(t, cat, func(n *cluster.Node) {
		if n.Name == "gc" || n.Name == "cn1" {
			n.InCluster = false
		}
	})
	f.Steps = nil
	rejoined(t, m, f, "start cn2")
}

// TestHandsRejoinChangedMeanwhile: DDL through another coordinator
// between the comparison and the node lists' refresh is caught by the
// second comparison: the coordinator is isolated again and stopped.
func TestHandsRejoinChangedMeanwhile(t *testing.T) {
	m, _, f := rejoinRig(t)
	f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "coordinator gc" { // the refresh after it joined
			f.Prints["gc"] = "new table"
		}
		return nil
	}
	err := (doctorHands{m}).Rejoin(context.Background(), "cn2")
	if err == nil || !strings.Contains(err.Error(), "isolated again") {
		t.Fatalf("Rejoin = %v", err)
	}
	if got := cn2Row(t, m); got != "[[off off isolated]]" || f.Nodes["cn2"].Running {
		t.Errorf("cn2 = %s, running %v", got, f.Nodes["cn2"].Running)
	}
	j := rejoinJournal(t, m)
	if len(j) != 1 || !strings.HasPrefix(j[0], "failed end: its catalog changed while it rejoined") {
		t.Errorf("journal = %q", j)
	}
}
