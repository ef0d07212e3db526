package mgr

import (
	"context"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// The doctor keeps every master's live synchronous_standby_names what the
// catalog says (docs/HA.md, "The sync lists"): a failover without FORCE
// trusts the catalog's sync slaves to hold every acknowledged commit,
// which only the live list makes true.

const syncNamesKey = "synchronous_standby_names"

// syncLook reads master's live synchronous_standby_names into o
// (SyncRead, SyncDiffers) and names the async slave to step up
// (doctor.StepUp) from standbys, what its look read of
// pg_stat_replication. The look holds no lock, and a command that changes
// sync states writes the catalog, then the list: a list that differs is
// read again with the catalog, and believed only when it differs twice and
// no command held the cluster meanwhile — a false difference would hold a
// failover for nothing (doctor.Hold).
func (d doctorHands) syncLook(ctx context.Context, s *cluster.State, master cluster.Node, t fleet.Member, standbys map[string]string, o *doctor.Observation) {
	for try := 0; try < 2; try++ {
		if d.m.clusterBusy() {
			return
		}
		live, err := d.liveSyncNames(ctx, t)
		if err != nil {
			return
		}
		if try > 0 {
			if s, err = d.m.state(ctx); err != nil {
				return
			}
		}
		if d.m.clusterBusy() {
			return
		}
		o.SyncDiffers = live != cluster.SyncNames(s, master.Name, inCluster)
		if !o.SyncDiffers {
			break
		}
	}
	o.SyncRead = true
	if standbys != nil {
		o.StepUp = doctor.StepUp(s, master.Name, func(n string) bool { return standbys[n] == "streaming" })
	}
}

// clusterBusy reports whether a command (or a doctor's action) holds the
// cluster lock now.
func (m *Manager) clusterBusy() bool { return len(m.ops) > 0 }

// liveSyncNames reads t's synchronous_standby_names as its sessions have
// it (postgresql.auto.conf, where ALTER SYSTEM writes, wins over
// postgresql.conf, where the manager does).
func (d doctorHands) liveSyncNames(ctx context.Context, t fleet.Member) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	set, err := d.m.fleet.Settings(qctx, t, []string{syncNamesKey})
	return set[syncNamesKey], err
}

// Sync makes a master's live synchronous_standby_names what the catalog
// says, under the cluster lock (never during a DBA's command), after
// reading the catalog, the list and pg_stat_replication again: nothing
// to do, it does nothing. Otherwise, journaled DOCTOR SYNC:
//
//   - a slave to step up (doctor.StepUp) is listed first, and becomes
//     sync in the catalog only once it replayed all the WAL the master had
//     written when the new list took effect: commits the master
//     acknowledged alone before are then on it too, so the failover the
//     catalog now allows loses none. If it does not catch up, the list is
//     written back as the catalog says;
//   - a list that differs from the catalog is written again (and an ALTER
//     SYSTEM value that overrides it removed), then the sync slaves that
//     stream are waited for in the same way.
func (d doctorHands) Sync(ctx context.Context, node string) error {
	unlock, err := d.lock(ctx, doctor.Sync, node)
	if err != nil {
		return err
	}
	defer unlock()
	s, n, err := d.still(ctx, node, false)
	if err != nil {
		return err
	}
	if n.role != doctor.Master || !n.InCluster {
		return nil
	}
	t, err := fleet.At(s, n.Node)
	if err != nil {
		return err
	}
	live, err := d.liveSyncNames(ctx, t)
	if err != nil {
		return fmt.Errorf("cannot read the %s of %s: %w", syncNamesKey, node, err)
	}
	reps := d.standbys(ctx, s, n.Node)
	up := doctor.StepUp(s, node, func(c string) bool { return reps[c] == "streaming" })
	want := cluster.SyncNames(s, node, inCluster)
	if up == "" && live == want {
		return nil // a command wrote it meanwhile
	}
	var plan cluster.Plan
	target := s
	if up != "" {
		plan = doctor.PlanStepUp(s, up)
		target = doctor.After(s, plan)
	}
	names := cluster.SyncNames(target, node, inCluster)
	d.m.log.Warn("doctor: writing a master's synchronous_standby_names", "node", node, "was", live, "now", names, "step_up", up)
	j := &switches.Journal{Command: "DOCTOR SYNC " + node}
	detail := fmt.Sprintf("%s was '%s', now '%s'", syncNamesKey, live, names)
	err = d.writeSyncNames(ctx, target, n.Node, t)
	if err == nil {
		err = d.caughtUp(ctx, target, n.Node, t, reps)
		if err != nil && up != "" {
			// Not sync in the catalog: the list goes back to what it says.
			if werr := d.writeSyncNames(context.WithoutCancel(ctx), s, n.Node, t); werr != nil {
				err = fmt.Errorf("%w; and writing the list back failed: %w", err, werr)
			}
		}
	}
	if err == nil && up != "" {
		err = d.commit(ctx, j, switches.Step{Status: "running", Name: "step up", Detail: up}, func(s *cluster.State) cluster.Plan {
			return doctor.PlanStepUp(s, up)
		})
	}
	status := "done"
	if err != nil {
		status, detail = "failed", detail+": "+err.Error()
	}
	_ = switchCatalog{d.m}.Commit(ctx, j, switches.Step{Status: status, Name: "end", Detail: detail}, nil)
	return err
}

// writeSyncNames writes master's synchronous_standby_names from s: an
// ALTER SYSTEM value, which would override it, removed first; reloaded;
// pg_stat_replication checked (switches.SyncNames).
func (d doctorHands) writeSyncNames(ctx context.Context, s *cluster.State, master cluster.Node, t fleet.Member) error {
	if err := d.m.fleet.SetConf(ctx, t, true, nil, []string{syncNamesKey}); err != nil {
		return fmt.Errorf("remove %s from postgresql.auto.conf: %w", syncNamesKey, err)
	}
	return switches.SyncNames(ctx, d.m.fleet, s, master, inCluster, false, logProgress{d.m.log})
}

// caughtUp waits until every slave that s makes synchronous for master and
// that streams (reps) replayed all the WAL master had written once its new
// list took effect (syncCatchUp at most).
func (d doctorHands) caughtUp(ctx context.Context, s *cluster.State, master cluster.Node, t fleet.Member, reps map[string]string) error {
	p := d.m.fleet.Probe(ctx, t)
	if !p.Reachable || p.InRecovery || p.LSN == 0 {
		return fmt.Errorf("cannot read the WAL position of %s", master.Name)
	}
	for name, state := range cluster.ExpectedReplication(s, master.Name, inCluster) {
		if state != cluster.Sync || reps[name] != "streaming" {
			continue
		}
		m, err := fleet.Of(s, name)
		if err == nil {
			// WaitReplay waits for a position beyond lsn: one byte less is
			// the master's own end of WAL.
			err = d.m.fleet.WaitReplay(ctx, m, p.LSN-1, syncCatchUp)
		}
		if err != nil {
			return fmt.Errorf("%s did not catch up with %s: %w", name, master.Name, err)
		}
	}
	return nil
}

// syncCatchUp is how long Sync waits for a sync slave to replay what its
// master wrote before: a slave that streams is normally milliseconds
// behind.
const syncCatchUp = 10 * time.Second
