package cluster

import (
	"sort"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// ZoneMove is one master of a ZONE FAILOVER or ZONE SWITCHOVER: the
// master outside the zone and its direct slave in the zone that replaces
// it.
type ZoneMove struct {
	Master, Slave Node
}

// ZoneMoves decides ZONE FAILOVER z / ZONE SWITCHOVER z (reference §4.16):
// z must be the session's current zone (mgr_zone), and every master in the
// cluster outside z — the gtmcoord master, the coordinator masters, the
// datanode masters — must have a direct slave in z, initialised and in the
// cluster, to take its place. The moves come in that order: gtmcoord,
// coordinators, datanodes (the datanodes' switches re-point coordinators
// that are already in z). None when every master is in z already.
func ZoneMoves(s *State, zone, current string) ([]ZoneMove, error) {
	if zone != current {
		return nil, fieldErr("zone", pgerror.InvalidParameterValue, `the given zone name "%s" is not same with guc parameter mgr_zone "%s"`, zone, current)
	}
	known := false
	for _, n := range s.Nodes {
		known = known || n.Zone == zone
	}
	if !known {
		return nil, fieldErr("zone", pgerror.UndefinedObject, `zone "%s" has no node in the node table`, zone)
	}
	var moves []ZoneMove
	for _, m := range s.Nodes {
		if !m.Type.IsMaster() || !m.InCluster || m.Zone == zone {
			continue
		}
		var to *Node
		for _, c := range s.Children(m.Name) {
			if c.Zone == zone && c.Initialized && c.InCluster {
				to = &c
				break
			}
		}
		if to == nil {
			return nil, pgerror.New(pgerror.ObjectNotInPrereqState, `because no %s slave of %s in zone(%s), please add slave node first.`, m.Type.Family(), m.Name, zone).
				WithHint("ADD %s SLAVE … FOR %s (…, ZONE = '%s') and ZONE INIT %s.", upperFamily(m.Type), m.Name, zone, zone)
		}
		moves = append(moves, ZoneMove{Master: m, Slave: *to})
	}
	if len(moves) == 0 {
		// Nothing to do is said, not answered with an empty success: the
		// DBA may have meant the other zone.
		return nil, fieldErr("zone", pgerror.ObjectNotInPrereqState, `no master in the cluster is outside zone "%s": nothing to switch`, zone)
	}
	sort.SliceStable(moves, func(i, j int) bool { return moves[i].Master.Type.order() < moves[j].Master.Type.order() })
	return moves, nil
}

// upperFamily is t's family as statements spell it.
func upperFamily(t NodeType) string {
	switch t.Family() {
	case Gtmcoord:
		return "GTMCOORD"
	case Coordinator:
		return "COORDINATOR"
	}
	return "DATANODE"
}
