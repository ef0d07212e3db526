package mgr

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

var hostOptions = []string{"user", "port", "protocol", "agentport", "address", "adbhome", "pghome"}

func (m *Manager) hostSpec(q string, list []parser.Option) (cluster.HostSpec, *options, error) {
	var spec cluster.HostSpec
	o, err := parseOptions(q, list, hostOptions, "Host")
	if err != nil {
		return spec, nil, err
	}
	protocol := func(v string) string {
		switch strings.ToLower(v) {
		case cluster.ProtocolSSH, cluster.ProtocolLocal:
			return ""
		}
		return "The protocol is ssh or local (telnet is not supported)."
	}
	if spec.User, err = o.str("user", nonEmpty); err != nil {
		return spec, nil, err
	}
	if spec.Port, err = o.port("port"); err != nil {
		return spec, nil, err
	}
	if spec.Protocol, err = o.str("protocol", protocol); err != nil {
		return spec, nil, err
	}
	if spec.Protocol != nil {
		lower := strings.ToLower(*spec.Protocol)
		spec.Protocol = &lower
	}
	if spec.AgentPort, err = o.port("agentport"); err != nil {
		return spec, nil, err
	}
	if spec.Address, err = o.str("address", ipAddress); err != nil {
		return spec, nil, err
	}
	if spec.ADBHome, err = o.str("adbhome", homePath); err != nil {
		return spec, nil, err
	}
	if spec.PGHome, err = o.str("pghome", homePath); err != nil {
		return spec, nil, err
	}
	spec.ADBHome, spec.PGHome = homeClean(spec.ADBHome), homeClean(spec.PGHome)
	return spec, o, nil
}

func (m *Manager) addHost(e *req, st *parser.AddHost) error {
	if err := checkHostName(e.q, st.Name); err != nil {
		return err
	}
	spec, o, err := m.hostSpec(e.q, st.Options)
	if err != nil {
		return err
	}
	def := cluster.HostDefaults{User: e.sess.User, ADBHome: m.opts.InstallDir, PGHome: m.opts.PGHome}
	if spec.Address == nil {
		if addr, err := m.opts.Resolve(e.ctx, st.Name.Name); err == nil {
			def.Address = addr
		}
	}
	if spec.ADBHome == nil && def.ADBHome == "" {
		return pgerror.New(pgerror.SyntaxError, `option "adbhome" must be given: the manager's install directory is unknown`).At(e.q, st.Name.Pos)
	}
	unlock, err := m.lockCatalog(e.ctx, "ADD HOST")
	if err != nil {
		return err
	}
	defer unlock()
	decide := func(s *cluster.State) (cluster.Plan, error) {
		return cluster.AddHost(s, st.Name.Name, spec, def, st.IfNotExists)
	}
	vetted, err := m.vetHost(e.ctx, decide)
	if err != nil {
		return e.at(err, o.fieldPos(err, st.Name.Pos))
	}
	var plan cluster.Plan
	err = m.cat.Update(e.ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if plan, err = decide(s); err != nil {
			return e.at(err, o.fieldPos(err, st.Name.Pos))
		}
		if err := changedUnderUs(vetted, plan.InsertHost); err != nil {
			return err
		}
		return tx.Apply(plan)
	})
	if err != nil {
		return err
	}
	e.notices(plan.Notices)
	return e.w.Complete("ADD HOST")
}

func (m *Manager) alterHost(e *req, st *parser.AlterHost) error {
	spec, o, err := m.hostSpec(e.q, st.Options)
	if err != nil {
		return err
	}
	unlock, err := m.lockCatalog(e.ctx, "ALTER HOST")
	if err != nil {
		return err
	}
	defer unlock()
	decide := func(s *cluster.State) (cluster.Plan, error) { return cluster.AlterHost(s, st.Name.Name, spec) }
	vetted, err := m.vetHost(e.ctx, decide)
	if err != nil {
		return e.at(err, o.fieldPos(err, st.Name.Pos))
	}
	var plan cluster.Plan
	err = m.cat.Update(e.ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if plan, err = decide(s); err != nil {
			return e.at(err, o.fieldPos(err, st.Name.Pos))
		}
		if err := changedUnderUs(vetted, plan.UpdateHost); err != nil {
			return err
		}
		return tx.Apply(plan)
	})
	if err != nil {
		return err
	}
	e.notices(plan.Notices)
	return e.w.Complete("ALTER HOST")
}

func (m *Manager) dropHost(e *req, st *parser.DropHost) error {
	names := make([]string, len(st.Names))
	for i, n := range st.Names {
		names[i] = n.Name
	}
	unlock, err := m.lockCatalog(e.ctx, "DROP HOST")
	if err != nil {
		return err
	}
	defer unlock()
	var plan cluster.Plan
	err = m.cat.Update(e.ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if plan, err = cluster.DropHosts(s, names, st.IfExists); err != nil {
			return e.at(err, identPos(st.Names, err))
		}
		return tx.Apply(plan)
	})
	if err != nil {
		return err
	}
	e.notices(plan.Notices)
	if m.opts.DataDir != "" {
		// The host's agent credentials go with it (its log stays).
		for _, name := range plan.DeleteHosts {
			for _, f := range []string{"agent.key", "agent.crt"} {
				os.Remove(filepath.Join(m.opts.DataDir, "agents", name, f))
			}
		}
	}
	return e.w.Complete("DROP HOST")
}

// identPos points an error at the listed name its message quotes.
func identPos(ids []parser.Ident, err error) int {
	if pe, ok := pgerror.As(err); ok {
		for _, id := range ids {
			if strings.Contains(pe.Message, `"`+id.Name+`"`) {
				return id.Pos
			}
		}
	}
	if len(ids) > 0 {
		return ids[0].Pos
	}
	return 0
}

var hostColumns = []pgwire.Column{
	{Name: "name", TypeOID: pgwire.OIDName},
	{Name: "user", TypeOID: pgwire.OIDName},
	{Name: "port", TypeOID: pgwire.OIDInt4},
	{Name: "protocol", TypeOID: pgwire.OIDText},
	{Name: "agentport", TypeOID: pgwire.OIDInt4},
	{Name: "address", TypeOID: pgwire.OIDText},
	{Name: "adbhome", TypeOID: pgwire.OIDText},
	{Name: "pghome", TypeOID: pgwire.OIDText},
}

func hostValues(h cluster.Host) map[string]string {
	return map[string]string{
		"name": h.Name, "user": h.User, "port": strconv.Itoa(h.Port), "protocol": h.Protocol,
		"agentport": strconv.Itoa(h.AgentPort), "address": h.Address, "adbhome": h.ADBHome, "pghome": h.PGHome,
	}
}

func (m *Manager) listHost(e *req, st *parser.ListHost) error {
	cols, err := project(e.q, hostColumns, st.Columns, "LIST HOST")
	if err != nil {
		return err
	}
	var s *cluster.State
	if err := m.cat.View(e.ctx, func(tx catalog.ReadTx) (err error) { s, err = tx.State(); return err }); err != nil {
		return err
	}
	hosts := s.Hosts
	if len(st.Names) > 0 {
		hosts = nil
		for _, id := range st.Names {
			h, ok := s.Host(id.Name)
			if !ok {
				return pgerror.New(pgerror.UndefinedObject, `host name "%s" does not exist`, id.Name).At(e.q, id.Pos)
			}
			hosts = append(hosts, h)
		}
	}
	rows := make([]map[string]string, len(hosts))
	for i, h := range hosts {
		rows[i] = hostValues(h)
	}
	return writeTable(e.w, cols, rows)
}

// project picks the named columns (all when none are named), in the order named.
func project(q string, all []pgwire.Column, names []parser.Ident, command string) ([]pgwire.Column, error) {
	if len(names) == 0 {
		return all, nil
	}
	out := make([]pgwire.Column, 0, len(names))
	for _, id := range names {
		found := false
		for _, c := range all {
			if c.Name == id.Name {
				out = append(out, c)
				found = true
				break
			}
		}
		if !found {
			valid := make([]string, len(all))
			for i, c := range all {
				valid[i] = c.Name
			}
			return nil, pgerror.New(pgerror.UndefinedColumn, `column "%s" does not exist`, id.Name).
				WithHint("%s columns are %s.", command, strings.Join(valid, ", ")).At(q, id.Pos)
		}
	}
	return out, nil
}

// writeTable sends a result set whose rows are maps keyed by column name.
func writeTable(w pgwire.ResultWriter, cols []pgwire.Column, rows []map[string]string) error {
	if err := w.Columns(cols); err != nil {
		return err
	}
	vals := make([]*string, len(cols))
	for _, r := range rows {
		for i, c := range cols {
			v := r[c.Name]
			vals[i] = &v
		}
		if err := w.Row(vals); err != nil {
			return err
		}
	}
	return complete(w, len(rows))
}
