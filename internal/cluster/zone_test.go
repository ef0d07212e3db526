package cluster

import (
	"fmt"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func TestZoneMoves(t *testing.T) {
	zoned := func(n Node, zone string) Node { n.Zone = zone; return n }
	two := func() *State {
		return state(inCluster(
			dn("dn1", "h1", 1), dns("dn1s", "dn1", Sync, "h2", 1), zoned(dns("dn1z", "dn1", Async, "h3", 1), "z2"),
			Node{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 2, Path: "/data/gc"},
			zoned(Node{Name: "gcz", Host: "h3", Type: GtmcoordSlave, Master: "gc", SyncState: Async, Port: 2, Path: "/data/gcz"}, "z2"),
			Node{Name: "cn1", Host: "h2", Type: CoordinatorMaster, Port: 3, Path: "/data/cn1"},
			zoned(Node{Name: "cn1z", Host: "h3", Type: CoordinatorSlave, Master: "cn1", SyncState: Async, Port: 3, Path: "/data/cn1z"}, "z2"),
		)...)
	}
	moves, err := ZoneMoves(two(), "z2", "z2")
	refusal(t, err, "", "", "")
	var got []string
	for _, m := range moves {
		got = append(got, m.Master.Name+">"+m.Slave.Name)
	}
	if fmt.Sprint(got) != "[gc>gcz cn1>cn1z dn1>dn1z]" {
		t.Errorf("moves = %v", got)
	}
	_, err = ZoneMoves(two(), "z2", DefaultZone)
	refusal(t, err, pgerror.InvalidParameterValue, "is not same with guc parameter mgr_zone", "zone")
	_, err = ZoneMoves(two(), "z9", "z9")
	refusal(t, err, pgerror.UndefinedObject, `zone "z9" has no node`, "zone")
	moves, err = ZoneMoves(two(), DefaultZone, DefaultZone)
	refusal(t, err, pgerror.ObjectNotInPrereqState, `no master in the cluster is outside zone "local"`, "zone")
	if len(moves) != 0 {
		t.Errorf("moves into the masters' own zone: %v", moves)
	}
	s := two()
	for i := range s.Nodes {
		if s.Nodes[i].Name == "cn1z" {
			s.Nodes[i].InCluster = false
		}
	}
	_, err = ZoneMoves(s, "z2", "z2")
	refusal(t, err, pgerror.ObjectNotInPrereqState, "because no coordinator slave of cn1 in zone(z2)", "")
}
