package switches

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Reparent re-points a running slave at another node of its replication
// tree (ALTER {DATANODE|GTMCOORD} SLAVE n (PARENT = m), decided by
// cluster.Reparent): a slot on the new parent, the recovery settings
// reloaded (primary_conninfo and primary_slot_name are reloadable since
// PostgreSQL 13: the WAL receiver reconnects, no restart), then the node
// table, the sync names of both parents (the new one must see n stream),
// the slot on the old parent dropped and the coordinators told (a
// READONLY one reads from a sync slave). A failure before the node table
// changed puts the old recovery settings back.
func (x *Switches) Reparent(ctx context.Context, r cluster.ReparentRequest, p Progress) (Result, error) {
	sn, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	s := sn.State
	if _, err := cluster.Reparent(s, r); err != nil {
		return Result{}, err
	}
	n, _ := s.Node(r.Name)
	nm, err := fleet.At(s, n)
	if err != nil {
		return Result{}, err
	}
	pm, err := fleet.Of(s, r.Parent)
	if err != nil {
		return Result{}, err
	}
	om, err := fleet.Of(s, n.Master)
	if err != nil {
		return Result{}, err
	}
	if rec, err := x.Fleet.InRecovery(ctx, nm); err != nil || !rec {
		return Result{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s is not running as a standby (%v)", cluster.Describe(n), errOr(err, "it runs as a primary")).
			WithHint("Start it (START %s SLAVE %s), or REWIND it, first.", strings.ToUpper(string(n.Type.Family())), n.Name)
	}
	if _, err := x.Fleet.InRecovery(ctx, pm); err != nil {
		return Result{}, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "the new parent %s is not running", cluster.Describe(pm.Node))
	}
	j := &Journal{Command: "ALTER PARENT " + n.Name}
	x.note(ctx, j, "running", "start", "from "+om.Name()+" to "+pm.Name())
	err = x.Fleet.MakeStandbyOf(ctx, nm, pm)
	if err == nil {
		err = x.Fleet.Reload(ctx, nm)
	}
	if err == nil {
		err = x.Catalog.Commit(ctx, j, Step{"running", "catalog", pm.Name()}, func(sn Snapshot) (cluster.Plan, error) {
			return cluster.Reparent(sn.State, r)
		})
	}
	if err != nil {
		// The node table still names the old parent: so must the node.
		ctx := context.WithoutCancel(ctx)
		if rerr := x.Fleet.WriteRecovery(ctx, nm, om); rerr == nil {
			x.Fleet.Reload(ctx, nm)
		} else {
			p.Notice("WARNING", fmt.Sprintf("%s could not be pointed back at %s: %s", n.Name, om.Name(), rerr))
		}
		x.note(ctx, j, "failed", "re-point", err.Error())
		return Result{}, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "%s could not follow %s", cluster.Describe(n), pm.Name())
	}
	// The node follows its new parent: the rest is finished and reported.
	ctx = context.WithoutCancel(ctx)
	after, err := x.Catalog.Read(ctx)
	if err != nil {
		return Result{}, err
	}
	a := after.State
	newParent, _ := a.Node(pm.Name())
	if err := SyncNames(ctx, x.Fleet, a, newParent, inCluster, true, p); err != nil {
		p.Notice("WARNING", err.Error())
	}
	oldParent, _ := a.Node(om.Name())
	if err := SyncNames(ctx, x.Fleet, a, oldParent, inCluster, false, p); err != nil {
		p.Notice("WARNING", err.Error())
	}
	x.dropOldSlot(ctx, s, n, p)
	RefreshCoordinators(ctx, x.Fleet, a, "", "", p)
	moved, _ := a.Node(n.Name)
	p.Notice("NOTICE", fmt.Sprintf("%s now follows %s as %s", cluster.Describe(moved), cluster.Describe(newParent), cluster.ASlave(moved.SyncState)))
	x.note(ctx, j, "done", "end", pm.Name())
	return Result{Node: n.Name, Description: "alter parent success"}, nil
}

// dropOldSlot drops n's slot on its old parent (n as s lists it). The old
// walsender may take a moment to notice its standby left, and an active
// slot cannot be dropped: a few tries, then a NOTICE how to drop it.
func (x *Switches) dropOldSlot(ctx context.Context, s *cluster.State, n cluster.Node, p Progress) {
	for try := 0; try < 5; try++ {
		if try > 0 {
			t := time.NewTimer(time.Duration(try) * 200 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if try == 4 {
			fleet.DropSlaveSlot(ctx, x.Fleet, s, n, p)
			return
		}
		old, err := fleet.Of(s, n.Master)
		if err != nil {
			return
		}
		if _, err := x.Fleet.DropSlot(ctx, old, n.Name); err == nil {
			return
		}
	}
}

// errOr is err's text, or text when err is nil.
func errOr(err error, text string) string {
	if err != nil {
		return err.Error()
	}
	return text
}
