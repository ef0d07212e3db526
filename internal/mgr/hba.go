package mgr

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgconf"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// parseHBALine reads and validates an ADD HBA line (the agent's own rules,
// so a line the manager accepts is one every agent writes).
func parseHBALine(line string) (cluster.HBALine, error) {
	l, err := splitHBALine(line)
	if err != nil {
		return l, err
	}
	r := pgconf.Rule{Type: l.Type, Database: l.Database, User: l.User, Address: l.Address, Method: l.Method}
	if err := r.Validate(); err != nil {
		return l, err
	}
	return l, nil
}

// splitHBALine reads an ADD HBA line: "type database user address method",
// where address is a CIDR, or an IP and a netmask as two fields (AntDB's
// "host db user ip mask method"); "local database user method" has none.
func splitHBALine(line string) (cluster.HBALine, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return cluster.HBALine{}, fmt.Errorf("empty pg_hba.conf line")
	}
	typ := strings.ToLower(f[0])
	switch typ {
	case "local":
		if len(f) != 4 {
			return cluster.HBALine{}, fmt.Errorf(`a "local" line is "local database user method"`)
		}
		return cluster.HBALine{Type: typ, Database: f[1], User: f[2], Method: f[3]}, nil
	case "host", "hostssl", "hostnossl":
	default:
		return cluster.HBALine{}, fmt.Errorf(`unknown connection type %q: use local, host, hostssl or hostnossl`, f[0])
	}
	switch len(f) {
	case 5:
		if _, _, err := net.ParseCIDR(f[3]); err != nil {
			return cluster.HBALine{}, fmt.Errorf("invalid address %q: give a CIDR such as 10.0.0.0/8", f[3])
		}
		return cluster.HBALine{Type: typ, Database: f[1], User: f[2], Address: f[3], Method: f[4]}, nil
	case 6:
		ip, mask := net.ParseIP(f[3]), net.ParseIP(f[4])
		if ip == nil || mask == nil {
			return cluster.HBALine{}, fmt.Errorf("invalid address %q and mask %q", f[3], f[4])
		}
		m := net.IPMask(mask.To4())
		if ip.To4() == nil {
			m = net.IPMask(mask.To16())
		}
		ones, bits := m.Size()
		if bits == 0 {
			return cluster.HBALine{}, fmt.Errorf("invalid netmask %q", f[4])
		}
		cidr := (&net.IPNet{IP: ip.Mask(m), Mask: net.CIDRMask(ones, bits)}).String()
		return cluster.HBALine{Type: typ, Database: f[1], User: f[2], Address: cidr, Method: f[5]}, nil
	}
	return cluster.HBALine{}, fmt.Errorf(`a "%s" line is "%s database user address method"`, typ, typ)
}

var hbaColumns = []pgwire.Column{
	{Name: "nodetype", TypeOID: pgwire.OIDText},
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "hbavalue", TypeOID: pgwire.OIDText},
}

// canonicalHBA renders a parsed line the way it is stored and written.
func canonicalHBA(l cluster.HBALine) string {
	f := []string{l.Type, l.Database, l.User}
	if l.Address != "" {
		f = append(f, l.Address)
	}
	return strings.Join(append(f, l.Method), " ")
}

// addHBA stores pg_hba.conf lines for a node or a whole family and appends
// them to the running nodes' pg_hba.conf (below the manager's separator),
// then reloads them. Every agent involved must answer first, so a refusal
// changes nothing.
func (m *Manager) addHBA(e *req, st *parser.AddHBA) error {
	return m.changeHBA(e, st.Target, st.Lines, false)
}

func (m *Manager) dropHBA(e *req, st *parser.DropHBA) error {
	t := parser.NodeTarget{All: st.All}
	if !st.All {
		t.Names = []parser.Ident{st.Node}
	}
	return m.changeHBA(e, t, st.Lines, true)
}

func (m *Manager) changeHBA(e *req, t parser.NodeTarget, lines []string, drop bool) error {
	unlock, err := m.lockCluster("HBA")
	if err != nil {
		return err
	}
	defer unlock()
	parsed, err := parseHBALines(lines, drop)
	if err != nil {
		return err
	}
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	s := sn.s
	nodes, plan, err := hbaPlan(e, t, sn, parsed, drop)
	if err != nil {
		return err
	}
	if drop && len(plan.DeleteHBA) == 0 {
		return pgerror.New(pgerror.UndefinedObject, "no matching pg_hba.conf line was added with ADD HBA").
			WithHint("LIST HBA shows them.")
	}
	// Lines to write or remove on the running nodes.
	var live []cluster.Node
	for _, n := range nodes {
		if n.InCluster {
			live = append(live, n)
		}
	}
	for _, n := range live {
		h, _ := s.Host(n.Host)
		if err := m.requireAgent(e.ctx, h); err != nil {
			return err
		}
	}
	if err := m.cat.Update(e.ctx, func(tx catalog.Tx) error { return tx.Apply(plan) }); err != nil {
		return err
	}
	var failures []string
	for _, n := range live {
		edit := parsed
		if drop {
			edit = hbaRemoved(sn, plan, n)
		}
		if len(edit) == 0 {
			continue
		}
		if err := m.editHBA(e, s, n, edit, drop); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %s", n.Name, agentError(err)))
		}
	}
	if len(failures) > 0 {
		e.w.Notice("WARNING", "pg_hba.conf was not updated on: "+strings.Join(failures, "; ")+". The catalog holds the change; it is applied when the node is initialized again.")
	}
	if drop {
		return e.w.Complete("DROP HBA")
	}
	return e.w.Complete("ADD HBA")
}

// parseHBALines reads the lines of ADD HBA (at least one, none trusting)
// or DROP HBA.
func parseHBALines(lines []string, drop bool) ([]cluster.HBALine, error) {
	var parsed []cluster.HBALine
	for _, l := range lines {
		pl, err := parseHBALine(l)
		if err != nil {
			return nil, pgerror.New(pgerror.InvalidParameterValue, `invalid pg_hba.conf line "%s": %s`, l, err)
		}
		if !drop && strings.EqualFold(pl.Method, "trust") {
			// A trust line makes every account that can reach the node a
			// database superuser, able to run programs as the host's user
			// (COPY … TO PROGRAM): nodes trust nobody.
			return nil, pgerror.New(pgerror.InsufficientPrivilege, `refusing pg_hba.conf line "%s": nodes trust nobody`, l).
				WithHint("Use scram-sha-256 (the nodes' users need passwords), or peer for local lines.")
		}
		parsed = append(parsed, pl)
	}
	if !drop && len(parsed) == 0 {
		return nil, pgerror.New(pgerror.SyntaxError, "ADD HBA needs at least one line")
	}
	return parsed, nil
}

// hbaPlan is the nodes ADD or DROP HBA of target t reaches and the rules it
// puts or deletes.
func hbaPlan(e *req, t parser.NodeTarget, sn *snapshot, parsed []cluster.HBALine, drop bool) ([]cluster.Node, cluster.Plan, error) {
	s := sn.s
	var nodes []cluster.Node
	var plan cluster.Plan
	switch {
	case t.All && t.Kind.Family != parser.FamilyNone:
		f := familyOf(t.Kind.Family)
		for _, n := range s.Nodes {
			if n.Type.Family() == f {
				nodes = append(nodes, n)
			}
		}
		for _, l := range parsed {
			plan.PutHBA = append(plan.PutHBA, cluster.HBARule{Node: "*", Family: f, Line: canonicalHBA(l)})
		}
	case t.All: // DROP HBA ALL
		nodes = s.Nodes
		for _, r := range sn.hba {
			if len(parsed) == 0 || containsLine(parsed, r.Line) {
				plan.DeleteHBA = append(plan.DeleteHBA, r)
			}
		}
	default:
		for _, id := range t.Names {
			n, ok := s.Node(id.Name)
			if !ok {
				return nil, plan, pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, id.Name).At(e.q, id.Pos)
			}
			if t.Kind.Family != parser.FamilyNone && n.Type.Family() != familyOf(t.Kind.Family) {
				return nil, plan, pgerror.New(pgerror.InvalidParameterValue, `%s is not a %s`, describeNode(n), familyOf(t.Kind.Family)).At(e.q, id.Pos)
			}
			nodes = append(nodes, n)
			if drop {
				for _, r := range sn.hba {
					if r.Node == n.Name && (len(parsed) == 0 || containsLine(parsed, r.Line)) {
						plan.DeleteHBA = append(plan.DeleteHBA, r)
					}
				}
				continue
			}
			for _, l := range parsed {
				plan.PutHBA = append(plan.PutHBA, cluster.HBARule{Node: n.Name, Family: n.Type.Family(), Line: canonicalHBA(l)})
			}
		}
	}
	return nodes, plan, nil
}

// hbaRemoved is the lines DROP HBA removes from node n's pg_hba.conf: a
// line another remaining rule still gives the node stays.
func hbaRemoved(sn *snapshot, plan cluster.Plan, n cluster.Node) []cluster.HBALine {
	kept := map[string]bool{}
	for _, r := range sn.hba {
		if r.Applies(n) && !slices.Contains(plan.DeleteHBA, r) {
			kept[r.Line] = true
		}
	}
	var edit []cluster.HBALine
	for _, r := range plan.DeleteHBA {
		if r.Applies(n) && !kept[r.Line] {
			if l, err := parseHBALine(r.Line); err == nil {
				edit = append(edit, l)
			}
		}
	}
	return edit
}

// editHBA adds (or, with drop, removes) the DBA's lines of node n's
// pg_hba.conf and reloads it.
func (m *Manager) editHBA(e *req, s *cluster.State, n cluster.Node, edit []cluster.HBALine, drop bool) error {
	t, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	change := fleet.HBAEdit{AddTail: edit}
	if drop {
		change = fleet.HBAEdit{Remove: edit}
	}
	if err := m.fleet.EditHBA(e.ctx, t, change); err != nil {
		return err
	}
	return m.fleet.Reload(e.ctx, t)
}

func containsLine(parsed []cluster.HBALine, line string) bool {
	for _, l := range parsed {
		if canonicalHBA(l) == line {
			return true
		}
	}
	return false
}

func (m *Manager) listHBA(e *req, st *parser.ListHBA) error {
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	var rows []map[string]string
	for _, id := range st.Names {
		if _, ok := sn.s.Node(id.Name); !ok {
			return pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, id.Name).At(e.q, id.Pos)
		}
	}
	for _, r := range sn.hba {
		if len(st.Names) > 0 && !containsIdent(st.Names, r.Node) {
			continue
		}
		rows = append(rows, map[string]string{"nodetype": string(r.Family), "nodename": r.Node, "hbavalue": r.Line})
	}
	return writeTable(e.w, hbaColumns, rows)
}

// showHBA reads the live pg_hba.conf of nodes through their agents.
func (m *Manager) showHBA(e *req, st *parser.ShowHBA) error {
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	nodes, err := selectTargets(e, s, parser.NodeTarget{})
	if err != nil {
		return err
	}
	if !st.All {
		nodes = nil
		for _, id := range st.Names {
			n, ok := s.Node(id.Name)
			if !ok {
				return pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, id.Name).At(e.q, id.Pos)
			}
			nodes = append(nodes, n)
		}
	}
	var rows []map[string]string
	for _, n := range nodes {
		if !n.Initialized {
			continue
		}
		t, err := fleet.At(s, n)
		if err != nil {
			return err
		}
		lines, err := m.fleet.ReadHBA(e.ctx, t)
		if err != nil {
			return pgerror.New(pgerror.ConnectionFailure, "read pg_hba.conf of %s: %s", describeNode(n), agentError(err))
		}
		for _, l := range lines {
			rows = append(rows, map[string]string{"nodetype": string(n.Type), "nodename": n.Name, "hbavalue": l})
		}
	}
	return writeTable(e.w, hbaColumns, rows)
}
