package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/jackc/pgx/v5"
)

// busySessions selects, in pg_stat_activity, the client sessions Busy
// counts; $1 are the hold sessions' pids, $2 whether a session idle in a
// transaction counts by itself. A session waiting behind a hold is held,
// not busy: pg_blocking_pids names the sessions ahead of it in the lock
// queue too, so the writes queued behind a hold's LOCK are recognised.
// adbmgr's own sessions (its probes, the doctor) are never counted.
const busySessions = `FROM pg_stat_activity a
	WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() AND a.pid <> ALL($1::int[])
	  AND a.application_name <> 'adbmgr'
	  AND CASE WHEN a.state = 'active' THEN NOT pg_blocking_pids(a.pid) && $1::int[]
	           WHEN a.state LIKE 'idle in transaction%' THEN $2::bool
	                OR a.pid IN (SELECT unnest(pg_blocking_pids(h)) FROM unnest($1::int[]) h)
	           ELSE false END`

// pids renders holders for a query argument.
func pids(holders []uint32) []int32 {
	out := make([]int32, 0, len(holders))
	for _, p := range holders {
		out = append(out, int32(p))
	}
	return out
}

// Busy implements Fleet.
func (a *Agents) Busy(ctx context.Context, m Member, holders []uint32, idle bool) (int, error) {
	var n int
	err := a.Exec(ctx, m, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT count(*) "+busySessions, pids(holders), idle).Scan(&n)
	})
	return n, err
}

// EndSessions implements Fleet.
func (a *Agents) EndSessions(ctx context.Context, m Member, holders []uint32, idle bool) (int, error) {
	var n int
	err := a.Exec(ctx, m, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT count(pg_terminate_backend(a.pid)) "+busySessions, pids(holders), idle).Scan(&n)
	})
	return n, err
}

// EndRecovery implements Fleet. pg_promote(wait => true) and pg_ctl
// promote -w both look every 100 ms; a promotion takes a few, so the node
// is polled here instead.
func (a *Agents) EndRecovery(ctx context.Context, m Member, timeout time.Duration) error {
	return a.Exec(ctx, m, func(c *pgx.Conn) error {
		var rec bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return err
		}
		if !rec {
			return nil // promoted already: a replayed promotion is harmless
		}
		if _, err := c.Exec(ctx, "SELECT pg_promote(wait => false)"); err != nil {
			return fmt.Errorf("pg_promote: %w", err)
		}
		deadline := time.Now().Add(timeout)
		for {
			if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
				return err
			}
			if !rec {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s is still in recovery %s after pg_promote", m.Name(), timeout)
			}
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	})
}

// coordTx is a hold's transaction on one coordinator (HoldWrites',
// HoldSlots').
type coordTx struct {
	name string
	conn *pgx.Conn
	tx   pgx.Tx
}

func (h *coordTx) Coordinator() string { return h.name }

func (h *coordTx) Commit(ctx context.Context) error { return h.tx.Commit(ctx) }

func (h *coordTx) Release(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	h.tx.Rollback(ctx)
	h.conn.Close(ctx)
}

// writeHold is HoldWrites' transaction on one coordinator.
type writeHold struct {
	coordTx
	tables []string
}

// HoldWrites implements Fleet. A failure releases what it opened.
func (a *Agents) HoldWrites(ctx context.Context, c Member, server string) (WriteHold, error) {
	conn, tx, err := a.begin(ctx, c)
	if err != nil {
		return nil, err
	}
	h := &writeHold{coordTx: coordTx{name: c.Name(), conn: conn, tx: tx}}
	rows, err := tx.Query(ctx, coord.HeldTables(server))
	if err == nil {
		h.tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		h.Release(ctx)
		return nil, fmt.Errorf("distributed tables on %s: %w", c.Name(), err)
	}
	return h, nil
}

func (h *writeHold) PID() uint32 { return h.conn.PgConn().PID() }

func (h *writeHold) Lock(ctx context.Context, timeout time.Duration) error {
	ms := max(timeout.Milliseconds(), 1)
	if _, err := h.tx.Exec(ctx, "SET LOCAL lock_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
		return err
	}
	for _, t := range h.tables {
		if _, err := h.tx.Exec(ctx, coord.LockTable(t)); err != nil {
			return fmt.Errorf("lock %s on %s: %w", t, h.name, err)
		}
	}
	return nil
}

func (h *writeHold) Repoint(ctx context.Context, s *cluster.State, old, newName string, ok func(cluster.Node) bool) error {
	n, found := s.Node(h.name)
	if !found {
		return fmt.Errorf("coordinator %s is not in the node table", h.name)
	}
	if _, err := h.tx.Exec(ctx, coord.RenameServer(old, newName)+coord.Configure(s, n, ok)); err != nil {
		return fmt.Errorf("re-point %s: %w", h.name, err)
	}
	return nil
}
