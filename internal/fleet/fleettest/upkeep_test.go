package fleettest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/google/go-cmp/cmp"
)

// TestUpkeep: the fake's side of the DBA commands — status, directories,
// pg_hba.conf, the SQL reads — and the steps it records.
func TestUpkeep(t *testing.T) {
	s, f := pair()
	ctx := context.Background()
	m, sl, nw := member(t, s, "m"), member(t, s, "s"), member(t, s, "new")
	if st, err := f.Status(ctx, m); err != nil || st != (fleet.NodeStatus{Initialized: true, Running: true, Ready: "accepting"}) {
		t.Errorf("Status(m) = %+v, %v", st, err)
	}
	if st, err := f.Status(ctx, nw); err != nil || st.Initialized {
		t.Errorf("Status(new) = %+v, %v", st, err)
	}
	if d, err := f.CheckDir(ctx, nw); err != nil || d.Exists {
		t.Errorf("CheckDir(new) = %+v, %v", d, err)
	}
	if d, err := f.CheckDir(ctx, m); err != nil || !d.Exists || d.Empty {
		t.Errorf("CheckDir(m) = %+v, %v", d, err)
	}
	if err := f.CleanDir(ctx, sl); err == nil {
		t.Error("CleanDir of a running node succeeded")
	}
	if kept, err := f.RemoveSocketDir(ctx, sl, ""); err != nil || kept == "" {
		t.Errorf("RemoveSocketDir of a running node = %q, %v", kept, err)
	}
	if _, err := f.Stop(ctx, sl, fleet.Fast); err != nil {
		t.Fatal(err)
	}
	if err := f.CleanDir(ctx, sl); err != nil {
		t.Errorf("CleanDir: %v", err)
	}
	if d, _ := f.CheckDir(ctx, sl); d.Exists {
		t.Error("a cleaned node's directory exists")
	}
	line := cluster.HBALine{Type: "host", Database: "all", User: "all", Address: "10.0.0.0/8", Method: "scram-sha-256"}
	if err := f.EditHBA(ctx, m, fleet.HBAEdit{AddTail: []cluster.HBALine{line, line}}); err != nil {
		t.Fatal(err)
	}
	if lines, _ := f.ReadHBA(ctx, m); !cmp.Equal(lines, []string{"host all all 10.0.0.0/8 scram-sha-256"}) {
		t.Errorf("ReadHBA = %q", lines)
	}
	if err := f.EditHBA(ctx, m, fleet.HBAEdit{Remove: []cluster.HBALine{line}}); err != nil {
		t.Fatal(err)
	}
	if lines, _ := f.ReadHBA(ctx, m); len(lines) != 0 {
		t.Errorf("ReadHBA after the removal = %q", lines)
	}
	want := []string{"clean s", "rmsocket s", "stop s fast", "clean s",
		"hba m +host all all 10.0.0.0/8 scram-sha-256, +host all all 10.0.0.0/8 scram-sha-256",
		"hba m -host all all 10.0.0.0/8 scram-sha-256"}
	if diff := cmp.Diff(want, f.StepList()); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	f.AgentDown["h1"] = true
	if _, err := f.Status(ctx, m); !fleet.Unreachable(err) {
		t.Errorf("Status with the agent down: %v", err)
	}
}

func TestUpkeepReads(t *testing.T) {
	s, f := pair()
	ctx := context.Background()
	m, sl := member(t, s, "m"), member(t, s, "s")
	if st, err := f.SQLStatus(ctx, sl, time.Second); err != nil || !st.Recovery {
		t.Errorf("SQLStatus(s) = %+v, %v", st, err)
	}
	if reps, err := f.Replication(ctx, m); err != nil || len(reps) != 1 || reps[0].Application != "s" {
		t.Errorf("Replication(m) = %+v, %v", reps, err)
	}
	if err := f.WriteRecovery(ctx, sl, m); err != nil {
		t.Fatal(err)
	}
	f.Nodes["s"].Conf["port"] = "5433"
	if got, err := f.Settings(ctx, sl, []string{"port", "x"}); err != nil || !cmp.Equal(got, map[string]string{"port": "5433", "x": ""}) {
		t.Errorf("Settings = %v, %v", got, err)
	}
	if got, err := f.ShowSettings(ctx, sl, "POR"); err != nil || len(got) != 1 || got[0].Setting != "5433" {
		t.Errorf("ShowSettings = %+v, %v", got, err)
	}
	if g, err := f.GUCs(ctx, m); err != nil || g != nil {
		t.Errorf("GUCs = %v, %v", g, err)
	}
	if _, err := f.Stop(ctx, sl, fleet.Fast); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SQLStatus(ctx, sl, time.Second); !errors.Is(err, ErrDown) {
		t.Errorf("SQLStatus of a stopped node: %v", err)
	}
}
