package mgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/params"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/jackc/pgx/v5"
)

var nodeResultColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
}

func writeNodeResult(w pgwire.ResultWriter, node string, ok bool, desc string) error {
	return writeTable(w, nodeResultColumns, []map[string]string{{"nodename": node, "status": boolText(ok), "description": desc}})
}

// probeSlaves looks at every in-cluster direct slave of master: does it
// answer, is it a standby, how much WAL has it received or replayed.
func (m *Manager) probeSlaves(e *req, s *cluster.State, master string) map[string]cluster.Probe {
	kids := s.Children(master)
	probes := make([]cluster.Probe, len(kids))
	parallel(len(kids), func(i int) {
		n := kids[i]
		h, _ := s.Host(n.Host)
		conn, err := m.connect(e.ctx, h, n, 5*time.Second)
		if err != nil {
			return
		}
		defer conn.Close(e.ctx)
		var rec bool
		var lsn string
		err = conn.QueryRow(e.ctx, `SELECT pg_is_in_recovery(),
			coalesce(greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), pg_current_wal_lsn())::text`).Scan(&rec, &lsn)
		if err != nil {
			return
		}
		v, err := cluster.ParseLSN(lsn)
		if err != nil {
			return
		}
		probes[i] = cluster.Probe{Reachable: true, InRecovery: rec, LSN: v}
	})
	out := map[string]cluster.Probe{}
	for i, n := range kids {
		out[n.Name] = probes[i]
	}
	return out
}

// failover is FAILOVER {DATANODE|GTMCOORD} master [TO slave] [FORCE]
// (reference §4.11): choose the slave that holds every acknowledged commit,
// fence the old master, promote, re-point the other slaves and the
// coordinators, and kick the old master out until REWIND. Until the
// promotion nothing is changed for good: a refusal or a failure before it
// starts the old master again.
func (m *Manager) failover(e *req, st *parser.Failover) error {
	unlock, err := m.lockCluster("FAILOVER")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	want := nodeType(parser.NodeKind{Family: st.Kind.Family, Role: parser.Master})
	old, ok := s.Node(st.Name.Name)
	if !ok || old.Type != want {
		return pgerror.New(pgerror.UndefinedObject, `%s does not exist or is not a %s node`, st.Name.Name, want).At(e.q, st.Name.Pos)
	}
	if !old.Initialized {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s has not been initialized`, old.Name)
	}
	if !old.InCluster {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s has been kicked out of the cluster`, old.Name)
	}
	if z := currentZone(e); old.Zone != z {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `the node(%s) is not in current zone(%s), can't operator it.`, old.Name, z)
	}
	// Decide before touching anything: a refusal leaves the master as it is.
	if _, err := cluster.ChooseCandidate(s, old.Name, st.To.Name, st.Force, m.probeSlaves(e, s, old.Name)); err != nil {
		e.w.Notice("WARNING", "An exception occurred during the switching operation, It is recommended to use command such as 'monitor all', 'monitor ha' to check the failure point in the cluster first, and then retry the switching operation!!!")
		return err
	}
	journal := m.journal(e, "FAILOVER "+old.Name)
	ot, err := m.target(s, old)
	if err != nil {
		return err
	}
	if e.doctor && !old.AllowCure {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "%s was stopped by a DBA meanwhile", old.Name)
	}
	// Before it is stopped, the doctor is told to keep off the old master:
	// restarting it during or after the switch would make two masters.
	if err := m.markNodes(e.ctx, []string{old.Name}, func(x *cluster.Node) { x.AllowCure = false }); err != nil {
		return err
	}
	stopped, err := m.fence(e, ot)
	if err != nil {
		m.markNodes(e.ctx, []string{old.Name}, func(x *cluster.Node) { x.AllowCure = old.AllowCure })
		journal("failed", "fence", err.Error())
		return err
	}
	revert := func(cause error) error {
		m.markNodes(e.ctx, []string{old.Name}, func(x *cluster.Node) { x.AllowCure = old.AllowCure })
		if stopped {
			if _, err := ot.pgctl(context.WithoutCancel(e.ctx), agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED); err != nil {
				e.w.Notice("WARNING", fmt.Sprintf("could not start the old master %s again: %s", old.Name, agentError(err)))
			} else {
				e.w.Notice("NOTICE", fmt.Sprintf("%s is running again as the master; nothing was switched", old.Name))
			}
		}
		journal("failed", "revert", cause.Error())
		return cause
	}
	// The slaves received what the master sent while it shut down: decide
	// again on their final positions.
	cand, err := cluster.ChooseCandidate(s, old.Name, st.To.Name, st.Force, m.probeSlaves(e, s, old.Name))
	if err != nil {
		return revert(err)
	}
	// With TO … FORCE a follower may be ahead of the new master: it cannot
	// stream from it and must be rewound like the old master.
	probes := m.probeSlaves(e, s, old.Name)
	var followers []string
	for _, f := range cand.Followers {
		if probes[f].LSN > cand.LSN {
			cand.Lost = append(cand.Lost, f)
			e.w.Notice("WARNING", fmt.Sprintf("%s is ahead of %s and cannot follow it; REWIND it", f, cand.Name))
			continue
		}
		followers = append(followers, f)
	}
	cand.Followers = followers
	e.notices(cand.Notices)
	newNode, _ := s.Node(cand.Name)
	nt, err := m.target(s, newNode)
	if err != nil {
		return revert(err)
	}
	journal("running", "promote "+cand.Name, "")
	if err := m.takeOver(e, nt, journal, revert); err != nil {
		return err
	}
	// From here on the switch is done: the rest is finished even if the
	// statement is cancelled, and problems are reported, not reverted.
	e2 := e.detached()
	ctx := e2.ctx
	planFailover := func(s *cluster.State, o, n string) cluster.Plan { return cluster.PlanFailover(s, o, n, cand.Lost...) }
	if err := m.switchCatalog(ctx, old.Name, cand.Name, planFailover); err != nil {
		journal("failed", "catalog", err.Error())
		return pgerror.New(pgerror.Internal, "%s was promoted but the node table could not be updated: %s", cand.Name, err).
			WithHint("Run FAILOVER again is not possible; fix the node table with care.")
	}
	after, err := m.state(ctx)
	if err != nil {
		return err
	}
	newMaster, _ := after.Node(cand.Name)
	m.follow(e2, after, newMaster, cand)
	if err := m.pushSyncNames(e2, after, newMaster, inCluster, false); err != nil {
		e.w.Notice("WARNING", err.Error())
	}
	m.refreshCoordinators(e2, after, old.Name, cand.Name)
	e.notices([]cluster.Notice{{Severity: "NOTICE", Message: fmt.Sprintf("%s has been kicked out of the cluster; REWIND %s SLAVE %s brings it back as a slave of %s",
		old.Name, strings.ToUpper(string(old.Type.Family())), old.Name, cand.Name)}})
	e.w.Notice("NOTICE", fmt.Sprintf("Switch the %s master from %s to %s has been successfully completed", old.Type.Family(), old.Name, cand.Name))
	journal("done", "end", cand.Name)
	return writeNodeResult(e.w, cand.Name, true, fmt.Sprintf("failover %s success", old.Type.Family()))
}

// fence makes sure the old master no longer accepts writes: stopped through
// its agent (fast, then immediate). With its agent down and the node still
// answering there is no way to stop it, and two masters must never run at
// once, so the failover is refused. It reports whether it stopped a running
// node (to start it again on a revert).
func (m *Manager) fence(e *req, t target) (bool, error) {
	cctx, cancel := call(e.ctx, pingTimeout)
	st, err := t.agent.Status(cctx, t.ref())
	cancel()
	if err != nil {
		if pgclient.Ping(t.h.Address, t.n.Port, time.Second) {
			return false, pgerror.New(pgerror.ObjectNotInPrereqState,
				`cannot stop the old master %s: it answers on %s:%d but the agent on host "%s" is not running`, t.n.Name, t.h.Address, t.n.Port, t.h.Name).
				WithHint("Start the agent (START AGENT %s) or stop the node by hand; two masters must never run at once.", t.h.Name)
		}
		e.w.Notice("NOTICE", fmt.Sprintf("the old master %s does not answer and its agent is unreachable; taking it as down", t.n.Name))
		return false, nil
	}
	if !st.Running {
		return false, nil
	}
	if _, err := t.pgctl(e.ctx, agentpb.PgCtlRequest_STOP, agentpb.PgCtlRequest_FAST); err != nil {
		if _, err := t.pgctl(e.ctx, agentpb.PgCtlRequest_STOP, agentpb.PgCtlRequest_IMMEDIATE); err != nil {
			return false, pgerror.New(pgerror.ObjectNotInPrereqState, "try shut down node %s failed: %s", t.n.Name, agentError(err))
		}
	}
	e.w.Notice("NOTICE", fmt.Sprintf("the old master %s was stopped", t.n.Name))
	return true, nil
}

// switchCatalog records a switch from old to newMaster in one transaction,
// parameter rows following the nodes' new types.
//
// It is tried a few times: after a promotion the catalog must follow, or a
// later START ALL would start the old master as a second primary.
func (m *Manager) switchCatalog(ctx context.Context, old, newMaster string, decide func(*cluster.State, string, string) cluster.Plan) error {
	var err error
	for try := 0; try < 5; try++ {
		if err = m.switchCatalogOnce(ctx, old, newMaster, decide); err == nil {
			return nil
		}
		if serr := sleepCtx(ctx, time.Second); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

func (m *Manager) switchCatalogOnce(ctx context.Context, old, newMaster string, decide func(*cluster.State, string, string) cluster.Plan) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return m.cat.Update(ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		existing, err := tx.Params()
		if err != nil {
			return err
		}
		plan := decide(s, old, newMaster)
		for _, n := range plan.UpdateNodes {
			if n.Name == old || n.Name == newMaster {
				r := params.Retype(existing, n.Name, n.Type)
				plan.PutParams = append(plan.PutParams, r.PutParams...)
				plan.DeleteParams = append(plan.DeleteParams, r.DeleteParams...)
			}
		}
		return tx.Apply(plan)
	})
}

// follow re-points the running slaves of the old master at the new one:
// a slot for each on the new master, primary_conninfo reloaded (PostgreSQL
// 13+ reconnects without a restart, and recovery_target_timeline = latest
// takes the new timeline).
func (m *Manager) follow(e *req, s *cluster.State, newMaster cluster.Node, cand cluster.Candidate) {
	mt, err := m.target(s, newMaster)
	if err != nil {
		e.w.Notice("WARNING", err.Error())
		return
	}
	for _, name := range cand.Followers {
		f, _ := s.Node(name)
		ft, err := m.target(s, f)
		if err == nil {
			err = mt.exec(e.ctx, func(c *pgx.Conn) error { return pgclient.EnsureSlot(e.ctx, c, f.Name) })
		}
		if err == nil {
			err = ft.setConf(e.ctx, true, cluster.StandbyParams(f, newMaster, mt.h, ft.h), nil)
		}
		if err == nil {
			_, err = ft.pgctl(e.ctx, agentpb.PgCtlRequest_RELOAD, agentpb.PgCtlRequest_MODE_UNSPECIFIED)
		}
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("%s could not follow %s: %s; REWIND %s SLAVE %s repairs it",
				f.Name, newMaster.Name, agentError(err), strings.ToUpper(string(f.Type.Family())), f.Name))
			continue
		}
		e.w.Notice("NOTICE", fmt.Sprintf("%s has followed %s success", f.Name, newMaster.Name))
	}
}

// refreshCoordinators tells every coordinator where the datanode masters
// are now. The foreign server of a replaced datanode master is renamed,
// not dropped, so that foreign tables built on it keep working.
func (m *Manager) refreshCoordinators(e *req, s *cluster.State, old, newMaster string) {
	ok := func(n cluster.Node) bool { return n.InCluster }
	for _, c := range s.Nodes {
		if (c.Type != cluster.GtmcoordMaster && c.Type != cluster.CoordinatorMaster) || !c.InCluster {
			continue
		}
		t, err := m.target(s, c)
		if err == nil && old != "" {
			rename := fmt.Sprintf(`DO $adb$ BEGIN
	IF EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %s)
	   AND NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %s) THEN
		ALTER SERVER %s RENAME TO %s;
	END IF;
	IF to_regclass('adb.slot') IS NOT NULL THEN
		UPDATE adb.slot SET node = %[2]s WHERE node = %[1]s;
	END IF;
END $adb$`, pgclient.Literal(old), pgclient.Literal(newMaster), pgclient.Ident(old), pgclient.Ident(newMaster))
			err = t.exec(e.ctx, func(c *pgx.Conn) error { _, err := c.Exec(e.ctx, rename); return err })
		}
		if err == nil {
			err = m.configureCoordinator(e.ctx, s, c, ok)
		}
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("could not update %s: %s", describeNode(c), err))
		}
	}
}

// rewind is REWIND {GTMCOORD|COORDINATOR|DATANODE} SLAVE n (reference
// §4.13): make n — typically the old master a FAILOVER kicked out — a
// streaming slave of the master the node table names, with pg_rewind
// instead of a new base backup.
func (m *Manager) rewind(e *req, st *parser.Rewind) error {
	unlock, err := m.lockCluster("REWIND")
	if err != nil {
		return err
	}
	defer unlock()
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	s := sn.s
	want := nodeType(parser.NodeKind{Family: st.Kind.Family, Role: parser.Slave})
	n, ok := s.Node(st.Name.Name)
	if !ok || n.Type != want {
		return pgerror.New(pgerror.UndefinedObject, `%s "%s" does not exist`, want, st.Name.Name).At(e.q, st.Name.Pos)
	}
	parent, ok := s.Node(n.Master)
	if !ok || !parent.InCluster {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `the master "%s" of %s is not in the cluster`, n.Master, describeNode(n))
	}
	t, err := m.target(s, n)
	if err != nil {
		return err
	}
	pt, err := m.target(s, parent)
	if err != nil {
		return err
	}
	if err := m.requireAgent(e.ctx, t.h); err != nil {
		return err
	}
	pconn, err := pt.sql(e.ctx)
	if err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s does not running normal: %s`, describeNode(parent), err)
	}
	defer pconn.Close(e.ctx)
	journal := m.journal(e, "REWIND "+n.Name)
	fail := func(step string, err error) error {
		journal("failed", step, err.Error())
		return pgerror.New(pgerror.ObjectNotInPrereqState, "rewind %s: %s: %s", n.Name, step, agentError(err))
	}
	if err := m.cleanShutdown(e, t, parent, pt.h); err != nil {
		return fail("stop", err)
	}
	// The master's control file must show the timeline it runs on now,
	// which a promotion only writes at its next checkpoint.
	if _, err := pconn.Exec(e.ctx, "CHECKPOINT"); err != nil {
		return fail("checkpoint on "+parent.Name, err)
	}
	if err := pgclient.EnsureSlot(e.ctx, pconn, n.Name); err != nil {
		return fail("replication slot", err)
	}
	e.w.Notice("NOTICE", fmt.Sprintf("pg_rewind %s from %s", n.Name, parent.Name))
	sec, err := t.secrets()
	if err != nil {
		return fail("node credentials", err)
	}
	cctx, cancel := call(e.ctx, time.Hour)
	res, err := t.agent.Rewind(cctx, &agentpb.RewindRequest{Node: t.ref(), SourceHost: pt.h.Address, SourcePort: int32(parent.Port),
		SourceUser: pt.h.User, WriteRecoveryConf: true, ApplicationName: n.Name, Secrets: sec})
	cancel()
	if err != nil {
		return fail("pg_rewind", err)
	}
	if out := strings.TrimSpace(res.GetOutput()); out != "" {
		e.w.Notice("NOTICE", out)
	}
	set := cluster.ServerParams(n, t.h)
	user, remove := params.Effective(n, sn.params)
	for k, v := range user {
		set[k] = v
	}
	managerIPs, _ := m.managerIPs(s)
	if err := m.configureNode(e.ctx, t, set, remove, cluster.HBALines(s, managerIPs...), sn.hba); err != nil {
		return fail("configure", err)
	}
	if err := t.setConf(e.ctx, true, cluster.StandbyParams(n, parent, pt.h, t.h), nil); err != nil {
		return fail("recovery settings", err)
	}
	cctx, cancel = call(e.ctx, 30*time.Second)
	_, err = t.agent.SetStandby(cctx, &agentpb.SetStandbyRequest{Node: t.ref(), Standby: true})
	cancel()
	if err != nil {
		return fail("standby.signal", err)
	}
	if _, err := t.pgctl(e.ctx, agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED); err != nil {
		return fail("start", err)
	}
	state := cluster.RewoundSyncState(s, parent.Name, n.Name)
	if err := m.markNodes(e.ctx, []string{n.Name}, func(x *cluster.Node) {
		x.Initialized, x.InCluster, x.AllowCure, x.CureStatus, x.SyncState = true, true, true, "normal", state
	}); err != nil {
		return err
	}
	e2 := e.detached()
	ctx := e2.ctx
	after, err := m.state(ctx)
	if err != nil {
		return err
	}
	p, _ := after.Node(parent.Name)
	if err := m.pushSyncNames(e2, after, p, inCluster, true); err != nil {
		e.w.Notice("WARNING", err.Error())
	} else {
		e.w.Notice("NOTICE", fmt.Sprintf(`refresh %s synchronous_standby_names='%s'`, describeNode(p), cluster.SyncNames(after, p.Name, inCluster)))
	}
	m.refreshCoordinators(e2, after, "", "")
	journal("done", "end", "")
	return writeNodeResult(e.w, n.Name, true, "rewind success")
}

// cleanShutdown leaves t's node stopped cleanly, which pg_rewind requires.
// A node that crashed (or was stopped in immediate mode) is started once as
// a standby of the master — never as a primary, which could take writes —
// and stopped again.
func (m *Manager) cleanShutdown(e *req, t target, parent cluster.Node, ph cluster.Host) error {
	if _, err := t.pgctl(e.ctx, agentpb.PgCtlRequest_STOP, agentpb.PgCtlRequest_FAST); err != nil {
		return err
	}
	cctx, cancel := call(e.ctx, 30*time.Second)
	cd, err := t.agent.ControlData(cctx, t.ref())
	cancel()
	if err != nil {
		return err
	}
	state := cd.GetFields()["Database cluster state"]
	if state == "shut down" || state == "shut down in recovery" {
		return nil
	}
	e.w.Notice("NOTICE", fmt.Sprintf("%s was not shut down cleanly (%s): starting it once as a standby to finish its recovery", t.n.Name, state))
	if err := t.setConf(e.ctx, true, cluster.StandbyParams(t.n, parent, ph, t.h), nil); err != nil {
		return err
	}
	cctx, cancel = call(e.ctx, 30*time.Second)
	_, err = t.agent.SetStandby(cctx, &agentpb.SetStandbyRequest{Node: t.ref(), Standby: true})
	cancel()
	if err != nil {
		return err
	}
	if _, err := t.pgctl(e.ctx, agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED); err != nil {
		return err
	}
	_, err = t.pgctl(e.ctx, agentpb.PgCtlRequest_STOP, agentpb.PgCtlRequest_FAST)
	return err
}

// switchover is SWITCHOVER {DATANODE|GTMCOORD} SLAVE s [FORCE] [maxTrys]
// (reference §4.12): a planned swap without losing anything. The master is
// stopped cleanly — its walsenders hand every WAL record, the shutdown
// checkpoint included, to the connected standbys — then s must have
// received all of it (waited for up to maxTrys seconds) before it is
// promoted, and the old master follows s as its slave, without a rewind.
// Anything short of the promotion is undone: the old master is started
// again.
func (m *Manager) switchover(e *req, st *parser.Switchover) error {
	if st.Kind.Role == parser.Master {
		return pgerror.New(pgerror.InvalidParameterValue, "it is the %s master, no need switchover", familyOf(st.Kind.Family)).At(e.q, st.Name.Pos)
	}
	unlock, err := m.lockCluster("SWITCHOVER")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	want := nodeType(parser.NodeKind{Family: st.Kind.Family, Role: parser.Slave})
	n, ok := s.Node(st.Name.Name)
	if !ok || n.Type != want {
		return pgerror.New(pgerror.UndefinedObject, `%s is not a slave node`, st.Name.Name).At(e.q, st.Name.Pos).
			WithHint("SWITCHOVER names a %s.", want)
	}
	old, ok := s.Node(n.Master)
	if !ok || !old.Type.IsMaster() {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s follows slave "%s": only a direct slave of a master can take over`, describeNode(n), n.Master)
	}
	if !n.InCluster || !old.InCluster {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s and its master must be in the cluster`, describeNode(n))
	}
	maxTrys := min(max(st.MaxTrys, 10), 3600)
	ot, err := m.target(s, old)
	if err != nil {
		return err
	}
	nt, err := m.target(s, n)
	if err != nil {
		return err
	}
	probe := m.probeSlaves(e, s, old.Name)
	if p := probe[n.Name]; !p.Reachable || !p.InRecovery {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s expected running status is slave mode, but actually is not`, n.Name)
	}
	if !st.Force {
		for _, c := range s.Children(old.Name) {
			if c.Name != n.Name && (c.SyncState == cluster.Sync || c.SyncState == cluster.Potential) && !probe[c.Name].Reachable {
				return pgerror.New(pgerror.ObjectNotInPrereqState,
					`%s failed, but it is a Synchronous standby node of old master %s, abort switching to avoid data loss`, c.Name, old.Name).
					WithHint("Use FORCE to switch anyway; it will need a REWIND.")
			}
		}
	}
	if err := ot.exec(e.ctx, func(c *pgx.Conn) error {
		var rec bool
		if err := c.QueryRow(e.ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return err
		}
		if rec {
			return fmt.Errorf("it is in recovery")
		}
		return nil
	}); err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s expected running status is master mode, but actually is not: %s`, old.Name, err)
	}
	journal := m.journal(e, "SWITCHOVER "+n.Name)
	if err := m.markNodes(e.ctx, []string{old.Name}, func(x *cluster.Node) { x.AllowCure = false }); err != nil {
		return err
	}
	if _, err := m.fence(e, ot); err != nil {
		m.markNodes(e.ctx, []string{old.Name}, func(x *cluster.Node) { x.AllowCure = old.AllowCure })
		journal("failed", "stop old master", err.Error())
		return err
	}
	revert := func(cause error) error {
		m.markNodes(e.ctx, []string{old.Name}, func(x *cluster.Node) { x.AllowCure = old.AllowCure })
		if _, err := ot.pgctl(context.WithoutCancel(e.ctx), agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED); err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("could not start %s again: %s", old.Name, agentError(err)))
		} else {
			e.w.Notice("NOTICE", fmt.Sprintf("%s is running again as the master; nothing was switched", old.Name))
		}
		journal("failed", "revert", cause.Error())
		return cause
	}
	// Every record of the old master, its shutdown checkpoint included,
	// must have reached the new one.
	cctx, cancel := call(e.ctx, 30*time.Second)
	cd, err := ot.agent.ControlData(cctx, ot.ref())
	cancel()
	if err != nil {
		return revert(pgerror.New(pgerror.ObjectNotInPrereqState, "read the control data of %s: %s", old.Name, agentError(err)))
	}
	// Only a clean shutdown ends with a checkpoint the standby can be
	// checked against; after an immediate stop or a crash the last
	// checkpoint says nothing about the last commits.
	if st := cd.GetFields()["Database cluster state"]; st != "shut down" {
		return revert(pgerror.New(pgerror.ObjectNotInPrereqState, "%s did not shut down cleanly (%s): cannot prove %s has all its WAL", old.Name, st, n.Name).
			WithHint("Use FAILOVER for a master that cannot be stopped cleanly."))
	}
	ckpt, err := cluster.ParseLSN(cd.GetFields()["Latest checkpoint location"])
	if err != nil {
		return revert(pgerror.New(pgerror.Internal, "control data of %s: %s", old.Name, err))
	}
	e.w.Notice("NOTICE", fmt.Sprintf("wait max %d seconds to check %s and %s have the same xlog position", maxTrys, old.Name, n.Name))
	// The replay position is the end of the last record replayed: past
	// the shutdown checkpoint's start means the whole record is there.
	caught := false
	deadline := time.Now().Add(time.Duration(maxTrys) * time.Second)
	for !caught && time.Now().Before(deadline) && e.ctx.Err() == nil {
		var lsn string
		err := nt.exec(e.ctx, func(c *pgx.Conn) error {
			return c.QueryRow(e.ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, '0/0')").Scan(&lsn)
		})
		if v, perr := cluster.ParseLSN(lsn); err == nil && perr == nil && v > ckpt {
			caught = true
			break
		}
		select {
		case <-e.ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	if !caught {
		return revert(pgerror.New(pgerror.ObjectNotInPrereqState, "check %s and %s have the same xlog position failed", old.Name, n.Name))
	}
	if err := m.takeOver(e, nt, journal, revert); err != nil {
		return err
	}
	e2 := e.detached()
	ctx := e2.ctx
	if err := m.switchCatalog(ctx, old.Name, n.Name, cluster.PlanSwitchover); err != nil {
		journal("failed", "catalog", err.Error())
		return pgerror.New(pgerror.Internal, "%s was promoted but the node table could not be updated: %s", n.Name, err)
	}
	after, err := m.state(ctx)
	if err != nil {
		return err
	}
	newMaster, _ := after.Node(n.Name)
	oldNow, _ := after.Node(old.Name)
	// The old master follows the new one: it shut down cleanly and the new
	// master has all its WAL, so it only has to switch timelines.
	ot.n = oldNow
	err = nt.exec(ctx, func(c *pgx.Conn) error { return pgclient.EnsureSlot(ctx, c, old.Name) })
	if err == nil {
		err = ot.setConf(ctx, true, cluster.StandbyParams(oldNow, newMaster, nt.h, ot.h), nil)
	}
	if err == nil {
		cctx, cancel := call(ctx, 30*time.Second)
		_, err = ot.agent.SetStandby(cctx, &agentpb.SetStandbyRequest{Node: ot.ref(), Standby: true})
		cancel()
	}
	if err == nil {
		_, err = ot.pgctl(ctx, agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED)
	}
	if err != nil {
		e.w.Notice("WARNING", fmt.Sprintf("%s could not follow %s: %s; REWIND %s SLAVE %s repairs it", old.Name, n.Name, agentError(err),
			strings.ToUpper(string(old.Type.Family())), old.Name))
		// Listed as sync it would make every commit on the new master
		// wait for a node that does not stream.
		m.markNodes(ctx, []string{old.Name}, func(x *cluster.Node) { x.SyncState, x.InCluster, x.Initialized = cluster.Async, false, false })
		if after, err = m.state(ctx); err != nil {
			return err
		}
	} else {
		e.w.Notice("NOTICE", fmt.Sprintf("%s has followed %s success", old.Name, n.Name))
		// The slots it kept for its slaves would hold WAL on a standby.
		ot.exec(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
			return err
		})
	}
	var followers []string
	for _, c := range s.Children(old.Name) {
		if c.Name != n.Name && probe[c.Name].Reachable {
			followers = append(followers, c.Name)
		}
	}
	m.follow(e2, after, newMaster, cluster.Candidate{Name: n.Name, Followers: followers})
	if err := m.pushSyncNames(e2, after, newMaster, inCluster, true); err != nil {
		e.w.Notice("WARNING", err.Error())
	}
	m.refreshCoordinators(e2, after, old.Name, n.Name)
	e.w.Notice("NOTICE", fmt.Sprintf("Switch the %s master from %s to %s has been successfully completed", old.Type.Family(), old.Name, n.Name))
	journal("done", "end", n.Name)
	return writeNodeResult(e.w, n.Name, true, fmt.Sprintf("switchover %s success", old.Type.Family()))
}

// promote promotes t's node. A promotion, once signalled, completes even if
// pg_ctl gives up waiting or the statement is cancelled, so it runs to the
// end, and a failure is believed only when the node still answers as a
// standby: starting the old master next to a node that did become a
// primary would make two masters. An unclear outcome stops the switch
// without reverting.
func (m *Manager) promote(e *req, t target) error {
	ctx := context.WithoutCancel(e.ctx)
	_, perr := t.pgctl(ctx, agentpb.PgCtlRequest_PROMOTE, agentpb.PgCtlRequest_MODE_UNSPECIFIED)
	if perr == nil {
		return nil
	}
	var rec bool
	err := t.exec(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec) })
	switch {
	case err == nil && rec:
		// Still a standby: make sure it stays one, then revert.
		return pgerror.New(pgerror.ObjectNotInPrereqState, "promote %s: %s", t.n.Name, agentError(perr))
	case err == nil:
		e.w.Notice("WARNING", fmt.Sprintf("pg_ctl promote of %s reported %s, but it runs as a primary: the switch goes on", t.n.Name, agentError(perr)))
		return nil
	}
	return fmt.Errorf("%w: %w", errUnclearPromotion, pgerror.New(pgerror.Internal,
		"promote %s: %s; its state is unknown (%v), so the old master is NOT started again", t.n.Name, agentError(perr), err).
		WithHint("Check both nodes with MONITOR ALL before anything else; at most one of them may run as a primary."))
}

// errUnclearPromotion marks a promotion whose outcome is unknown: the
// switch stops and nothing is reverted.
var errUnclearPromotion = errors.New("unclear promotion")

// takeOver promotes the new master of a switch. A failure that leaves it a
// standby is reverted; an unclear one is not (see promote). A primary keeps
// the recovery settings it had as a standby; they are removed, as they would
// point it at the old master if it were ever made a standby by hand.
func (m *Manager) takeOver(e *req, nt target, journal func(status, step, detail string), revert func(error) error) error {
	if err := m.promote(e, nt); err != nil {
		if errors.Is(err, errUnclearPromotion) {
			journal("failed", "promote", err.Error())
			return err
		}
		return revert(err)
	}
	e.w.Notice("NOTICE", fmt.Sprintf("%s was successfully promoted to the new master", nt.n.Name))
	nt.setConf(context.WithoutCancel(e.ctx), true, nil, []string{"primary_conninfo", "primary_slot_name"})
	return nil
}
