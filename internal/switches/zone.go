package switches

import (
	"context"
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// Zone is ZONE FAILOVER z [FORCE] or ZONE SWITCHOVER z [FORCE] [maxTrys]
// (reference §4.16): every master outside zone z hands over to its slave
// in z.
type Zone struct {
	Zone string
	// Current is the session's mgr_zone, which must be Zone.
	Current    string
	Switchover bool
	Force      bool
	MaxTrys    int
}

// ZoneRow is one master's switch: the node that took over (or was to),
// whether it did, and what happened.
type ZoneRow struct {
	Node        string
	OK          bool
	Description string
}

// Zone moves the masters (cluster.ZoneMoves: gtmcoord, coordinators,
// datanodes) one FAILOVER or SWITCHOVER each, with their own checks,
// journal entries and reverts. The first that fails stops the rest: its
// row says why, and the masters switched before it stay switched (each
// switch is complete on its own); a WARNING says so.
func (x *Switches) Zone(ctx context.Context, r Zone, p Progress) ([]ZoneRow, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return nil, err
	}
	moves, err := cluster.ZoneMoves(sn.State, r.Zone, r.Current)
	if err != nil {
		return nil, err
	}
	what := "FAILOVER"
	if r.Switchover {
		what = "SWITCHOVER"
	}
	if len(moves) == 0 {
		p.Notice("NOTICE", fmt.Sprintf("every master is in zone %s already: nothing to switch", r.Zone))
		return nil, nil
	}
	j := &Journal{Command: "ZONE " + what + " " + r.Zone}
	x.note(ctx, j, "running", "start", "")
	var rows []ZoneRow
	var done []string
	for i, mv := range moves {
		f := mv.Master.Type.Family()
		p.Notice("NOTICE", fmt.Sprintf("======== ZONE %s %s, step%d: %s %s %s to %s in %s ========", what, r.Zone, i+1,
			strings.ToLower(what), f, mv.Master.Name, mv.Slave.Name, r.Zone))
		var res Result
		if r.Switchover {
			res, err = x.Switchover(ctx, Switchover{Family: f, Slave: mv.Slave.Name, Force: r.Force, MaxTrys: r.MaxTrys}, p)
		} else {
			// The master is outside the current zone by definition: the
			// failover is asked in its zone, to its slave in this one.
			res, err = x.Failover(ctx, Failover{Family: f, Master: mv.Master.Name, To: mv.Slave.Name, Force: r.Force, Zone: mv.Master.Zone}, p)
		}
		if err != nil {
			rows = append(rows, ZoneRow{Node: mv.Slave.Name, Description: err.Error()})
			x.note(ctx, j, "failed", strings.ToLower(what)+" "+mv.Master.Name, err.Error())
			switched := "none"
			if len(done) > 0 {
				switched = strings.Join(done, ", ")
			}
			p.Notice("WARNING", fmt.Sprintf("ZONE %s %s stopped at %s; switched before it (and staying so): %s", what, r.Zone, mv.Master.Name, switched))
			return rows, nil
		}
		done = append(done, mv.Master.Name+" to "+res.Node)
		rows = append(rows, ZoneRow{Node: res.Node, OK: true, Description: res.Description})
	}
	x.note(ctx, j, "done", "end", strings.Join(done, ", "))
	p.Notice("NOTICE", fmt.Sprintf("ZONE %s %s has been successfully completed", what, r.Zone))
	return rows, nil
}
