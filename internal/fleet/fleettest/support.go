package fleettest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/google/go-cmp/cmp"
)

// What the executors' tests (internal/switches, internal/expand) share
// beside the fake fleet: a cluster to start from, a recorder of their
// NOTICEs, an in-memory journal and the checks of what they did.

// ErrBoom is the error a test makes a step fail with.
var ErrBoom = errors.New("boom")

// Hosts are hosts of the given names at 10.0.0.1, 10.0.0.2, …, all run by
// user pg.
func Hosts(names ...string) []cluster.Host {
	out := make([]cluster.Host, len(names))
	for i, h := range names {
		out[i] = cluster.Host{Name: h, User: "pg", Address: fmt.Sprintf("10.0.0.%d", i+1), AgentPort: 5430, PGHome: "/pg", ADBHome: "/adb"}
	}
	return out
}

// AddNode adds node name of type t on host to s, its port and id after
// the nodes before it, in the cluster (initialised and curable) when
// joined.
func AddNode(s *cluster.State, name, host string, t cluster.NodeType, master, sync string, joined bool) {
	s.Nodes = append(s.Nodes, cluster.Node{ID: int64(len(s.Nodes) + 1), Name: name, Host: host, Type: t, Master: master, Port: 5432 + len(s.Nodes),
		SyncState: sync, Path: "/data/" + name, Initialized: joined, InCluster: joined, Zone: cluster.DefaultZone, AllowCure: joined, CureStatus: "normal"})
}

// CopyState is a copy of s whose nodes may be changed.
func CopyState(s *cluster.State) *cluster.State {
	c := *s
	c.Nodes = append([]cluster.Node(nil), s.Nodes...)
	return &c
}

// UpdateNodes applies p's node updates and deletions to s.
func UpdateNodes(s *cluster.State, p cluster.Plan) {
	for _, u := range p.UpdateNodes {
		for i, n := range s.Nodes {
			if n.Name == u.Name {
				s.Nodes[i] = u
			}
		}
	}
	s.Nodes = slices.DeleteFunc(s.Nodes, func(n cluster.Node) bool { return slices.Contains(p.DeleteNodes, n.Name) })
}

// NodeLine is node name of s as LIST NODE shows it (type, master,
// sync_state, initialized, incluster), "missing" when there is none.
func NodeLine(s *cluster.State, name string) string {
	n, ok := s.Node(name)
	if !ok {
		return "missing"
	}
	return fmt.Sprintf("%s %s %s %v %v", n.Type, n.Master, n.SyncState, n.Initialized, n.InCluster)
}

// Notes records the NOTICEs and WARNINGs an executor sends.
type Notes struct{ Lines []string }

// Notice implements the executors' Progress.
func (n *Notes) Notice(sev, msg string) { n.Lines = append(n.Lines, sev+": "+msg) }

// Has checks that each of want is part of a notice.
func (n *Notes) Has(t testing.TB, want ...string) {
	t.Helper()
	all := strings.Join(n.Lines, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("notices lack %q:\n%s", w, all)
		}
	}
}

// Journal is an in-memory journal: its entries' commands by id, and its
// rows as written.
type Journal struct {
	entries map[int64]string
	Rows    []string
}

// Entry gives *id a new entry for command unless it has one, and returns
// the command of entry *id.
func (j *Journal) Entry(id *int64, command string) string {
	if j.entries == nil {
		j.entries = map[int64]string{}
	}
	if *id == 0 {
		*id = int64(len(j.entries) + 1)
		j.entries[*id] = command
	}
	return j.entries[*id]
}

// Diff checks a list of what happened (steps, journal rows) against want.
func Diff(t testing.TB, what string, want, got []string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// Each checks line(name) against want[name] for every name of want.
func Each(t testing.TB, what string, want map[string]string, line func(string) string) {
	t.Helper()
	for name, w := range want {
		if got := line(name); got != w {
			t.Errorf("%s %s = %q, want %q", what, name, got, w)
		}
	}
}

// Join concatenates lists of steps.
func Join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
