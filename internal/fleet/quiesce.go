package fleet

import (
	"context"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// Quiesce is what a SWITCHOVER needs beyond the switches' steps to stop a
// master without cutting its clients short (reference §4.12 step 7) and to
// keep the write pause short: new writes held at the coordinators while
// the open transactions end, the sessions counted (or ended, with FORCE),
// and a promotion that does not wait for its checkpoint.
type Quiesce interface {
	// HoldWrites connects to coordinator c and opens a transaction that
	// will hold the writes to the distributed tables with a partition on
	// datanode server's foreign server; its Lock takes the locks.
	HoldWrites(ctx context.Context, c Member, server string) (WriteHold, error)
	// Busy counts m's client sessions (not adbmgr's own, nor walsenders)
	// that stopping a master would cut short: those running a statement
	// that is not waiting behind one of holders (the hold sessions'
	// pids), and those idle in a transaction when idle is set — on the
	// master itself every open transaction dies with it — or else only
	// when they block one of holders.
	Busy(ctx context.Context, m Member, holders []uint32, idle bool) (int, error)
	// EndSessions terminates the sessions Busy counts and returns how
	// many it signalled.
	EndSessions(ctx context.Context, m Member, holders []uint32, idle bool) (int, error)
	// EndRecovery promotes the standby m over SQL (pg_promote without its
	// 100 ms polling) and returns once m accepts writes, polling every
	// few milliseconds, at most timeout. Unlike Promote it does not
	// checkpoint: the caller must (Checkpoint), and may do so while the
	// writes resume.
	EndRecovery(ctx context.Context, m Member, timeout time.Duration) error
}

// WriteHold is one coordinator's transaction of HoldWrites.
type WriteHold interface {
	// Coordinator is the node holding; PID its session's process.
	Coordinator() string
	PID() uint32
	// Lock locks the held tables in EXCLUSIVE mode: writes through the
	// coordinator wait behind it, reads go on. It waits for the
	// transactions that wrote to them to end, at most timeout (or until
	// ctx ends).
	Lock(ctx context.Context, timeout time.Duration) error
	// Repoint renames, in the transaction, the foreign server of old to
	// newName and configures the coordinator from s (coord.RenameServer,
	// coord.Configure); the writes held go to the new master once the
	// transaction commits.
	Repoint(ctx context.Context, s *cluster.State, old, newName string, ok func(cluster.Node) bool) error
	// Commit commits the transaction.
	Commit(ctx context.Context) error
	// Release rolls back what was not committed and closes the
	// connection; the writes held go on.
	Release(ctx context.Context)
}
