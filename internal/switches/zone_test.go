package switches

import (
	"context"
	"fmt"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

// zoned is dn1 with sync slave dn1s in zone local and async slave dn1z
// in zone z2.
func zoned() *cluster.State {
	s := &cluster.State{Hosts: fleettest.Hosts("h1", "h2", "h3")}
	fleettest.AddNode(s, "dn1", "h1", cluster.DatanodeMaster, "", "", true)
	fleettest.AddNode(s, "dn1s", "h2", cluster.DatanodeSlave, "dn1", cluster.Sync, true)
	fleettest.AddNode(s, "dn1z", "h3", cluster.DatanodeSlave, "dn1", cluster.Async, true)
	s.Nodes[2].Zone = "z2"
	return s
}

func TestZoneSwitchover(t *testing.T) {
	r := newRig(zoned())
	r.f.Nodes["dn1z"].LSN = 200 // it received the old master's shutdown checkpoint
	rows, err := r.x.Zone(context.Background(), Zone{Zone: "z2", Current: "z2", Switchover: true}, r.p)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rows) != "[{dn1z true switchover datanode success}]" {
		t.Errorf("rows = %v\n%v", rows, r.p.Lines)
	}
	r.nodes(t, map[string]string{
		"dn1z": "datanode master   true true true",
		"dn1":  "datanode slave dn1z async true true true",
	})
	if got := r.cat.Rows[0]; got != "ZONE SWITCHOVER z2 running start" {
		t.Errorf("first journal row = %q", got)
	}
	if got := r.cat.Rows[len(r.cat.Rows)-1]; got != "ZONE SWITCHOVER z2 done end" {
		t.Errorf("last journal row = %q", got)
	}
}

func TestZoneFailoverStopsAtARefusal(t *testing.T) {
	r := newRig(zoned())
	r.f.Nodes["dn1s"].Running = false
	rows, err := r.x.Zone(context.Background(), Zone{Zone: "z2", Current: "z2"}, r.p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].OK || rows[0].Node != "dn1z" {
		t.Fatalf("rows = %v", rows)
	}
	r.nodes(t, map[string]string{"dn1": "datanode master   true true true"})
	// With FORCE the sync slave's absence is only warned about.
	rows, err = r.x.Zone(context.Background(), Zone{Zone: "z2", Current: "z2", Force: true}, r.p)
	if err != nil || len(rows) != 1 || !rows[0].OK {
		t.Fatalf("rows = %v, err = %v", rows, err)
	}
	r.nodes(t, map[string]string{"dn1z": "datanode master   true true true", "dn1": "datanode slave dn1z async false false false"})
}

func TestZoneRefusals(t *testing.T) {
	r := newRig(zoned())
	if _, err := r.x.Zone(context.Background(), Zone{Zone: "z2", Current: cluster.DefaultZone}, r.p); cluster.ErrorField(err) != "zone" {
		t.Errorf("another zone than mgr_zone: %v", err)
	}
	rows, err := r.x.Zone(context.Background(), Zone{Zone: cluster.DefaultZone, Current: cluster.DefaultZone}, r.p)
	if err == nil || len(rows) != 0 {
		t.Errorf("nothing to switch: rows = %v, err = %v", rows, err)
	}
	r.steps(t)
}
