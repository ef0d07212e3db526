package cluster

import (
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// HostSpec holds the options of ADD/ALTER HOST; nil means "not given".
type HostSpec struct {
	User      *string
	Port      *int
	Protocol  *string
	AgentPort *int
	Address   *string
	ADBHome   *string
	PGHome    *string
}

// HostDefaults are the values a new host gets for options not given.
type HostDefaults struct {
	User    string // the session user
	ADBHome string // the manager's install directory
	PGHome  string // /usr/lib/postgresql/15
	// Address is the resolved address of the host name, used when ADDRESS is
	// not given (resolution is I/O, so the executor does it).
	Address string
}

// Default ports of a new host.
const (
	DefaultSSHPort   = 22
	DefaultAgentPort = 5430
	DefaultPGHome    = "/usr/lib/postgresql/15"
)

// AddHost decides ADD HOST [IF NOT EXISTS] (reference §3.1).
func AddHost(s *State, name string, spec HostSpec, def HostDefaults, ifNotExists bool) (Plan, error) {
	var p Plan
	if _, ok := s.Host(name); ok {
		if ifNotExists {
			p.Notices = append(p.Notices, notice(`host "%s" already exists, skipping`, name))
			return p, nil
		}
		return p, pgerror.New(pgerror.DuplicateObject, `host "%s" already exists`, name)
	}
	h := Host{
		Name:      name,
		User:      def.User,
		Port:      DefaultSSHPort,
		Protocol:  ProtocolSSH,
		AgentPort: DefaultAgentPort,
		Address:   def.Address,
		ADBHome:   def.ADBHome,
		PGHome:    def.PGHome,
	}
	if h.PGHome == "" {
		h.PGHome = DefaultPGHome
	}
	applyHostSpec(&h, spec)
	if h.Address == "" {
		return p, pgerror.New(pgerror.SyntaxError, `option "address" must be given: host name "%s" does not resolve`, name)
	}
	if err := checkAddress(s, h); err != nil {
		return p, err
	}
	p.InsertHost = &h
	return p, nil
}

func applyHostSpec(h *Host, spec HostSpec) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&h.User, spec.User)
	set(&h.Protocol, spec.Protocol)
	set(&h.Address, spec.Address)
	set(&h.ADBHome, spec.ADBHome)
	set(&h.PGHome, spec.PGHome)
	if spec.Port != nil {
		h.Port = *spec.Port
	}
	if spec.AgentPort != nil {
		h.AgentPort = *spec.AgentPort
	}
}

func checkAddress(s *State, h Host) error {
	for _, o := range s.Hosts {
		if o.Name != h.Name && o.Address == h.Address {
			return fieldErr("address", pgerror.DuplicateObject, `address "%s" is already in host table (host "%s")`, h.Address, o.Name)
		}
	}
	return nil
}

// AlterHost decides ALTER HOST. Once a node on the host is initialised
// only its address may change (AntDB's rule, reference §3.1): every other
// column is baked into the running nodes (socket directory, agent,
// binaries, OS user). The nodes and the agent keep the old address until
// FLUSH HOST moves them, so the plan records where they are (Plan.Moved)
// with a WARNING.
func AlterHost(s *State, name string, spec HostSpec) (Plan, error) {
	var p Plan
	old, ok := s.Host(name)
	if !ok {
		return p, pgerror.New(pgerror.UndefinedObject, `host "%s" does not exist`, name)
	}
	h := old
	applyHostSpec(&h, spec)
	inited := false
	for _, n := range s.Nodes {
		if n.Host == name {
			inited = inited || n.Initialized || n.InCluster
		}
	}
	if inited {
		for _, f := range []struct {
			field   string
			changed bool
		}{
			{"user", h.User != old.User}, {"port", h.Port != old.Port}, {"protocol", h.Protocol != old.Protocol},
			{"agentport", h.AgentPort != old.AgentPort}, {"adbhome", h.ADBHome != old.ADBHome}, {"pghome", h.PGHome != old.PGHome},
		} {
			if f.changed {
				return p, fieldErr(f.field, pgerror.ObjectInUse, `host "%s" has been used by initialized nodes, its %s cannot be changed`, name, f.field)
			}
		}
	}
	if h.Address != old.Address {
		if err := checkAddress(s, h); err != nil {
			return p, err
		}
		// The record is where the host's processes may be: the
		// address they were configured with, and the new one too once
		// a FLUSH HOST started moving them. Changing the catalog's
		// address does not move them; changing it back to the one
		// address they all use leaves nothing to flush.
		from, moved := s.Moved[name]
		if !moved {
			from = []string{old.Address}
		}
		switch {
		case len(from) == 1 && from[0] == h.Address:
			p.Moved = map[string][]string{name: nil}
			p.Notices = append(p.Notices, notice(`host "%s" is back at the address its nodes and agent use: nothing to flush`, name))
		case inited || moved:
			p.Moved = map[string][]string{name: slices.Clone(from)}
			p.Notices = append(p.Notices, warning(`the address of host "%s" changed from %s to %s, but its initialized nodes and its agent still use %s: run FLUSH HOST to move them and re-point the cluster`,
				name, old.Address, h.Address, strings.Join(from, ", ")))
		}
	}
	p.UpdateHost = &h
	return p, nil
}

// DropHosts decides DROP HOST [IF EXISTS] a [, …]: every listed host is
// checked before any is deleted.
func DropHosts(s *State, names []string, ifExists bool) (Plan, error) {
	var p Plan
	seen := map[string]bool{}
	for _, name := range names {
		if _, ok := s.Host(name); !ok {
			if ifExists {
				p.Notices = append(p.Notices, notice(`host "%s" does not exist, skipping`, name))
				continue
			}
			return Plan{}, pgerror.New(pgerror.UndefinedObject, `host "%s" does not exist`, name)
		}
		var users []string
		for _, n := range s.Nodes {
			if n.Host == name {
				users = append(users, n.Name)
			}
		}
		if len(users) > 0 {
			return Plan{}, pgerror.New(pgerror.ObjectInUse, `host "%s" has been used, cannot be dropped`, name).
				WithHint("Drop the nodes on it first: %s.", strings.Join(users, ", "))
		}
		if !seen[name] {
			seen[name] = true
			p.DeleteHosts = append(p.DeleteHosts, name)
		}
	}
	return p, nil
}
