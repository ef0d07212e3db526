package fleet

import (
	"context"
	"fmt"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// The procedures below are made of Fleet calls and written once, here,
// for every executor (switches, expand, the manager's node commands):
// functions over a Fleet rather than methods of it, so the fake needs
// nothing more.

// Notifier hears a procedure's NOTICEs and WARNINGs: a session's client,
// switches.Progress, the manager's log.
type Notifier interface {
	Notice(severity, message string)
}

// Standalone removes m's recovery settings (primary_conninfo,
// primary_slot_name in postgresql.auto.conf). A primary made from a
// standby or a copy keeps them otherwise, and they would point it back at
// its old source if it were ever made a standby by hand.
func Standalone(ctx context.Context, f Fleet, m Member) error {
	return f.SetConf(ctx, m, true, nil, []string{"primary_conninfo", "primary_slot_name"})
}

// DropSlaveSlot drops slave n's replication slot on its master, which
// would otherwise keep WAL for it forever (REMOVE, CLEAN of a slave). A
// master never initialised has none; one that is down keeps it, and a
// NOTICE says how to drop it there.
func DropSlaveSlot(ctx context.Context, f Fleet, s *cluster.State, n cluster.Node, p Notifier) {
	master, ok := s.Node(n.Master)
	if !ok || !master.Initialized {
		return
	}
	m, err := At(s, master)
	if err == nil {
		_, err = f.DropSlot(ctx, m, n.Name)
	}
	if err != nil {
		p.Notice("NOTICE", fmt.Sprintf(`replication slot "%s" on %s was not dropped (%v); drop it there once it runs: SELECT pg_drop_replication_slot('%s')`,
			n.Name, cluster.Describe(master), err, n.Name))
	}
}
