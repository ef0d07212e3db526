package mgr

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// doctorHands gives the doctor the manager's actions, over the fleet and
// the switches. Each action takes the cluster lock without waiting (a
// DBA's command that holds it makes the action doctor.ErrBusy, and the
// doctor tries next round) and re-reads the catalog first: a command that
// ran meanwhile may have changed what the node is.
type doctorHands struct{ m *Manager }

// watched is a node the doctor looks after, and what it may do to it.
type watched struct {
	cluster.Node
	role doctor.Role
}

// curable are the nodes the doctor watches: those a DBA did not stop
// (STOP clears allowcure) on hosts the doctor may heal (SET DOCTOR HOST)
// whose address did not change since they started (until FLUSH HOST they
// listen where the catalog no longer says, and would look down) — the
// nodes in the cluster, and those out of it that wait for the doctor
// (doctor.Waiting: an old master to rewind, a slave that could not follow
// a failover, an isolated node).
func curable(s *cluster.State) []watched {
	var out []watched
	for _, n := range s.Nodes {
		h, ok := s.Host(n.Host)
		if !ok || !h.AllowCure || !n.AllowCure || len(s.Moved[n.Host]) > 0 || (!n.InCluster && !doctor.Waiting(n.CureStatus)) {
			continue
		}
		role := doctor.Slave
		switch n.Type {
		case cluster.GtmcoordMaster, cluster.DatanodeMaster:
			role = doctor.Master
		case cluster.CoordinatorMaster:
			role = doctor.Coordinator
		}
		out = append(out, watched{n, role})
	}
	return out
}

// fenceOnly are the nodes the catalog does not call masters that the
// doctor may not cure (kicked out by a DBA's FAILOVER, stopped, the doctor
// off for them or their hosts): watched only so that one answering as a
// primary — a second writable master — is fenced (docs/HA.md). Nodes of a
// host whose address moved are left out: they listen where the catalog no
// longer says.
func fenceOnly(s *cluster.State) []watched {
	cure := map[string]bool{}
	for _, n := range curable(s) {
		cure[n.Name] = true
	}
	var out []watched
	for _, n := range s.Nodes {
		if _, ok := s.Host(n.Host); !ok || n.Type.IsMaster() || cure[n.Name] || len(s.Moved[n.Host]) > 0 {
			continue
		}
		out = append(out, watched{n, doctor.Slave})
	}
	return out
}

func (d doctorHands) Observe(ctx context.Context) ([]doctor.Observation, error) {
	s, err := d.m.state(ctx)
	if err != nil {
		return nil, err
	}
	nodes := curable(s)
	cured := len(nodes)
	nodes = append(nodes, fenceOnly(s)...)
	names, keys := make([]string, len(nodes)), make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
		keys[i] = fmt.Sprint(n.Type, "/", n.Master, "/", n.CureStatus, "/", n.InCluster, "/", i < cured)
	}
	res, ages := d.m.looks.round(ctx, names, keys, func(ctx context.Context, i int, answered func()) lookResult {
		if i < cured {
			return d.observe(ctx, s, nodes[i], answered)
		}
		o := doctor.Observation{Node: nodes[i].Name, Role: doctor.Slave, Cure: nodes[i].CureStatus, FenceOnly: true, Master: nodes[i].Master}
		o.Primary = d.primary(ctx, s, nodes[i].Node)
		return lookResult{obs: o}
	})
	obs := make([]doctor.Observation, len(nodes))
	for i, n := range nodes {
		if ages[i] == lookDone {
			obs[i] = res[i].obs
			continue
		}
		// Still looking: no news while young, then a failed look —
		// neither answering nor its agent seen.
		obs[i] = doctor.Observation{Node: n.Name, Role: n.role, Cure: n.CureStatus, Master: n.Master,
			FenceOnly: i >= cured, Pending: ages[i] == lookYoung, Hung: ages[i] == lookOverdue}
	}
	d.streams(nodes[:cured], obs[:cured], res[:cured])
	return obs, nil
}

// primary reports whether n answers as a primary.
func (d doctorHands) primary(ctx context.Context, s *cluster.State, n cluster.Node) bool {
	t, err := fleet.At(s, n)
	if err != nil {
		return false
	}
	qctx, cancel := context.WithTimeout(ctx, 7*time.Second)
	defer cancel()
	st, err := d.m.fleet.SQLStatus(qctx, t, 2*time.Second)
	return err == nil && !st.Recovery
}

// observe looks at one node: a waiting one needs its host's agent, and is
// fenced first when it answers as a primary (the old master of the
// doctor's failover, seen again after a partition).
func (d doctorHands) observe(ctx context.Context, s *cluster.State, n watched, answered func()) lookResult {
	o := doctor.Observation{Node: n.Name, Role: n.role, Cure: n.CureStatus, Master: n.Master}
	if n.role == doctor.Master {
		o.AsyncOnly = cluster.SyncNames(s, n.Name, func(c cluster.Node) bool { return c.InCluster }) == ""
	}
	t, err := fleet.At(s, n.Node)
	if err != nil {
		return lookResult{obs: o}
	}
	agentUp := func() bool {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return d.m.fleet.AgentUp(actx, t.Host) == nil
	}
	if doctor.Waiting(n.CureStatus) {
		o.AgentUp = agentUp()
		o.Primary = n.role != doctor.Coordinator && d.primary(ctx, s, n.Node)
		return lookResult{obs: o}
	}
	// 2 s to log in, 5 s for the query.
	qctx, cancel := context.WithTimeout(ctx, 7*time.Second)
	st, err := d.m.fleet.SQLStatus(qctx, t, 2*time.Second)
	cancel()
	if err == nil || pgclient.ServerError(err) != nil {
		answered()
	}
	var r lookResult
	switch {
	case err != nil:
	case st.Recovery && n.role == doctor.Slave, !st.Recovery && n.role != doctor.Slave:
		o.Answering = true
		o.Stale = d.stale(ctx, s, n.Node, t)
		r.standbys = d.standbys(ctx, s, n.Node)
		if n.role == doctor.Master {
			d.syncLook(ctx, s, n.Node, t, r.standbys, &o)
		}
	case n.role != doctor.Slave:
		// A master still in recovery after a restart: not down.
		o.Answering = true
	default:
		// A slave that answers as a primary: two masters, fenced.
		o.Primary = true
	}
	if pe := pgclient.ServerError(err); pe != nil {
		// It runs and said no (a DBA's pg_hba.conf or ALTER DATABASE,
		// too many clients…): not down. Restarting or failing it over
		// would not fix that, and would lose what it is doing.
		o.Responding = true
		o.Error = pe.Code + ": " + pe.Message
	}
	if !o.Answering && !o.Responding {
		o.AgentUp = agentUp()
		// A postmaster that runs but refuses connections (crash
		// recovery, too many clients) is not down: neither a restart
		// nor a failover would help it.
		if o.AgentUp {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			running, serr := d.m.fleet.Running(cctx, t)
			cancel()
			if serr == nil && running {
				o.Answering = true
			}
			// No postmaster at all, for certain: restarted at once.
			o.Stopped = serr == nil && !running
		}
	}
	r.obs = o
	return r
}

// stale reports whether n, a coordinator in the cluster, routes to
// servers the catalog no longer has (coord.Stale): it was cut off when a
// switch re-pointed the coordinators. A read that fails says nothing.
func (d doctorHands) stale(ctx context.Context, s *cluster.State, n cluster.Node, t fleet.Member) bool {
	if !coord.IsCoordinator(n) || !n.InCluster {
		return false
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	have, err := d.m.fleet.ForeignServers(qctx, t)
	return err == nil && coord.Stale(s, n, inCluster, have)
}

// streams compares the slaves with what their masters' looks read of
// pg_stat_replication: a slave that answers but is not among its master's
// standbys is Stray (it was down when the master failed over, or follows
// another node); one the manager cannot reach while its master sees it
// streaming is not down — only the manager's view of its host is — and is
// left alone.
func (d doctorHands) streams(nodes []watched, obs []doctor.Observation, res []lookResult) {
	byName := map[string]int{}
	for i, n := range nodes {
		byName[n.Name] = i
	}
	for i, n := range nodes {
		if n.role != doctor.Slave || !n.InCluster {
			continue
		}
		j, ok := byName[n.Master]
		if !ok || !obs[j].Answering || res[j].standbys == nil {
			continue // a master down, not watched, or not read: unknown
		}
		state, known := res[j].standbys[n.Name]
		// catchup counts: it is connected and on its way.
		streaming := state == "streaming" || state == "catchup"
		switch {
		case obs[i].Answering && !streaming && !known:
			obs[i].Stray = true
		case !obs[i].Answering && !obs[i].Responding && streaming:
			obs[i].Answering = true
		}
	}
}

// standbys reads who streams from node, when it has slaves in the cluster
// (nil when it has none or they cannot be read): application_name →
// state.
func (d doctorHands) standbys(ctx context.Context, s *cluster.State, node cluster.Node) map[string]string {
	has := false
	for _, c := range s.Children(node.Name) {
		has = has || c.InCluster
	}
	if !has {
		return nil
	}
	m, err := fleet.At(s, node)
	if err != nil {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reps, err := d.m.fleet.Replication(qctx, m)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, r := range reps {
		out[r.Application] = r.State
	}
	return out
}

// guestActs are the doctor's actions that may run while a DBA's command
// only waits (guestPass): the quick repairs of a node that is down or
// astray. A rewind or a rejoin (a base backup may take hours; a rejoin
// copies and compares other coordinators) repairs nothing clients wait
// for, and would hold the command — and the writes a SWITCHOVER holds at
// the coordinators — for as long: they wait for the command to end.
var guestActs = map[doctor.ActionKind]bool{doctor.Restart: true, doctor.Failover: true, doctor.Follow: true,
	doctor.Isolate: true, doctor.Fence: true, doctor.Refresh: true, doctor.Sync: true}

// lock takes the cluster lock for the doctor's act on node, or reports
// doctor.ErrBusy. While the command holding it only waits (a SWITCHOVER's
// quiesce), one of guestActs whose node's replication group is outside
// that command's scope is let in as its guest (guestPass).
// doctorLockPrefix starts the name under which the doctor's actions hold
// the cluster lock (isDoctorAction).
const doctorLockPrefix = "the doctor's "

func (d doctorHands) lock(ctx context.Context, act doctor.ActionKind, node string) (func(), error) {
	what := doctorLockPrefix + string(act)
	unlock, err := d.m.lockCluster(what)
	if err == nil {
		return unlock, nil
	}
	if node != "" && guestActs[act] {
		if leave, ok := d.guest(ctx, node); ok {
			if ferr := d.m.requireFlushed(what); ferr != nil {
				leave()
				return nil, fmt.Errorf("%w: %w", doctor.ErrBusy, ferr)
			}
			d.m.log.Info("doctor: acting while a DBA's command waits on other nodes", "action", act, "node", node)
			return leave, nil
		}
	}
	return nil, fmt.Errorf("%w: %w", doctor.ErrBusy, err)
}

// guest asks for a guest pass for an action on node, which touches its
// replication group (a failover re-points its slaves, a rewind or a
// follow uses its master).
func (d doctorHands) guest(ctx context.Context, node string) (func(), bool) {
	s, err := d.m.state(ctx)
	if err != nil {
		return nil, false
	}
	return d.m.guests.enter(switches.Group(s, node))
}

// still re-reads the catalog under the lock: the node must still be what
// the doctor watched (a command that ran meanwhile — STOP, FAILOVER,
// SWITCHOVER, REWIND — may have changed it).
func (d doctorHands) still(ctx context.Context, node string, waiting bool) (*cluster.State, watched, error) {
	s, err := d.m.state(ctx)
	if err != nil {
		return nil, watched{}, err
	}
	for _, n := range curable(s) {
		if n.Name == node && doctor.Waiting(n.CureStatus) == waiting {
			return s, n, nil
		}
	}
	return nil, watched{}, fmt.Errorf("node %q is no longer one the doctor may cure this way", node)
}

// under runs an action on node under the cluster lock, in a journal entry
// of the doctor's ("DOCTOR <action> <node>"): fn may write rows of its own
// into j; the last says done or failed, and what happened.
func (d doctorHands) under(ctx context.Context, act doctor.ActionKind, node string, waiting bool,
	fn func(j *switches.Journal, s *cluster.State, n watched) (string, error)) error {
	unlock, err := d.lock(ctx, act, node)
	if err != nil {
		return err
	}
	defer unlock()
	s, n, err := d.still(ctx, node, waiting)
	if err != nil {
		return err
	}
	j := &switches.Journal{Command: "DOCTOR " + strings.ToUpper(string(act)) + " " + node}
	detail, err := fn(j, s, n)
	status := "done"
	if err != nil {
		status, detail = "failed", d.again(ctx, j, act, n.Node, err.Error())
	}
	_ = switchCatalog{d.m}.Commit(ctx, j, switches.Step{Status: status, Name: "end", Detail: detail}, nil)
	return err
}

// again is the journal detail of a failed action, what went wrong and
// what a DBA can do (doctor.FailHint). An action that failed as its
// previous entry did, and opened no entry of its own, updates that entry
// (j.ID), counting the tries — the entry's started and updated say the
// first and the last — instead of adding one each time it is tried
// (doctor.Failing spaces the tries).
func (d doctorHands) again(ctx context.Context, j *switches.Journal, act doctor.ActionKind, n cluster.Node, detail string) string {
	detail += ". HINT: " + doctor.FailHint(act, n.Name, string(n.Type.Family()))
	if j.ID != 0 {
		return detail
	}
	res, err := d.m.cat.Query(ctx, "SELECT id, status, detail FROM journal WHERE command = "+quoteLiteral(j.Command)+" ORDER BY id DESC LIMIT 1")
	if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 3 || res.Rows[0][0] == nil || res.Rows[0][1] == nil || res.Rows[0][2] == nil {
		return detail
	}
	id, err := strconv.ParseInt(*res.Rows[0][0], 10, 64)
	if err != nil || *res.Rows[0][1] != "failed" {
		return detail
	}
	j.ID = id
	return doctor.Tried(*res.Rows[0][2], detail)
}

// commit writes the plan decide makes from a fresh catalog with a row of
// journal j, in one transaction, and logs the plan's notices.
func (d doctorHands) commit(ctx context.Context, j *switches.Journal, step switches.Step, decide func(*cluster.State) cluster.Plan) error {
	var notes []cluster.Notice
	if err := (switchCatalog{d.m}).Commit(ctx, j, step, func(sn switches.Snapshot) (cluster.Plan, error) {
		p := decide(sn.State)
		notes = p.Notices
		return p, nil
	}); err != nil {
		return err
	}
	for _, n := range notes {
		logProgress{d.m.log}.Notice(n.Severity, n.Message)
	}
	return nil
}

// Restart starts a node in place. Under the cluster lock: a switch in
// progress has stopped the old master on purpose, and starting it again
// would make two masters. A node the catalog (read again under the lock)
// does not call a master is made a standby of its master first
// (recovery settings and standby.signal): whatever its data directory
// says — a fenced node that ran as a primary, an old master whose switch
// was cut short — it must never start as a primary.
func (d doctorHands) Restart(ctx context.Context, node string) error {
	return d.under(ctx, doctor.Restart, node, false, func(_ *switches.Journal, s *cluster.State, n watched) (string, error) {
		t, err := fleet.At(s, n.Node)
		if err != nil {
			return "", err
		}
		if !n.Type.IsMaster() {
			parent, err := fleet.Of(s, n.Master)
			if err != nil {
				return "", fmt.Errorf("not started, its master is unknown: %w", err)
			}
			if err := d.m.fleet.WriteStandby(ctx, t, parent); err != nil {
				return "", fmt.Errorf("not started as a standby: %w", err)
			}
		}
		_, err = d.m.fleet.Start(ctx, t)
		return "", err
	})
}

// Fence stops a node that answers as a primary while the catalog says it
// is not a master — fast, then immediate — whatever its allowcure: a
// safety action, journaled DOCTOR FENCE. Under the cluster lock (a
// SWITCHOVER promotes its new master before the catalog says so, and holds
// the lock meanwhile), after reading the catalog and the node again. A
// waiting old master is then rewound by the doctor; one a DBA kicked out
// stays stopped until the DBA's REWIND.
func (d doctorHands) Fence(ctx context.Context, node, reason string) error {
	unlock, err := d.lock(ctx, doctor.Fence, node)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := d.m.state(ctx)
	if err != nil {
		return err
	}
	n, ok := s.Node(node)
	if !ok || n.Type.IsMaster() {
		return nil // a switch made it a master meanwhile
	}
	t, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	if rec, err := d.m.fleet.InRecovery(ctx, t); err != nil || rec {
		return nil // stopped or a standby again meanwhile
	}
	j := &switches.Journal{Command: "DOCTOR " + strings.ToUpper(string(doctor.Fence)) + " " + node}
	status, detail := "done", reason+"; stopped"
	if _, err = d.m.fleet.Stop(ctx, t, fleet.Fast); err != nil {
		detail = reason + "; stopped (immediate)"
		if _, err = d.m.fleet.Stop(ctx, t, fleet.Immediate); err != nil {
			status, detail = "failed", d.again(ctx, j, doctor.Fence, n, reason+"; cannot stop it: "+err.Error())
		}
	}
	_ = switchCatalog{d.m}.Commit(ctx, j, switches.Step{Status: status, Name: "end", Detail: detail}, nil)
	if err != nil {
		return fmt.Errorf("cannot fence %s (%s): %w", node, reason, err)
	}
	logProgress{d.m.log}.Notice("WARNING", fmt.Sprintf("%s %s; it was stopped (fenced)", node, reason))
	return nil
}

// Refresh writes a stale coordinator's node list and foreign servers again
// (coord.Configure renames a server named after an old master and points
// each at its master): it missed a switch's re-point while cut off.
func (d doctorHands) Refresh(ctx context.Context, node string) error {
	return d.under(ctx, doctor.Refresh, node, false, func(_ *switches.Journal, s *cluster.State, n watched) (string, error) {
		t, err := fleet.At(s, n.Node)
		if err != nil {
			return "", err
		}
		return "", d.m.fleet.ConfigureCoordinator(ctx, s, t, inCluster)
	})
}

// Failover is FAILOVER of the node, without FORCE, its NOTICEs going to
// the manager's log; the nodes it leaves out of the cluster wait for the
// doctor (doctor.AfterFailover) instead of a DBA's REWIND, marked in the
// failover's own catalog transaction. The doctor's journal entry is opened
// first: a manager killed during the switch leaves it interrupted, and
// the doctor finishes the switch when it runs again (resume).
func (d doctorHands) Failover(ctx context.Context, node string) error {
	return d.under(ctx, doctor.Failover, node, false, func(j *switches.Journal, _ *cluster.State, n watched) (string, error) {
		d.open(ctx, j, node)
		res, err := d.m.switches().Failover(ctx, d.failover(n.Node), logProgress{d.m.log})
		return res.Node, err
	})
}

// failover is the doctor's failover request for master n.
func (d doctorHands) failover(n cluster.Node) switches.Failover {
	return switches.Failover{Family: n.Type.Family(), Master: n.Name, Zone: n.Zone, Doctor: true,
		Mark: func(before, after *cluster.State) cluster.Plan { return doctor.AfterFailover(before, after, n.Name) }}
}

// open writes the first row of the doctor's journal entry j.
func (d doctorHands) open(ctx context.Context, j *switches.Journal, node string) {
	_ = switchCatalog{d.m}.Commit(ctx, j, switches.Step{Status: "running", Name: "start", Detail: node}, nil)
}

// Follow re-points a running slave at its master: the slot, its recovery
// settings, a reload (PostgreSQL 13+ reconnects without a restart, and
// recovery_target_timeline = latest takes the master's timeline).
func (d doctorHands) Follow(ctx context.Context, node string) error {
	return d.under(ctx, doctor.Follow, node, false, func(_ *switches.Journal, s *cluster.State, n watched) (string, error) {
		m, err := fleet.At(s, n.Node)
		if err != nil {
			return "", err
		}
		parent, err := fleet.Of(s, n.Master)
		if err != nil {
			return "", err
		}
		if err := d.m.fleet.MakeStandbyOf(ctx, m, parent); err != nil {
			return "", err
		}
		return n.Master, d.m.fleet.Reload(ctx, m)
	})
}

// Isolate takes a node out of the cluster (doctor.PlanIsolate) in one
// transaction with its journal row, then writes its master's sync names
// (no commit waits for it any more) and the coordinators' node lists.
func (d doctorHands) Isolate(ctx context.Context, node, reason string) error {
	return d.under(ctx, doctor.Isolate, node, false, func(j *switches.Journal, _ *cluster.State, _ watched) (string, error) {
		if err := d.commit(ctx, j, switches.Step{Status: "running", Name: "isolate", Detail: reason}, func(s *cluster.State) cluster.Plan {
			return doctor.PlanIsolate(s, node, reason)
		}); err != nil {
			return "", err
		}
		return reason, d.refresh(ctx, node)
	})
}

// refresh writes, after node left or joined the cluster, its master's sync
// names and the coordinators' node lists; problems are warnings.
func (d doctorHands) refresh(ctx context.Context, node string) error {
	s, err := d.m.state(ctx)
	if err != nil {
		return err
	}
	p := logProgress{d.m.log}
	n, _ := s.Node(node)
	if master, ok := s.Node(n.Master); ok && master.InCluster {
		if err := switches.SyncNames(ctx, d.m.fleet, s, master, inCluster, false, p); err != nil {
			p.Notice("WARNING", fmt.Sprintf("could not write the synchronous_standby_names of %s: %s", master.Name, err))
		}
	}
	switches.RefreshCoordinators(ctx, d.m.fleet, s, "", "", p)
	return nil
}

// rewindRequest is the REWIND the doctor runs for a waiting slave: the one
// place its request is built.
func rewindRequest(n cluster.Node) switches.Rewind {
	// Under the doctor a rewind that cannot work (the node's WAL gone, a
	// timeline pg_rewind cannot follow) falls back to a fresh base backup:
	// nobody is there to read the hint.
	return switches.Rewind{Family: n.Type.Family(), Slave: n.Name, FallbackBaseBackup: true}
}

// Rewind makes a waiting slave — the old master of the doctor's failover,
// a slave that could not follow it, an isolated slave — a streaming slave
// of its master again with REWIND (back in the cluster with
// cluster.RewoundSyncState: async when it was async before it left, or
// lives in another zone than its master; else sync when its master has
// none, potential otherwise).
func (d doctorHands) Rewind(ctx context.Context, node string) error {
	return d.under(ctx, doctor.Rewind, node, true, func(j *switches.Journal, _ *cluster.State, n watched) (string, error) {
		d.open(ctx, j, node)
		p := logProgress{d.m.log}
		if _, err := d.m.switches().Rewind(ctx, rewindRequest(n.Node), p); err != nil {
			return "", err
		}
		after, err := d.m.state(context.WithoutCancel(ctx))
		if err != nil {
			return "", nil
		}
		if note, ok := doctor.RewoundNotice(after, node); ok {
			p.Notice(note.Severity, note.Message)
			return note.Message, nil
		}
		return "", nil
	})
}

// logProgress sends the NOTICEs of the doctor's switches to the manager's
// log.
type logProgress struct{ log *slog.Logger }

func (w logProgress) Notice(sev, msg string) { w.log.Info("doctor: "+msg, "severity", sev) }
