package expand

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// run executes the steps of one cluster.GrowPlan: EXPAND's and APPEND's
// one executor.
type run struct {
	x  *Expander
	p  Progress
	sn Snapshot // the catalog at the start
	j  *journal
	// done decides the state reached, at the GrowCatalog step.
	done func(*cluster.State, cluster.GrowStep) (cluster.GrowPlan, error)
	// APPEND of a datanode master: initdb's options.
	walseg    int32
	checksums bool
	// EXPAND ACTIVATE: the coordinators' transactions that hold the
	// moving slots, from GrowBlockWrites to GrowCommit.
	holds []fleet.SlotHold
	// EXPAND CLEAN: the distributed tables, and a result row per node.
	tables []coord.Table
	rows   []Row

	// committed is set once GrowCatalog wrote; result is what it wrote.
	committed bool
	result    cluster.GrowPlan
	// failed is the step that failed.
	failed cluster.GrowStep
	// promoted is set once a node was promoted.
	promoted bool
	// slots are what the coordinators route to the destination, once
	// GrowFinishHolds committed them.
	slots []int
}

// steps does the steps in order and stops at the first failure. After a
// promotion or the catalog write the rest runs even if the statement is
// cancelled: the cluster has changed and must be made consistent.
func (r *run) steps(ctx context.Context, steps []cluster.GrowStep) error {
	for _, st := range steps {
		if err := r.step(ctx, st); err != nil {
			r.failed = st
			return err
		}
		if st.Notice != "" {
			r.p.Notice("NOTICE", st.Notice)
		}
		// An activation's journal entry names its last step once the
		// coordinators hold prepared transactions: what a DBA reads after
		// a manager's end (EXPAND ACTIVATE RECOVER … follows from it).
		if len(r.holds) > 0 && (st.Kind == cluster.GrowPrepare || st.Kind == cluster.GrowPromote || st.Kind == cluster.GrowCommit) {
			r.j.note(context.WithoutCancel(ctx), "running", string(st.Kind)+" "+st.Node, "")
		}
		if r.x.AfterStep != nil {
			r.x.AfterStep(r.j.j.Command, st)
		}
		switch st.Kind {
		case cluster.GrowPromote, cluster.GrowCatalog, cluster.GrowFinishHolds, cluster.GrowStop:
			ctx = context.WithoutCancel(ctx)
		}
	}
	return nil
}

// release rolls back the coordinators' transactions not committed —
// unless the destination was promoted: then a prepared one is left for
// EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS to commit (rolled back, its
// coordinator would route the moving slots to the source, which no longer
// has them all), the writes through it paused meanwhile.
func (r *run) release(ctx context.Context) {
	for _, h := range r.holds {
		if r.promoted {
			h.Leave(ctx)
		} else {
			h.Release(ctx)
		}
	}
	r.holds = nil
}

func (r *run) step(ctx context.Context, st cluster.GrowStep) error {
	switch st.Kind {
	case cluster.GrowBaseBackup, cluster.GrowInitDB, cluster.GrowStart, cluster.GrowClone:
		return r.make(ctx, st)
	case cluster.GrowCatalog:
		return r.catalog(ctx, st)
	case cluster.GrowPromote:
		m, err := member(r.sn.State, st.Node)
		if err != nil {
			return err
		}
		if err := switches.Promote(ctx, r.x.Fleet, m, r.p); err != nil {
			return err
		}
		r.promoted = true
		return nil
	case cluster.GrowPrepare:
		for _, h := range r.holds {
			if err := h.Prepare(ctx, coord.HoldGID(st.Node)); err != nil {
				return err
			}
		}
		return nil
	case cluster.GrowAbandonHolds:
		return r.abandonHolds(ctx, st.Node)
	case cluster.GrowFinishHolds:
		if err := r.finishHolds(ctx, st); err != nil {
			return err
		}
		r.promoted = true
		return nil
	case cluster.GrowResume:
		return r.resume(ctx, st)
	case cluster.GrowStop, cluster.GrowEmpty:
		m, err := member(r.sn.State, st.Node)
		if err != nil {
			return err
		}
		if st.Kind == cluster.GrowStop {
			_, err = r.x.Fleet.Stop(ctx, m, fleet.Immediate)
			return err
		}
		return r.x.Fleet.CleanDir(ctx, m)
	case cluster.GrowStandalone:
		// A primary keeps the recovery settings it had as a standby; they
		// would point it back at its source if it were ever made a standby
		// by hand. Best effort, as after every promotion.
		if m, err := member(r.sn.State, st.Node); err == nil {
			_ = fleet.Standalone(ctx, r.x.Fleet, m)
		}
		return nil
	case cluster.GrowDropSlot:
		// A few tries: the walsender of the copy, just promoted or
		// stopped, may still hold the slot a moment; one left behind
		// would keep WAL on the source for ever (a WARNING says so).
		src, err1 := member(r.sn.State, st.From)
		dst, err2 := member(r.sn.State, st.Node)
		if err1 == nil && err2 == nil {
			Maker{Fleet: r.x.Fleet, Progress: r.p, Pause: r.x.Pause}.dropCopySlot(ctx, dst, src)
		}
		return nil
	case cluster.GrowSyncNames, cluster.GrowRefreshCoordinators:
		r.after(ctx, st)
		return nil
	case cluster.GrowBlockWrites:
		return r.blockWrites(ctx, st)
	case cluster.GrowWaitReplay:
		return r.waitReplay(ctx, st)
	case cluster.GrowRepoint:
		return r.repoint(ctx, st)
	case cluster.GrowCommit:
		return r.commitHolds(ctx, st)
	case cluster.GrowTruncate:
		return r.truncate(ctx, st.Node)
	}
	return fmt.Errorf("unknown step %q", st.Kind)
}

// catalog writes the state reached (done). After a promotion it is tried
// a few times: the catalog must follow the nodes, or the next EXPAND
// ACTIVATE would move slots of a source that no longer owns them.
func (r *run) catalog(ctx context.Context, st cluster.GrowStep) error {
	tries := 1
	if r.promoted {
		tries = 5
	}
	var err error
	for try := 0; try < tries; try++ {
		if try > 0 {
			if err := fleet.Sleep(ctx, r.x.pause()); err != nil {
				return err
			}
		}
		var p cluster.GrowPlan
		p, err = r.j.commit(ctx, r.p, func(s *cluster.State) (cluster.GrowPlan, error) { return r.done(s, st) })
		if err == nil {
			r.committed, r.result = true, p
			return nil
		}
	}
	return err
}

// make makes st.Node's data directory (Maker): a standby of st.From, a
// new primary, a clone of st.From — or starts it.
func (r *run) make(ctx context.Context, st cluster.GrowStep) error {
	s := r.sn.State
	n, _ := s.Node(st.Node)
	if st.Kind == cluster.GrowBaseBackup {
		// A copy (EXPAND's destination, APPEND COORDINATOR … FOR …) is
		// from's slave until its activation.
		n.Master = st.From
	}
	m, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	mk := Maker{Fleet: r.x.Fleet, Progress: r.p, Pause: r.x.Pause, Mark: r.mark}
	if st.Kind == cluster.GrowStart {
		return mk.Start(ctx, m)
	}
	conf, err := r.x.Conf(r.sn, n)
	if err != nil {
		return err
	}
	switch st.Kind {
	case cluster.GrowInitDB:
		return mk.InitDB(ctx, m, conf, r.walseg, r.checksums)
	case cluster.GrowClone:
		src, err := member(s, st.From)
		if err != nil {
			return err
		}
		return mk.Clone(ctx, m, src, conf)
	}
	parent, ok := s.Node(st.From)
	if !ok {
		return fmt.Errorf("its master %q was not initialized", st.From)
	}
	pm, err := fleet.At(s, parent)
	if err != nil {
		return err
	}
	return mk.Standby(ctx, m, pm, conf)
}

// mark records that node is initialised, with the journal row that says
// so (the state the command reaches is written at its GrowCatalog step).
func (r *run) mark(ctx context.Context, node string) error {
	_, err := r.j.commit(ctx, r.p, func(s *cluster.State) (cluster.GrowPlan, error) {
		p := cluster.GrowPlan{Journal: cluster.JournalEntry{Status: "running", Step: "initialized " + node}}
		if n, ok := s.Node(node); ok {
			n.Initialized = true
			p.UpdateNodes = []cluster.Node{n}
		}
		return p, nil
	})
	return err
}

// after brings the running nodes up to date with the catalog once a node
// joined: its master's sync names, the coordinators. Failures are
// warnings: the node is in the cluster already.
func (r *run) after(ctx context.Context, st cluster.GrowStep) {
	sn, err := r.x.Catalog.Read(ctx)
	if err != nil {
		r.p.Notice("WARNING", fmt.Sprintf("%s: %s", st.Kind, err))
		return
	}
	if st.Kind == cluster.GrowRefreshCoordinators {
		switches.RefreshCoordinators(ctx, r.x.Fleet, sn.State, "", "", r.p)
		return
	}
	p, _ := sn.State.Node(st.From)
	if err := switches.SyncNames(ctx, r.x.Fleet, sn.State, p, inCluster, true, r.p); err != nil {
		r.p.Notice("WARNING", err.Error())
	}
}

// blockWrites pauses writes to st.Slots: on every coordinator, one
// transaction locks the distributed tables that have a partition of
// those slots on st.From. The source must answer first: its position is
// what the destination must reach.
func (r *run) blockWrites(ctx context.Context, st cluster.GrowStep) error {
	s := r.sn.State
	src, err := member(s, st.From)
	if err != nil {
		return err
	}
	if _, err := member(s, st.Node); err != nil {
		return err
	}
	if !r.x.Fleet.Probe(ctx, src).Reachable {
		return fmt.Errorf("connect %s: it does not answer", src.Name())
	}
	for _, cn := range coordinators(s) {
		c, err := fleet.At(s, cn)
		if err != nil {
			return err
		}
		h, err := r.x.Fleet.HoldSlots(ctx, c, src.Name(), st.Slots)
		if err != nil {
			return err
		}
		r.holds = append(r.holds, h)
	}
	return nil
}

// waitReplay waits up to 20 s for the destination to replay the source's
// current WAL position. The coordinators hold their locks meanwhile: a
// cancel ends the wait at once (Fleet.WaitReplay).
func (r *run) waitReplay(ctx context.Context, st cluster.GrowStep) error {
	src, err := member(r.sn.State, st.From)
	if err != nil {
		return err
	}
	dst, err := member(r.sn.State, st.Node)
	if err != nil {
		return err
	}
	pr := r.x.Fleet.Probe(ctx, src)
	if !pr.Reachable {
		return fmt.Errorf("connect %s: it does not answer", src.Name())
	}
	// The source's position is the end of its last record; the
	// destination has it all once it replayed up to there (WaitReplay
	// waits for a position beyond its argument).
	want := pr.LSN
	if want > 0 {
		want--
	}
	if err := r.x.Fleet.WaitReplay(ctx, dst, want, replayWait); err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("expend src node and dst node can not sync in 20 seconds")
	}
	return nil
}

// repoint re-creates, in the held transactions, the moving partitions as
// foreign tables on the destination's server and gives it the slots. A
// failure here rolls everything back with the destination still a
// standby.
func (r *run) repoint(ctx context.Context, st cluster.GrowStep) error {
	dst, err := member(r.sn.State, st.Node)
	if err != nil {
		return err
	}
	for _, h := range r.holds {
		if err := h.Repoint(ctx, dst, st.Slots); err != nil {
			return fmt.Errorf("re-point the slots on a coordinator: %w", err)
		}
	}
	return nil
}

// commitHolds commits the coordinators' transactions, the destination
// being promoted: from now on the moving slots are the destination's.
func (r *run) commitHolds(ctx context.Context, st cluster.GrowStep) error {
	var failed []string
	for _, h := range r.holds {
		if err := h.Commit(ctx); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "%s was promoted but the new slot map did not commit on every coordinator (%s)",
			st.Node, strings.Join(failed, "; ")).WithHint("EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS %s commits it where it waits.", st.Node)
	}
	return nil
}

// truncate empties, on node, the shard tables of the slots it does not
// own, and adds its result row.
func (r *run) truncate(ctx context.Context, node string) error {
	s := r.sn.State
	n, ok := s.Node(node)
	if !ok {
		return nil
	}
	c, err := firstCoordinator(s)
	if err != nil {
		return err
	}
	owned, err := r.x.Fleet.SlotsOf(ctx, c, node)
	if err != nil {
		return err
	}
	m, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	emptied, err := r.x.Fleet.TruncateShards(ctx, m, r.tables, cluster.Unowned(owned, coord.Slots))
	if err != nil {
		return fmt.Errorf("clean %s: %w", node, err)
	}
	r.rows = append(r.rows, Row{Node: node, OK: true, Description: fmt.Sprintf("%d shard tables emptied", emptied)})
	return nil
}
