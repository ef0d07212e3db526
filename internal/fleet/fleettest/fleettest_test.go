package fleettest

import (
	"context"
	"errors"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// pair is master m on h1 with its slave s on h2, and c, a coordinator.
func pair() (*cluster.State, *Fleet) {
	s := &cluster.State{
		Hosts: []cluster.Host{{Name: "h1"}, {Name: "h2"}},
		Nodes: []cluster.Node{
			{Name: "m", Host: "h1", Type: cluster.DatanodeMaster, Initialized: true},
			{Name: "s", Host: "h2", Type: cluster.DatanodeSlave, Master: "m", Initialized: true},
			{Name: "c", Host: "h1", Type: cluster.CoordinatorMaster, Initialized: true},
			{Name: "new", Host: "h2", Type: cluster.DatanodeSlave, Master: "m"},
		},
	}
	return s, New(s)
}

func member(t *testing.T, s *cluster.State, name string) fleet.Member {
	t.Helper()
	m, err := fleet.Of(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var errBoom = errors.New("boom")

func TestNew(t *testing.T) {
	_, f := pair()
	if n := f.Node("m"); !n.Running || n.InRecovery || n.LSN != 100 || n.Parent != "" {
		t.Errorf("master = %+v", n)
	}
	if n := f.Node("s"); !n.Running || !n.InRecovery || n.Parent != "m" {
		t.Errorf("slave = %+v", n)
	}
	if _, ok := f.Nodes["new"]; ok {
		t.Error("a node never initialised is in the fleet")
	}
}

// TestSwitchOfThePair drives a planned switch by hand: what the fake does
// to the nodes, and the steps it records (reads are not recorded).
func TestSwitchOfThePair(t *testing.T) {
	s, f := pair()
	ctx := context.Background()
	m, sl := member(t, s, "m"), member(t, s, "s")
	if already, err := f.Stop(ctx, m, fleet.Fast); err != nil || already {
		t.Fatalf("Stop = %v, %v", already, err)
	}
	cd, err := f.ControlData(ctx, m)
	if err != nil || cd.ClusterState() != "shut down" {
		t.Fatalf("ControlData = %v, %v", cd, err)
	}
	// The walsender handed the shutdown checkpoint to the standby.
	ckpt, _ := cd.Checkpoint()
	if err := f.WaitReplay(ctx, sl, ckpt, 0); err != nil {
		t.Errorf("WaitReplay: %v", err)
	}
	if err := f.Promote(ctx, sl); err != nil {
		t.Fatal(err)
	}
	if rec, err := f.InRecovery(ctx, sl); err != nil || rec {
		t.Errorf("after promote InRecovery = %v, %v", rec, err)
	}
	if err := f.MakeStandbyOf(ctx, m, sl); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	if p := f.Probe(ctx, m); !p.Reachable || !p.InRecovery {
		t.Errorf("old master after the switch: %+v", p)
	}
	if err := f.SetConf(ctx, sl, true, nil, []string{"primary_conninfo"}); err != nil {
		t.Fatal(err)
	}
	absent, err := f.SetSyncNames(ctx, sl, "FIRST 1 (m)", map[string]string{"m": "sync"}, true)
	if err != nil || len(absent) != 0 {
		t.Errorf("SetSyncNames = %v, %v", absent, err)
	}
	want := []string{"stop m fast", "promote s", "standby m of s", "start m", "auto.conf s -primary_conninfo", "syncnames s FIRST 1 (m)"}
	if diff := cmp.Diff(want, f.StepList()); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	f.Reset()
	if len(f.StepList()) != 0 {
		t.Error("Reset kept the steps")
	}
}

func TestFailuresAndHooks(t *testing.T) {
	s, f := pair()
	ctx := context.Background()
	m, sl, c := member(t, s, "m"), member(t, s, "s"), member(t, s, "c")
	f.Fail["promote s"] = errBoom
	if err := f.Promote(ctx, sl); !errors.Is(err, errBoom) {
		t.Errorf("Promote = %v", err)
	}
	// A step failed by Fail is recorded all the same.
	if got := f.StepList(); len(got) != 1 || got[0] != "promote s" {
		t.Errorf("steps = %q", got)
	}
	// Before may change the nodes: the slave dies as the master stops.
	f.Before = func(f *Fleet, step string) error {
		if step == "stop m immediate" {
			f.Nodes["s"].Running = false
		}
		return nil
	}
	if _, err := f.Stop(ctx, m, fleet.Immediate); err != nil {
		t.Fatal(err)
	}
	if cd, _ := f.ControlData(ctx, m); cd.CleanlyShutDown() {
		t.Error("an immediate stop left a clean shutdown")
	}
	if p := f.Probe(ctx, sl); p.Reachable {
		t.Error("a dead slave answers")
	}
	if _, err := f.InRecovery(ctx, sl); !errors.Is(err, ErrDown) {
		t.Errorf("InRecovery of a dead node = %v", err)
	}
	if err := f.Reload(ctx, sl); !errors.Is(err, ErrDown) {
		t.Errorf("Reload of a dead node = %v", err)
	}
	if err := f.Checkpoint(ctx, sl); !errors.Is(err, ErrDown) {
		t.Errorf("Checkpoint of a dead node = %v", err)
	}
	if err := f.WaitReplay(ctx, sl, 0, 0); err == nil {
		t.Error("a dead node replayed")
	}
	// The slot of MakeStandbyOf needs the parent; WriteStandby and
	// WriteRecovery do not.
	if err := f.MakeStandbyOf(ctx, m, sl); err == nil {
		t.Error("MakeStandbyOf of a dead parent succeeded")
	}
	if err := f.WriteStandby(ctx, m, sl); err != nil || f.Node("m").Parent != "s" {
		t.Errorf("WriteStandby = %v, parent %q", err, f.Node("m").Parent)
	}
	if err := f.WriteRecovery(ctx, c, m); err != nil || f.Node("c").Parent != "m" {
		t.Errorf("WriteRecovery = %v", err)
	}
	// A dead agent: 08006 with its hint; its node still listens.
	f.AgentDown["h1"] = true
	for name, err := range map[string]error{
		"AgentUp": f.AgentUp(ctx, m.Host),
		"Running": func() error { _, err := f.Running(ctx, c); return err }(),
		"Start":   func() error { _, err := f.Start(ctx, c); return err }(),
		"Control": func() error { _, err := f.ControlData(ctx, c); return err }(),
	} {
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ConnectionFailure || pe.Hint == "" {
			t.Errorf("%s with the agent down: %v", name, err)
		}
	}
	if !f.Listening(c) {
		t.Error("a running node with its agent down does not listen")
	}
}

func TestRewind(t *testing.T) {
	s, f := pair()
	ctx := context.Background()
	m, sl := member(t, s, "m"), member(t, s, "s")
	if _, err := f.Rewind(ctx, m, sl); err == nil {
		t.Error("rewound a running node")
	}
	f.Stop(ctx, m, fleet.Immediate)
	if _, err := f.Rewind(ctx, m, sl); err == nil {
		t.Error("rewound a node that crashed")
	}
	f.Start(ctx, m)
	f.Stop(ctx, m, fleet.Fast)
	f.Nodes["s"].LSN = 300
	out, err := f.Rewind(ctx, m, sl)
	if err != nil || out == "" {
		t.Fatalf("Rewind = %q, %v", out, err)
	}
	if n := f.Node("m"); n.LSN != 300 || !n.InRecovery || n.Parent != "s" {
		t.Errorf("after the rewind: %+v", n)
	}
}

func TestSQLAndCoordinators(t *testing.T) {
	s, f := pair()
	ctx := context.Background()
	m, c := member(t, s, "m"), member(t, s, "c")
	f.Nodes["s"].Running = false
	absent, err := f.SetSyncNames(ctx, m, "FIRST 1 (s)", map[string]string{"s": "sync"}, false)
	if err != nil || len(absent) != 1 || absent[0] != "s" {
		t.Errorf("SetSyncNames = %v, %v", absent, err)
	}
	if _, err := f.SetSyncNames(ctx, m, "FIRST 1 (s)", map[string]string{"s": "sync"}, true); err == nil {
		t.Error("waited for a slave that does not stream")
	}
	for _, err := range []error{
		f.EnsureSlot(ctx, m, "s"), f.DropInactiveSlots(ctx, m), f.Configure(ctx, m, fleet.Conf{}),
		f.RenameServer(ctx, c, "m", "s"), f.ConfigureCoordinator(ctx, s, c, nil),
	} {
		if err != nil {
			t.Error(err)
		}
	}
	want := []string{`syncnames m FIRST 1 (s)`, `syncnames m FIRST 1 (s)`, "slot s on m", "dropslots m", "configure m", "rename m to s on c", "coordinator c"}
	if diff := cmp.Diff(want, f.StepList()); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if err := f.SetConf(ctx, m, false, map[string]string{"port": "1"}, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if got := f.StepList(); got[len(got)-1] != "conf m +port -x" {
		t.Errorf("SetConf step = %q", got[len(got)-1])
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.WaitReplay(cctx, m, 0, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReplay after cancel = %v", err)
	}
}
