package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/jackc/pgx/v5"
)

// InitDB implements Fleet.
func (a *Agents) InitDB(ctx context.Context, m Member, walsegMB int32, checksums bool) error {
	sec, err := a.Secrets(m)
	if err != nil {
		return err
	}
	_, err = call(ctx, a, m.Host, 5*time.Minute, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.ToolResult, error) {
		return c.InitDB(ctx, &agentpb.InitDBRequest{Node: Ref(m), DataChecksums: checksums, WalSegsizeMb: walsegMB, Secrets: sec})
	})
	return err
}

// BaseBackup implements Fleet.
func (a *Agents) BaseBackup(ctx context.Context, m, source Member, progress func(doneKB, totalKB int64)) error {
	sec, err := a.Secrets(m)
	if err != nil {
		return err
	}
	c, err := a.pool.Client(m.Host)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 6*time.Hour)
	defer cancel()
	stream, err := c.BaseBackup(ctx, &agentpb.BaseBackupRequest{
		Node: Ref(m), SourceHost: source.Host.Address, SourcePort: int32(source.Node.Port), SourceUser: source.Host.User,
		ApplicationName: m.Name(), Slot: m.Name(), Secrets: sec,
	})
	if err != nil {
		return AgentError(m.Host, err)
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return AgentError(m.Host, err)
		}
		if p.Done {
			return nil
		}
		if progress != nil {
			progress(p.DoneKb, p.TotalKb)
		}
	}
}

// SetStandby implements Fleet (agents.go).

// DropSlot implements Fleet.
func (a *Agents) DropSlot(ctx context.Context, m Member, slot string) (bool, error) {
	var left int
	err := a.Exec(ctx, m, func(c *pgx.Conn) error {
		if err := pgclient.DropSlot(ctx, c, slot); err != nil {
			return err
		}
		return c.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "+pgclient.Literal(slot)).Scan(&left)
	})
	return err == nil && left == 0, err
}

// HasSlot implements Fleet.
func (a *Agents) HasSlot(ctx context.Context, m Member, slot string) (bool, error) {
	var n int
	err := a.Exec(ctx, m, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "+pgclient.Literal(slot)).Scan(&n)
	})
	return n > 0, err
}

// SlotsOf implements Fleet.
func (a *Agents) SlotsOf(ctx context.Context, c Member, node string) ([]int, error) {
	var out []int
	err := a.Exec(ctx, c, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, coord.SlotsOf(node))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[int])
		return err
	})
	return out, err
}

// DistributedTables implements Fleet.
func (a *Agents) DistributedTables(ctx context.Context, c Member) ([]coord.Table, error) {
	var out []coord.Table
	err := a.Exec(ctx, c, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, coord.DistributedTables)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (coord.Table, error) {
			var t coord.Table
			return t, r.Scan(&t.Schema, &t.Name)
		})
		return err
	})
	return out, err
}

// Fingerprint implements Fleet.
func (a *Agents) Fingerprint(ctx context.Context, c Member) (string, error) {
	var out string
	err := a.Exec(ctx, c, func(conn *pgx.Conn) error { return conn.QueryRow(ctx, coord.Fingerprint).Scan(&out) })
	return out, err
}

// TruncateShards implements Fleet. Only shards of distributed tables are
// emptied: <table>_<slot> for a table the coordinators distribute, never
// a user table that merely ends in a number.
func (a *Agents) TruncateShards(ctx context.Context, m Member, tables []coord.Table, slots []int) (int, error) {
	emptied := 0
	err := a.Exec(ctx, m, func(c *pgx.Conn) error {
		for _, t := range tables {
			for _, k := range slots {
				name := coord.Shard(t, k)
				var exists bool
				if err := c.QueryRow(ctx, coord.ShardExists(name)).Scan(&exists); err != nil {
					return err
				}
				if !exists {
					continue
				}
				if _, err := c.Exec(ctx, "TRUNCATE "+name); err != nil {
					return err
				}
				emptied++
			}
		}
		return nil
	})
	return emptied, err
}

// begin connects to c and opens a transaction there.
func (a *Agents) begin(ctx context.Context, c Member) (*pgx.Conn, pgx.Tx, error) {
	conn, err := a.Conn(ctx, c, 10*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", c.Name(), err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	return conn, tx, nil
}

// slotHold is HoldSlots' transaction on one coordinator; gid is set once
// it is prepared.
type slotHold struct {
	coordTx
	parts []coord.Partition
	gid   string
}

// HoldSlots implements Fleet. A failure releases what it opened.
func (a *Agents) HoldSlots(ctx context.Context, c Member, src string, slots []int) (SlotHold, error) {
	conn, tx, err := a.begin(ctx, c)
	if err != nil {
		return nil, err
	}
	h := &slotHold{coordTx: coordTx{name: c.Name(), conn: conn, tx: tx}}
	if err := h.lock(ctx, src, slots); err != nil {
		h.Release(ctx)
		return nil, err
	}
	return h, nil
}

// lock finds the partitions of slots on src's server and locks their
// parents.
func (h *slotHold) lock(ctx context.Context, src string, slots []int) error {
	if _, err := h.tx.Exec(ctx, coord.LockTimeout); err != nil {
		return err
	}
	moving := map[int]bool{}
	for _, k := range slots {
		moving[k] = true
	}
	rows, err := h.tx.Query(ctx, coord.Partitions(src))
	if err != nil {
		return err
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (coord.Partition, error) {
		var p coord.Partition
		return p, r.Scan(&p.Parent, &p.Name, &p.Schema)
	})
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, p := range all {
		k, ok := coord.PartitionSlot(p.Name, moving)
		if !ok {
			continue
		}
		p.Slot = k
		h.parts = append(h.parts, p)
		if done[p.Parent] {
			continue
		}
		done[p.Parent] = true
		if _, err := h.tx.Exec(ctx, coord.LockTable(p.Parent)); err != nil {
			return fmt.Errorf("lock %s on %s: %w", p.Parent, h.name, err)
		}
	}
	return nil
}

func (h *slotHold) Repoint(ctx context.Context, dst Member, slots []int) error {
	_, err := h.tx.Exec(ctx, coord.Repoint(dst.Name(), dst.Host.Address, dst.Node.Port, dst.Host.User, h.parts, cluster.SlotList(slots)))
	return err
}

func (h *slotHold) Prepare(ctx context.Context, gid string) error {
	if _, err := h.tx.Exec(ctx, coord.PrepareHold(gid)); err != nil {
		return fmt.Errorf("prepare the transaction on %s: %w", h.name, err)
	}
	h.gid = gid
	return nil
}

func (h *slotHold) Commit(ctx context.Context) error {
	if h.gid == "" {
		return h.coordTx.Commit(ctx)
	}
	if _, err := h.conn.Exec(ctx, coord.FinishHold(h.gid, true)); err != nil {
		return err
	}
	h.gid = ""
	return nil
}

// Release rolls a prepared transaction back too: until Commit, the
// destination was not promoted, or its promotion failed.
func (h *slotHold) Release(ctx context.Context) {
	if h.gid != "" {
		ctx = context.WithoutCancel(ctx)
		_, _ = h.conn.Exec(ctx, coord.FinishHold(h.gid, false))
		h.conn.Close(ctx)
		return
	}
	h.coordTx.Release(ctx)
}

func (h *slotHold) Leave(ctx context.Context) {
	if h.gid == "" {
		h.Release(ctx)
		return
	}
	h.conn.Close(context.WithoutCancel(ctx))
}

// FinishHold implements Fleet.
func (a *Agents) FinishHold(ctx context.Context, c Member, gid string, commit bool) (bool, error) {
	var found bool
	err := a.Exec(ctx, c, func(conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, coord.HoldPrepared(gid)).Scan(&found); err != nil || !found {
			return err
		}
		_, err := conn.Exec(ctx, coord.FinishHold(gid, commit))
		return err
	})
	return found, err
}
