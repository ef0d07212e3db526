package fleet

import (
	"context"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgclient"
)

// Upkeep is what the DBA's node commands do to nodes beyond the switches'
// and growth's needs: CLEAN's and DROP NODE's files, INIT's precheck, the
// pg_hba.conf edits of ADD/DROP HBA and FLUSH HOST, and the reads of
// MONITOR, SHOW and FLUSH PARAM.
type Upkeep interface {
	// Status asks m's agent about m's data directory and postmaster.
	Status(ctx context.Context, m Member) (NodeStatus, error)
	// CheckDir reports whether m's data directory exists and is empty.
	CheckDir(ctx context.Context, m Member) (DirState, error)
	// CleanDir empties m's (stopped) data directory, keeping it.
	CleanDir(ctx context.Context, m Member) error
	// RemoveSocketDir removes m's socket directory and the secrets in it:
	// the one of its host's address, or with old set the one it had at
	// that old address of its host (the directory's name hashes the
	// address; FLUSH HOST). kept, when not "", is why the agent left it
	// (the node runs, or the directory is not laid out as the manager lays
	// them out).
	RemoveSocketDir(ctx context.Context, m Member, old string) (kept string, err error)
	// EditHBA edits m's pg_hba.conf; it does not reload m.
	EditHBA(ctx context.Context, m Member, e HBAEdit) error
	// ReadHBA returns the rule lines of m's pg_hba.conf.
	ReadHBA(ctx context.Context, m Member) ([]string, error)

	// SQLStatus logs in to m (within timeout) and reads whether it is in
	// recovery and when it started. The error is the connection's or the
	// query's as pgx gives it: MONITOR tells a refused login
	// (pgclient.ServerError) from a host that does not answer.
	SQLStatus(ctx context.Context, m Member, timeout time.Duration) (pgclient.Status, error)
	// Replication reads m's pg_stat_replication.
	Replication(ctx context.Context, m Member) ([]pgclient.Replica, error)
	// ForeignServers reads coordinator c's postgres_fdw servers (name →
	// "host:port"; coord.ServersQuery), which coord.Stale compares with
	// the catalog.
	ForeignServers(ctx context.Context, c Member) (map[string]string, error)
	// Settings reads current_setting of each key on m.
	Settings(ctx context.Context, m Member, keys []string) (map[string]string, error)
	// ShowSettings reads m's parameters whose name contains pattern (SHOW
	// PARAM), as m's own sessions get them.
	ShowSettings(ctx context.Context, m Member, pattern string) ([]Setting, error)
	// GUCs reads m's parameter definitions (pg_settings, FLUSH PARAM).
	GUCs(ctx context.Context, m Member) ([]cluster.GUC, error)
}

// NodeStatus is what a node's agent sees of it.
type NodeStatus struct {
	// Initialized: the data directory holds PG_VERSION.
	Initialized bool
	// Running: postmaster.pid names a live process.
	Running bool
	// Ready is pg_isready's verdict: "accepting", "rejecting", "no
	// response".
	Ready string
}

// DirState is what a data directory holds.
type DirState struct {
	Exists, Empty bool
}

// HBAEdit is one edit of a pg_hba.conf: the manager's lines (above the
// separator), the DBA's (at the end), lines removed wherever they are,
// and whether the separator is written when missing.
type HBAEdit struct {
	AddManaged, AddTail, Remove []cluster.HBALine
	Separator                   bool
}

// Setting is one row of SHOW PARAM.
type Setting struct {
	Name, Setting, Unit, Context, Source string
	PendingRestart                       bool
}
