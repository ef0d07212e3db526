package mgr

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/params"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/jackc/pgx/v5"
)

// appendNode is APPEND (reference §4.9): a node added to the node table
// after INIT ALL joins the running cluster — a slave by base backup from its
// master, a datanode master by initdb (it owns no slot until EXPAND), a
// coordinator master by a clone of the gtmcoord master, which carries the
// adb schema and every distributed table's definition.
func (m *Manager) appendNode(e *req, st *parser.Append) error {
	if st.Activate {
		return m.appendActivate(e, st)
	}
	unlock, err := m.lockCluster("APPEND")
	if err != nil {
		return err
	}
	defer unlock()
	desc, err := m.appendOne(e, st)
	if err != nil {
		return err
	}
	return writeNodeResult(e.w, st.Name.Name, true, desc)
}

// appendOne does APPEND of one node (cluster.PlanAppend), under the
// caller's cluster lock, and returns the result row's description.
func (m *Manager) appendOne(e *req, st *parser.Append) (string, error) {
	walseg, err := walSegSize(e.q, st.Options)
	if err != nil {
		return "", err
	}
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return "", err
	}
	s := sn.s
	plan, err := cluster.PlanAppend(s, cluster.AppendRequest{Name: st.Name.Name, Type: nodeType(st.Kind), Source: st.Source.Name})
	if err != nil {
		pos := map[string]int{"name": st.Name.Pos, "source": st.Source.Pos}
		if p, ok := pos[cluster.ErrorField(err)]; ok {
			return "", e.at(err, p)
		}
		return "", err
	}
	n, _ := s.Node(st.Name.Name)
	if _, err := m.target(s, n); err != nil {
		return "", err
	}
	if err := m.initPrecheck(e.ctx, s, []cluster.InitStage{{Nodes: []cluster.Node{n}}}); err != nil {
		return "", err
	}
	if src, ok := s.Node(plan.AppendSource()); ok {
		sh, _ := s.Host(src.Host)
		if !pgclient.Ping(sh.Address, src.Port, 2*time.Second) {
			return "", pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not running, so you can't perform the current operation.`, describeNode(src))
		}
	}
	j := m.growJournal(e, "APPEND "+n.Name)
	// The running nodes must trust the new node's host before it connects.
	hba, err := m.prepareGrowth(e, s)
	if err != nil {
		return "", err
	}
	// APPEND COORDINATOR … FOR …: a copy that waits for APPEND ACTIVATE;
	// every other APPEND: a node that joined the cluster.
	done := func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.AppendJoined(s, n.Name)
	}
	if n.Type == cluster.CoordinatorMaster && st.Source.Name != "" {
		done = func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
			return cluster.AppendCopied(s, n.Name, st.Source.Name)
		}
	}
	g := &grower{m: m, e: e, sn: sn, hba: hba, j: j, walseg: walseg, checksums: st.DataChecksums, done: done}
	err = g.run(plan.Steps)
	j.end(e, string(g.failed.Kind), err)
	if err != nil && !g.committed {
		return "", pgerror.New(pgerror.ObjectNotInPrereqState, "APPEND %s failed: %s", n.Name, err).
			WithHint("Fix the cause; CLEAN the node if its directory is not empty, then APPEND it again.")
	}
	if err != nil {
		return "", err
	}
	return g.result.Result, nil
}

// refreshHBA adds the manager's pg_hba.conf lines to every node of the
// cluster (a new host appears in them) and reloads the nodes.
func (m *Manager) refreshHBA(e *req, s *cluster.State, hba []cluster.HBALine) {
	var nodes []cluster.Node
	for _, n := range s.Nodes {
		if n.InCluster {
			nodes = append(nodes, n)
		}
	}
	parallel(len(nodes), func(i int) {
		t, err := m.target(s, nodes[i])
		if err == nil {
			err = t.setHBA(e.ctx, hba, nil, false)
		}
		if err == nil {
			_, err = t.pgctl(e.ctx, agentpb.PgCtlRequest_RELOAD, agentpb.PgCtlRequest_MODE_UNSPECIFIED)
		}
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("pg_hba.conf of %s not refreshed: %s", nodes[i].Name, agentError(err)))
		}
	})
}

// cloneCoordinator makes coordinator n a copy of source (the gtmcoord
// master) that starts as a primary of its own: a base backup started
// without standby.signal recovers to the end of the copied WAL and opens.
func (m *Manager) cloneCoordinator(e *req, s *cluster.State, sn *snapshot, n, source cluster.Node, hba []cluster.HBALine) error {
	t, err := m.target(s, n)
	if err != nil {
		return err
	}
	src, err := m.target(s, source)
	if err != nil {
		return err
	}
	if err := src.exec(e.ctx, func(c *pgx.Conn) error { return pgclient.EnsureSlot(e.ctx, c, n.Name) }); err != nil {
		return fmt.Errorf("replication slot on %s: %w", source.Name, err)
	}
	// The slot only holds WAL for the copy; it goes when the copy is done
	// (the walsender may still be marked active for a moment).
	defer func() {
		ctx := context.WithoutCancel(e.ctx)
		for try := 0; try < 10; try++ {
			var left int
			err := src.exec(ctx, func(c *pgx.Conn) error {
				if err := pgclient.DropSlot(ctx, c, n.Name); err != nil {
					return err
				}
				return c.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "+pgclient.Literal(n.Name)).Scan(&left)
			})
			if err == nil && left == 0 {
				return
			}
			sleepCtx(ctx, 500*time.Millisecond)
		}
		e.w.Notice("WARNING", fmt.Sprintf(`replication slot "%s" is left on %s; drop it there: SELECT pg_drop_replication_slot('%s')`, n.Name, source.Name, n.Name))
	}()
	if err := t.basebackup(e.ctx, src, e.w); err != nil {
		return fmt.Errorf("pg_basebackup from %s: %s", source.Name, agentError(err))
	}
	set := cluster.ServerParams(n, t.h)
	user, remove := params.Effective(n, sn.params)
	for k, v := range user {
		set[k] = v
	}
	if err := m.configureNode(e.ctx, t, set, remove, hba, sn.hba); err != nil {
		return err
	}
	if err := t.setConf(e.ctx, true, nil, []string{"primary_conninfo", "primary_slot_name"}); err != nil {
		return fmt.Errorf("recovery settings: %s", agentError(err))
	}
	cctx, cancel := call(e.ctx, 30*time.Second)
	_, err = t.agent.SetStandby(cctx, &agentpb.SetStandbyRequest{Node: t.ref(), Standby: false})
	cancel()
	if err != nil {
		return fmt.Errorf("standby.signal: %s", agentError(err))
	}
	if err := m.markNodes(e.ctx, []string{n.Name}, func(x *cluster.Node) { x.Initialized = true }); err != nil {
		return err
	}
	if _, err := t.pgctl(e.ctx, agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED); err != nil {
		return fmt.Errorf("pg_ctl start: %s", agentError(err))
	}
	return nil
}

// remove is REMOVE {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE} n [, …]
// (reference §4.7): stopped nodes leave the cluster but keep their rows
// (DROP deletes them, CLEAN empties their directories).
func (m *Manager) remove(e *req, st *parser.Remove) error {
	want := nodeType(st.Kind)
	if want == cluster.GtmcoordMaster || want == cluster.DatanodeMaster {
		return pgerror.New(pgerror.FeatureNotSupported, "it can't remove gtmcoord master, datanode master, only can remove coordinator master.")
	}
	unlock, err := m.lockCluster("REMOVE")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	var nodes []cluster.Node
	leaving := map[string]bool{}
	for _, id := range st.Names {
		n, ok := s.Node(id.Name)
		if !ok || n.Type != want {
			return pgerror.New(pgerror.UndefinedObject, `%s "%s" does not exist`, want, id.Name).At(e.q, id.Pos)
		}
		if !n.InCluster {
			return pgerror.New(pgerror.ObjectNotInPrereqState, `%s does not exist in cluster`, describeNode(n)).At(e.q, id.Pos)
		}
		for _, c := range s.Children(n.Name) {
			if c.InCluster {
				return pgerror.New(pgerror.ObjectInUse, "%s has slave node, cannot remove it. please drop the slave node first.", n.Name).At(e.q, id.Pos)
			}
		}
		h, _ := s.Host(n.Host)
		if pgclient.Ping(h.Address, n.Port, time.Second) {
			return pgerror.New(pgerror.ObjectInUse, `"%s" is running, stop it first`, n.Name).At(e.q, id.Pos)
		}
		nodes = append(nodes, n)
		leaving[n.Name] = true
	}
	if want == cluster.CoordinatorMaster {
		left := 0
		for _, n := range s.Nodes {
			if n.Type == cluster.CoordinatorMaster && n.InCluster && !leaving[n.Name] {
				left++
			}
		}
		if left == 0 {
			return pgerror.New(pgerror.ObjectInUse, "the cluster only has one coordinator, cannot be removed")
		}
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	plan := cluster.PlanRemove(s, names)
	if err := m.cat.Update(e.ctx, func(tx catalog.Tx) error { return tx.Apply(plan) }); err != nil {
		return err
	}
	e.notices(plan.Notices)
	after, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	e2 := e.detached()
	done := map[string]bool{}
	for _, n := range nodes {
		if n.Type.IsMaster() || done[n.Master] {
			continue
		}
		done[n.Master] = true
		p, _ := after.Node(n.Master)
		if err := m.pushSyncNames(e2, after, p, inCluster, false); err != nil {
			e.w.Notice("WARNING", err.Error())
		}
	}
	for _, n := range nodes {
		if !n.Type.IsMaster() {
			m.dropSlot(e2, after, n)
		}
	}
	m.refreshCoordinators(e2, after, "", "")
	return e.w.Complete("REMOVE NODE")
}

// appendActivate is APPEND ACTIVATE COORDINATOR n
// (cluster.PlanAppendActivate): the copy is promoted and joins the
// cluster as a coordinator.
func (m *Manager) appendActivate(e *req, st *parser.Append) error {
	unlock, err := m.lockCluster("APPEND ACTIVATE")
	if err != nil {
		return err
	}
	defer unlock()
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	_, _, copies, err := m.growth(e.ctx)
	if err != nil {
		return err
	}
	plan, err := cluster.PlanAppendActivate(sn.s, copies, st.Name.Name)
	if err != nil {
		return e.at(err, st.Name.Pos)
	}
	if err := m.reachable(sn.s, plan.Steps); err != nil {
		return err
	}
	j := m.growJournal(e, "APPEND ACTIVATE COORDINATOR "+st.Name.Name)
	g := &grower{m: m, e: e, sn: sn, j: j, done: func(s *cluster.State, st cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.AppendActivated(s, st.Node)
	}}
	err = g.run(plan.Steps)
	j.end(e, string(g.failed.Kind), err)
	if err != nil {
		return err
	}
	return writeNodeResult(e.w, st.Name.Name, true, g.result.Result)
}

// zoneInit is ZONE INIT z (reference §4.16): every slave of zone z not yet
// in the cluster joins it, as APPEND would, parents before their cascades.
// Masters are not made here: a zone's masters come with INIT ALL.
func (m *Manager) zoneInit(e *req, st *parser.Zone) error {
	unlock, err := m.lockCluster("ZONE INIT")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	var todo []cluster.Node
	for _, n := range s.Nodes {
		if n.Zone == st.Zone.Name && !n.InCluster && !n.Type.IsMaster() {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `zone "%s" has no slave waiting to join the cluster`, st.Zone.Name).At(e.q, st.Zone.Pos)
	}
	sort.SliceStable(todo, func(i, j int) bool { return s.Depth(todo[i]) < s.Depth(todo[j]) })
	var rows []map[string]string
	for _, n := range todo {
		kind := parser.NodeKind{Role: parser.Slave}
		switch n.Type.Family() {
		case cluster.Gtmcoord:
			kind.Family = parser.Gtmcoord
		case cluster.Coordinator:
			kind.Family = parser.Coordinator
		default:
			kind.Family = parser.Datanode
		}
		desc, err := m.appendOne(e, &parser.Append{Kind: kind, Name: parser.Ident{Name: n.Name}})
		ok := err == nil
		if err != nil {
			desc = err.Error()
		}
		rows = append(rows, map[string]string{"nodename": n.Name, "status": boolText(ok), "description": desc})
		if !ok {
			break // its cascades need it
		}
	}
	return writeTable(e.w, nodeResultColumns, rows)
}
