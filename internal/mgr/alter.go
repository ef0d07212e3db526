package mgr

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// alterLive applies an ALTER of an initialised node to the running cluster:
// a slave's sync_state is pushed to its master's synchronous_standby_names
// (and checked in pg_stat_replication); a new port restarts the node and
// re-points its slaves and the coordinators. The catalog changes only when
// the cluster did; a failure puts back what was changed.
func (m *Manager) alterLive(e *req, s *cluster.State, req cluster.AlterNodeRequest, plan cluster.Plan) error {
	unlock, err := m.lockCluster("ALTER NODE")
	if err != nil {
		return err
	}
	defer unlock()
	// Decide again under the lock: the snapshot may be stale.
	if s, err = m.state(e.ctx); err != nil {
		return err
	}
	if plan, err = cluster.AlterNode(s, req); err != nil {
		return err
	}
	old, _ := s.Node(req.Name)
	n := plan.UpdateNodes[0]
	if slices.Contains(plan.Live, "sync_state") {
		master, _ := s.Node(n.Master)
		mh, _ := s.Host(master.Host)
		if err := m.fleet.AgentUp(e.ctx, mh); err != nil {
			return pgerror.New(pgerror.ObjectNotInPrereqState, `the agent on host "%s" of %s is not running`, mh.Name, describeNode(master)).
				WithHint("Run START AGENT %s first.", mh.Name)
		}
	}
	if slices.Contains(plan.Live, "port") {
		if err := m.movePort(e, s, old, n.Port); err != nil {
			return err
		}
	}
	// The catalog records what was done to the nodes even if the statement
	// is cancelled meanwhile.
	apply := func(p cluster.Plan) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 30*time.Second)
		defer cancel()
		return m.cat.Update(ctx, func(tx catalog.Tx) error { return tx.Apply(p) })
	}
	if err := apply(plan); err != nil {
		return err
	}
	after, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	if slices.Contains(plan.Live, "sync_state") {
		master, _ := after.Node(n.Master)
		if err := m.pushSyncNames(e, after, master, inCluster, false); err != nil {
			// Moving toward async loosens what commits wait for — the way
			// out when a sync slave died — so it is never rolled back;
			// anything else is put back as it was.
			if old.SyncState != cluster.Async && n.SyncState == cluster.Async {
				e.w.Notice("WARNING", err.Error())
			} else {
				var undo cluster.Plan
				for _, u := range plan.UpdateNodes {
					if o, ok := s.Node(u.Name); ok {
						undo.UpdateNodes = append(undo.UpdateNodes, o)
					}
				}
				if uerr := apply(undo); uerr == nil {
					before, _ := s.Node(n.Master)
					m.pushSyncNames(e, s, before, inCluster, false)
				}
				return pgerror.New(pgerror.ObjectNotInPrereqState, "the synchronous replication of %s could not be changed: %s", describeNode(master), err).
					WithHint("Check the slaves with MONITOR HA; nothing was changed.")
			}
		}
		e.w.Notice("NOTICE", fmt.Sprintf(`refresh %s synchronous_standby_names='%s'`, describeNode(master), cluster.SyncNames(after, master.Name, inCluster)))
	}
	if slices.Contains(plan.Live, "port") {
		m.repoint(e, after, n)
	}
	e.notices(plan.Notices)
	return e.w.Complete("ALTER NODE")
}

// movePort restarts node n on a new port: stop, rewrite port, start; if the
// node does not come up, the old port is written back and it is started
// again.
func (m *Manager) movePort(e *req, s *cluster.State, n cluster.Node, port int) error {
	t, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	moved := t
	moved.Node.Port = port
	if m.fleet.Listening(moved) {
		return pgerror.New(pgerror.ObjectInUse, `port %d on host "%s" (%s) is already in use`, port, t.Host.Name, t.Host.Address)
	}
	if err := m.requireAgent(e.ctx, t.Host); err != nil {
		return err
	}
	running, err := m.fleet.Running(e.ctx, t)
	if err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "status of %s: %s", describeNode(n), agentError(err))
	}
	setPort := func(p int) error {
		return m.fleet.SetConf(e.ctx, t, false, map[string]string{"port": strconv.Itoa(p)}, nil)
	}
	if !running {
		// A node the DBA stopped stays stopped; it starts on the new port.
		if err := setPort(port); err != nil {
			return pgerror.New(pgerror.ObjectNotInPrereqState, "write the port of %s: %s", describeNode(n), agentError(err))
		}
		return nil
	}
	e.w.Notice("NOTICE", fmt.Sprintf("restart %s on port %d", describeNode(n), port))
	if _, err := m.fleet.Stop(e.ctx, t, fleet.Fast); err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "stop %s: %s", describeNode(n), agentError(err))
	}
	err = setPort(port)
	if err == nil {
		_, err = m.fleet.Start(e.ctx, moved)
	}
	if err != nil {
		setPort(n.Port)
		m.fleet.Start(e.ctx, t)
		return pgerror.New(pgerror.ObjectNotInPrereqState, "%s did not start on port %d: %s; it runs on port %d again", describeNode(n), port, agentError(err), n.Port)
	}
	return nil
}

// repoint tells n's slaves and the coordinators where n listens now.
// primary_conninfo is reloadable since PostgreSQL 13, so slaves reconnect
// without a restart.
func (m *Manager) repoint(e *req, s *cluster.State, n cluster.Node) {
	h, _ := s.Host(n.Host)
	parent := fleet.Member{Node: n, Host: h}
	for _, c := range s.Children(n.Name) {
		if !c.InCluster {
			continue
		}
		cm, err := fleet.At(s, c)
		if err == nil {
			err = m.fleet.WriteRecovery(e.ctx, cm, parent)
		}
		if err == nil {
			err = m.fleet.Reload(e.ctx, cm)
		}
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("could not re-point %s to the new port: %s", describeNode(c), agentError(err)))
		} else {
			e.w.Notice("NOTICE", fmt.Sprintf("%s now streams from port %d", describeNode(c), n.Port))
		}
	}
	m.refreshCoordinators(e, s, "", "")
}

// alterParent is ALTER {DATANODE|GTMCOORD} SLAVE n (PARENT = m [,
// SYNC_STATE = s]) (cluster.Reparent): a slave out of the cluster changes
// in the node table only; one in the cluster is re-pointed live, under the
// cluster lock (switches.Reparent).
func (m *Manager) alterParent(e *req, st *parser.AlterNode, spec cluster.NodeSpec, o *options) error {
	if spec.Host != nil || spec.Port != nil || spec.Path != nil || spec.Zone != nil || spec.ReadOnly != nil {
		return pgerror.New(pgerror.SyntaxError, `option "parent" goes with "sync_state" only`).
			WithHint("Change the parent in an ALTER of its own.").At(e.q, o.pos("parent"))
	}
	parent, err := o.str("parent", nonEmpty)
	if err != nil {
		return err
	}
	req := cluster.ReparentRequest{Name: st.Name.Name, Type: nodeType(st.Kind), Parent: *parent, SyncState: spec.SyncState, CurrentZone: currentZone(e)}
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	if plan, err := cluster.Reparent(s, req); err == nil && len(plan.Live) > 0 {
		unlock, err := m.lockCluster("ALTER NODE")
		if err != nil {
			return err
		}
		defer unlock()
		_, err = m.switches().Reparent(e.ctx, req, e.w)
		if err != nil {
			return e.at(err, o.fieldPos(err, st.Name.Pos))
		}
		return e.w.Complete("ALTER NODE")
	}
	if _, err := m.change(e, o, st.Name.Pos, func(s *cluster.State) (cluster.Plan, error) {
		return cluster.Reparent(s, req)
	}); err != nil {
		return err
	}
	return e.w.Complete("ALTER NODE")
}
