package mgr

import (
	"context"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/expand"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// Rejoin takes a waiting (isolated) coordinator back in the cluster,
// level with the others: what it missed while out — distributed tables
// created, dropped or altered through another coordinator, slots EXPAND
// moved, roles — would make queries through it fail or differ.
//
// Under the cluster lock, the catalog read again (under): it is started,
// configured (node list, servers: a failover it missed only renames a
// server) and its coord.Fingerprint compared with a live coordinator's
// (doctor.RejoinSources: the gtmcoord master first). When they differ, or
// it does not start or cannot be read (doctor.Rebuild), it is rebuilt
// from that coordinator as APPEND COORDINATOR copies one (expand.Maker's
// Reclone: stopped, emptied, a base backup of the source made a
// standalone coordinator with its own configuration) and configured
// again. Only then is it in the cluster (doctor.PlanRejoin) and in every
// coordinator's node list; then it is compared once more, since DDL
// through another coordinator between the copy and the node lists'
// refresh would have missed it: a difference takes it out again
// (doctor.PlanIsolate) for the next round's rebuild. Every step is a row
// of the DOCTOR REJOIN entry. A failure before it joined leaves it
// isolated — and stopped if this action started it, so that it does not
// serve a stale catalog. Alone (no other coordinator in the cluster) it
// is only started: there is nothing to compare it with.
func (d doctorHands) Rejoin(ctx context.Context, node string) error {
	return d.under(ctx, doctor.Rejoin, node, true, func(j *switches.Journal, s *cluster.State, n watched) (string, error) {
		t, err := fleet.At(s, n.Node)
		if err != nil {
			return "", err
		}
		lv := leveller{d: d, j: j, s: s, t: t}
		detail, err := lv.level(ctx)
		if err == nil {
			err = d.commit(ctx, j, switches.Step{Status: "running", Name: "rejoin", Detail: detail}, func(s *cluster.State) cluster.Plan {
				return doctor.PlanRejoin(s, node)
			})
		}
		if err != nil {
			lv.stopIfStarted(ctx)
			return "", err
		}
		_ = d.refresh(ctx, node)
		if err := lv.verify(ctx); err != nil {
			return "", err
		}
		return detail, nil
	})
}

// leveller brings one waiting coordinator level with a live one.
type leveller struct {
	d doctorHands
	j *switches.Journal
	s *cluster.State
	t fleet.Member
	// started: this action started it (a failure stops it again).
	started bool
}

// joining selects the nodes of the node list the coordinator is given
// before it joins: those in the cluster and itself.
func (lv *leveller) joining(n cluster.Node) bool { return n.InCluster || n.Name == lv.t.Name() }

// level starts the coordinator and, unless it is alike its source,
// rebuilds it; it returns the journal's detail.
func (lv *leveller) level(ctx context.Context) (string, error) {
	f := lv.d.m.fleet
	sources := doctor.RejoinSources(lv.s, lv.t.Name())
	if len(sources) == 0 {
		if err := lv.start(ctx); err != nil {
			return "", err
		}
		return "started; no other coordinator in the cluster to compare it with", nil
	}
	src, theirs, err := lv.source(ctx, sources)
	if err != nil {
		return "", err
	}
	look := doctor.RejoinLook{Source: src.Name(), Theirs: theirs}
	if look.StartErr = lv.start(ctx); look.StartErr == nil {
		// Its node list and servers first: a failover it missed renames
		// a server, which needs no copy.
		if look.MineErr = f.ConfigureCoordinator(ctx, lv.s, lv.t, lv.joining); look.MineErr == nil {
			look.Mine, look.MineErr = lv.fingerprint(ctx, lv.t)
		}
	}
	why, rebuild := doctor.Rebuild(look)
	if !rebuild {
		return "started; its catalog matches " + src.Name() + "'s", nil
	}
	if err := lv.note(ctx, "rebuild", "from "+src.Name()+": "+why); err != nil {
		return "", err
	}
	if err := lv.rebuild(ctx, src); err != nil {
		return "", fmt.Errorf("rebuild from %s: %w", src.Name(), err)
	}
	if err := f.ConfigureCoordinator(ctx, lv.s, lv.t, lv.joining); err != nil {
		return "", fmt.Errorf("configure it after its rebuild: %w", err)
	}
	return "rebuilt from " + src.Name() + " (" + why + ")", nil
}

// start starts the coordinator, remembering whether it was stopped.
func (lv *leveller) start(ctx context.Context) error {
	already, err := lv.d.m.fleet.Start(ctx, lv.t)
	if err == nil && !already {
		lv.started = true
	}
	return err
}

// stopIfStarted stops the coordinator again when this action started it
// and could not take it back.
func (lv *leveller) stopIfStarted(ctx context.Context) {
	if lv.started {
		lv.stop(ctx)
	}
}

// stop stops the coordinator that is out of the cluster again, so that it
// serves no stale catalog.
func (lv *leveller) stop(ctx context.Context) {
	if _, err := lv.d.m.fleet.Stop(context.WithoutCancel(ctx), lv.t, fleet.Fast); err != nil {
		lv.d.m.log.Warn("doctor: cannot stop a coordinator out of the cluster", "node", lv.t.Name(), "error", err)
	}
}

// source is the first of sources whose fingerprint can be read, with it.
func (lv *leveller) source(ctx context.Context, sources []cluster.Node) (fleet.Member, string, error) {
	var last error
	for _, n := range sources {
		m, err := fleet.At(lv.s, n)
		if err != nil {
			last = err
			continue
		}
		p, err := lv.fingerprint(ctx, m)
		if err == nil {
			return m, p, nil
		}
		last = fmt.Errorf("%s: %w", n.Name, err)
	}
	return fleet.Member{}, "", fmt.Errorf("no coordinator in the cluster answers to compare it with (%w)", last)
}

// fingerprint reads m's coord.Fingerprint.
func (lv *leveller) fingerprint(ctx context.Context, m fleet.Member) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return lv.d.m.fleet.Fingerprint(qctx, m)
}

// note writes a row of the entry.
func (lv *leveller) note(ctx context.Context, step, detail string) error {
	return switchCatalog{lv.d.m}.Commit(ctx, lv.j, switches.Step{Status: "running", Name: step, Detail: detail}, nil)
}

// rebuild makes the coordinator a copy of src with its own configuration
// (expand.Maker.Reclone, APPEND COORDINATOR's Clone).
func (lv *leveller) rebuild(ctx context.Context, src fleet.Member) error {
	sn, err := switchCatalog{lv.d.m}.Read(ctx)
	if err != nil {
		return err
	}
	n, ok := sn.State.Node(lv.t.Name())
	if !ok {
		return fmt.Errorf("node %q no longer exists", lv.t.Name())
	}
	conf, err := lv.d.m.nodeConf(sn, n)
	if err != nil {
		return err
	}
	lv.started = false // Reclone stops it; a failure leaves it stopped.
	mk := expand.Maker{Fleet: lv.d.m.fleet, Progress: logProgress{lv.d.m.log}, Mark: lv.mark}
	return mk.Reclone(ctx, lv.t, src, conf)
}

// mark records that the copy is initialised (still out of the cluster),
// with its row of the entry.
func (lv *leveller) mark(ctx context.Context, node string) error {
	return lv.d.commit(ctx, lv.j, switches.Step{Status: "running", Name: "initialized " + node}, func(s *cluster.State) cluster.Plan {
		n, ok := s.Node(node)
		if !ok {
			return cluster.Plan{}
		}
		n.Initialized = true
		return cluster.Plan{UpdateNodes: []cluster.Node{n}}
	})
}

// verify compares the coordinator, now in every node list, with a live
// coordinator once more. One that differs (DDL through another
// coordinator reached neither the copy nor it) or cannot be read is taken
// out again, isolated for the next round's rebuild, and stopped. When no
// other coordinator answers nothing contradicts the first comparison: it
// stays.
func (lv *leveller) verify(ctx context.Context) error {
	s, err := lv.d.m.state(ctx)
	if err != nil {
		return nil
	}
	sources := doctor.RejoinSources(s, lv.t.Name())
	if len(sources) == 0 {
		return nil
	}
	src, theirs, err := lv.source(ctx, sources)
	if err != nil {
		lv.d.m.log.Warn("doctor: cannot check the coordinator it took back", "node", lv.t.Name(), "error", err)
		return nil
	}
	mine, err := lv.fingerprint(ctx, lv.t)
	why, differs := doctor.Rebuild(doctor.RejoinLook{Source: src.Name(), Mine: mine, MineErr: err, Theirs: theirs})
	if !differs {
		return nil
	}
	reason := "its catalog changed while it rejoined (" + why + ")"
	node := lv.t.Name()
	if err := lv.d.commit(ctx, lv.j, switches.Step{Status: "running", Name: "isolate", Detail: reason}, func(s *cluster.State) cluster.Plan {
		return doctor.PlanIsolate(s, node, reason)
	}); err != nil {
		return fmt.Errorf("%s, and it cannot be taken out again: %w", reason, err)
	}
	_ = lv.d.refresh(ctx, node)
	lv.stop(ctx)
	return fmt.Errorf("%s; it is isolated again", reason)
}
