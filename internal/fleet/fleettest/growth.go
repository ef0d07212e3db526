package fleettest

import (
	"context"
	"fmt"
	"sort"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
)

// The fake's side of fleet.Growth. The coordinators share one slot map
// (SlotMap, slot → datanode), which a committed SlotHold changes, and one
// list of distributed tables (Tables).

// DealSlots gives the fake a slot map dealt round robin over nodes, as
// coord.Configure deals it.
func (f *Fleet) DealSlots(nodes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.SlotMap = map[int]string{}
	for k := 0; k < coord.Slots; k++ {
		f.SlotMap[k] = nodes[k%len(nodes)]
	}
}

// Owned lists the slots node owns in the slot map.
func (f *Fleet) Owned(node string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.owned(node)
}

func (f *Fleet) owned(node string) []int {
	var out []int
	for k, n := range f.SlotMap {
		if n == node {
			out = append(out, k)
		}
	}
	sort.Ints(out)
	return out
}

// InitDB implements fleet.Fleet: the node exists, stopped, a primary.
func (f *Fleet) InitDB(_ context.Context, m fleet.Member, _ int32, _ bool) error {
	return f.action(m, func(n *Node) error {
		n.Running, n.InRecovery, n.Parent, n.LSN = false, false, "", 1
		return nil
	}, "initdb %s", m.Name())
}

// BaseBackup implements fleet.Fleet: the source must run; the copy has
// its WAL, stopped, a primary until it is made a standby.
func (f *Fleet) BaseBackup(_ context.Context, m, source fleet.Member, progress func(doneKB, totalKB int64)) error {
	err := f.action(m, func(n *Node) error {
		src := f.node(source.Name())
		if !src.Running {
			return fmt.Errorf("pg_basebackup failed (exit status 1): could not connect to %s: %w", source.Name(), ErrDown)
		}
		n.Running, n.InRecovery, n.Parent, n.LSN = false, false, "", src.LSN
		if p, ok := f.Prints[source.Name()]; ok {
			f.Prints[m.Name()] = p
		} else {
			delete(f.Prints, m.Name())
		}
		return nil
	}, "basebackup %s from %s", m.Name(), source.Name())
	if err == nil && progress != nil {
		progress(10, 10)
	}
	return err
}

// SetStandby implements fleet.Fleet: without standby.signal the node
// starts as a primary.
func (f *Fleet) SetStandby(_ context.Context, m fleet.Member, standby bool) error {
	return f.action(m, func(n *Node) error {
		if !standby {
			n.Parent = ""
		}
		return nil
	}, "standby.signal %s %v", m.Name(), standby)
}

// DropSlot implements fleet.Fleet.
func (f *Fleet) DropSlot(_ context.Context, m fleet.Member, slot string) (bool, error) {
	if err := f.sql(m, "dropslot %s on %s", slot, m.Name()); err != nil {
		return false, err
	}
	f.mu.Lock()
	delete(f.ReplSlots, m.Name()+" "+slot)
	f.mu.Unlock()
	return true, nil
}

// HasSlot implements fleet.Fleet: ReplSlots.
func (f *Fleet) HasSlot(_ context.Context, m fleet.Member, slot string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(m, "slot %s on %s?", slot, m.Name()); err != nil {
		return false, err
	}
	return f.ReplSlots[m.Name()+" "+slot], nil
}

// read is a query on m: not recorded; m must run.
func (f *Fleet) read(m fleet.Member, format string, args ...any) error {
	if err := f.step(false, format, args...); err != nil {
		return err
	}
	if !f.node(m.Name()).Running {
		return ErrDown
	}
	return nil
}

// SlotsOf implements fleet.Fleet.
func (f *Fleet) SlotsOf(_ context.Context, c fleet.Member, node string) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(c, "slots of %s on %s", node, c.Name()); err != nil {
		return nil, err
	}
	return f.owned(node), nil
}

// Fingerprint implements fleet.Fleet.
func (f *Fleet) Fingerprint(_ context.Context, c fleet.Member) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(c, "fingerprint of %s", c.Name()); err != nil {
		return "", err
	}
	if p, ok := f.Prints[c.Name()]; ok {
		return p, nil
	}
	return "same", nil
}

// DistributedTables implements fleet.Fleet.
func (f *Fleet) DistributedTables(_ context.Context, c fleet.Member) ([]coord.Table, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(c, "tables on %s", c.Name()); err != nil {
		return nil, err
	}
	return append([]coord.Table(nil), f.Tables...), nil
}

// TruncateShards implements fleet.Fleet: every shard exists.
func (f *Fleet) TruncateShards(_ context.Context, m fleet.Member, tables []coord.Table, slots []int) (int, error) {
	if err := f.sql(m, "truncate %s %d tables slots %s", m.Name(), len(tables), cluster.SlotList(slots)); err != nil {
		return 0, err
	}
	return len(tables) * len(slots), nil
}

// HoldSlots implements fleet.Fleet.
func (f *Fleet) HoldSlots(_ context.Context, c fleet.Member, src string, slots []int) (fleet.SlotHold, error) {
	if err := f.sql(c, "hold %s %s %s", c.Name(), src, cluster.SlotList(slots)); err != nil {
		return nil, fmt.Errorf("connect %s: %w", c.Name(), err)
	}
	return &hold{f: f, c: c}, nil
}

// hold is the fake's SlotHold: a re-pointing takes effect at commit.
type hold struct {
	f         *Fleet
	c         fleet.Member
	dst       string
	slots     []int
	gid       string
	committed bool
}

// PreparedHold is a prepared SlotHold: at its commit, Slots go to Dst.
type PreparedHold struct {
	Dst   string
	Slots []int
}

func (h *hold) Prepare(_ context.Context, gid string) error {
	if err := h.f.sql(h.c, "prepare %s %s", h.c.Name(), gid); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if h.f.Prepared == nil {
		h.f.Prepared = map[string]PreparedHold{}
	}
	h.f.Prepared[h.c.Name()+" "+gid] = PreparedHold{Dst: h.dst, Slots: h.slots}
	h.gid = gid
	return nil
}

// FinishHold implements fleet.Fleet.
func (f *Fleet) FinishHold(_ context.Context, c fleet.Member, gid string, commit bool) (bool, error) {
	verb := "rollback"
	if commit {
		verb = "commit"
	}
	f.mu.Lock()
	_, found := f.Prepared[c.Name()+" "+gid]
	f.mu.Unlock()
	if !found {
		return false, f.read(c, "prepared %s on %s", gid, c.Name())
	}
	if err := f.sql(c, "%s prepared %s %s", verb, c.Name(), gid); err != nil {
		return true, err
	}
	f.finish(c.Name()+" "+gid, commit)
	return true, nil
}

// finish ends the prepared hold key: at a commit its slots move.
func (f *Fleet) finish(key string, commit bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.Prepared[key]
	delete(f.Prepared, key)
	if !commit {
		return
	}
	if f.SlotMap == nil {
		f.SlotMap = map[int]string{}
	}
	for _, k := range p.Slots {
		f.SlotMap[k] = p.Dst
	}
}

func (h *hold) Coordinator() string { return h.c.Name() }

func (h *hold) Repoint(_ context.Context, dst fleet.Member, slots []int) error {
	if err := h.f.sql(h.c, "repoint %s to %s", h.c.Name(), dst.Name()); err != nil {
		return err
	}
	h.dst, h.slots = dst.Name(), slots
	return nil
}

func (h *hold) Commit(_ context.Context) error {
	if err := h.f.sql(h.c, "commit %s", h.c.Name()); err != nil {
		return err
	}
	h.committed = true
	if h.gid != "" {
		h.f.finish(h.c.Name()+" "+h.gid, true)
		return nil
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if h.f.SlotMap == nil {
		h.f.SlotMap = map[int]string{}
	}
	for _, k := range h.slots {
		h.f.SlotMap[k] = h.dst
	}
	return nil
}

func (h *hold) Leave(ctx context.Context) {
	if h.gid == "" || h.committed {
		h.Release(ctx)
	}
}

func (h *hold) Release(context.Context) {
	if !h.committed {
		if h.gid != "" {
			h.f.finish(h.c.Name()+" "+h.gid, false)
		}
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		h.f.Steps = append(h.f.Steps, "rollback "+h.c.Name())
	}
}
