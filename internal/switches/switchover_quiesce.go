package switches

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// The write pause of a SWITCHOVER: before the master is stopped, its
// clients' transactions are waited for (AntDB's quiesce, reference §4.12
// step 7) while the coordinators hold new writes to the master's tables —
// a held write waits and then goes to the new master, it does not fail;
// once the new master is promoted the coordinators are re-pointed in the
// holding transactions, which commit, and the held writes go on. Writes
// made directly on the master cannot be held: they fail while it is
// stopped, and their clients reconnect to the new master.

const (
	// quietPoll is how often the sessions are counted while waiting.
	quietPoll = 50 * time.Millisecond
	// forceWait bounds, with FORCE, the wait for the holds once the
	// sessions in their way were ended, in Switches.Second.
	forceWait = 3
	// promoteWait bounds a quick promotion.
	promoteWait = time.Minute
)

// errBusy is the refusal of a switchover whose master's clients kept
// their transactions open for maxTrys seconds.
var errBusy = pgerror.New(pgerror.ObjectNotInPrereqState, "there are some active connections on coordinators or datanode masters").
	WithHint("Wait until they end, give SWITCHOVER more seconds (its last argument), or add FORCE to end them.")

// quiesce is the SwitchQuiesce step on the master st.Node: the writes
// held at the coordinators (cluster.SwitchoverQuiet), then, every
// quietPoll, the busy sessions counted until there are none and every
// hold has its locks. Without Force it gives up after st.Seconds, says
// which nodes were busy, releases the holds and refuses: nothing changed.
// With Force it ends the busy sessions and goes on, at worst without the
// holds that could not lock. Between two counts the doctor may act on
// nodes outside the switch (switchover_wait.go); when it did, the catalog
// is read again and the sessions counted once more before the switch
// goes on.
func (r *switchRun) quiesce(ctx context.Context, st cluster.SwitchStep) error {
	q := cluster.SwitchoverQuiet(r.sn.State, st.Node)
	scope := waitScope(r.sn.State, st.Node, q)
	// Every way out ends the scope: the doctor's actions end before the
	// master is stopped or the cluster lock freed.
	defer r.endWait()
	second := r.x.Second
	if second == 0 {
		second = time.Second
	}
	wait := time.Duration(st.Seconds) * second
	if st.Force {
		wait = min(wait, forceWait*second)
	} else {
		r.p.Notice("NOTICE", fmt.Sprintf("wait max %d seconds to wait there are no active connections on coordinators and master nodes", st.Seconds))
	}
	deadline := time.Now().Add(wait)
	r.hold(ctx, q, wait)
	var holders []uint32
	for _, h := range r.holds {
		holders = append(holders, h.PID())
	}
	var said time.Time
	for {
		busy, n, down := r.busy(ctx, q, holders, st.Force)
		if down != nil {
			// AntDB connects every coordinator first: a node whose
			// sessions cannot be counted is not waited for.
			r.releaseHolds(ctx)
			return fleet.WrapAs(down, pgerror.ObjectNotInPrereqState,
				"Bring it back, or use FORCE to switch without waiting for its clients.",
				"cannot count the client sessions of every node before the switch")
		}
		// A write through a coordinator that began before its hold
		// locked ends before the lock is granted: once every hold has its
		// locks after a count that found nobody, nothing runs that the
		// stop would cut short but what could not be held anyway.
		if n == 0 && r.waitLocks(ctx, deadline) {
			guests, err := r.closeWait(ctx, st.Node, q)
			if err != nil {
				r.releaseHolds(ctx)
				return err
			}
			if !guests {
				return nil
			}
			continue // the doctor acted meanwhile: count again
		}
		late := !time.Now().Before(deadline)
		if (late || time.Since(said) >= second) && !st.Force {
			said = time.Now()
			for _, b := range busy {
				r.p.Notice("NOTICE", fmt.Sprintf("%s has %d active connections", b.node, b.n))
			}
		}
		if late {
			_, cerr := r.closeWait(ctx, st.Node, q)
			if err := r.quietLate(ctx, st.Force); err != nil {
				return err
			}
			if cerr != nil {
				r.releaseHolds(ctx)
			}
			return cerr
		}
		r.openWait(scope)
		if err := fleet.Sleep(ctx, quietPoll); err != nil {
			r.releaseHolds(ctx)
			return err
		}
	}
}

// quietFailed is the failure rule of a switchover's quiesce step: nothing
// was changed (the master was not touched, the holds are released), so
// nothing is reverted — the journal says the switch was refused at the
// quiesce, and why — and the doctor may act on the master again.
func (r *switchRun) quietFailed(ctx context.Context, st cluster.SwitchStep, err error) error {
	if st.Kind != cluster.SwitchQuiesce {
		return r.switched(ctx, st, err)
	}
	ctx = context.WithoutCancel(ctx)
	r.releaseHolds(ctx)
	r.x.Catalog.Commit(ctx, r.j, Step{"failed", string(st.Kind), err.Error()}, allowCure(r.old.Name(), r.old.Node.AllowCure))
	return err
}

// heldCoord is one coordinator's hold, its Lock running on its own.
type heldCoord struct {
	fleet.WriteHold
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Lock's, once done is closed
}

// granted reports whether the hold has its locks.
func (h *heldCoord) granted() bool {
	select {
	case <-h.done:
		return h.err == nil
	default:
		return false
	}
}

// release stops a Lock still waiting, then rolls the hold back.
func (h *heldCoord) release(ctx context.Context) {
	h.cancel()
	<-h.done
	h.Release(ctx)
}

// hold opens the holds of q in parallel and starts their locks, each
// waiting at most wait; a coordinator whose writes cannot be held is said
// and skipped (its writes may fail while the master is down, as without a
// hold).
func (r *switchRun) hold(ctx context.Context, q cluster.Quiet, wait time.Duration) {
	holds := make([]*heldCoord, len(q.Hold))
	errs := make([]error, len(q.Hold))
	var wg sync.WaitGroup
	for i, c := range q.Hold {
		m, err := r.member(c)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := r.x.Fleet.HoldWrites(ctx, m, q.Server)
			if err != nil {
				errs[i] = err
				return
			}
			lctx, cancel := context.WithCancel(ctx)
			hc := &heldCoord{WriteHold: h, cancel: cancel, done: make(chan struct{})}
			holds[i] = hc
			go func() {
				defer close(hc.done)
				hc.err = h.Lock(lctx, wait)
			}()
		}()
	}
	wg.Wait()
	for i, c := range q.Hold {
		if errs[i] != nil {
			r.p.Notice("WARNING", fmt.Sprintf("the writes through %s cannot be held during the switch: %s", c, errs[i]))
			continue
		}
		r.holds = append(r.holds, holds[i])
	}
}

// waitLocks waits until every hold has its locks (true), one of them
// failed or deadline passed.
func (r *switchRun) waitLocks(ctx context.Context, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for _, h := range r.holds {
		select {
		case <-h.done:
			if h.err != nil {
				return false
			}
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// busyNode is a node's count of busy sessions.
type busyNode struct {
	node string
	n    int
}

// busy counts the busy sessions of q's nodes in parallel — with force it
// ends them — and returns the nodes that had some, in q's order, and
// how many nodes that is. A node that cannot be asked counts as busy (with -1)
// unless force: its sessions cannot be known; its error is in down.
func (r *switchRun) busy(ctx context.Context, q cluster.Quiet, holders []uint32, force bool) (out []busyNode, n int, down error) {
	counts := make([]int, len(q.Count))
	errs := make([]error, len(q.Count))
	var wg sync.WaitGroup
	for i, name := range q.Count {
		m, err := r.member(name)
		if err != nil {
			continue
		}
		idle := i == 0 // the master: every open transaction dies with it
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int
			var err error
			if force {
				n, err = r.x.Fleet.EndSessions(ctx, m, holders, idle)
			} else {
				n, err = r.x.Fleet.Busy(ctx, m, holders, idle)
			}
			if err != nil && !force {
				n = -1
				errs[i] = fleet.Wrap(err, "%s", name)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	for i, n := range counts {
		if n > 0 && force {
			// Said here: a Progress is not safe for concurrent use.
			r.p.Notice("NOTICE", fmt.Sprintf("%s: ended %d client sessions", q.Count[i], n))
		}
		if n != 0 {
			out = append(out, busyNode{q.Count[i], n})
		}
	}
	return out, len(out), errors.Join(errs...)
}

// quietLate ends a wait that ran out of time: without force a refusal
// (holds released, nothing changed); with force the holds that did not
// lock are released and the switch goes on.
func (r *switchRun) quietLate(ctx context.Context, force bool) error {
	if !force {
		for _, h := range r.holds {
			if !h.granted() {
				r.p.Notice("NOTICE", fmt.Sprintf("%s: the writes could not be held: transactions in the way", h.Coordinator()))
			}
		}
		r.releaseHolds(ctx)
		return errBusy
	}
	var kept []*heldCoord
	for _, h := range r.holds {
		if h.granted() {
			kept = append(kept, h)
			continue
		}
		r.p.Notice("WARNING", fmt.Sprintf("the writes through %s are not held during the switch", h.Coordinator()))
		h.release(ctx)
	}
	r.holds = kept
	return nil
}

// releaseHolds lets the held writes go on, to wherever the coordinators
// route them.
func (r *switchRun) releaseHolds(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, h := range r.holds {
		h.release(ctx)
	}
	r.holds = nil
}

// route re-points the coordinators at the new master st.Node (the foreign
// server of st.From renamed): a held coordinator in its holding
// transaction, whose commit lets its held writes go to the new master;
// the others as every switch does (RefreshCoordinators).
func (r *switchRun) route(ctx context.Context, st cluster.SwitchStep) {
	errs := make([]error, len(r.holds))
	var wg sync.WaitGroup
	for i, h := range r.holds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Repoint(ctx, r.sn.State, st.From, st.Node, inCluster)
			if errs[i] == nil {
				errs[i] = h.Commit(ctx)
			}
			h.release(ctx) // committed: only the connection closes
		}()
	}
	wg.Wait()
	done := map[string]bool{}
	for i, h := range r.holds {
		if errs[i] != nil {
			r.p.Notice("WARNING", fmt.Sprintf("could not re-point %s in its hold: %s", h.Coordinator(), errs[i]))
			continue
		}
		done[h.Coordinator()] = true
	}
	r.holds = nil
	refreshCoordinators(ctx, r.x.Fleet, r.sn.State, st.From, st.Node, r.p, done)
}

// promoteQuick is a switchover's promotion: over SQL, not waiting for a
// checkpoint (a SwitchCheckpoint step follows once the writes resume).
func (r *switchRun) promoteQuick(ctx context.Context, m fleet.Member) error {
	return promoteWith(ctx, r.x.Fleet, m, r.p, func(ctx context.Context, m fleet.Member) error {
		return r.x.Fleet.EndRecovery(ctx, m, promoteWait)
	})
}
