package mgr

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/dataplane"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

// dataPlaneRig is a manager over dn1, dn2 (h1) and cn1, cn2 (h2),
// initialised, with the in-memory fleet.
func dataPlaneRig(t *testing.T) (*Manager, *fleettest.Fleet) {
	t.Helper()
	m, cat := newManager(t)
	mustRun(t, m, `ADD HOST h1 (address='127.0.0.2', user=adb); ADD HOST h2 (address='127.0.0.3', user=adb);
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE MASTER dn2 (HOST=h1, PORT=15433, PATH='/data/dn2');
		ADD COORDINATOR MASTER cn1 (HOST=h2, PORT=15434, PATH='/data/cn1');
		ADD COORDINATOR MASTER cn2 (HOST=h2, PORT=15435, PATH='/data/cn2')`)
	markInitialized(t, cat)
	s, err := m.state(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.New(s)
	m.fleet = f
	return m, f
}

// crossedWaits: cn1:10 and cn2:20 each updated a row on one datanode and
// wait for the other's on the other datanode; cn2:20 is younger.
func crossedWaits() map[string]dataplane.NodeWaits {
	return map[string]dataplane.NodeWaits{
		"dn1": {DeadlockTimeout: time.Second, Sessions: []dataplane.Session{
			{PID: 101, App: "adb:cn1:10", XactAge: 9 * time.Second},
			{PID: 102, App: "adb:cn2:20", XactAge: 5 * time.Second, Waiting: 3 * time.Second, BlockedBy: []int{101}},
		}},
		"dn2": {DeadlockTimeout: time.Second, Sessions: []dataplane.Session{
			{PID: 201, App: "adb:cn1:10", XactAge: 8 * time.Second, Waiting: 2 * time.Second, BlockedBy: []int{202}},
			{PID: 202, App: "adb:cn2:20", XactAge: 5 * time.Second},
		}},
	}
}

func TestDeadlockRound(t *testing.T) {
	ctx := context.Background()
	m, f := dataPlaneRig(t)
	w := &deadlockWatch{cancelled: map[dataplane.Txn]time.Time{}}
	now := time.Now()

	m.deadlockRound(ctx, w, now)
	if steps := f.StepList(); len(steps) != 0 {
		t.Fatalf("no waits: steps %q", steps)
	}

	f.NodeWaits = crossedWaits()
	m.deadlockRound(ctx, w, now)
	if steps := f.StepList(); !slices.Equal(steps, []string{"cancel deadlock cn2:20 on cn2"}) {
		t.Fatalf("crossed waits: steps %q, want the younger cancelled on its coordinator", steps)
	}
	res, err := m.cat.Query(ctx, `SELECT command, step, detail FROM journal WHERE command = 'BREAK DEADLOCK'`)
	if err != nil || len(res.Rows) != 1 || *res.Rows[0][1] != "cancelled cn2:20 on cn2" {
		t.Fatalf("journal: %v %v", res, err)
	}

	// Still seen a second later (the abort on its way): not cancelled
	// twice; seen again after recancel: cancelled again.
	f.Reset()
	m.deadlockRound(ctx, w, now.Add(time.Second))
	if steps := f.StepList(); len(steps) != 0 {
		t.Fatalf("a second later: steps %q", steps)
	}
	m.deadlockRound(ctx, w, now.Add(recancel+2*time.Second))
	if steps := f.StepList(); !slices.Equal(steps, []string{"cancel deadlock cn2:20 on cn2"}) {
		t.Fatalf("after %s: steps %q", recancel, steps)
	}

	// A datanode that does not answer hides its half of the cycle.
	f.Reset()
	f.Nodes["dn2"].Running = false
	m.deadlockRound(ctx, w, now.Add(3*recancel))
	if steps := f.StepList(); len(steps) != 0 {
		t.Fatalf("dn2 down: steps %q", steps)
	}
}

func TestResolveRound(t *testing.T) {
	ctx := context.Background()
	m, f := dataPlaneRig(t)
	f.Resolver = map[string]bool{"cn2": true}
	m.resolveRound(ctx)
	if steps := f.StepList(); !slices.Equal(steps, []string{"resolve prepared cn2"}) {
		t.Fatalf("steps %q, want only cn2 (cn1 has no adb.resolve_prepared)", steps)
	}
}
