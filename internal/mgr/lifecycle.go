package mgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/kinds"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// startOrder is AntDB's START ALL order; STOP ALL goes the other way for
// masters and slaves of each family (slaves stop before their masters).
var startOrder = []cluster.NodeType{
	cluster.GtmcoordMaster, cluster.GtmcoordSlave, cluster.CoordinatorMaster, cluster.CoordinatorSlave,
	cluster.DatanodeMaster, cluster.DatanodeSlave,
}

var stopOrder = []cluster.NodeType{
	cluster.DatanodeSlave, cluster.DatanodeMaster, cluster.CoordinatorMaster, cluster.CoordinatorSlave,
	cluster.GtmcoordSlave, cluster.GtmcoordMaster,
}

// familyOf maps a statement's family keyword to a node family
// (kinds.Family).
func familyOf(f parser.Family) cluster.Family { return kinds.Family(f) }

// selectTargets resolves a NodeTarget against the node table.
func selectTargets(e *req, s *cluster.State, t parser.NodeTarget) ([]cluster.Node, error) {
	var out []cluster.Node
	switch {
	case t.Zone.Name != "":
		for _, n := range s.Nodes {
			if n.Zone == t.Zone.Name {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, pgerror.New(pgerror.UndefinedObject, `zone "%s" has no node`, t.Zone.Name).At(e.q, t.Zone.Pos)
		}
	case t.Kind.Family == parser.FamilyNone:
		out = append(out, s.Nodes...)
	case len(t.Names) == 0:
		f := familyOf(t.Kind.Family)
		for _, n := range s.Nodes {
			if n.Type.Family() == f && (t.Kind.Role == parser.RoleAny || n.Type.IsMaster() == (t.Kind.Role == parser.Master)) {
				out = append(out, n)
			}
		}
	default:
		want := nodeType(t.Kind)
		for _, id := range t.Names {
			n, ok := s.Node(id.Name)
			if !ok {
				return nil, pgerror.New(pgerror.UndefinedObject, `%s "%s" does not exist`, want, id.Name).At(e.q, id.Pos)
			}
			if n.Type != want {
				return nil, pgerror.New(pgerror.UndefinedObject, `the type of %s is not right, use "list node" to check`, id.Name).
					WithHint(`"%s" is a %s.`, id.Name, n.Type).At(e.q, id.Pos)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// mode is how pg_ctl stops a node in STOP's MODE.
func mode(m parser.StopMode) fleet.Mode {
	switch m {
	case parser.ModeFast:
		return fleet.Fast
	case parser.ModeImmediate:
		return fleet.Immediate
	}
	return fleet.Smart
}

func (m *Manager) startNodes(e *req, st *parser.StartNodes) error {
	return m.startStop(e, st.Target, true, "")
}

func (m *Manager) stopNodes(e *req, st *parser.StopNodes) error {
	if st.Mode == parser.ModeSmart {
		e.w.Notice("NOTICE", "smart mode waits for every client to disconnect (at most 120 s per node); use MODE fast to disconnect them")
	}
	return m.startStop(e, st.Target, false, mode(st.Mode))
}

// startStop runs pg_ctl start or stop on the targeted nodes, one node type
// at a time in AntDB's order, the nodes of one type in parallel. A node
// already in the wanted state is reported, not an error.
func (m *Manager) startStop(e *req, t parser.NodeTarget, start bool, md fleet.Mode) error {
	verb := "stop"
	order := stopOrder
	if start {
		verb, order = "start", startOrder
	}
	unlock, err := m.lockOps(strings.ToUpper(verb))
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	nodes, err := selectTargets(e, s, t)
	if err != nil {
		return err
	}
	if start {
		// A start (of a running node too) rewrites the nodes' secrets:
		// after the nodes' password changed (docs: rotating it), START ALL
		// brings every password file up to date, the DBAs' one included.
		m.refreshDBAPassFile(e, s)
	}
	if !start {
		// The doctor keeps off nodes a DBA stops — marked before they go
		// down, so that it never sees them down and still curable.
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name)
		}
		if err := m.markNodes(e.ctx, names, func(n *cluster.Node) { n.AllowCure = false }); err != nil {
			return err
		}
	}
	var results []opResult
	for _, typ := range order {
		var group []cluster.Node
		for _, n := range nodes {
			if n.Type == typ {
				group = append(group, n)
			}
		}
		if len(group) == 0 {
			continue
		}
		res := m.startStopGroup(e, s, verb+" "+string(typ), group, start, md)
		for _, r := range res {
			r.notice(e.w)
		}
		results = append(results, res...)
	}
	// The doctor may act on started nodes, not on nodes a DBA stopped.
	if start {
		if err := m.started(e, s, results); err != nil {
			return err
		}
	}
	return writeOpResults(e.w, results)
}

// startStopGroup starts or stops the nodes of one type, in parallel.
func (m *Manager) startStopGroup(e *req, s *cluster.State, op string, group []cluster.Node, start bool, md fleet.Mode) []opResult {
	res := make([]opResult, len(group))
	parallel(len(group), func(i int) {
		n := group[i]
		r := opResult{op: op, node: n.Name, ok: true, desc: "success"}
		defer func() { res[i] = r }()
		if !n.Initialized {
			r.ok, r.desc = false, fmt.Sprintf(`%s "%s" has not been initialized`, n.Type, n.Name)
			return
		}
		tg, err := fleet.At(s, n)
		if err != nil {
			r.failed(err)
			return
		}
		var already bool
		if start {
			already, err = m.fleet.Start(e.ctx, tg)
		} else {
			already, err = m.fleet.Stop(e.ctx, tg, md)
		}
		switch {
		case err != nil:
			r.ok, r.desc = false, agentError(err)
		case already && start:
			r.desc = "already running"
		case already:
			r.desc = "already stopped"
		}
	})
	return res
}

// started gives the doctor the nodes that started, and brings the node
// list, servers and slot map of a coordinator that was down — it may have
// missed a switch — up to date.
func (m *Manager) started(e *req, s *cluster.State, results []opResult) error {
	var done []string
	for _, r := range results {
		if r.ok {
			done = append(done, r.node)
		}
	}
	if err := m.markNodes(e.ctx, done, func(n *cluster.Node) { n.AllowCure = true }); err != nil {
		return err
	}
	ok := func(x cluster.Node) bool { return x.InCluster }
	for _, name := range done {
		n, _ := s.Node(name)
		if coord.IsCoordinator(n) && n.InCluster {
			if err := m.configureCoordinator(e.ctx, s, n, ok); err != nil {
				e.w.Notice("WARNING", fmt.Sprintf("could not refresh %s: %s", describeNode(n), err))
			}
		}
	}
	return nil
}

var monitorColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "nodetype", TypeOID: pgwire.OIDText},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
	{Name: "host", TypeOID: pgwire.OIDText},
	{Name: "port", TypeOID: pgwire.OIDInt4},
	{Name: "recovery", TypeOID: pgwire.OIDText},
	{Name: "boot time", TypeOID: pgwire.OIDText},
	{Name: "nodezone", TypeOID: pgwire.OIDName},
}

// monitor shows whether each node runs, in LIST NODE's order. It takes no
// lock: it must answer while a long operation runs.
func (m *Manager) monitor(e *req, st *parser.Monitor) error {
	rows, err := m.monitorRows(e, st.Target)
	if err != nil {
		return err
	}
	return writeTable(e.w, monitorColumns, rows)
}

// monitorRows probes the targeted nodes in parallel, one row each (keyed by
// MONITOR's column names), in LIST NODE's order.
func (m *Manager) monitorRows(e *req, t parser.NodeTarget) ([]map[string]string, error) {
	s, err := m.state(e.ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := selectTargets(e, s, t)
	if err != nil {
		return nil, err
	}
	cluster.SortForList(nodes)
	rows := make([]map[string]string, len(nodes))
	parallel(len(nodes), func(i int) {
		n := nodes[i]
		h, _ := s.Host(n.Host)
		row := map[string]string{"nodename": n.Name, "nodetype": string(n.Type), "status": "f",
			"host": h.Address, "port": strconv.Itoa(n.Port), "recovery": "", "boot time": "", "nodezone": n.Zone}
		rows[i] = row
		row["description"] = m.probe(e.ctx, s, n, row)
	})
	return rows, nil
}

// probe fills a MONITOR row for n and returns its description.
func (m *Manager) probe(ctx context.Context, s *cluster.State, n cluster.Node, row map[string]string) string {
	mem, err := fleet.At(s, n)
	if err != nil {
		return err.Error()
	}
	h := mem.Host
	st, err := m.fleet.SQLStatus(ctx, mem, 3*time.Second)
	if err == nil {
		row["status"] = "t"
		row["recovery"] = strconv.FormatBool(st.Recovery)
		row["boot time"] = st.Boot.Format("2006-01-02 15:04:05-07")
		// Not MONITOR's columns: the HTTP status's (status.go) and the
		// monitor history's (history.go).
		row["timeline"], row["connections"] = strconv.FormatInt(st.Timeline, 10), strconv.FormatInt(st.Connections, 10)
		if !st.Recovery && !n.Type.IsMaster() {
			// A second writable master (an old master cut off during a
			// failover, seen again): an error, not a healthy slave. The
			// doctor fences it (docs/HA.md).
			row["status"] = "f"
			return doctor.FenceReason(n.Master)
		}
		if st.Recovery && n.Type.IsMaster() {
			// The opposite: the group's master in the catalog cannot
			// take a write (a slave recorded as master before it was
			// promoted, a demoted master not yet recorded as a slave).
			row["status"] = "f"
			return standbyMaster
		}
		return "running"
	}
	var ce *fleet.ConnectError
	loggedIn := !errors.As(err, &ce)
	if pe := pgclient.ServerError(err); pe != nil && loggedIn {
		// Up (it answered), but the manager's query failed: say so
		// rather than "not running", which would send a DBA (or a
		// script) to restart or fail over a healthy master.
		row["status"] = "t"
		return fmt.Sprintf("running, but adbmgr's query fails: %s (SQLSTATE %s)", pe.Message, pe.Code)
	} else if pe != nil && pe.Code != pgclient.CannotConnectNow {
		// As libpq's PQping: a server that sends an error other than
		// "starting up / shutting down" runs, though it refused this
		// login (pg_hba.conf, too many clients, ALLOW_CONNECTIONS false).
		row["status"] = "t"
		return fmt.Sprintf("running, but refuses adbmgr's connection: %s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	unreachable := func() bool { return strings.HasPrefix(agentDown(h), "unreachable") }
	if timedOut(err) && unreachable() {
		// The node did not answer in time and the agent's port does
		// not answer either: the host is down or cut off. Say so now
		// rather than wait for the agent call to time out as well.
		return fmt.Sprintf(`unreachable: host "%s" (%s) does not answer`, h.Name, h.Address)
	}
	ns, err := m.fleet.Status(ctx, mem)
	if err != nil && unreachable() {
		return fmt.Sprintf(`unreachable: host "%s" (%s) does not answer`, h.Name, h.Address)
	}
	switch {
	case err != nil && m.fleet.Listening(mem):
		return fmt.Sprintf(`server is alive but adbmgr cannot log in; could not connect to the agent on host "%s"`, h.Name)
	case err != nil:
		return fmt.Sprintf(`not running (could not connect to the agent on host "%s")`, h.Name)
	case !ns.Initialized && !n.Initialized:
		return "not initialized"
	case ns.Ready == "rejecting":
		return "server is alive but rejecting connections"
	case ns.Running:
		return "server is starting or stopping"
	}
	return "not running"
}

// standbyMaster is what MONITOR says of a node the catalog calls a
// master while it runs in recovery: its group has no writable node.
const standbyMaster = "runs as a standby but the catalog says it is a master"

// timedOut reports whether a connection attempt ended for want of an
// answer (rather than being refused).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

var haColumns = []pgwire.Column{
	{Name: "type", TypeOID: pgwire.OIDText},
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "application_name", TypeOID: pgwire.OIDText},
	{Name: "client_addr", TypeOID: pgwire.OIDText},
	{Name: "state", TypeOID: pgwire.OIDText},
	{Name: "sent_lsn", TypeOID: pgwire.OIDText},
	{Name: "replay_lsn", TypeOID: pgwire.OIDText},
	{Name: "sync_state", TypeOID: pgwire.OIDText},
	{Name: "master_lsn", TypeOID: pgwire.OIDText},
	{Name: "sent_delay", TypeOID: pgwire.OIDText},
	{Name: "replay_deplay", TypeOID: pgwire.OIDText},
	{Name: "zone", TypeOID: pgwire.OIDName},
}

// monitorHA shows, for every slave, its row in its parent's
// pg_stat_replication (AntDB's column names, "replay_deplay" included).
func (m *Manager) monitorHA(e *req, st *parser.MonitorHA) error {
	cols, err := project(e.q, haColumns, st.Columns, "MONITOR HA")
	if err != nil {
		return err
	}
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	var slaves []cluster.Node
	for _, n := range s.Nodes {
		if n.Type.IsMaster() || (st.Zone.Name != "" && n.Zone != st.Zone.Name) {
			continue
		}
		if len(st.Names) > 0 && !containsIdent(st.Names, n.Name) && !containsIdent(st.Names, n.Master) {
			continue
		}
		slaves = append(slaves, n)
	}
	for _, id := range st.Names {
		if _, ok := s.Node(id.Name); !ok {
			return pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, id.Name).At(e.q, id.Pos)
		}
	}
	cluster.SortForList(slaves)
	parents := m.replicas(e.ctx, s, slaves)
	standby := m.standbyMasters(e.ctx, s, slaves)
	rows := make([]map[string]string, len(slaves))
	parallel(len(slaves), func(i int) {
		n := slaves[i]
		row := map[string]string{"type": string(n.Type), "nodename": n.Name, "application_name": n.Name,
			"state": "not streaming", "zone": n.Zone}
		rows[i] = row
		r, streaming := replicaOf(parents, n)
		if streaming {
			row["client_addr"], row["state"], row["sent_lsn"], row["replay_lsn"] = r.ClientAddr, r.State, r.SentLSN, r.ReplayLSN
			row["sync_state"], row["master_lsn"], row["sent_delay"], row["replay_deplay"] = r.SyncState, r.MasterLSN, r.SentDelay, r.ReplayDelay
		} else if mem, err := fleet.At(s, n); err == nil {
			// Not streaming: say so louder when it answers as a primary.
			if st, err := m.fleet.SQLStatus(e.ctx, mem, 2*time.Second); err == nil && !st.Recovery {
				row["state"] = doctor.FenceReason(n.Master)
				return
			}
		}
		if standby[n.Master] {
			// Streaming or not, it follows no writable master.
			row["state"] = fmt.Sprintf("its master %s %s", n.Master, standbyMaster)
		}
	})
	warnSyncDiffers(e.w, slaves, rows)
	return writeTable(e.w, cols, rows)
}

// warnSyncDiffers flags, under MONITOR HA, a slave its master streams to
// asynchronously while the node table calls it sync or potential: the
// master's live synchronous_standby_names is not the catalog's, so it
// acknowledges commits the slave may lack (the doctor writes the list
// again; a DBA's FAILOVER without FORCE would trust the catalog).
func warnSyncDiffers(w pgwire.ResultWriter, slaves []cluster.Node, rows []map[string]string) {
	for i, n := range slaves {
		if (n.Type == cluster.DatanodeSlave || n.Type == cluster.GtmcoordSlave) &&
			(n.SyncState == cluster.Sync || n.SyncState == cluster.Potential) && rows[i]["sync_state"] == "async" {
			w.Notice("WARNING", fmt.Sprintf("%s streams asynchronously from %s, whose synchronous_standby_names does not name it, while the node table calls it %s",
				n.Name, n.Master, n.SyncState))
		}
	}
}

// replicas reads pg_stat_replication once per parent of slaves (MONITOR
// HA, the HTTP status): parent's name → its rows; a parent that does not
// answer has none.
func (m *Manager) replicas(ctx context.Context, s *cluster.State, slaves []cluster.Node) map[string][]pgclient.Replica {
	parents := map[string][]pgclient.Replica{}
	for _, n := range slaves {
		if _, done := parents[n.Master]; done {
			continue
		}
		parents[n.Master] = nil
		p, ok := s.Node(n.Master)
		if !ok {
			continue
		}
		pm, err := fleet.At(s, p)
		if err != nil {
			continue
		}
		parents[n.Master], _ = m.fleet.Replication(ctx, pm)
	}
	return parents
}

// standbyMasters are the masters of slaves, in the catalog, that answer
// in recovery (MONITOR HA): name → true.
func (m *Manager) standbyMasters(ctx context.Context, s *cluster.State, slaves []cluster.Node) map[string]bool {
	out := map[string]bool{}
	for _, n := range slaves {
		p, ok := s.Node(n.Master)
		if _, seen := out[n.Master]; seen || !ok || !p.Type.IsMaster() {
			continue
		}
		out[n.Master] = false
		if pm, err := fleet.At(s, p); err == nil {
			st, err := m.fleet.SQLStatus(ctx, pm, 2*time.Second)
			out[n.Master] = err == nil && st.Recovery
		}
	}
	return out
}

// replicaOf finds slave n's row in its parent's pg_stat_replication.
func replicaOf(parents map[string][]pgclient.Replica, n cluster.Node) (pgclient.Replica, bool) {
	for _, r := range parents[n.Master] {
		if r.Application == n.Name {
			return r, true
		}
	}
	return pgclient.Replica{}, false
}

func containsIdent(ids []parser.Ident, name string) bool {
	for _, id := range ids {
		if id.Name == name {
			return true
		}
	}
	return false
}

var cleanColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "nodetype", TypeOID: pgwire.OIDText},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
}

// clean empties data directories (reference §4.8). CLEAN ALL and CLEAN ZONE
// need every node they cover stopped; a single node must also be out of the
// cluster. Cleaned nodes are no longer initialized, so INIT ALL recreates them.
func (m *Manager) clean(e *req, st *parser.Clean) error {
	if st.MonitorDays >= 0 {
		return m.cleanMonitor(e, st.MonitorDays)
	}
	unlock, err := m.lockCluster("CLEAN")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	nodes, err := selectTargets(e, s, st.Target)
	if err != nil {
		return err
	}
	single := st.Target.Kind.Family != parser.FamilyNone && len(st.Target.Names) > 0
	var hosts []cluster.Host
	for _, n := range nodes {
		mem, err := fleet.At(s, n)
		if err != nil {
			return err
		}
		hosts = append(hosts, mem.Host)
		if single && n.InCluster {
			return pgerror.New(pgerror.ObjectInUse, `%s already exists in cluster, cannot be cleaned`, describeNode(n)).
				WithHint("CLEAN ALL cleans a whole stopped cluster; a single node must be removed from the cluster first.")
		}
		if m.fleet.Listening(mem) {
			msg := `%s still running, please stop it before clean all`
			if st.Target.Zone.Name != "" {
				msg = `%s still running, please stop it before clean zone`
			}
			if single {
				msg = `%s is running, cannot be cleaned, stop it first`
			}
			return pgerror.New(pgerror.ObjectInUse, msg, describeNode(n)).WithHint(`try "monitor all;" for more information`)
		}
	}
	for _, h := range hosts {
		if err := m.requireAgent(e.ctx, h); err != nil {
			return err
		}
	}
	rows := make([]map[string]string, len(nodes))
	var cleaned []string
	okc := make([]bool, len(nodes))
	parallel(len(nodes), func(i int) {
		n := nodes[i]
		row := map[string]string{"nodename": n.Name, "nodetype": string(n.Type), "status": "t", "description": "success"}
		rows[i] = row
		t, err := fleet.At(s, n)
		if err == nil {
			err = m.fleet.CleanDir(e.ctx, t)
		}
		if err != nil {
			row["status"], row["description"] = "f", agentError(err)
			return
		}
		okc[i] = true
	})
	for i, n := range nodes {
		if okc[i] {
			cleaned = append(cleaned, n.Name)
			if single && !n.Type.IsMaster() {
				fleet.DropSlaveSlot(e.ctx, m.fleet, s, n, e.w)
			}
		}
	}
	if err := m.markNodes(e.ctx, cleaned, func(n *cluster.Node) {
		n.Initialized, n.InCluster, n.AllowCure, n.CureStatus = false, false, false, "normal"
	}); err != nil {
		return err
	}
	return writeTable(e.w, cleanColumns, rows)
}
