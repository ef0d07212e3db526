package mgr

import (
	"os"
	"strings"
	"syscall"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// The crash test hook (adbmgr start --crash-at, for tests/e2e/crash_test.go
// only; off by default and unreachable from SQL): the manager kills itself
// with SIGKILL at one point of a switch, as a crash there would. The point
// is "COMMAND:after STEP" — after the switch step STEP (a
// cluster.GrowStepKind: promote, catalog, follow, …) of a switch whose
// journal command starts with COMMAND ("FAILOVER", "SWITCHOVER dn1",
// "REWIND") — or "COMMAND:journal STEP", once the journal row STEP (start,
// "promote dn1s", catalog, …) of such a command is committed. The growing
// commands have the same points (expand.go): "EXPAND ACTIVATE:after
// prepare" after a cluster.GrowStepKind, "EXPAND DATANODE:journal
// initialized dn3" after a journal row.

// crashAt dies when the hook's point is command's point.
func (m *Manager) crashAt(command, point string) {
	if m.opts.CrashAt == "" {
		return
	}
	prefix, want, ok := strings.Cut(m.opts.CrashAt, ":")
	if !ok || !strings.HasPrefix(command, prefix) || point != want {
		return
	}
	m.log.Warn("crash test hook: killing the manager", "command", command, "point", point)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not delivered synchronously; nothing more may run
}

// crashAfterStep is the hook for the switches (Switches.AfterStep).
func (m *Manager) crashAfterStep() func(string, cluster.SwitchStep) {
	if m.opts.CrashAt == "" {
		return nil
	}
	return func(command string, st cluster.SwitchStep) { m.crashAt(command, "after "+string(st.Kind)) }
}
