package fleettest

import (
	"context"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
)

// SWITCHOVER's quiesce in memory: each node has a number of busy client
// sessions (Node.Sessions), which a Before hook may change as Busy is
// asked ("busy <node>", not recorded); holds are recorded as steps and
// listed in Held while they hold.

// HoldWrites implements fleet.Fleet.
func (f *Fleet) HoldWrites(_ context.Context, c fleet.Member, server string) (fleet.WriteHold, error) {
	if err := f.sql(c, "hold writes %s %s", c.Name(), server); err != nil {
		return nil, fmt.Errorf("connect %s: %w", c.Name(), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Held == nil {
		f.Held = map[string]bool{}
	}
	f.Held[c.Name()] = true
	return &writeHold{f: f, c: c, pid: uint32(1000 + len(f.Held))}, nil
}

// writeHold is the fake's WriteHold.
type writeHold struct {
	f    *Fleet
	c    fleet.Member
	pid  uint32
	done bool
}

func (h *writeHold) Coordinator() string { return h.c.Name() }

func (h *writeHold) PID() uint32 { return h.pid }

// Lock fails with the step "lock <c>"'s error (not recorded: the locks
// are taken concurrently); it does not wait.
func (h *writeHold) Lock(_ context.Context, _ time.Duration) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.step(false, "lock %s", h.c.Name())
}

func (h *writeHold) Repoint(_ context.Context, _ *cluster.State, old, newName string, _ func(cluster.Node) bool) error {
	return h.f.sql(h.c, "repoint %s %s to %s", h.c.Name(), old, newName)
}

func (h *writeHold) Commit(_ context.Context) error {
	if err := h.f.sql(h.c, "commit %s", h.c.Name()); err != nil {
		return err
	}
	h.end()
	return nil
}

func (h *writeHold) Release(context.Context) {
	if !h.done {
		h.f.mu.Lock()
		h.f.Steps = append(h.f.Steps, "release "+h.c.Name())
		h.f.mu.Unlock()
		h.end()
	}
}

func (h *writeHold) end() {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.done = true
	delete(h.f.Held, h.c.Name())
}

// Busy implements fleet.Fleet: the node's Sessions.
func (f *Fleet) Busy(_ context.Context, m fleet.Member, _ []uint32, _ bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(false, "busy %s", m.Name()); err != nil {
		return 0, err
	}
	n := f.node(m.Name())
	if !n.Running {
		return 0, ErrDown
	}
	return n.Sessions, nil
}

// EndSessions implements fleet.Fleet: recorded when there were some.
func (f *Fleet) EndSessions(_ context.Context, m fleet.Member, _ []uint32, _ bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.node(m.Name())
	k := n.Sessions
	if k == 0 {
		return 0, nil
	}
	if err := f.step(true, "terminate %d on %s", k, m.Name()); err != nil {
		return 0, err
	}
	n.Sessions = 0
	return k, nil
}

// EndRecovery implements fleet.Fleet: Promote's fake, recorded as
// "end recovery <node>".
func (f *Fleet) EndRecovery(_ context.Context, m fleet.Member, _ time.Duration) error {
	return f.promote(m, "end recovery")
}
