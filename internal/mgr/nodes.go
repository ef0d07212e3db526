package mgr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/kinds"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

var (
	addNodeOptions   = []string{"host", "port", "sync_state", "sync", "path", "zone", "readonly"}
	alterNodeOptions = []string{"host", "port", "sync_state", "sync", "path", "zone", "readonly", "parent"}
)

// nodeType maps a statement's kind to a node type (kinds.Type).
func nodeType(k parser.NodeKind) cluster.NodeType { return kinds.Type(k) }

// currentZone is the session's mgr_zone (AntDB's GUC), "local" by default.
func currentZone(e *req) string {
	if z := e.sess.Params["mgr_zone"]; z != "" {
		return z
	}
	return cluster.DefaultZone
}

func nodeSpec(q string, list []parser.Option, valid []string) (cluster.NodeSpec, *options, error) {
	var spec cluster.NodeSpec
	o, err := parseOptions(q, list, valid, "Node")
	if err != nil {
		return spec, nil, err
	}
	if spec.Host, err = o.str("host", nonEmpty); err != nil {
		return spec, nil, err
	}
	if spec.Port, err = o.port("port"); err != nil {
		return spec, nil, err
	}
	if spec.SyncState, err = o.syncState(); err != nil {
		return spec, nil, err
	}
	if spec.Path, err = o.str("path", absPath); err != nil {
		return spec, nil, err
	}
	if spec.Zone, err = o.str("zone", zoneName); err != nil {
		return spec, nil, err
	}
	if spec.ReadOnly, err = o.boolean("readonly"); err != nil {
		return spec, nil, err
	}
	return spec, o, nil
}

// change runs a node-table decision inside one catalog transaction and
// applies its plan; a refusal positions the error at the option it is about.
func (m *Manager) change(e *req, o *options, defPos int, decide func(*cluster.State) (cluster.Plan, error)) (cluster.Plan, error) {
	var plan cluster.Plan
	unlock, err := m.lockCatalog(e.ctx, "a node table change")
	if err != nil {
		return plan, err
	}
	defer unlock()
	err = m.cat.Update(e.ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if plan, err = decide(s); err != nil {
			if o != nil {
				defPos = o.fieldPos(err, defPos)
			}
			return e.at(err, defPos)
		}
		if len(plan.Live) > 0 {
			// alterNode sends live changes through alterLive; getting here
			// means the node was initialised in between: ask to retry.
			return pgerror.New(pgerror.ObjectNotInPrereqState, "the node changed while the command ran; run it again")
		}
		return tx.Apply(plan)
	})
	if err == nil {
		e.notices(plan.Notices)
	}
	return plan, err
}

func (m *Manager) addNode(e *req, st *parser.AddNode) error {
	if err := checkNodeName(e.q, st.Name); err != nil {
		return err
	}
	spec, o, err := nodeSpec(e.q, st.Options, addNodeOptions)
	if err != nil {
		return err
	}
	req := cluster.AddNodeRequest{
		Name: st.Name.Name, Type: nodeType(st.Kind), For: st.For.Name, Spec: spec, CurrentZone: currentZone(e),
	}
	defPos := st.Name.Pos
	_, err = m.change(e, o, defPos, func(s *cluster.State) (cluster.Plan, error) {
		p, err := cluster.AddNode(s, req)
		if err != nil && st.For.Name != "" && strings.Contains(err.Error(), `"`+st.For.Name+`"`) && cluster.ErrorField(err) == "" {
			err = e.at(err, st.For.Pos)
		}
		return p, err
	})
	if err != nil {
		return err
	}
	return e.w.Complete("ADD NODE")
}

func (m *Manager) alterNode(e *req, st *parser.AlterNode) error {
	spec, o, err := nodeSpec(e.q, st.Options, alterNodeOptions)
	if err != nil {
		return err
	}
	if o.pos("parent") >= 0 {
		return m.alterParent(e, st, spec, o)
	}
	req := cluster.AlterNodeRequest{Name: st.Name.Name, Type: nodeType(st.Kind), Spec: spec, CurrentZone: currentZone(e)}
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	if plan, err := cluster.AlterNode(s, req); err == nil && len(plan.Live) > 0 {
		lerr := m.alterLive(e, s, req, plan)
		return e.at(lerr, o.fieldPos(lerr, st.Name.Pos))
	}
	if _, err := m.change(e, o, st.Name.Pos, func(s *cluster.State) (cluster.Plan, error) {
		return cluster.AlterNode(s, req)
	}); err != nil {
		return err
	}
	return e.w.Complete("ALTER NODE")
}

func (m *Manager) dropNode(e *req, st *parser.DropNode) error {
	names := make([]string, len(st.Names))
	for i, n := range st.Names {
		names[i] = n.Name
	}
	t := nodeType(st.Kind)
	var before *cluster.State
	plan, err := m.change(e, nil, 0, func(s *cluster.State) (cluster.Plan, error) {
		before = s
		p, err := cluster.DropNodes(s, t, names)
		return p, e.at(err, identPos(st.Names, err))
	})
	if err != nil {
		return err
	}
	for _, name := range plan.DeleteNodes {
		if m.opts.DataDir != "" {
			// The node's certificate and key go with it.
			os.RemoveAll(filepath.Join(m.opts.DataDir, nodeCertDir, name))
		}
		if n, ok := before.Node(name); ok {
			m.removeSocketDir(e, before, n)
		}
	}
	return e.w.Complete("DROP NODE")
}

func (m *Manager) dropZone(e *req, st *parser.DropZone) error {
	if _, err := m.change(e, nil, st.Zone.Pos, func(s *cluster.State) (cluster.Plan, error) {
		return cluster.DropZone(s, st.Zone.Name)
	}); err != nil {
		return err
	}
	return e.w.Complete("DROP ZONE")
}

var nodeColumns = []pgwire.Column{
	{Name: "name", TypeOID: pgwire.OIDName},
	{Name: "host", TypeOID: pgwire.OIDName},
	{Name: "type", TypeOID: pgwire.OIDText},
	{Name: "mastername", TypeOID: pgwire.OIDName},
	{Name: "port", TypeOID: pgwire.OIDInt4},
	{Name: "sync_state", TypeOID: pgwire.OIDText},
	{Name: "path", TypeOID: pgwire.OIDText},
	{Name: "initialized", TypeOID: pgwire.OIDBool},
	{Name: "incluster", TypeOID: pgwire.OIDBool},
	{Name: "readonly", TypeOID: pgwire.OIDBool},
	{Name: "zone", TypeOID: pgwire.OIDName},
}

func boolText(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

func nodeValues(n cluster.Node) map[string]string {
	return map[string]string{
		"name": n.Name, "host": n.Host, "type": string(n.Type), "mastername": n.Master, "port": strconv.Itoa(n.Port),
		"sync_state": n.SyncState, "path": n.Path, "initialized": boolText(n.Initialized),
		"incluster": boolText(n.InCluster), "readonly": boolText(n.ReadOnly), "zone": n.Zone,
	}
}

func (m *Manager) listNode(e *req, st *parser.ListNode) error {
	cols, err := project(e.q, nodeColumns, st.Columns, "LIST NODE")
	if err != nil {
		return err
	}
	var s *cluster.State
	if err := m.cat.View(e.ctx, func(tx catalog.ReadTx) (err error) { s, err = tx.State(); return err }); err != nil {
		return err
	}
	nodes, err := selectNodes(e.q, s, st)
	if err != nil {
		return err
	}
	rows := make([]map[string]string, len(nodes))
	for i, n := range nodes {
		rows[i] = nodeValues(n)
	}
	return writeTable(e.w, cols, rows)
}

// selectNodes applies a LIST NODE form's filter and AntDB's row order.
func selectNodes(q string, s *cluster.State, st *parser.ListNode) ([]cluster.Node, error) {
	var out []cluster.Node
	keep := func(f func(cluster.Node) bool) {
		for _, n := range s.Nodes {
			if f(n) {
				out = append(out, n)
			}
		}
	}
	switch st.Filter {
	case parser.ListNodeAll:
		if len(st.Names) == 0 {
			out = append(out, s.Nodes...)
			break
		}
		for _, id := range st.Names {
			n, ok := s.Node(id.Name)
			if !ok {
				return nil, pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, id.Name).At(q, id.Pos)
			}
			if !slices.ContainsFunc(out, func(o cluster.Node) bool { return o.Name == n.Name }) {
				out = append(out, n)
			}
		}
	case parser.ListNodeByKind:
		keep(func(n cluster.Node) bool {
			if kinds.Family(st.Kind.Family) != n.Type.Family() {
				return false
			}
			return st.Kind.Role == parser.RoleAny || n.Type.IsMaster() == (st.Kind.Role == parser.Master)
		})
	case parser.ListNodeDatanodeMaster:
		id := st.Names[0]
		m, ok := s.Node(id.Name)
		if !ok || m.Type != cluster.DatanodeMaster {
			err := pgerror.New(pgerror.UndefinedObject, `datanode master "%s" does not exist`, id.Name)
			if ok {
				err = err.WithHint(`"%s" is a %s.`, id.Name, m.Type)
			}
			return nil, err.At(q, id.Pos)
		}
		keep(func(n cluster.Node) bool { return n.Name == m.Name || n.Master == m.Name })
	case parser.ListNodeHost:
		for _, id := range st.Names {
			if _, ok := s.Host(id.Name); !ok {
				return nil, pgerror.New(pgerror.UndefinedObject, `host "%s" does not exist`, id.Name).At(q, id.Pos)
			}
		}
		keep(func(n cluster.Node) bool {
			for _, id := range st.Names {
				if n.Host == id.Name {
					return true
				}
			}
			return false
		})
	case parser.ListNodeZone:
		keep(func(n cluster.Node) bool { return n.Zone == st.Names[0].Name })
	}
	cluster.SortForList(out)
	return out, nil
}

// removeSocketDir asks the agent of a dropped node's host to remove the
// node's socket directory and the secrets in it (its password file, key and
// certificate). The data directory stays, as in AntDB (CLEAN empties it).
// Best effort: a host without a running agent, or a node that still runs,
// keeps the directory, and the DBA hears so.
func (m *Manager) removeSocketDir(e *req, s *cluster.State, n cluster.Node) {
	tg, err := fleet.At(s, n)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	kept, err := m.fleet.RemoveSocketDir(ctx, tg, "")
	switch {
	case err != nil && fleet.Unreachable(err) && !n.Initialized:
		// No agent, and the node never ran: there is nothing to remove.
	case err != nil:
		e.w.Notice("WARNING", fmt.Sprintf(`the socket directory of node "%s" on host "%s" is kept: %s`, n.Name, n.Host, agentError(err)))
	case kept != "":
		e.w.Notice("WARNING", fmt.Sprintf(`node "%s": %s`, n.Name, kept))
	}
}
