package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// maxSocketPath is the longest unix socket path Linux takes (sun_path is 108
// bytes with its NUL).
const maxSocketPath = 107

// SocketDir is a node's unix_socket_directories: a directory of its own, so
// that nodes of different loopback "hosts" sharing a port never collide on
// /var/run/postgresql/.s.PGSQL.<port>. It lies outside the data directory
// because pg_rewind copies every file of its source and fails on a socket,
// and under <adbhome>/run: a directory of the host's installation that
// belongs to root (or the host's user) and nobody else may write to, so no
// other local user can create it first to plant a socket clients would
// trust (a predictable name in /tmp could be). The agent creates it, owned
// by the host's user, and keeps the node's secrets there (NodeFile); CLEAN
// removes it. The name carries the node's name for people and a hash of
// its address and path so that two clusters sharing an adbhome never share
// it.
func SocketDir(n Node, h Host) string {
	sum := sha256.Sum256([]byte(h.Address + ":" + n.Path))
	return path.Join(h.ADBHome, "run", n.Name+"-"+hex.EncodeToString(sum[:4]))
}

// Files the agent writes into a node's socket directory (agentpb's
// NodeSecrets): the libpq password file the node's outgoing connections
// name with passfile=, its server certificate and key, and the manager's
// CA certificate, which its outgoing connections verify peers against.
const (
	PassFile   = "pgpass"
	ServerCert = "server.crt"
	ServerKey  = "server.key"
	RootCert   = "root.crt"
)

// NodeFile is the path of one of those files for node n.
func NodeFile(n Node, h Host, name string) string { return path.Join(SocketDir(n, h), name) }

// CheckSocketPath refuses a socket path longer than Linux takes
// (.s.PGSQL.<port>.lock is the longest file PostgreSQL puts there).
func CheckSocketPath(n Node, h Host) error {
	p := SocketDir(n, h) + "/.s.PGSQL." + strconv.Itoa(n.Port) + ".lock"
	if len(p) > maxSocketPath {
		return fmt.Errorf("the unix socket path %q of %s is too long (%d bytes, at most %d)", p, describe(n.Type, n.Name), len(p), maxSocketPath)
	}
	return nil
}

// ServerParams are the postgresql.conf settings every node gets from the
// manager (reference §1, adapted to PostgreSQL 15): each node listens on its
// host's address only, on its own socket directory, and is ready to be a
// primary, a standby and a pg_rewind target. TLS is on, with a certificate
// the manager's CA issued for the host's address; passwords are stored as
// SCRAM-SHA-256 verifiers (PostgreSQL 15's default, said explicitly: an md5
// verifier would not do for the scram-sha-256 lines of pg_hba.conf). A
// standby whose stream broke (its master crashed and was restarted in
// place, or a failover re-pointed it) tries again after 200 ms, not
// PostgreSQL's 5 s: until it does, a master's commits wait for it (a
// standby whose master stays down logs a failed connection 5 times a
// second meanwhile). Crash recovery makes the data directory durable with
// one syncfs() of its file systems rather than an fsync() of every file,
// which took 200–350 ms of a restart in place on a small node (Linux ≥ 5.8
// reports write errors to syncfs; a file system shared with busy
// applications makes it slower, see recovery_init_sync_method).
//
// The data plane (issue 10): every node loads adb.so (ext/adb: two-phase
// commit of a coordinator's remote transactions, DDL reaching the shards,
// the checks on writes), and may hold prepared transactions — every node,
// since a standby needs at least its master's max_prepared_transactions and
// any node may be promoted. A coordinator's remote sessions say which
// coordinator and backend they serve (postgres_fdw.application_name
// adb:<cluster_name>:<pid>): the manager's distributed deadlock detector
// reads the wait graph by it. Aggregates and joins of distributed tables
// are planned per partition, so that postgres_fdw runs them on the shards.
func ServerParams(n Node, h Host) map[string]string {
	p := map[string]string{
		"listen_addresses":               h.Address,
		"port":                           strconv.Itoa(n.Port),
		"unix_socket_directories":        SocketDir(n, h),
		"ssl":                            "on",
		"ssl_cert_file":                  NodeFile(n, h, ServerCert),
		"ssl_key_file":                   NodeFile(n, h, ServerKey),
		"ssl_ca_file":                    NodeFile(n, h, RootCert),
		"password_encryption":            "scram-sha-256",
		"cluster_name":                   n.Name,
		"wal_level":                      "replica",
		"hot_standby":                    "on",
		"hot_standby_feedback":           "on",
		"wal_log_hints":                  "on",
		"full_page_writes":               "on",
		"max_wal_senders":                "16",
		"max_replication_slots":          "16",
		"wal_keep_size":                  "256MB",
		"synchronous_commit":             "on",
		"synchronous_standby_names":      "",
		"wal_retrieve_retry_interval":    "200ms",
		"recovery_init_sync_method":      "syncfs",
		"shared_preload_libraries":       "adb",
		"max_prepared_transactions":      "100",
		"postgres_fdw.application_name":  "adb:%C:%p",
		"enable_partitionwise_join":      "on",
		"enable_partitionwise_aggregate": "on",
		"logging_collector":              "on",
		"log_directory":                  "log",
		"log_line_prefix":                "%m [%p] %q%u@%d ",
	}
	if NodeLibraryDir != "" {
		p["dynamic_library_path"] = NodeLibraryDir + ":$libdir"
	}
	return p
}

// NodeLibraryDir, when set, is searched for adb.so before PostgreSQL's lib
// directory (dynamic_library_path): a developer's build, tried without
// installing it — the SQL side names the library "adb", never $libdir/adb.
// The manager sets it from ADBMGR_NODE_LIBDIR at start.
var NodeLibraryDir string

// HBALine is one pg_hba.conf rule the manager writes.
type HBALine struct {
	Type, Database, User, Address, Method string
}

// cidrs returns the networks an address's connections come from. A
// connection to another loopback address leaves from 127.0.0.1 (the kernel
// picks the loopback route's source), so nodes on loopback "hosts" must also
// trust 127.0.0.1.
func cidrs(addr string) []string {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil
	}
	bits := "/32"
	if ip.To4() == nil {
		bits = "/128"
	}
	out := []string{ip.String() + bits}
	if ip.IsLoopback() && ip.To4() != nil && !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		out = append(out, "127.0.0.1/32")
	}
	return out
}

// HBALines are the pg_hba.conf rules the manager gives a node: every host of
// the cluster may connect for queries and for replication (coordinators
// reach datanodes, slaves stream from masters and cascade parents, rewind
// needs the source), and so may the manager — over TLS only (hostssl) and
// with a password (scram-sha-256), never trusted: the lines admit a
// connection from a cluster host, not any account on it. The password is
// the one the manager generated for the nodes' superusers; the nodes reach
// each other with it from their password files (NodeFile PassFile).
// initdb's own lines above them say peer for Unix sockets and
// scram-sha-256 for 127.0.0.1 and ::1. managerIPs are the addresses the
// manager's connections leave from: one per route it takes toward the
// cluster's hosts (127.0.0.1 toward loopback hosts, its bridge address
// toward hosts on another network), since a node may be reached by the
// manager over any of them and one cluster may mix local and ssh hosts.
func HBALines(s *State, managerIPs ...string) []HBALine {
	var addrs []string
	for _, n := range s.Nodes {
		if h, ok := s.Host(n.Host); ok {
			addrs = append(addrs, h.Address)
		}
	}
	return hbaLines(append(addrs, managerIPs...))
}

// hbaLines are the manager's pg_hba.conf lines admitting addrs, sorted.
func hbaLines(addrs []string) []HBALine {
	seen := map[string]bool{}
	var nets []string
	for _, a := range addrs {
		for _, c := range cidrs(a) {
			if !seen[c] {
				seen[c] = true
				nets = append(nets, c)
			}
		}
	}
	sort.Strings(nets)
	var out []HBALine
	for _, c := range nets {
		out = append(out, HBALine{"hostssl", "all", "all", c, AuthMethod}, HBALine{"hostssl", "replication", "all", c, AuthMethod})
	}
	return out
}

// AuthMethod is how nodes authenticate the cluster's hosts.
const AuthMethod = "scram-sha-256"

// SyncNames computes a master's synchronous_standby_names from its direct
// slaves that are in the cluster (or about to be, with inCluster) : sync
// ones first, then potential ones, as 'FIRST n (a, b, c)' with n the number
// of sync slaves; async slaves are not listed. With only potential slaves n
// is 1, so the first potential one is synchronous — which is what potential
// means once no sync slave is left.
func SyncNames(s *State, master string, inCluster func(Node) bool) string {
	var syncs, pots []string
	for _, c := range s.Children(master) {
		if !inCluster(c) {
			continue
		}
		switch c.SyncState {
		case Sync:
			syncs = append(syncs, c.Name)
		case Potential:
			pots = append(pots, c.Name)
		}
	}
	if len(syncs)+len(pots) == 0 {
		return ""
	}
	n := len(syncs)
	if n == 0 {
		n = 1
	}
	quoted := make([]string, 0, len(syncs)+len(pots))
	for _, name := range append(syncs, pots...) {
		quoted = append(quoted, `"`+name+`"`)
	}
	return fmt.Sprintf("FIRST %d (%s)", n, strings.Join(quoted, ", "))
}

// ExpectedReplication is what pg_stat_replication.sync_state on a master
// must say for each direct slave given the catalog: the first n listed are
// "sync", further listed ones "potential", unlisted ones "async".
func ExpectedReplication(s *State, master string, inCluster func(Node) bool) map[string]string {
	out := map[string]string{}
	var listed []string
	nsync := 0
	for _, c := range s.Children(master) {
		if !inCluster(c) {
			continue
		}
		out[c.Name] = Async
		switch c.SyncState {
		case Sync:
			nsync++
			listed = slices.Insert(listed, nsync-1, c.Name)
		case Potential:
			listed = append(listed, c.Name)
		}
	}
	n := nsync
	if n == 0 && len(listed) > 0 {
		n = 1
	}
	for i, name := range listed {
		if i < n {
			out[name] = Sync
		} else {
			out[name] = Potential
		}
	}
	return out
}

// ConnInfo is a libpq connection string with every value quoted, built
// from catalog values (never from free text typed in a statement).
func ConnInfo(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		v := strings.ReplaceAll(kv[i+1], `\`, `\\`)
		v = strings.ReplaceAll(v, `'`, `\'`)
		fmt.Fprintf(&b, "%s='%s'", kv[i], v)
	}
	return b.String()
}

// StandbyParams are a slave's postgresql.auto.conf recovery settings:
// stream from its parent, through a slot named after itself, following
// timeline switches (failover). The password comes from the slave's own
// password file (passfile=), so it is in no configuration file, and the
// parent must prove with its certificate that it is the node at that
// address (sslmode=verify-full against the manager's CA, a copy of which
// lies beside the slave) before it gets the password or sends WAL.
func StandbyParams(n, parent Node, parentHost, host Host) map[string]string {
	return map[string]string{
		"primary_conninfo": ConnInfo("host", parentHost.Address, "port", strconv.Itoa(parent.Port),
			"user", parentHost.User, "application_name", n.Name, "passfile", NodeFile(n, host, PassFile),
			"sslmode", "verify-full", "sslrootcert", NodeFile(n, host, RootCert)),
		"primary_slot_name":        n.Name,
		"recovery_target_timeline": "latest",
	}
}

// InitStage is one step of INIT ALL: nodes of one kind that can be done in
// parallel.
type InitStage struct {
	Operation string // AntDB's "operation type", e.g. "init datanode master"
	Action    string // "initdb", "start", "basebackup"
	Nodes     []Node
}

// PlanInit orders INIT ALL (reference §4.5): gtmcoord master, its slaves,
// coordinator masters, their slaves, datanode masters, their slaves; slaves
// level by level (a cascaded slave after its parent). Nodes already
// initialised are left out of init stages, so INIT ALL can finish a run that
// failed half-way; start stages list every master not yet in the cluster
// (starting a running node is a no-op).
func PlanInit(s *State) ([]InitStage, error) {
	gtm := 0
	for _, n := range s.Nodes {
		if n.Type == GtmcoordMaster {
			gtm++
		}
	}
	if gtm == 0 {
		return nil, fmt.Errorf("there is not any gtmcoord master in the node table")
	}
	pending := false
	for _, n := range s.Nodes {
		if !n.InCluster {
			pending = true
		}
	}
	if !pending {
		return nil, fmt.Errorf("every node is already initialized and in the cluster")
	}
	var stages []InitStage
	for _, f := range []Family{Gtmcoord, Coordinator, Datanode} {
		master := TypeOf(f, true)
		var toInit, toStart []Node
		for _, n := range s.Nodes {
			if n.Type != master || n.InCluster {
				continue
			}
			if !n.Initialized {
				toInit = append(toInit, n)
			}
			toStart = append(toStart, n)
		}
		if len(toInit) > 0 {
			stages = append(stages, InitStage{Operation: "init " + string(master), Action: "initdb", Nodes: toInit})
		}
		if len(toStart) > 0 {
			stages = append(stages, InitStage{Operation: "start " + string(master), Action: "start", Nodes: toStart})
		}
		slave := TypeOf(f, false)
		levels := map[int][]Node{}
		maxDepth := 0
		for _, n := range s.Nodes {
			if n.Type != slave || n.InCluster {
				continue
			}
			d := s.Depth(n)
			levels[d] = append(levels[d], n)
			maxDepth = max(maxDepth, d)
		}
		for d := 2; d <= maxDepth; d++ {
			if len(levels[d]) > 0 {
				stages = append(stages, InitStage{Operation: "init " + string(slave), Action: "basebackup", Nodes: levels[d]})
			}
		}
	}
	return stages, nil
}
