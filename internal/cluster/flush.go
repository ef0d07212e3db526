package cluster

import (
	"slices"
	"sort"
)

// FLUSH HOST (reference §4.14) moves a cluster onto the addresses ALTER
// HOST gave its hosts. What names an address: each node's listen_addresses,
// its socket directory (its name hashes the address, SocketDir) and the
// certificate files there, its server certificate (issued for the address),
// the slaves' primary_conninfo, the coordinators' node list and foreign
// servers, every node's pg_hba.conf lines, the host's agent (it listens on
// the address, with a certificate for it) and the DBAs' password file.

// MovedHost is a host whose address changed since its nodes were
// configured: Host is its catalog row (the new address), From the
// addresses its agent and nodes may still use.
type MovedHost struct {
	Host Host
	From []string
}

// FlushPlan is what FLUSH HOST does, decided from the catalog.
type FlushPlan struct {
	Hosts []MovedHost
	// Restart are the initialised nodes of the moved hosts, parents before
	// their slaves: each gets AddressParams (slaves also StandbyParams) and
	// is restarted on the new address.
	Restart []Node
	// Repoint are the initialised slaves on other hosts whose parent is on
	// a moved host: their primary_conninfo names the old address.
	Repoint []Node
	// Coordinators are the in-cluster gtmcoord and coordinator masters,
	// whose node list and foreign servers name addresses.
	Coordinators []Node
	// Configured are the initialised nodes, whose pg_hba.conf names every
	// host: first Transitional is added (old and new addresses, so that
	// nodes not yet moved and nodes already moved are both admitted), at
	// the end Stale is removed, leaving exactly HBALines.
	Configured   []Node
	Transitional []HBALine
	Stale        []HBALine
}

// PlanFlush decides FLUSH HOST. managerIPs are the addresses the
// manager's connections leave from, now and before the move (they may
// differ when the gtmcoord master's host moved to another network).
func PlanFlush(s *State, managerIPs []string) FlushPlan {
	var p FlushPlan
	moved := map[string]bool{}
	var old []string
	for _, h := range s.Hosts {
		if from, ok := s.Moved[h.Name]; ok {
			// The new address may be listed too (a FLUSH HOST that
			// started): From is where else the processes may be.
			var others []string
			for _, a := range from {
				if a != h.Address {
					others = append(others, a)
				}
			}
			p.Hosts = append(p.Hosts, MovedHost{Host: h, From: others})
			moved[h.Name] = true
			old = append(old, others...)
		}
	}
	for _, n := range s.Nodes {
		if !n.Initialized && !n.InCluster {
			continue
		}
		p.Configured = append(p.Configured, n)
		if moved[n.Host] {
			p.Restart = append(p.Restart, n)
		} else if parent, ok := s.Node(n.Master); ok && moved[parent.Host] {
			p.Repoint = append(p.Repoint, n)
		}
		if (n.Type == GtmcoordMaster || n.Type == CoordinatorMaster) && n.InCluster {
			p.Coordinators = append(p.Coordinators, n)
		}
	}
	sort.SliceStable(p.Restart, func(i, j int) bool { return s.Depth(p.Restart[i]) < s.Depth(p.Restart[j]) })
	var addrs []string
	for _, n := range s.Nodes {
		if h, ok := s.Host(n.Host); ok {
			addrs = append(addrs, h.Address)
		}
	}
	final := hbaLines(append(slices.Clone(addrs), managerIPs...))
	p.Transitional = hbaLines(append(append(addrs, managerIPs...), old...))
	for _, l := range p.Transitional {
		if !slices.Contains(final, l) {
			p.Stale = append(p.Stale, l)
		}
	}
	return p
}

// AddressParams are the postgresql.conf settings of ServerParams that
// follow the host's address: FLUSH HOST rewrites these, and only these, so
// that the user's SET rows stay as they are.
func AddressParams(n Node, h Host) map[string]string {
	all := ServerParams(n, h)
	out := map[string]string{}
	for _, k := range []string{"listen_addresses", "unix_socket_directories", "ssl_cert_file", "ssl_key_file", "ssl_ca_file"} {
		out[k] = all[k]
	}
	return out
}
