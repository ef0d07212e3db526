package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/dataplane"
	"github.com/jackc/pgx/v5"
)

// DataPlane is the manager's watch over the coordinators' distributed
// transactions (internal/dataplane, mgr/dataplane.go): it reads the nodes'
// lock waits, cancels a deadlock's victim, and has the coordinators finish
// the transactions they left in doubt.
type DataPlane interface {
	// Waits reads m's sessions in a transaction or waiting for a lock
	// (dataplane.WaitsQuery). coordinator tells how its own sessions
	// count.
	Waits(ctx context.Context, m Member, coordinator bool) (dataplane.NodeWaits, error)
	// CancelDeadlock cancels backend pid of coordinator c as d's victim
	// (adb.cancel_deadlock); false when it no longer runs that
	// transaction.
	CancelDeadlock(ctx context.Context, c Member, d dataplane.Deadlock) (bool, error)
	// ResolvePrepared runs adb.resolve_prepared() on coordinator c when
	// c has it (has false otherwise); done is its result as text.
	ResolvePrepared(ctx context.Context, c Member) (done string, has bool, err error)
}

// dataPlaneTimeout bounds one read or call: the loop runs every second.
const dataPlaneTimeout = 3 * time.Second

// Waits implements Fleet.
func (a *Agents) Waits(ctx context.Context, m Member, coordinator bool) (dataplane.NodeWaits, error) {
	nw := dataplane.NodeWaits{Node: m.Name(), Coordinator: coordinator}
	err := a.execWithin(ctx, m, dataPlaneTimeout, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, dataplane.WaitsQuery)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s dataplane.Session
			var xact, wait, dtms float64
			var blockers []int32
			if err := rows.Scan(&s.PID, &s.App, &xact, &wait, &s.Lock, &blockers, &dtms); err != nil {
				return err
			}
			s.XactAge, s.Waiting = seconds(xact), seconds(wait)
			for _, b := range blockers {
				s.BlockedBy = append(s.BlockedBy, int(b))
			}
			nw.DeadlockTimeout = time.Duration(dtms * float64(time.Millisecond))
			nw.Sessions = append(nw.Sessions, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nw, fmt.Errorf("read the waits of %s: %w", m.Name(), err)
	}
	return nw, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// CancelDeadlock implements Fleet.
func (a *Agents) CancelDeadlock(ctx context.Context, c Member, d dataplane.Deadlock) (bool, error) {
	var ok bool
	err := a.execWithin(ctx, c, dataPlaneTimeout, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, dataplane.CancelSQL, d.Victim.PID, d.Waited.Seconds(), d.Detail()).Scan(&ok)
	})
	return ok, err
}

// ResolvePrepared implements Fleet.
func (a *Agents) ResolvePrepared(ctx context.Context, c Member) (string, bool, error) {
	var has bool
	var done []string
	err := a.execWithin(ctx, c, dataPlaneTimeout, func(conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, dataplane.HasResolveSQL).Scan(&has); err != nil || !has {
			return err
		}
		rows, err := conn.Query(ctx, dataplane.ResolveSQL)
		if err != nil {
			return err
		}
		done, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return strings.Join(done, ", "), has, err
}
