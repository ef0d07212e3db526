package mgr

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/params"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

func (m *Manager) gucs(e *req) (map[string]cluster.GUC, error) {
	var list []cluster.GUC
	if err := m.cat.View(e.ctx, func(tx catalog.ReadTx) (err error) { list, err = tx.GUCs(); return err }); err != nil {
		return nil, err
	}
	out := make(map[string]cluster.GUC, len(list))
	for _, g := range list {
		out[strings.ToLower(g.Name)] = g
	}
	return out, nil
}

func paramTarget(t parser.NodeTarget) params.Target {
	pt := params.Target{Family: familyOf(t.Kind.Family), Role: t.Kind.Role.String(), All: t.All}
	for _, id := range t.Names {
		pt.Names = append(pt.Names, id.Name)
	}
	return pt
}

// setParam is SET/RESET {GTMCOORD|COORDINATOR|DATANODE} … (reference §3.3):
// the values are checked against the server's parameters (unless FORCE),
// stored in the catalog, and written into the postgresql.conf of every
// initialised node they apply to; reloadable ones take effect at once,
// others at the next restart (with a NOTICE).
func (m *Manager) setParam(e *req, st *parser.SetParam) error {
	unlock, err := m.lockCluster(st.Command())
	if err != nil {
		return err
	}
	defer unlock()
	gucs, err := m.gucs(e)
	if err != nil {
		return err
	}
	var settings []params.Setting
	var keys []string
	for _, o := range st.Params {
		settings = append(settings, params.Setting{Key: o.Name.Name, Value: o.Value, HasValue: o.Kind != parser.ValueNone})
		keys = append(keys, o.Name.Name)
	}
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	t := paramTarget(st.Target)
	plan, err := params.PlanSet(sn.s, sn.params, t, settings, gucs, st.Force, st.Reset)
	if err != nil {
		return e.at(err, paramPos(err, st))
	}
	affected, err := params.Affected(sn.s, t)
	if err != nil {
		return err
	}
	var live []cluster.Node
	for _, n := range affected {
		if n.Initialized {
			live = append(live, n)
		}
	}
	for _, n := range live {
		h, _ := sn.s.Host(n.Host)
		if err := m.fleet.AgentUp(e.ctx, h); err != nil {
			return pgerror.New(pgerror.ObjectNotInPrereqState, `the agent on host "%s" is not running; %s cannot be updated`, h.Name, describeNode(n)).
				WithHint("Run START AGENT %s first; nothing was changed.", h.Name)
		}
	}
	if err := m.cat.Update(e.ctx, func(tx catalog.Tx) error { return tx.Apply(plan) }); err != nil {
		return err
	}
	after := params.Apply(sn.params, plan)
	var failures []string
	for _, n := range live {
		if err := m.writeParams(e, sn.s, n, after, keys); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %s", n.Name, agentError(err)))
		}
	}
	e.notices(plan.Notices)
	if len(failures) > 0 {
		e.w.Notice("WARNING", "postgresql.conf was not updated on: "+strings.Join(failures, "; ")+". The catalog holds the new values; run the command again once the nodes are reachable.")
	}
	return e.w.Complete(st.Command())
}

// writeParams writes the keys of node n's parameters (after: the catalog's
// rows once changed) into its postgresql.conf and reloads it if it runs —
// even for restart-only parameters: PostgreSQL then marks them
// pending_restart (SHOW PARAM shows it) and keeps the running value.
func (m *Manager) writeParams(e *req, s *cluster.State, n cluster.Node, after []cluster.Param, keys []string) error {
	set, remove := params.Updates(n, after, keys)
	// A key the manager sets itself goes back to the manager's value,
	// not to PostgreSQL's default.
	h, _ := s.Host(n.Host)
	base := cluster.ServerParams(n, h)
	remove = slices.DeleteFunc(remove, func(k string) bool {
		if v, ok := base[k]; ok {
			set[k] = v
			return true
		}
		return false
	})
	tg, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	if err := m.fleet.SetConf(e.ctx, tg, false, set, remove); err != nil {
		return err
	}
	if running, err := m.fleet.Running(e.ctx, tg); err == nil && running {
		return m.fleet.Reload(e.ctx, tg)
	}
	return nil
}

// warnUnwritable tells the DBA about catalog rows no node gets because the
// agent would refuse them (stored before SET checked names), and how to
// remove them.
func warnUnwritable(e *req, nodes []cluster.Node, rows []cluster.Param) {
	seen := map[string]bool{}
	var bad []string
	for _, n := range nodes {
		for _, p := range params.Unwritable(n, rows) {
			id := p.Node + "\x00" + p.Type + "\x00" + p.Key
			if !seen[id] {
				seen[id] = true
				bad = append(bad, fmt.Sprintf(`"%s" (%s %s)`, p.Key, params.TypeLabel(p), p.Node))
			}
		}
	}
	if len(bad) > 0 {
		e.w.Notice("WARNING", "these parameter rows are not written to postgresql.conf, which cannot hold them: "+
			strings.Join(bad, ", ")+`; remove them with RESET … ("name")`)
	}
}

// paramPos points a SET error at the parameter it names.
func paramPos(err error, st *parser.SetParam) int {
	pe, ok := pgerror.As(err)
	if ok {
		for _, o := range st.Params {
			if strings.Contains(pe.Message, `"`+o.Name.Name+`"`) {
				if strings.Contains(pe.Message, "value") || strings.Contains(pe.Message, "outside") {
					return o.ValuePos
				}
				return o.Name.Pos
			}
		}
		for _, id := range st.Target.Names {
			if strings.Contains(pe.Message, `"`+id.Name+`"`) {
				return id.Pos
			}
		}
	}
	pos, _ := st.Span()
	return pos
}

var paramColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "nodetype", TypeOID: pgwire.OIDText},
	{Name: "key", TypeOID: pgwire.OIDText},
	{Name: "value", TypeOID: pgwire.OIDText},
}

func (m *Manager) listParam(e *req, st *parser.ListParam) error {
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	var t *params.Target
	if st.Target.Kind.Family != parser.FamilyNone {
		pt := paramTarget(st.Target)
		if _, err := params.Affected(sn.s, pt); err != nil {
			return err
		}
		t = &pt
	}
	var rows []map[string]string
	for _, p := range params.List(sn.params, t, st.Pattern) {
		rows = append(rows, map[string]string{"nodename": p.Node, "nodetype": params.TypeLabel(p), "key": p.Key, "value": p.Value})
	}
	return writeTable(e.w, paramColumns, rows)
}

var showParamColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "name", TypeOID: pgwire.OIDText},
	{Name: "setting", TypeOID: pgwire.OIDText},
	{Name: "unit", TypeOID: pgwire.OIDText},
	{Name: "context", TypeOID: pgwire.OIDText},
	{Name: "source", TypeOID: pgwire.OIDText},
	{Name: "pending_restart", TypeOID: pgwire.OIDBool},
}

// showParam reads a running node's pg_settings, names matching pattern.
func (m *Manager) showParam(e *req, st *parser.ShowParam) error {
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	n, ok := s.Node(st.Node.Name)
	if !ok {
		return pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, st.Node.Name).At(e.q, st.Node.Pos)
	}
	mem, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	settings, err := m.fleet.ShowSettings(e.ctx, mem, st.Pattern)
	var ce *fleet.ConnectError
	if errors.As(err, &ce) {
		return pgerror.New(pgerror.ConnectionFailure, "cannot connect to %s: %s", describeNode(n), ce.Err).WithHint("MONITOR ALL shows whether it runs.")
	}
	if err != nil {
		return err
	}
	var out []map[string]string
	for _, p := range settings {
		out = append(out, map[string]string{"nodename": n.Name, "name": p.Name, "setting": p.Setting, "unit": p.Unit,
			"context": p.Context, "source": p.Source, "pending_restart": boolText(p.PendingRestart)})
	}
	return writeTable(e.w, showParamColumns, out)
}

// flushParam re-reads the server's parameter definitions (pg_settings) from
// a running node, the gtmcoord master first, for checking SET values.
func (m *Manager) flushParam(e *req) error {
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	nodes := append([]cluster.Node(nil), s.Nodes...)
	cluster.SortForList(nodes)
	for _, n := range nodes {
		if !n.InCluster {
			continue
		}
		mem, err := fleet.At(s, n)
		if err != nil {
			return err
		}
		gucs, err := m.fleet.GUCs(e.ctx, mem)
		if err != nil {
			m.log.Warn("FLUSH PARAM: cannot read pg_settings", "node", n.Name, "error", err)
			continue
		}
		if err := m.cat.Update(e.ctx, func(tx catalog.Tx) error { return tx.SetGUCs(gucs) }); err != nil {
			return err
		}
		e.w.Notice("NOTICE", fmt.Sprintf("read %d parameters from %s", len(gucs), describeNode(n)))
		return e.w.Complete("FLUSH PARAM")
	}
	return pgerror.New(pgerror.ObjectNotInPrereqState, "FLUSH PARAM needs a running node of the cluster").
		WithHint("Until then SET checks values against PostgreSQL 15's built-in parameter list.")
}
