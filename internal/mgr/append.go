package mgr

import (
	"errors"
	"fmt"
	"sort"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/expand"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// appendNode is APPEND (reference §4.9; expand.Expander.Append): a node
// added to the node table after INIT ALL joins the running cluster.
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

// appendOne does APPEND of one node, under the caller's cluster lock, and
// returns the result row's description.
func (m *Manager) appendOne(e *req, st *parser.Append) (string, error) {
	walseg, err := walSegSize(e.q, st.Options)
	if err != nil {
		return "", err
	}
	desc, err := m.expander(e).Append(e.ctx, expand.Append{
		AppendRequest: cluster.AppendRequest{Name: st.Name.Name, Type: nodeType(st.Kind), Source: st.Source.Name},
		WalSegMB:      walseg, Checksums: st.DataChecksums,
	}, e.w)
	if err != nil {
		return "", e.atField(err, map[string]int{"name": st.Name.Pos, "source": st.Source.Pos})
	}
	return desc, nil
}

// prepareGrowth makes the running nodes ready for a node that joins: they
// trust its host (before it connects to them) and the DBA's password file
// knows it. It returns the manager's pg_hba.conf lines.
func (m *Manager) prepareGrowth(e *req, s *cluster.State) ([]cluster.HBALine, error) {
	managerIPs, err := m.managerIPs(s)
	if err != nil {
		return nil, err
	}
	hba := cluster.HBALines(s, managerIPs...)
	m.refreshHBA(e, s, hba)
	m.refreshDBAPassFile(e, s)
	return hba, nil
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
		t, err := fleet.At(s, nodes[i])
		if err == nil {
			err = m.fleet.EditHBA(e.ctx, t, fleet.HBAEdit{AddManaged: hba})
		}
		if err == nil {
			err = m.fleet.Reload(e.ctx, t)
		}
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("pg_hba.conf of %s not refreshed: %s", nodes[i].Name, agentError(err)))
		}
	})
}

// remove is REMOVE {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE} n [, …]
// (reference §4.7; expand.Expander.Remove): stopped nodes leave the
// cluster but keep their rows (DROP deletes them, CLEAN empties their
// directories).
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
	names := make([]string, len(st.Names))
	for i, id := range st.Names {
		names[i] = id.Name
	}
	if err := m.expander(e).Remove(e.ctx, want, names, e.w); err != nil {
		var ne *expand.NameError
		if errors.As(err, &ne) {
			return e.at(ne.Err, st.Names[ne.Index].Pos)
		}
		return err
	}
	return e.w.Complete("REMOVE NODE")
}

// appendActivate is APPEND ACTIVATE COORDINATOR n
// (expand.Expander.AppendActivate): the copy is promoted and joins the
// cluster as a coordinator.
func (m *Manager) appendActivate(e *req, st *parser.Append) error {
	unlock, err := m.lockCluster("APPEND ACTIVATE")
	if err != nil {
		return err
	}
	defer unlock()
	desc, err := m.expander(e).AppendActivate(e.ctx, st.Name.Name, e.w)
	if err != nil {
		if cluster.ErrorField(err) != "" {
			return e.at(err, st.Name.Pos)
		}
		return err
	}
	return writeNodeResult(e.w, st.Name.Name, true, desc)
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
		// APPEND of the slave, its failure a row of the result.
		desc, err := m.expander(e).Append(e.ctx, expand.Append{AppendRequest: cluster.AppendRequest{Name: n.Name, Type: n.Type}}, e.w)
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
