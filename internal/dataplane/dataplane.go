// Package dataplane is the manager's view of the coordinators'
// distributed transactions, as pure functions over what the nodes report:
// the wait-for graph of global transactions and its deadlocks (Find), and
// the SQL the manager sends for it.
//
// A global transaction is a coordinator backend: (coordinator, pid). Its
// remote sessions on other nodes carry the application name
// "adb:<coordinator>:<pid>" (postgres_fdw.application_name = 'adb:%C:%p',
// with cluster_name the node's name, and adb.remote_exec alike). Every
// other session of a coordinator is a global transaction of that
// coordinator; every other session of a datanode is local to it. A lock
// wait on any node is an edge between the transactions of the waiting
// session and of each session blocking it (pg_blocking_pids). PostgreSQL
// finds the cycles among one node's sessions itself; a cycle through
// several nodes — or through two sessions of one global transaction on a
// node — nobody else sees, and it lasts until a timeout: the manager
// breaks it by cancelling one transaction on its coordinator
// (adb.cancel_deadlock, ext/adb/dml.c), whose error then reads "deadlock
// detected" (40P01).
package dataplane

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Session is one backend of a node, as WaitsQuery reads it.
type Session struct {
	PID int
	// App is its application_name.
	App string
	// XactAge is how long its transaction has run (0: none).
	XactAge time.Duration
	// Waiting is how long it has waited for the lock it waits for (0:
	// not waiting); Lock names that lock ("ShareLock on transactionid").
	Waiting time.Duration
	Lock    string
	// BlockedBy are the pids that hold it back (pg_blocking_pids).
	BlockedBy []int
}

// NodeWaits is what one node reported.
type NodeWaits struct {
	Node string
	// Coordinator: the node's own sessions are global transactions (a
	// coordinator or the gtmcoord); otherwise they are local (a datanode).
	Coordinator bool
	// DeadlockTimeout is the node's deadlock_timeout: PostgreSQL's own
	// detector looks at a wait after that long.
	DeadlockTimeout time.Duration
	Sessions        []Session
}

// Txn is a vertex of the wait-for graph: a global transaction
// (Coordinator, PID) or, with Local set, a datanode's own session.
type Txn struct {
	Coordinator string
	PID         int
	Local       string
}

// String is how messages name it: "cn1:4242", or "local session 77 of dn1".
func (t Txn) String() string {
	if t.Local != "" {
		return fmt.Sprintf("local session %d of %s", t.PID, t.Local)
	}
	return fmt.Sprintf("%s:%d", t.Coordinator, t.PID)
}

// Global says whether t is a coordinator's transaction, which the
// manager can cancel.
func (t Txn) Global() bool { return t.Local == "" }

func (t Txn) compare(u Txn) int {
	return cmp.Or(cmp.Compare(t.Local, u.Local), cmp.Compare(t.Coordinator, u.Coordinator), cmp.Compare(t.PID, u.PID))
}

// Edge is one wait: From's session on Node waits for Lock, held (or
// queued before it) by To's.
type Edge struct {
	From, To Txn
	Node     string
	Lock     string
	// Age is how long From's session has waited.
	Age time.Duration
}

// Deadlock is one cycle of waits and the transaction to cancel.
type Deadlock struct {
	Cycle  []Edge
	Victim Txn
	// Waited is how long the victim has waited in the cycle (the longest
	// of its waits): adb.cancel_deadlock checks its transaction is at
	// least that old, so that a transaction begun since is never
	// cancelled.
	Waited time.Duration
}

// Config tunes Find.
type Config struct {
	// MinWait: waits younger than this are no edge yet (a lock held for
	// a moment is not a deadlock).
	MinWait time.Duration
}

// DefaultConfig waits a second.
var DefaultConfig = Config{MinWait: time.Second}

// ParseApp reads a remote session's application name
// "adb:<coordinator>:<pid>".
func ParseApp(app string) (coordinator string, pid int, ok bool) {
	rest, found := strings.CutPrefix(app, "adb:")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", 0, false
	}
	pid, err := strconv.Atoi(rest[i+1:])
	if err != nil || pid <= 0 {
		return "", 0, false
	}
	return rest[:i], pid, true
}

// txnOf is the transaction session s of node n works for.
func txnOf(n NodeWaits, s Session) Txn {
	if c, pid, ok := ParseApp(s.App); ok {
		return Txn{Coordinator: c, PID: pid}
	}
	if n.Coordinator {
		return Txn{Coordinator: n.Node, PID: s.PID}
	}
	return Txn{Local: n.Node, PID: s.PID}
}

// Edges builds the wait-for graph: one edge per waiting session and
// blocker whose wait is at least cfg.MinWait old. A blocker the node did
// not list (it ended meanwhile) is no edge.
func Edges(nodes []NodeWaits, cfg Config) []Edge {
	var out []Edge
	for _, n := range nodes {
		byPID := make(map[int]Session, len(n.Sessions))
		for _, s := range n.Sessions {
			byPID[s.PID] = s
		}
		for _, s := range n.Sessions {
			if s.Waiting <= 0 || s.Waiting < cfg.MinWait {
				continue
			}
			from := txnOf(n, s)
			for _, b := range s.BlockedBy {
				bs, ok := byPID[b]
				if !ok {
					continue
				}
				out = append(out, Edge{From: from, To: txnOf(n, bs), Node: n.Node, Lock: s.Lock, Age: s.Waiting})
			}
		}
	}
	return out
}

// Find returns the deadlocks among nodes' waits, each with its victim,
// the youngest global transaction of the cycle (it has done least work;
// ties: the highest pid). Cycles are broken one after the other — the
// victim leaves the graph — so a knot of cycles yields only the victims
// needed. A cycle within one node among distinct sessions is
// PostgreSQL's to break: it counts only once its waits are older than
// that node's deadlock_timeout plus cfg.MinWait (when it outlives
// PostgreSQL's look, PostgreSQL did not see it: sessions of one global
// transaction waiting for each other).
func Find(nodes []NodeWaits, cfg Config) []Deadlock {
	dt := map[string]time.Duration{}
	xactAge := map[Txn]time.Duration{}
	for _, n := range nodes {
		dt[n.Node] = n.DeadlockTimeout
		for _, s := range n.Sessions {
			t := txnOf(n, s)
			xactAge[t] = max(xactAge[t], s.XactAge)
		}
	}
	edges := Edges(nodes, cfg)
	var out []Deadlock
	removed := map[Txn]bool{}
	for {
		cycle := findCycle(edges, removed, func(c []Edge) bool { return counts(c, dt, cfg) })
		if cycle == nil {
			return out
		}
		d, ok := chooseVictim(cycle, xactAge)
		if !ok {
			// Only local sessions (no global transaction to cancel):
			// leave it to PostgreSQL, and look past it.
			for _, e := range cycle {
				removed[e.From] = true
			}
			continue
		}
		out = append(out, d)
		removed[d.Victim] = true
	}
}

// counts says whether cycle c is the manager's to break.
func counts(c []Edge, dt map[string]time.Duration, cfg Config) bool {
	node := c[0].Node
	sameNode := true
	for _, e := range c {
		if e.Node != node {
			sameNode = false
		}
	}
	if !sameNode {
		return true
	}
	for _, e := range c {
		if e.Age < dt[node]+cfg.MinWait {
			return false
		}
	}
	return true
}

// chooseVictim picks the youngest global transaction of cycle.
func chooseVictim(cycle []Edge, xactAge map[Txn]time.Duration) (Deadlock, bool) {
	var victim Txn
	found := false
	for _, e := range cycle {
		t := e.From
		if !t.Global() {
			continue
		}
		if !found || xactAge[t] < xactAge[victim] || (xactAge[t] == xactAge[victim] && t.PID > victim.PID) ||
			(xactAge[t] == xactAge[victim] && t.PID == victim.PID && t.Coordinator > victim.Coordinator) {
			victim, found = t, true
		}
	}
	if !found {
		return Deadlock{}, false
	}
	d := Deadlock{Cycle: cycle, Victim: victim}
	for _, e := range cycle {
		if e.From == victim {
			d.Waited = max(d.Waited, e.Age)
		}
	}
	return d, true
}

// findCycle returns one cycle of edges among vertices not removed that
// ok accepts, starting from the smallest vertex (deterministic), or nil.
func findCycle(edges []Edge, removed map[Txn]bool, ok func([]Edge) bool) []Edge {
	out := map[Txn][]Edge{}
	var verts []Txn
	for _, e := range edges {
		if removed[e.From] || removed[e.To] {
			continue
		}
		if _, seen := out[e.From]; !seen {
			verts = append(verts, e.From)
		}
		out[e.From] = append(out[e.From], e)
	}
	slices.SortFunc(verts, Txn.compare)
	for _, v := range verts {
		slices.SortStableFunc(out[v], func(a, b Edge) int {
			return cmp.Or(a.To.compare(b.To), cmp.Compare(a.Node, b.Node))
		})
	}
	// Depth-first from each vertex, in order; a back edge to a vertex on
	// the path closes a cycle (the path from it plus that edge).
	const (
		white = iota
		grey
		black
	)
	color := map[Txn]int{}
	var path []Edge
	var onPath []Txn
	var found []Edge
	var visit func(v Txn) bool
	visit = func(v Txn) bool {
		color[v] = grey
		onPath = append(onPath, v)
		for _, e := range out[v] {
			switch color[e.To] {
			case grey:
				i := slices.Index(onPath, e.To)
				c := append(slices.Clone(path[i:]), e)
				if ok(c) {
					found = c
					return true
				}
			case white:
				path = append(path, e)
				if visit(e.To) {
					return true
				}
				path = path[:len(path)-1]
			}
		}
		onPath = onPath[:len(onPath)-1]
		color[v] = black
		return false
	}
	for _, v := range verts {
		if color[v] == white && visit(v) {
			return found
		}
	}
	return nil
}

// Detail is the victim's DETAIL, as PostgreSQL words its own deadlocks:
// each wait of the cycle, starting with the victim's.
func (d Deadlock) Detail() string {
	start := 0
	for i, e := range d.Cycle {
		if e.From == d.Victim {
			start = i
			break
		}
	}
	var b strings.Builder
	for i := range d.Cycle {
		e := d.Cycle[(start+i)%len(d.Cycle)]
		if i > 0 {
			b.WriteString("\n")
		}
		lock := ""
		if e.Lock != "" {
			lock = " for " + e.Lock
		}
		fmt.Fprintf(&b, "Transaction %s waits%s at node %s; blocked by transaction %s.", e.From, lock, e.Node, e.To)
	}
	return b.String()
}

// Nodes names the nodes of the cycle, in order of first appearance.
func (d Deadlock) Nodes() []string {
	var out []string
	for _, e := range d.Cycle {
		if !slices.Contains(out, e.Node) {
			out = append(out, e.Node)
		}
	}
	return out
}
