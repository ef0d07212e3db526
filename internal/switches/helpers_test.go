package switches

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/google/go-cmp/cmp"
)

// memCatalog is an in-memory Catalog: a snapshot, the journal's rows, and
// commits that can be made to fail by step name.
type memCatalog struct {
	sn      Snapshot
	entries map[int64]string // id → command
	rows    []string         // "command status step", as written
	// fail makes a commit fail when its "status step" is listed.
	fail map[string]error
}

func newCatalog(s *cluster.State) *memCatalog {
	return &memCatalog{sn: Snapshot{State: s}, entries: map[int64]string{}, fail: map[string]error{}}
}

func (c *memCatalog) Read(context.Context) (Snapshot, error) { return c.copy(), nil }

func (c *memCatalog) copy() Snapshot {
	s := *c.sn.State
	s.Nodes = append([]cluster.Node(nil), s.Nodes...)
	return Snapshot{State: &s, Params: append([]cluster.Param(nil), c.sn.Params...), HBA: c.sn.HBA}
}

func (c *memCatalog) Commit(_ context.Context, j *Journal, step Step, decide func(Snapshot) (cluster.Plan, error)) error {
	if err := c.fail[step.Status+" "+step.Name]; err != nil {
		return err
	}
	if decide != nil {
		plan, err := decide(c.copy())
		if err != nil {
			return err
		}
		c.apply(plan)
	}
	if j.ID == 0 {
		j.ID = int64(len(c.entries) + 1)
		c.entries[j.ID] = j.Command
	}
	c.rows = append(c.rows, strings.TrimSpace(fmt.Sprintf("%s %s %s", c.entries[j.ID], step.Status, step.Name)))
	return nil
}

func (c *memCatalog) apply(p cluster.Plan) {
	for _, u := range p.UpdateNodes {
		for i, n := range c.sn.State.Nodes {
			if n.Name == u.Name {
				c.sn.State.Nodes[i] = u
			}
		}
	}
	for _, d := range p.DeleteParams {
		for i, q := range c.sn.Params {
			if q.Node == d.Node && q.Type == d.Type && q.Key == d.Key {
				c.sn.Params = append(c.sn.Params[:i], c.sn.Params[i+1:]...)
				break
			}
		}
	}
	c.sn.Params = append(c.sn.Params, p.PutParams...)
}

// node is a line of the node table as LIST NODE (name, type, mastername,
// sync_state, initialized, incluster, allowcure) shows it.
func (c *memCatalog) node(name string) string {
	n, ok := c.sn.State.Node(name)
	if !ok {
		return "missing"
	}
	return fmt.Sprintf("%s %s %s %v %v %v", n.Type, n.Master, n.SyncState, n.Initialized, n.InCluster, n.AllowCure)
}

// notes records a switch's NOTICEs and WARNINGs.
type notes struct{ lines []string }

func (n *notes) Notice(sev, msg string) { n.lines = append(n.lines, sev+": "+msg) }

func (n *notes) has(t *testing.T, want ...string) {
	t.Helper()
	all := strings.Join(n.lines, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("notices lack %q:\n%s", w, all)
		}
	}
}

// world is a cluster of three hosts: gtmcoord master gc, coordinator
// master cn1, datanode master dn1 with sync slave dn1s and potential slave
// dn1p, all initialised and in the cluster.
func world() *cluster.State {
	s := &cluster.State{}
	for i, h := range []string{"h1", "h2", "h3"} {
		s.Hosts = append(s.Hosts, cluster.Host{Name: h, User: "pg", Address: fmt.Sprintf("10.0.0.%d", i+1), AgentPort: 5430, PGHome: "/pg", ADBHome: "/adb"})
	}
	add := func(name, host string, t cluster.NodeType, master, sync string) {
		s.Nodes = append(s.Nodes, cluster.Node{ID: int64(len(s.Nodes) + 1), Name: name, Host: host, Type: t, Master: master, Port: 5432 + len(s.Nodes),
			SyncState: sync, Path: "/data/" + name, Initialized: true, InCluster: true, Zone: cluster.DefaultZone, AllowCure: true, CureStatus: "normal"})
	}
	add("gc", "h1", cluster.GtmcoordMaster, "", "")
	add("cn1", "h2", cluster.CoordinatorMaster, "", "")
	add("dn1", "h1", cluster.DatanodeMaster, "", "")
	add("dn1s", "h2", cluster.DatanodeSlave, "dn1", cluster.Sync)
	add("dn1p", "h3", cluster.DatanodeSlave, "dn1", cluster.Potential)
	return s
}

// rig is a Switches over a fake fleet and an in-memory catalog.
type rig struct {
	x   *Switches
	f   *fleettest.Fleet
	cat *memCatalog
	p   *notes
}

func newRig(s *cluster.State) *rig {
	f := fleettest.New(s)
	cat := newCatalog(s)
	x := &Switches{Fleet: f, Catalog: cat, Retry: 1,
		Conf: func(sn Snapshot, n cluster.Node) (fleet.Conf, error) {
			return fleet.Conf{Set: map[string]string{"port": "1"}}, nil
		}}
	return &rig{x: x, f: f, cat: cat, p: &notes{}}
}

func (r *rig) steps(t *testing.T, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, r.f.StepList()); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
}

func (r *rig) journal(t *testing.T, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, r.cat.rows); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
}

func (r *rig) nodes(t *testing.T, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got := r.cat.node(name); got != w {
			t.Errorf("node %s = %q, want %q", name, got, w)
		}
	}
}

var errBoom = errors.New("boom")

// coordinatorSteps are what re-pointing gc and cn1 after a switch from old
// to newMaster issues ("" old: no rename).
func coordinatorSteps(old, newMaster string) []string {
	var out []string
	for _, c := range []string{"gc", "cn1"} {
		if old != "" {
			out = append(out, fmt.Sprintf("rename %s to %s on %s", old, newMaster, c))
		}
		out = append(out, "coordinator "+c)
	}
	return out
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
