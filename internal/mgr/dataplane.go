package mgr

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/dataplane"
	"github.com/adbmgr/adbmgr/internal/fleet"
)

// The data plane's watch (issue 10): beside the doctor, whether it is on
// or off, the manager
//
//   - every second reads the lock waits of every master in the cluster
//     (fleet.Waits), finds the deadlocks across nodes that no node's own
//     detector sees (dataplane.Find), and cancels each one's victim on its
//     coordinator (fleet.CancelDeadlock), whose client gets "deadlock
//     detected" (40P01); a deadlock broken is logged and journaled
//     ("BREAK DEADLOCK");
//   - every five seconds has each coordinator master and the gtmcoord
//     master finish the prepared transactions left in doubt on the
//     datanodes (adb.resolve_prepared, when the coordinator has it).
//
// Both take no cluster lock and are quiet while they find nothing; a node
// that does not answer is skipped (the doctor and MONITOR speak of it).

const (
	deadlockTick  = time.Second
	resolveTick   = 5 * time.Second
	dataPlaneWait = 3 * time.Second // one round's bound
	// recancel: a victim cancelled is given this long to go before it is
	// cancelled again (its abort reaches the datanodes in milliseconds).
	recancel = 5 * time.Second
)

// startDataPlane starts the two loops; the function it returns waits
// until they have stopped (ctx ended).
func (m *Manager) startDataPlane(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w := &deadlockWatch{cancelled: map[dataplane.Txn]time.Time{}}
		every(ctx, deadlockTick, func() { m.deadlockRound(ctx, w, time.Now()) })
	}()
	go func() {
		defer wg.Done()
		every(ctx, resolveTick, func() { m.resolveRound(ctx) })
	}()
	return wg.Wait
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// deadlockWatch is the deadlock loop's memory: the victims cancelled
// lately.
type deadlockWatch struct {
	cancelled map[dataplane.Txn]time.Time
}

// dataPlaneMembers are the masters in the cluster, and which of them are
// coordinators (the gtmcoord is one).
func dataPlaneMembers(s *cluster.State) (all []fleet.Member, coordinators map[string]fleet.Member) {
	coordinators = map[string]fleet.Member{}
	for _, n := range s.Nodes {
		if !n.Initialized || !n.InCluster || !n.Type.IsMaster() {
			continue
		}
		mb, err := fleet.At(s, n)
		if err != nil {
			continue
		}
		all = append(all, mb)
		if n.Type == cluster.CoordinatorMaster || n.Type == cluster.GtmcoordMaster {
			coordinators[n.Name] = mb
		}
	}
	return all, coordinators
}

// deadlockRound reads every master's waits at once and breaks the
// deadlocks found.
func (m *Manager) deadlockRound(ctx context.Context, w *deadlockWatch, now time.Time) {
	rctx, cancel := context.WithTimeout(ctx, dataPlaneWait)
	defer cancel()
	s, err := m.state(rctx)
	if err != nil {
		m.log.Debug("deadlock watch: cannot read the catalog", "error", err)
		return
	}
	all, coordinators := dataPlaneMembers(s)
	waits := make([]dataplane.NodeWaits, len(all))
	ok := make([]bool, len(all))
	var wg sync.WaitGroup
	for i, mb := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, coord := coordinators[mb.Name()]
			nw, err := m.fleet.Waits(rctx, mb, coord)
			if err != nil {
				m.log.Debug("deadlock watch: cannot read a node's waits", "node", mb.Name(), "error", err)
				return
			}
			waits[i], ok[i] = nw, true
		}()
	}
	wg.Wait()
	var read []dataplane.NodeWaits
	for i := range waits {
		if ok[i] {
			read = append(read, waits[i])
		}
	}
	for v, at := range w.cancelled {
		if now.Sub(at) > recancel {
			delete(w.cancelled, v)
		}
	}
	for _, d := range dataplane.Find(read, dataplane.DefaultConfig) {
		if _, recent := w.cancelled[d.Victim]; recent {
			continue
		}
		m.breakDeadlock(ctx, d, coordinators)
		w.cancelled[d.Victim] = now
	}
}

// breakDeadlock cancels d's victim on its coordinator and says so.
func (m *Manager) breakDeadlock(ctx context.Context, d dataplane.Deadlock, coordinators map[string]fleet.Member) {
	nodes := strings.Join(d.Nodes(), ", ")
	c, ok := coordinators[d.Victim.Coordinator]
	if !ok {
		m.log.Warn("deadlock across nodes: the victim's coordinator is not a coordinator master of the cluster; left to time out",
			"victim", d.Victim.String(), "nodes", nodes, "detail", d.Detail())
		return
	}
	cctx, cancel := context.WithTimeout(ctx, dataPlaneWait)
	defer cancel()
	done, err := m.fleet.CancelDeadlock(cctx, c, d)
	switch {
	case err != nil:
		m.log.Warn("deadlock across nodes: cannot cancel the victim", "victim", d.Victim.String(), "nodes", nodes, "error", err)
		return
	case !done:
		m.log.Info("deadlock across nodes: the victim had ended meanwhile", "victim", d.Victim.String(), "nodes", nodes)
		return
	}
	m.log.Warn("deadlock across nodes broken: victim cancelled", "victim", d.Victim.String(), "nodes", nodes, "detail", d.Detail())
	jctx, jcancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer jcancel()
	if _, err := m.cat.Journal(jctx, 0, "BREAK DEADLOCK", "done", fmt.Sprintf("cancelled %s on %s", d.Victim, c.Name()), d.Detail()); err != nil {
		m.log.Warn("deadlock watch: cannot journal", "error", err)
	}
}

// resolveRound has every coordinator master finish its transactions in
// doubt.
func (m *Manager) resolveRound(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, resolveTick)
	defer cancel()
	s, err := m.state(rctx)
	if err != nil {
		m.log.Debug("in-doubt resolution: cannot read the catalog", "error", err)
		return
	}
	_, coordinators := dataPlaneMembers(s)
	var wg sync.WaitGroup
	for _, c := range coordinators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, has, err := m.fleet.ResolvePrepared(rctx, c)
			switch {
			case err != nil:
				m.log.Debug("in-doubt resolution failed", "coordinator", c.Name(), "error", err)
			case has && done != "" && done != "0":
				m.log.Info("in-doubt transactions resolved", "coordinator", c.Name(), "result", done)
			}
		}()
	}
	wg.Wait()
}
