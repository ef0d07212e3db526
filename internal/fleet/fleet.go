// Package fleet is the seam between the manager's decisions and the nodes:
// one interface (Fleet) for everything done to a node or its host's agent
// — processes, configuration files, pg_rewind, SQL on the node, the
// coordinators' catalog — implemented once over the real agents and
// PostgreSQL connections (Agents) and once in memory for tests
// (fleet/fleettest). Each procedure ("make this node a standby of that
// one", "wait until it replayed past an LSN") exists once, here.
//
// Errors of the agents are translated once, here, into the manager's
// error type with a SQLSTATE (AgentError), so callers show them as they
// are.
package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// Member is a node with its host, as one catalog snapshot names them.
type Member struct {
	Node cluster.Node
	Host cluster.Host
}

// Of resolves node name of s with its host.
func Of(s *cluster.State, name string) (Member, error) {
	n, ok := s.Node(name)
	if !ok {
		return Member{}, fmt.Errorf("node %q does not exist", name)
	}
	return At(s, n)
}

// At is n with its host from s.
func At(s *cluster.State, n cluster.Node) (Member, error) {
	h, ok := s.Host(n.Host)
	if !ok {
		return Member{}, fmt.Errorf("host %q of node %q does not exist", n.Host, n.Name)
	}
	return Member{Node: n, Host: h}, nil
}

// Name is the member's node name.
func (m Member) Name() string { return m.Node.Name }

// Mode is how pg_ctl stops a node.
type Mode string

const (
	Smart     Mode = "smart"
	Fast      Mode = "fast"
	Immediate Mode = "immediate"
)

// Conf is what a freshly made data directory is given: postgresql.conf
// settings (Set, Remove) and pg_hba.conf lines — the manager's own above
// the separator (HBA), the DBA's ADD HBA lines below it (UserHBA).
type Conf struct {
	Set     map[string]string
	Remove  []string
	HBA     []cluster.HBALine
	UserHBA []cluster.HBALine
}

// ControlData is pg_controldata's output, field by field.
type ControlData map[string]string

// ClusterState is the "Database cluster state" line: "shut down",
// "shut down in recovery", "in production", "in archive recovery"…
func (c ControlData) ClusterState() string { return c["Database cluster state"] }

// CleanlyShutDown reports whether the node was stopped cleanly (what
// pg_rewind requires, and what proves a standby can have all its WAL).
func (c ControlData) CleanlyShutDown() bool {
	s := c.ClusterState()
	return s == "shut down" || s == "shut down in recovery"
}

// Checkpoint is the location of the latest checkpoint.
func (c ControlData) Checkpoint() (uint64, error) {
	return cluster.ParseLSN(c["Latest checkpoint location"])
}

// Fleet is everything the manager does to nodes and their agents.
type Fleet interface {
	// AgentUp checks that h's agent answers.
	AgentUp(ctx context.Context, h cluster.Host) error
	// Running asks m's agent whether m's postmaster runs.
	Running(ctx context.Context, m Member) (bool, error)
	// Listening reports whether something accepts TCP connections on
	// m's address and port (a node whose agent is down may still run).
	Listening(m Member) bool
	// Start starts m (already: it ran). The node's secrets go along.
	Start(ctx context.Context, m Member) (already bool, err error)
	// Stop stops m in mode (already: it was stopped).
	Stop(ctx context.Context, m Member, mode Mode) (already bool, err error)
	// Reload makes m re-read its configuration.
	Reload(ctx context.Context, m Member) error
	// Promote ends m's recovery (pg_ctl promote) and checkpoints it, so
	// that its control file names its new timeline at once (pg_rewind of
	// PostgreSQL 15 reads a target's timeline there).
	Promote(ctx context.Context, m Member) error
	// ControlData reads m's pg_controldata.
	ControlData(ctx context.Context, m Member) (ControlData, error)
	// SetConf edits postgresql.conf, or postgresql.auto.conf with auto.
	SetConf(ctx context.Context, m Member, auto bool, set map[string]string, remove []string) error
	// Configure writes a new data directory's postgresql.conf and
	// pg_hba.conf.
	Configure(ctx context.Context, m Member, c Conf) error
	// MakeStandbyOf makes m a standby of parent: a replication slot
	// named after m on parent, m's recovery settings pointing at parent,
	// standby.signal. It neither starts nor reloads m. The three steps are
	// one procedure split in nested parts: MakeStandbyOf = EnsureSlot on
	// parent + WriteStandby; WriteStandby = WriteRecovery + standby.signal.
	MakeStandbyOf(ctx context.Context, m, parent Member) error
	// WriteStandby is MakeStandbyOf without the slot, for a parent that
	// may be down: m's recovery settings pointing at parent and
	// standby.signal.
	WriteStandby(ctx context.Context, m, parent Member) error
	// WriteRecovery writes m's recovery settings alone (primary_conninfo,
	// primary_slot_name… in postgresql.auto.conf), pointing at parent: a
	// standby re-pointed to where its parent is now, reloaded by the
	// caller (PostgreSQL 13+ reconnects without a restart).
	WriteRecovery(ctx context.Context, m, parent Member) error
	// Rewind runs pg_rewind on the stopped m from source, writing
	// recovery settings; it returns the tool's output.
	Rewind(ctx context.Context, m, source Member) (string, error)

	// Probe looks at m over SQL: answers, in recovery, WAL received or
	// replayed (written, for a primary). A node that does not answer is
	// the zero Probe.
	Probe(ctx context.Context, m Member) cluster.Probe
	// InRecovery asks m whether it is a standby.
	InRecovery(ctx context.Context, m Member) (bool, error)
	// WaitReplay waits until m has replayed WAL beyond lsn, at most
	// timeout; it ends early when ctx does.
	WaitReplay(ctx context.Context, m Member, lsn uint64, timeout time.Duration) error
	// Checkpoint runs CHECKPOINT on m.
	Checkpoint(ctx context.Context, m Member) error
	// EnsureSlot creates the physical replication slot on m unless it
	// exists; DropInactiveSlots drops m's slots nobody streams from.
	EnsureSlot(ctx context.Context, m Member, slot string) error
	DropInactiveSlots(ctx context.Context, m Member) error
	// SetSyncNames writes and reloads m's synchronous_standby_names and
	// waits until pg_stat_replication shows want (application_name →
	// sync_state). With waitAll every slave must stream (up to a
	// minute); otherwise slaves not streaming are returned in absent and
	// the wait is short.
	SetSyncNames(ctx context.Context, m Member, names string, want map[string]string, waitAll bool) (absent []string, err error)

	// RenameServer renames the foreign server (and slot map entries) of
	// datanode master old to newName on coordinator c (coord.RenameServer).
	RenameServer(ctx context.Context, c Member, old, newName string) error
	// ConfigureCoordinator installs the adb schema, node list, slot map
	// and foreign servers on coordinator c (coord.Configure).
	ConfigureCoordinator(ctx context.Context, s *cluster.State, c Member, ok func(cluster.Node) bool) error

	// Growth: making data directories, moving slots (growth.go).
	Growth
	// Upkeep: the DBA's node commands' files and reads (upkeep.go).
	Upkeep
	// Quiesce: SWITCHOVER's wait for quiet and quick promotion
	// (quiesce.go).
	Quiesce
	// DataPlane: deadlocks across nodes and in-doubt transactions
	// (dataplane.go).
	DataPlane
}
