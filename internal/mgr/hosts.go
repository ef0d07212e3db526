package mgr

import (
	"fmt"
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
		p, err := cluster.AddHost(s, st.Name.Name, spec, def, st.IfNotExists)
		if err == nil && p.InsertHost != nil {
			_, err = oneUser(s, *p.InsertHost, true)
		}
		return p, err
	}
	return m.applyHost(e, "ADD HOST", decide, o, st.Name.Pos)
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
	decide := func(s *cluster.State) (cluster.Plan, error) {
		p, err := cluster.AlterHost(s, st.Name.Name, spec)
		if old, ok := s.Host(st.Name.Name); err == nil && ok && p.UpdateHost.User != old.User {
			var warn *cluster.Notice
			if warn, err = oneUser(s, *p.UpdateHost, false); warn != nil {
				p.Notices = append(p.Notices, *warn)
			}
		}
		return p, err
	}
	return m.applyHost(e, "ALTER HOST", decide, o, st.Name.Pos)
}

// applyHost is the end of ADD and ALTER HOST: decide on the current
// catalog and check the host's files (vetHost), then decide again inside
// the catalog transaction and apply the plan if the host written is the
// one checked. Errors point at the option they are about, or at pos.
func (m *Manager) applyHost(e *req, command string, decide func(*cluster.State) (cluster.Plan, error), o *options, pos int) error {
	vetted, err := m.vetHost(e.ctx, decide)
	if err != nil {
		return e.at(err, o.fieldPos(err, pos))
	}
	var plan cluster.Plan
	err = m.cat.Update(e.ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if plan, err = decide(s); err != nil {
			return e.at(err, o.fieldPos(err, pos))
		}
		h := plan.InsertHost
		if plan.UpdateHost != nil {
			h = plan.UpdateHost
		}
		if err := changedUnderUs(vetted, h); err != nil {
			return err
		}
		return tx.Apply(plan)
	})
	if err != nil {
		return err
	}
	e.notices(plan.Notices)
	return e.w.Complete(command)
}

// oneUser keeps the hosts of the catalog on one OS user, h being added
// (add) or given a new user. The nodes' superuser is named after their
// host's user (initdb runs as it), and the manager, the coordinators' user
// mappings and the node's own host log in to a node as its host's user;
// but a node copied from another host (a slave's base backup, EXPAND,
// APPEND … FOR, and so a failed-over master) keeps its source's roles, so
// on a host of another user nobody could log in to it.
//
// ADD HOST is refused. ALTER HOST changes one host at a time, so a switch
// of every host to another user passes through mixed users: it is allowed
// with a WARNING while no node is initialised, and refused once one is
// (the hosts of initialised nodes cannot change their user at all).
func oneUser(s *cluster.State, h cluster.Host, add bool) (*cluster.Notice, error) {
	users, byUser := hostUsers(s.Hosts, func(o cluster.Host) bool { return o.Name != h.Name && o.User != h.User })
	if len(users) == 0 {
		return nil, nil
	}
	others := hostsOfUsers(users, byUser)
	inited := false
	for _, n := range s.Nodes {
		inited = inited || n.Initialized || n.InCluster
	}
	if !add && !inited {
		w := cluster.Notice{Severity: "WARNING", Message: fmt.Sprintf(`host "%s" now runs as "%s" but %s: give every host the same user before INIT (the nodes copied between hosts need it)`,
			h.Name, h.User, strings.Join(others, "; "))}
		return &w, nil
	}
	err := pgerror.New(pgerror.InvalidParameterValue, `host "%s" cannot run as user "%s": %s`, h.Name, h.User, strings.Join(others, "; ")).
		WithDetail(oneUserWhy)
	switch {
	case len(users) > 1:
		err.WithHint("Give the other hosts one user first (ALTER HOST … (user=…), before INIT).")
	case add:
		err.WithHint("Add it with user='%s', and run PostgreSQL as that OS user there.", users[0])
	default:
		err.WithHint("The cluster's nodes run as \"%s\": keep user='%s'.", users[0], users[0])
	}
	return nil, &cluster.FieldError{Field: "user", Err: err}
}

// oneUserWhy is why the hosts of a cluster share one OS user.
const oneUserWhy = "The hosts of a cluster share one OS user: a node copied from another host (a slave, EXPAND, APPEND … FOR) keeps its source's database superuser, which is named after its host's user, and the manager logs in to every node as its own host's user."

// hostUsers groups the hosts that pass keep by user: the users in the
// order of their first host, and each user's host names.
func hostUsers(hosts []cluster.Host, keep func(cluster.Host) bool) ([]string, map[string][]string) {
	byUser := map[string][]string{}
	var users []string
	for _, o := range hosts {
		if !keep(o) {
			continue
		}
		if byUser[o.User] == nil {
			users = append(users, o.User)
		}
		byUser[o.User] = append(byUser[o.User], o.Name)
	}
	return users, byUser
}

// hostsOfUsers says, for each user, which hosts run as it: `h1, h2 run as "pg"`.
func hostsOfUsers(users []string, byUser map[string][]string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		verb := "runs"
		if len(byUser[u]) > 1 {
			verb = "run"
		}
		out[i] = fmt.Sprintf(`%s %s as "%s"`, strings.Join(byUser[u], ", "), verb, u)
	}
	return out
}

// mixedUsers refuses to make nodes (INIT ALL, EXPAND, APPEND) while the
// hosts run as several users, which ALTER HOST allows, with a WARNING,
// before INIT (oneUser). The hint moves the hosts to the user most of
// them have.
func mixedUsers(s *cluster.State) error {
	users, byUser := hostUsers(s.Hosts, func(cluster.Host) bool { return true })
	if len(users) < 2 {
		return nil
	}
	keep := users[0]
	for _, u := range users[1:] {
		if len(byUser[u]) > len(byUser[keep]) {
			keep = u
		}
	}
	var alter []string
	for _, h := range s.Hosts {
		if h.User != keep {
			alter = append(alter, fmt.Sprintf("ALTER HOST %s (USER=%s)", h.Name, keep))
		}
	}
	return pgerror.New(pgerror.ObjectNotInPrereqState, "the hosts run as different users: %s", strings.Join(hostsOfUsers(users, byUser), "; ")).
		WithDetail("%s", oneUserWhy).
		WithHint("Give every host one user first: %s.", strings.Join(alter, "; "))
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

// hostValues is a host's LIST HOST row. port is the SSH port: a local
// host has none (NULL), whatever the catalog's default says.
func hostValues(h cluster.Host) map[string]string {
	v := map[string]string{
		"name": h.Name, "user": h.User, "port": strconv.Itoa(h.Port), "protocol": h.Protocol,
		"agentport": strconv.Itoa(h.AgentPort), "address": h.Address, "adbhome": h.ADBHome, "pghome": h.PGHome,
	}
	if h.Protocol == "local" {
		delete(v, "port")
	}
	return v
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
	return writeTableNulls(e.w, cols, rows, true)
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
	return writeTableNulls(w, cols, rows, false)
}

// writeTableNulls is writeTable where a column missing from a row is NULL if
// nulls says so, else "".
func writeTableNulls(w pgwire.ResultWriter, cols []pgwire.Column, rows []map[string]string, nulls bool) error {
	if err := w.Columns(cols); err != nil {
		return err
	}
	vals := make([]*string, len(cols))
	for _, r := range rows {
		for i, c := range cols {
			v, ok := r[c.Name]
			vals[i] = &v
			if !ok && nulls {
				vals[i] = nil
			}
		}
		if err := w.Row(vals); err != nil {
			return err
		}
	}
	return complete(w, len(rows))
}
