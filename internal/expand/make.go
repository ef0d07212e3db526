package expand

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/fleet"
)

// Maker makes one node's data directory: INIT ALL's stages, EXPAND's
// copy and APPEND all go through it, so "make this node a streaming
// standby of that one" is written once.
type Maker struct {
	Fleet    fleet.Fleet
	Progress Progress
	// Mark records in the catalog that the node is initialised. It must
	// run even when ctx was cancelled: the directory exists.
	Mark func(ctx context.Context, node string) error
	// Pause is the wait between two tries of dropping a clone's
	// replication slot; zero means half a second.
	Pause time.Duration
}

// InitDB makes m a new primary's data directory with conf.
func (mk Maker) InitDB(ctx context.Context, m fleet.Member, conf fleet.Conf, walsegMB int32, checksums bool) error {
	if err := mk.Fleet.InitDB(ctx, m, walsegMB, checksums); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := mk.Fleet.Configure(ctx, m, conf); err != nil {
		return err
	}
	return mk.Mark(ctx, m.Name())
}

// Start starts m.
func (mk Maker) Start(ctx context.Context, m fleet.Member) error {
	if _, err := mk.Fleet.Start(ctx, m); err != nil {
		return fmt.Errorf("pg_ctl start: %w", err)
	}
	return nil
}

// Standby makes m a streaming standby of parent and starts it: a slot
// named after m on parent, a base backup, conf, recovery settings and
// standby.signal. A node already initialised is only started.
func (mk Maker) Standby(ctx context.Context, m, parent fleet.Member, conf fleet.Conf) error {
	if !parent.Node.Initialized {
		return fmt.Errorf("its master %q was not initialized", parent.Name())
	}
	if !m.Node.Initialized {
		if err := mk.Fleet.EnsureSlot(ctx, parent, m.Name()); err != nil {
			return fmt.Errorf("create replication slot %q on %s: %w", m.Name(), parent.Name(), err)
		}
		if err := mk.Fleet.BaseBackup(ctx, m, parent, mk.progress(m, parent)); err != nil {
			return fmt.Errorf("pg_basebackup from %s: %w", parent.Name(), err)
		}
		if err := mk.afterBackup(ctx, m, parent, conf); err != nil {
			return err
		}
	}
	return mk.Start(ctx, m)
}

// afterBackup is what follows a standby's base backup before its start:
// conf, recovery settings and standby.signal (the slot was made before
// the base backup: the rest of MakeStandbyOf), the initialised mark.
func (mk Maker) afterBackup(ctx context.Context, m, parent fleet.Member, conf fleet.Conf) error {
	if err := mk.Fleet.Configure(ctx, m, conf); err != nil {
		return err
	}
	if err := mk.Fleet.WriteStandby(ctx, m, parent); err != nil {
		return err
	}
	return mk.Mark(ctx, m.Name())
}

// Resume redoes what follows the base backup of m from parent — the slot
// on parent, conf, recovery settings and standby.signal, the initialised
// mark, the start — for a copy whose base backup succeeded but whose next
// step did not (EXPAND RECOVER BASEBACKUP SUCCESS). A copy that answers as
// a standby already keeps its files: only the mark is made. m must end a
// standby.
func (mk Maker) Resume(ctx context.Context, m, parent fleet.Member, conf fleet.Conf) error {
	if rec, err := mk.Fleet.InRecovery(ctx, m); err == nil {
		if !rec {
			return fmt.Errorf("%s runs as a primary", m.Name())
		}
		return mk.Mark(ctx, m.Name())
	}
	if err := mk.Fleet.EnsureSlot(ctx, parent, m.Name()); err != nil {
		return fmt.Errorf("create replication slot %q on %s: %w", m.Name(), parent.Name(), err)
	}
	if err := mk.afterBackup(ctx, m, parent, conf); err != nil {
		return err
	}
	if err := mk.Start(ctx, m); err != nil {
		return err
	}
	rec, err := mk.Fleet.InRecovery(ctx, m)
	if err != nil {
		return fmt.Errorf("%s started but does not answer: %w", m.Name(), err)
	}
	if !rec {
		return fmt.Errorf("%s started as a primary, not as a standby of %s", m.Name(), parent.Name())
	}
	return nil
}

// Clone makes m a copy of source that starts as a primary of its own: a
// base backup started without standby.signal recovers to the end of the
// copied WAL and opens. The slot on source only holds WAL for the copy:
// it goes when the copy is done.
func (mk Maker) Clone(ctx context.Context, m, source fleet.Member, conf fleet.Conf) error {
	if err := mk.Fleet.EnsureSlot(ctx, source, m.Name()); err != nil {
		return fmt.Errorf("replication slot on %s: %w", source.Name(), err)
	}
	defer mk.dropCopySlot(ctx, m, source)
	if err := mk.Fleet.BaseBackup(ctx, m, source, mk.progress(m, source)); err != nil {
		return fmt.Errorf("pg_basebackup from %s: %w", source.Name(), err)
	}
	if err := mk.Fleet.Configure(ctx, m, conf); err != nil {
		return err
	}
	if err := fleet.Standalone(ctx, mk.Fleet, m); err != nil {
		return fmt.Errorf("recovery settings: %w", err)
	}
	if err := mk.Fleet.SetStandby(ctx, m, false); err != nil {
		return fmt.Errorf("standby.signal: %w", err)
	}
	if err := mk.Mark(ctx, m.Name()); err != nil {
		return err
	}
	return mk.Start(ctx, m)
}

// Reclone replaces m's data directory with a Clone of source: m is
// stopped (fast, then immediate: its data is thrown away, so a clean
// shutdown does not matter) and its directory emptied first. The doctor
// rebuilds a coordinator that missed DDL while out of the cluster this
// way. A failure leaves m stopped, its directory empty or half copied,
// for another Reclone.
func (mk Maker) Reclone(ctx context.Context, m, source fleet.Member, conf fleet.Conf) error {
	if _, err := mk.Fleet.Stop(ctx, m, fleet.Fast); err != nil {
		if _, err2 := mk.Fleet.Stop(ctx, m, fleet.Immediate); err2 != nil {
			return fmt.Errorf("stop %s: %w", m.Name(), errors.Join(err, err2))
		}
	}
	if err := mk.Fleet.CleanDir(ctx, m); err != nil {
		return fmt.Errorf("empty the data directory of %s: %w", m.Name(), err)
	}
	return mk.Clone(ctx, m, source, conf)
}

// dropCopySlot drops the slot of m's copy on source, a few times: its
// walsender may still be marked active for a moment. A cancelled
// statement still drops it.
func (mk Maker) dropCopySlot(ctx context.Context, m, source fleet.Member) {
	ctx = context.WithoutCancel(ctx)
	pause := mk.Pause
	if pause == 0 {
		pause = 500 * time.Millisecond
	}
	for try := 0; try < 10; try++ {
		if gone, err := mk.Fleet.DropSlot(ctx, source, m.Name()); err == nil && gone {
			return
		}
		_ = fleet.Sleep(ctx, pause)
	}
	mk.Progress.Notice("WARNING", fmt.Sprintf(`replication slot "%s" is left on %s; drop it there: SELECT pg_drop_replication_slot('%s')`,
		m.Name(), source.Name(), m.Name()))
}

// progress reports a base backup of m from source as NOTICEs, at most
// every few seconds.
func (mk Maker) progress(m, source fleet.Member) func(doneKB, totalKB int64) {
	return fleet.BackupProgress(func(msg string) { mk.Progress.Notice("NOTICE", msg) }, m, source)
}
