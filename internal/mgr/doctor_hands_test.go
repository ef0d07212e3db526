package mgr

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/google/go-cmp/cmp"
)

// handsRig is a manager over a catalog of dn1 (h1) with its slave dn1s
// and cn1 (h2), initialised, its fleet the in-memory fake.
func handsRig(t *testing.T) (*Manager, *catalog.SQLite, *fleettest.Fleet) {
	t.Helper()
	m, cat := newManager(t)
	mustRun(t, m, `ADD HOST h1 (address='127.0.0.2', user=adb); ADD HOST h2 (address='127.0.0.3', user=adb);
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=15433, PATH='/data/dn1s');
		ADD COORDINATOR MASTER cn1 (HOST=h2, PORT=15434, PATH='/data/cn1')`)
	markInitialized(t, cat)
	setNodes(t, cat, func(n *cluster.Node) { n.AllowCure = true })
	s, err := m.state(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.New(s)
	f.Servers = map[string]map[string]string{"cn1": {"dn1": "127.0.0.2:15432"}}
	m.fleet = f
	return m, cat, f
}

// setNodes changes every node of the catalog with fn.
func setNodes(t *testing.T, cat *catalog.SQLite, fn func(n *cluster.Node)) {
	t.Helper()
	if err := cat.Update(context.Background(), func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		var p cluster.Plan
		for _, n := range s.Nodes {
			fn(&n)
			p.UpdateNodes = append(p.UpdateNodes, n)
		}
		return tx.Apply(p)
	}); err != nil {
		t.Fatal(err)
	}
}

func observed(t *testing.T, m *Manager) map[string]doctor.Observation {
	t.Helper()
	obs, err := doctorHands{m}.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]doctor.Observation{}
	for _, o := range obs {
		out[o.Node] = o
	}
	return out
}

// TestHandsFenceKickedOutOldMaster: after a DBA's FAILOVER during a
// partition, the kicked-out old master (allowcure off) that answers as a
// primary again is watched for fencing only, fenced by a fast stop, and
// journaled; a stale coordinator is seen as such.
func TestHandsFenceKickedOutOldMaster(t *testing.T) {
	m, cat, f := handsRig(t)
	// What FAILOVER DATANODE dn1 left while dn1's host was cut off.
	setNodes(t, cat, func(n *cluster.Node) {
		switch n.Name {
		case "dn1":
			n.Type, n.Master, n.Initialized, n.InCluster, n.AllowCure, n.SyncState = cluster.DatanodeSlave, "dn1s", false, false, false, cluster.Async
		case "dn1s":
			n.Type, n.Master, n.SyncState = cluster.DatanodeMaster, "", ""
		}
	})
	f.Nodes["dn1s"].InRecovery, f.Nodes["dn1s"].Parent = false, ""

	o := observed(t, m)
	want := doctor.Observation{Node: "dn1", Role: doctor.Slave, Cure: doctor.Normal, FenceOnly: true, Primary: true, Master: "dn1s"}
	if diff := cmp.Diff(want, o["dn1"]); diff != "" {
		t.Errorf("dn1 (-want +got):\n%s", diff)
	}
	if !o["cn1"].Answering || !o["cn1"].Stale {
		t.Errorf("cn1, which still has dn1's server: %+v", o["cn1"])
	}
	acts := doctor.Decide(doctor.Memory{}, []doctor.Observation{o["dn1"], o["dn1s"], o["cn1"]}, doctor.DefaultConfig)
	if diff := cmp.Diff([]doctor.Action{{Kind: doctor.Fence, Node: "dn1", Reason: doctor.FenceReason("dn1s")}, {Kind: doctor.Refresh, Node: "cn1"}}, acts); diff != "" {
		t.Errorf("decided (-want +got):\n%s", diff)
	}

	if err := (doctorHands{m}).Fence(context.Background(), "dn1", doctor.FenceReason("dn1s")); err != nil {
		t.Fatal(err)
	}
	if err := (doctorHands{m}).Refresh(context.Background(), "cn1"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"stop dn1 fast", "coordinator cn1"}, f.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	r := mustRun(t, m, "SELECT command, status, detail FROM journal WHERE command LIKE 'DOCTOR%'")
	if len(r.rows) != 2 || r.rows[0][0] != "DOCTOR FENCE dn1" || r.rows[0][1] != "done" || !strings.Contains(r.rows[0][2], "two masters; stopped") {
		t.Errorf("journal: %q", r.rows)
	}
	// Stopped, it is not fenced again; and the MONITOR row of a node
	// that still ran as a primary would say why.
	if o := observed(t, m)["dn1"]; o.Primary {
		t.Errorf("dn1 after the fence: %+v", o)
	}
}

// TestHandsFenceFallsBackToImmediate: a fast stop that fails is followed
// by an immediate one; a node that is a standby again is left alone.
func TestHandsFenceFallsBackToImmediate(t *testing.T) {
	m, _, f := handsRig(t)
	f.Nodes["dn1s"].InRecovery = false
	f.Fail["stop dn1s fast"] = fleettest.ErrDown
	if err := (doctorHands{m}).Fence(context.Background(), "dn1s", "x"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"stop dn1s fast", "stop dn1s immediate"}, f.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	f.Steps = nil
	if err := (doctorHands{m}).Fence(context.Background(), "dn1", "x"); err != nil || len(f.Steps) != 0 {
		t.Errorf("fencing a master: %v, steps %q", err, f.Steps)
	}
}

// TestHandsRestartSlaveAsStandby: the doctor never starts a slave without
// making it a standby of its master first.
func TestHandsRestartSlaveAsStandby(t *testing.T) {
	m, _, f := handsRig(t)
	f.Nodes["dn1s"].Running = false
	f.Nodes["dn1"].Running = false
	for _, n := range []string{"dn1s", "dn1"} {
		if err := (doctorHands{m}).Restart(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"standby signal dn1s of dn1", "start dn1s", "start dn1"}, f.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

// TestHandsSyncWritesTheListAgain: a master whose live sync list is not the
// catalog's is seen so, written again (an ALTER SYSTEM override removed),
// and journaled; nothing to do, nothing done.
func TestHandsSyncWritesTheListAgain(t *testing.T) {
	m, _, f := handsRig(t)
	f.Nodes["dn1"].Conf["synchronous_standby_names"] = "" // ALTER SYSTEM SET … = ''
	o := observed(t, m)["dn1"]
	if !o.SyncRead || !o.SyncDiffers || o.StepUp != "" {
		t.Fatalf("dn1 with an empty list: %+v", o)
	}
	f.Nodes["dn1s"].LSN = 200
	if err := (doctorHands{m}).Sync(context.Background(), "dn1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"auto.conf dn1 -synchronous_standby_names", `syncnames dn1 FIRST 1 ("dn1s")`}
	if diff := cmp.Diff(want, f.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	r := mustRun(t, m, "SELECT command, status, detail FROM journal WHERE command LIKE 'DOCTOR%'")
	if len(r.rows) != 1 || r.rows[0][0] != "DOCTOR SYNC dn1" || r.rows[0][1] != "done" ||
		r.rows[0][2] != `synchronous_standby_names was '', now 'FIRST 1 ("dn1s")'` {
		t.Errorf("journal: %q", r.rows)
	}
	// The list right: nothing done, nothing journaled.
	f.Nodes["dn1"].Conf["synchronous_standby_names"] = `FIRST 1 ("dn1s")`
	f.Steps = nil
	if o := observed(t, m)["dn1"]; !o.SyncRead || o.SyncDiffers {
		t.Errorf("dn1 with the right list: %+v", o)
	}
	if err := (doctorHands{m}).Sync(context.Background(), "dn1"); err != nil || len(f.Steps) != 0 {
		t.Errorf("nothing to do: %v, steps %q", err, f.Steps)
	}
}

// TestHandsSyncStepsUp: dn1's sync slave isolated, its async slave dn1s2
// streaming: dn1s2 is listed, waited for, then sync in the catalog; one
// that does not catch up is not, and the list goes back.
func TestHandsSyncStepsUp(t *testing.T) {
	m, cat, f := handsRig(t)
	mustRun(t, m, `ADD DATANODE SLAVE dn1s2 FOR dn1 (HOST=h1, PORT=15435, PATH='/data/dn1s2', SYNC_STATE='async')`)
	setNodes(t, cat, func(n *cluster.Node) {
		switch n.Name {
		case "dn1s":
			n.InCluster, n.Initialized, n.SyncState, n.CureStatus = false, false, cluster.Async, doctor.Isolated
		case "dn1s2":
			n.InCluster, n.Initialized, n.AllowCure = true, true, true
		}
	})
	f.Nodes["dn1s2"] = &fleettest.Node{Running: true, InRecovery: true, LSN: 200, Parent: "dn1", Conf: map[string]string{}}
	f.Nodes["dn1s"].Running = false
	f.Nodes["dn1"].Conf["synchronous_standby_names"] = ""
	o := observed(t, m)["dn1"]
	if !o.SyncRead || o.SyncDiffers || o.StepUp != "dn1s2" {
		t.Fatalf("dn1: %+v", o)
	}
	// Behind: not stepped up, the list written back.
	f.Nodes["dn1s2"].LSN = 50
	if err := (doctorHands{m}).Sync(context.Background(), "dn1"); err == nil {
		t.Fatal("a slave that did not catch up was stepped up")
	}
	if l := mustRun(t, m, "LIST NODE (name, sync_state) dn1s2"); fmt.Sprint(l.rows) != "[[dn1s2 async]]" {
		t.Errorf("dn1s2 after a failed step-up: %v", l.rows)
	}
	want := []string{"auto.conf dn1 -synchronous_standby_names", `syncnames dn1 FIRST 1 ("dn1s2")`,
		"auto.conf dn1 -synchronous_standby_names", "syncnames dn1 "}
	if diff := cmp.Diff(want, f.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	f.Nodes["dn1s2"].LSN = 200
	f.Steps = nil
	if err := (doctorHands{m}).Sync(context.Background(), "dn1"); err != nil {
		t.Fatal(err)
	}
	if l := mustRun(t, m, "LIST NODE (name, sync_state) dn1s2"); fmt.Sprint(l.rows) != "[[dn1s2 sync]]" {
		t.Errorf("dn1s2 after the step-up: %v", l.rows)
	}
	r := mustRun(t, m, "SELECT status, detail FROM journal WHERE command = 'DOCTOR SYNC dn1' AND step = 'end' ORDER BY id")
	if len(r.rows) != 2 || r.rows[0][0] != "failed" || r.rows[1][0] != "done" {
		t.Errorf("journal: %q", r.rows)
	}
}

// TestHandsObserveStopped: a node is Stopped only when its agent answers
// and says no postmaster runs; with the agent gone it is just down.
func TestHandsObserveStopped(t *testing.T) {
	m, _, f := handsRig(t)
	f.Nodes["dn1"].Running = false
	if o := observed(t, m)["dn1"]; o.Answering || !o.AgentUp || !o.Stopped {
		t.Errorf("dn1 not running, its agent up: %+v", o)
	}
	f.AgentDown["h1"] = true
	if o := observed(t, m)["dn1"]; o.Answering || o.AgentUp || o.Stopped {
		t.Errorf("dn1 not running, its agent down: %+v", o)
	}
	if o := observed(t, m)["dn1s"]; !o.Answering || o.Stopped {
		t.Errorf("dn1s running: %+v", o)
	}
}

// TestHandsFenceFailingIsOneEntry: a fence that fails again and again
// (its agent unreachable) updates its journal entry, counting the tries,
// with a HINT of what a DBA can do, instead of adding one each round; a
// fence that works afterwards is an entry of its own.
func TestHandsFenceFailingIsOneEntry(t *testing.T) {
	m, _, f := handsRig(t)
	f.Nodes["dn1s"].InRecovery = false
	f.Fail["stop dn1s fast"] = fleettest.ErrDown
	f.Fail["stop dn1s immediate"] = fleettest.ErrDown
	for range 3 {
		if err := (doctorHands{m}).Fence(context.Background(), "dn1s", "two masters"); err == nil {
			t.Fatal("the fence worked")
		}
	}
	r := mustRun(t, m, "SELECT command, status, detail FROM journal WHERE command LIKE 'DOCTOR%'")
	if len(r.rows) != 1 || r.rows[0][1] != "failed" || !strings.HasPrefix(r.rows[0][2], "failed 3 times; the last: two masters; cannot stop it") ||
		!strings.Contains(r.rows[0][2], "HINT: ") || !strings.Contains(r.rows[0][2], "SET DOCTOR NODE dn1s OFF") {
		t.Errorf("journal: %q", r.rows)
	}
	delete(f.Fail, "stop dn1s fast")
	if err := (doctorHands{m}).Fence(context.Background(), "dn1s", "two masters"); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, m, "SELECT status FROM journal WHERE command LIKE 'DOCTOR%' ORDER BY id")
	if fmt.Sprint(r.rows) != "[[failed] [done]]" {
		t.Errorf("journal after a fence that worked: %q", r.rows)
	}
}
