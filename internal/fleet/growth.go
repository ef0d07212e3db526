package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/coord"
)

// Growth is what INIT ALL, EXPAND and APPEND do to nodes beyond the
// switches' needs: making data directories, and the coordinators' side
// of moving slots.
type Growth interface {
	// InitDB creates m's data directory with initdb (walsegMB 0: the
	// default WAL segment size).
	InitDB(ctx context.Context, m Member, walsegMB int32, checksums bool) error
	// BaseBackup fills m's empty data directory with pg_basebackup from
	// source, over the replication slot named after m (which must exist
	// on source). progress, when not nil, hears how far it got.
	BaseBackup(ctx context.Context, m, source Member, progress func(doneKB, totalKB int64)) error
	// SetStandby creates (or removes) m's standby.signal.
	SetStandby(ctx context.Context, m Member, standby bool) error
	// DropSlot drops the replication slot on m unless it is active; gone
	// reports that no slot of that name is left.
	DropSlot(ctx context.Context, m Member, slot string) (gone bool, err error)
	// HasSlot tells whether m holds a replication slot of that name.
	HasSlot(ctx context.Context, m Member, slot string) (bool, error)

	// SlotsOf reads, in coordinator c's adb.slot, the slots node owns.
	SlotsOf(ctx context.Context, c Member, node string) ([]int, error)
	// DistributedTables lists coordinator c's distributed tables.
	DistributedTables(ctx context.Context, c Member) ([]coord.Table, error)
	// Fingerprint reads coordinator c's coord.Fingerprint: equal on two
	// coordinators that route every distributed table alike.
	Fingerprint(ctx context.Context, c Member) (string, error)
	// HoldSlots opens, on coordinator c, a transaction that locks the
	// distributed tables with a partition of slots on datanode src's
	// server (coord.LockTable): writes through c pause until the hold is
	// committed or released.
	HoldSlots(ctx context.Context, c Member, src string, slots []int) (SlotHold, error)
	// TruncateShards empties, on datanode m, the shard tables of tables
	// for slots that exist, and returns how many it emptied.
	TruncateShards(ctx context.Context, m Member, tables []coord.Table, slots []int) (int, error)
	// FinishHold commits (or rolls back) the SlotHold prepared as gid on
	// coordinator c (coord.HoldGID), if one waits there: what a manager
	// that ended between the prepare and the commit left.
	FinishHold(ctx context.Context, c Member, gid string, commit bool) (found bool, err error)
}

// SlotHold is one coordinator's open transaction of HoldSlots.
type SlotHold interface {
	// Coordinator is the node holding.
	Coordinator() string
	// Repoint re-creates, in the transaction, the held partitions as
	// foreign tables on dst's server and gives dst slots in adb.slot
	// (coord.Repoint).
	Repoint(ctx context.Context, dst Member, slots []int) error
	// Prepare prepares the transaction as gid (PREPARE TRANSACTION): it
	// then outlives the connection, holding its locks, until Commit,
	// Release or Fleet.FinishHold ends it.
	Prepare(ctx context.Context, gid string) error
	// Commit commits the transaction (COMMIT PREPARED once prepared).
	Commit(ctx context.Context) error
	// Release rolls back what was not committed (prepared too) and closes
	// the connection.
	Release(ctx context.Context)
	// Leave closes the connection; a prepared transaction stays prepared,
	// for Fleet.FinishHold: once the destination is promoted, only its
	// commit is right.
	Leave(ctx context.Context)
}

// Sleep waits d, or until ctx ends (its error then): the one pause of the
// executors over the fleet.
func Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }

// BackupProgress is a BaseBackup progress function that tells notice how
// far the copy of m from source got, at most every few seconds: INIT
// ALL's, EXPAND's, APPEND's and REWIND … BASEBACKUP's NOTICEs alike.
func BackupProgress(notice func(message string), m, source Member) func(doneKB, totalKB int64) {
	last := time.Now()
	return func(done, total int64) {
		if time.Since(last) > 3*time.Second && total > 0 {
			last = time.Now()
			notice(fmt.Sprintf("%s: pg_basebackup from %s %d/%d kB (%d%%)", m.Name(), source.Name(), done, total, done*100/total))
		}
	}
}
