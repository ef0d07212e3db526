// Package fleettest is an in-memory fleet.Fleet for executor tests: nodes
// are a few flags (running, in recovery, WAL position), every action is
// recorded as a step, and any step can be made to fail — or to change the
// nodes first (a candidate that dies mid-switch).
package fleettest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/dataplane"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Node is what the fake knows of one node.
type Node struct {
	Running    bool
	InRecovery bool
	// LSN is the WAL the node has: received and replayed for a standby,
	// written for a primary.
	LSN uint64
	// Control is its pg_controldata; nil: what Stop left, or "in
	// production" for a node that was never stopped.
	Control fleet.ControlData
	// Parent is the node it was last made a standby of.
	Parent string
	Conf   map[string]string // postgresql.auto.conf
	// HBA is its pg_hba.conf's rule lines (upkeep.go).
	HBA []string
	// Sessions is how many client sessions Busy counts on it
	// (quiesce.go); EndSessions ends them.
	Sessions int
}

// Fleet is the fake. Its fields may be set before a test runs; Steps is
// read after.
type Fleet struct {
	mu sync.Mutex
	// Nodes by name.
	Nodes map[string]*Node
	// AgentDown lists hosts whose agent does not answer.
	AgentDown map[string]bool
	// Fail makes a step fail with its error, each time it is issued
	// ("promote dn1s", "probe dn1p", …: see Steps for the names).
	Fail map[string]error
	// Before, when set, runs before each step (fake's lock held), may
	// change Nodes, and fails the step with its error.
	Before func(f *Fleet, step string) error
	// Steps are the actions issued, in order (reads are not listed).
	Steps []string
	// SlotMap and Tables are the coordinators' slot map and distributed
	// tables (growth.go).
	SlotMap map[int]string
	Tables  []coord.Table
	// Servers are the coordinators' postgres_fdw servers (name →
	// "host:port") ForeignServers reads, by coordinator.
	Servers map[string]map[string]string
	// Prints are the coordinators' fingerprints (coord.Fingerprint) by
	// coordinator; one not listed has "same". A base backup gives the
	// copy its source's.
	Prints map[string]string
	// Held are the coordinators holding writes now (quiesce.go).
	Held map[string]bool
	// NodeWaits are what Waits reads, by node; Resolver are the
	// coordinators that have adb.resolve_prepared (dataplane.go).
	NodeWaits map[string]dataplane.NodeWaits
	Resolver  map[string]bool
	// Prepared are the SlotHolds prepared and not finished, by
	// "coordinator gid" (growth.go).
	Prepared map[string]PreparedHold
	// ReplSlots are the replication slots HasSlot finds, as "node slot"
	// (growth.go; tests set them, DropSlot removes them).
	ReplSlots map[string]bool
}

var _ fleet.Fleet = (*Fleet)(nil)

// New returns a fleet of s's initialised nodes, running, masters as
// primaries and slaves as standbys of their masters, all at LSN 100.
func New(s *cluster.State) *Fleet {
	f := &Fleet{Nodes: map[string]*Node{}, AgentDown: map[string]bool{}, Fail: map[string]error{}}
	for _, n := range s.Nodes {
		if n.Initialized {
			f.Nodes[n.Name] = &Node{Running: true, InRecovery: !n.Type.IsMaster(), LSN: 100, Parent: n.Master, Conf: map[string]string{}}
		}
	}
	return f
}

// ErrDown is what a node that does not run answers.
var ErrDown = errors.New("connection refused")

// step checks and records one step; read steps are not recorded.
func (f *Fleet) step(record bool, format string, args ...any) error {
	name := fmt.Sprintf(format, args...)
	if record {
		f.Steps = append(f.Steps, name)
	}
	if f.Before != nil {
		if err := f.Before(f, name); err != nil {
			return err
		}
	}
	return f.Fail[name]
}

func (f *Fleet) node(name string) *Node {
	n, ok := f.Nodes[name]
	if !ok {
		n = &Node{Conf: map[string]string{}}
		f.Nodes[name] = n
	}
	return n
}

func (f *Fleet) agent(h cluster.Host) error {
	if f.AgentDown[h.Name] {
		return pgerror.New(pgerror.ConnectionFailure, "agent not reachable: connection refused").
			WithHint("Start the agent (START AGENT %s); MONITOR AGENT shows every agent.", h.Name)
	}
	return nil
}

// Node returns a copy of what the fake knows of name.
func (f *Fleet) Node(name string) Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.node(name)
}

// Reset forgets the steps recorded so far.
func (f *Fleet) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Steps = nil
}

// StepList returns the steps so far.
func (f *Fleet) StepList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.Steps...)
}

// AgentUp implements fleet.Fleet.
func (f *Fleet) AgentUp(_ context.Context, h cluster.Host) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(false, "agent %s", h.Name); err != nil {
		return err
	}
	return f.agent(h)
}

// Running implements fleet.Fleet.
func (f *Fleet) Running(_ context.Context, m fleet.Member) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(false, "status %s", m.Name()); err != nil {
		return false, err
	}
	if err := f.agent(m.Host); err != nil {
		return false, err
	}
	return f.node(m.Name()).Running, nil
}

// Listening implements fleet.Fleet.
func (f *Fleet) Listening(m fleet.Member) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node(m.Name()).Running
}

// action is an agent action on m: recorded, checked, then done.
func (f *Fleet) action(m fleet.Member, do func(n *Node) error, format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(true, format, args...); err != nil {
		return err
	}
	if err := f.agent(m.Host); err != nil {
		return err
	}
	return do(f.node(m.Name()))
}

// Start implements fleet.Fleet.
func (f *Fleet) Start(_ context.Context, m fleet.Member) (already bool, err error) {
	err = f.action(m, func(n *Node) error {
		// standby.signal: a node made a standby starts in recovery.
		already, n.Running, n.Control = n.Running, true, nil
		n.InRecovery = n.Parent != ""
		return nil
	}, "start %s", m.Name())
	return already, err
}

// Stop implements fleet.Fleet. A fast or smart stop leaves a clean
// shutdown checkpoint at the node's LSN; an immediate one does not.
func (f *Fleet) Stop(_ context.Context, m fleet.Member, mode fleet.Mode) (already bool, err error) {
	err = f.action(m, func(n *Node) error {
		already = !n.Running
		if n.Running {
			n.Running = false
			state := "shut down"
			if n.InRecovery {
				state = "shut down in recovery"
			}
			if mode == fleet.Immediate {
				state = "in production"
			}
			n.Control = fleet.ControlData{"Database cluster state": state, "Latest checkpoint location": cluster.FormatLSN(n.LSN)}
			if mode != fleet.Immediate && !n.InRecovery {
				// The walsenders hand the shutdown checkpoint to the
				// standbys streaming from it.
				for name, c := range f.Nodes {
					if c.Parent == m.Name() && c.Running && c.LSN <= n.LSN {
						f.Nodes[name].LSN = n.LSN + 1
					}
				}
			}
		}
		return nil
	}, "stop %s %s", m.Name(), mode)
	return already, err
}

// Reload implements fleet.Fleet.
func (f *Fleet) Reload(_ context.Context, m fleet.Member) error {
	return f.action(m, func(n *Node) error {
		if !n.Running {
			return ErrDown
		}
		return nil
	}, "reload %s", m.Name())
}

// Promote implements fleet.Fleet.
func (f *Fleet) Promote(_ context.Context, m fleet.Member) error {
	return f.promote(m, "promote")
}

// promote ends m's recovery, recorded as "<step> <node>".
func (f *Fleet) promote(m fleet.Member, step string) error {
	return f.action(m, func(n *Node) error {
		if !n.Running || !n.InRecovery {
			return fmt.Errorf("%s is not a running standby", m.Name())
		}
		n.InRecovery, n.Parent = false, ""
		return nil
	}, "%s %s", step, m.Name())
}

// ControlData implements fleet.Fleet.
func (f *Fleet) ControlData(_ context.Context, m fleet.Member) (fleet.ControlData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(false, "controldata %s", m.Name()); err != nil {
		return nil, err
	}
	if err := f.agent(m.Host); err != nil {
		return nil, err
	}
	n := f.node(m.Name())
	if n.Control == nil {
		return fleet.ControlData{"Database cluster state": "in production", "Latest checkpoint location": "0/0"}, nil
	}
	return n.Control, nil
}

// SetConf implements fleet.Fleet.
func (f *Fleet) SetConf(_ context.Context, m fleet.Member, auto bool, set map[string]string, remove []string) error {
	file := "conf"
	if auto {
		file = "auto.conf"
	}
	var keys []string
	for k := range set {
		keys = append(keys, "+"+k)
	}
	for _, k := range remove {
		keys = append(keys, "-"+k)
	}
	sort.Strings(keys)
	return f.action(m, func(n *Node) error {
		if auto {
			for k, v := range set {
				n.Conf[k] = v
			}
			for _, k := range remove {
				delete(n.Conf, k)
			}
		}
		return nil
	}, "%s %s %s", file, m.Name(), strings.Join(keys, " "))
}

// Configure implements fleet.Fleet.
func (f *Fleet) Configure(_ context.Context, m fleet.Member, _ fleet.Conf) error {
	return f.action(m, func(*Node) error { return nil }, "configure %s", m.Name())
}

// MakeStandbyOf implements fleet.Fleet: the slot on parent needs parent
// to run.
func (f *Fleet) MakeStandbyOf(_ context.Context, m, parent fleet.Member) error {
	return f.action(m, func(n *Node) error {
		if !f.node(parent.Name()).Running {
			return fmt.Errorf("create replication slot %q on %s: %w", m.Name(), parent.Name(), ErrDown)
		}
		n.Parent = parent.Name()
		return nil
	}, "standby %s of %s", m.Name(), parent.Name())
}

// WriteStandby implements fleet.Fleet: parent need not run.
func (f *Fleet) WriteStandby(_ context.Context, m, parent fleet.Member) error {
	return f.action(m, func(n *Node) error {
		n.Parent = parent.Name()
		return nil
	}, "standby signal %s of %s", m.Name(), parent.Name())
}

// WriteRecovery implements fleet.Fleet: m's recovery settings alone; m
// streams from parent once reloaded.
func (f *Fleet) WriteRecovery(_ context.Context, m, parent fleet.Member) error {
	return f.action(m, func(n *Node) error {
		n.Parent = parent.Name()
		return nil
	}, "recovery %s of %s", m.Name(), parent.Name())
}

// Rewind implements fleet.Fleet: the target must be stopped cleanly and
// the source run; the target then has the source's WAL.
func (f *Fleet) Rewind(_ context.Context, m, source fleet.Member) (string, error) {
	err := f.action(m, func(n *Node) error {
		src := f.node(source.Name())
		if n.Running || !src.Running || !n.Control.CleanlyShutDown() {
			return fmt.Errorf("pg_rewind failed (exit status 1): target must be shut down cleanly and source run")
		}
		n.LSN, n.InRecovery, n.Parent = src.LSN, true, source.Name()
		return nil
	}, "rewind %s from %s", m.Name(), source.Name())
	if err != nil {
		return "", err
	}
	return "pg_rewind: Done!", nil
}

// Probe implements fleet.Fleet.
func (f *Fleet) Probe(_ context.Context, m fleet.Member) cluster.Probe {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.node(m.Name())
	if err := f.step(false, "probe %s", m.Name()); err != nil || !n.Running {
		return cluster.Probe{}
	}
	return cluster.Probe{Reachable: true, InRecovery: n.InRecovery, LSN: n.LSN}
}

// InRecovery implements fleet.Fleet.
func (f *Fleet) InRecovery(_ context.Context, m fleet.Member) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(false, "inrecovery %s", m.Name()); err != nil {
		return false, err
	}
	n := f.node(m.Name())
	if !n.Running {
		return false, ErrDown
	}
	return n.InRecovery, nil
}

// WaitReplay implements fleet.Fleet; it does not wait: the node has
// replayed beyond lsn or the wait times out at once.
func (f *Fleet) WaitReplay(ctx context.Context, m fleet.Member, lsn uint64, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(false, "waitreplay %s", m.Name()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := f.node(m.Name())
	if !n.Running || n.LSN <= lsn {
		return fmt.Errorf("%s did not replay beyond %s within %s", m.Name(), cluster.FormatLSN(lsn), timeout)
	}
	return nil
}

// sql is a statement run on m: recorded; m must run.
func (f *Fleet) sql(m fleet.Member, format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.step(true, format, args...); err != nil {
		return err
	}
	if !f.node(m.Name()).Running {
		return ErrDown
	}
	return nil
}

// Checkpoint implements fleet.Fleet.
func (f *Fleet) Checkpoint(_ context.Context, m fleet.Member) error {
	return f.sql(m, "checkpoint %s", m.Name())
}

// EnsureSlot implements fleet.Fleet.
func (f *Fleet) EnsureSlot(_ context.Context, m fleet.Member, slot string) error {
	return f.sql(m, "slot %s on %s", slot, m.Name())
}

// DropInactiveSlots implements fleet.Fleet.
func (f *Fleet) DropInactiveSlots(_ context.Context, m fleet.Member) error {
	return f.sql(m, "dropslots %s", m.Name())
}

// SetSyncNames implements fleet.Fleet: every slave that runs as a
// standby of m streams as wanted; the others are absent.
func (f *Fleet) SetSyncNames(_ context.Context, m fleet.Member, names string, want map[string]string, waitAll bool) ([]string, error) {
	if err := f.sql(m, "syncnames %s %s", m.Name(), names); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var absent []string
	for name := range want {
		if n := f.node(name); !n.Running || n.Parent != m.Name() {
			if waitAll {
				return nil, fmt.Errorf("replication of %s does not match the node table: %s is not streaming", m.Name(), name)
			}
			absent = append(absent, name)
		}
	}
	sort.Strings(absent)
	return absent, nil
}

// RenameServer implements fleet.Fleet.
func (f *Fleet) RenameServer(_ context.Context, c fleet.Member, old, newName string) error {
	return f.sql(c, "rename %s to %s on %s", old, newName, c.Name())
}

// ConfigureCoordinator implements fleet.Fleet. A coordinator whose
// Servers are set routes, afterwards, to what coord.Configure gives it.
func (f *Fleet) ConfigureCoordinator(_ context.Context, s *cluster.State, c fleet.Member, ok func(cluster.Node) bool) error {
	if err := f.sql(c, "coordinator %s", c.Name()); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Servers[c.Name()] != nil && ok != nil {
		have := map[string]string{}
		for _, v := range coord.Servers(s, c.Node, ok) {
			have[v.Name] = v.Address + ":" + strconv.Itoa(v.Port)
		}
		f.Servers[c.Name()] = have
	}
	return nil
}
