package fleet_test

import (
	"context"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

func TestStandalone(t *testing.T) {
	s := &cluster.State{Hosts: fleettest.Hosts("h1")}
	fleettest.AddNode(s, "dn1", "h1", cluster.DatanodeMaster, "", "", true)
	f := fleettest.New(s)
	f.Nodes["dn1"].Conf["primary_conninfo"], f.Nodes["dn1"].Conf["primary_slot_name"] = "host=x", "dn1"
	m, _ := fleet.Of(s, "dn1")
	if err := fleet.Standalone(context.Background(), f, m); err != nil {
		t.Fatal(err)
	}
	fleettest.Diff(t, "steps", []string{"auto.conf dn1 -primary_conninfo -primary_slot_name"}, f.StepList())
	if c := f.Node("dn1").Conf; len(c) != 0 {
		t.Errorf("auto.conf left %v", c)
	}
}

func TestDropSlaveSlot(t *testing.T) {
	s := &cluster.State{Hosts: fleettest.Hosts("h1", "h2")}
	fleettest.AddNode(s, "dn1", "h1", cluster.DatanodeMaster, "", "", true)
	fleettest.AddNode(s, "dn1s", "h2", cluster.DatanodeSlave, "dn1", cluster.Sync, true)
	fleettest.AddNode(s, "dn2", "h1", cluster.DatanodeMaster, "", "", false)
	fleettest.AddNode(s, "dn2s", "h2", cluster.DatanodeSlave, "dn2", cluster.Sync, false)
	slave := func(name string) cluster.Node { n, _ := s.Node(name); return n }
	tests := []struct {
		name   string
		slave  string
		down   bool
		steps  []string
		notice []string
	}{
		{"dropped on its master", "dn1s", false, []string{"dropslot dn1s on dn1"}, nil},
		{"a master that is down keeps it", "dn1s", true, []string{"dropslot dn1s on dn1"},
			[]string{`NOTICE: replication slot "dn1s" on datanode master "dn1" was not dropped (connection refused); drop it there once it runs: SELECT pg_drop_replication_slot('dn1s')`}},
		{"a master never initialised has none", "dn2s", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleettest.New(s)
			f.Nodes["dn1"].Running = !tt.down
			p := &fleettest.Notes{}
			fleet.DropSlaveSlot(context.Background(), f, s, slave(tt.slave), p)
			fleettest.Diff(t, "steps", tt.steps, f.StepList())
			fleettest.Diff(t, "notices", tt.notice, p.Lines)
		})
	}
}
