package expand

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// memCatalog is an in-memory Catalog: a snapshot, the journal's rows, and
// commits that can be made to fail.
type memCatalog struct {
	sn                Snapshot
	fleettest.Journal // rows: "command: status step"
	// fail makes a commit fail when its journal entry's "status step" is
	// listed; failOnce fails it
	// the first time only.
	fail, failOnce map[string]error
}

func newCatalog(s *cluster.State) *memCatalog {
	return &memCatalog{sn: Snapshot{Snapshot: switches.Snapshot{State: s}}, fail: map[string]error{}, failOnce: map[string]error{}}
}

func (c *memCatalog) Read(context.Context) (Snapshot, error) { return c.copy(), nil }

func (c *memCatalog) copy() Snapshot {
	out := c.sn
	out.State = fleettest.CopyState(c.sn.State)
	out.Expansions = append([]cluster.Expansion(nil), c.sn.Expansions...)
	out.Copies = append([]cluster.CoordinatorCopy(nil), c.sn.Copies...)
	return out
}

func (c *memCatalog) Commit(_ context.Context, j *Journal, decide func(*cluster.State) (cluster.GrowPlan, error)) (cluster.GrowPlan, error) {
	p, err := decide(c.copy().State)
	if err != nil {
		return p, err
	}
	if p.Journal.Status == "" {
		return p, fmt.Errorf("catalog change of %s without its journal row", j.Command)
	}
	key := p.Journal.Status + " " + p.Journal.Step
	if err := c.failOnce[key]; err != nil {
		delete(c.failOnce, key)
		return p, err
	}
	if err := c.fail[key]; err != nil {
		return p, err
	}
	c.apply(p.Plan)
	command := c.Entry(&j.ID, j.Command)
	c.Rows = append(c.Rows, fmt.Sprintf("%s: %s %s", command, p.Journal.Status, p.Journal.Step))
	return p, nil
}

func (c *memCatalog) apply(p cluster.Plan) {
	fleettest.UpdateNodes(c.sn.State, p)
	for _, e := range p.PutExpansions {
		c.sn.Expansions = append(dropExpansion(c.sn.Expansions, e.Dst), e)
	}
	for _, d := range p.DeleteExpansions {
		c.sn.Expansions = dropExpansion(c.sn.Expansions, d)
	}
	for _, e := range p.PutCoordinatorCopies {
		c.sn.Copies = append(dropCopy(c.sn.Copies, e.Node), e)
	}
	for _, d := range p.DeleteCoordinatorCopies {
		c.sn.Copies = dropCopy(c.sn.Copies, d)
	}
}

func dropExpansion(xs []cluster.Expansion, dst string) []cluster.Expansion {
	var out []cluster.Expansion
	for _, x := range xs {
		if x.Dst != dst {
			out = append(out, x)
		}
	}
	return out
}

func dropCopy(xs []cluster.CoordinatorCopy, node string) []cluster.CoordinatorCopy {
	var out []cluster.CoordinatorCopy
	for _, x := range xs {
		if x.Node != node {
			out = append(out, x)
		}
	}
	return out
}

// growth renders the expansions and copies: "dst<src phase slots", "node<source".
func (c *memCatalog) growth() []string {
	var out []string
	for _, x := range c.sn.Expansions {
		out = append(out, fmt.Sprintf("%s<%s %s %s", x.Dst, x.Src, x.Phase, cluster.SlotList(x.Slots)))
	}
	for _, x := range c.sn.Copies {
		out = append(out, fmt.Sprintf("%s<%s", x.Node, x.Source))
	}
	return out
}

// world is a running cluster of three hosts — gtmcoord master gc,
// coordinator master cn1, datanode master dn1 with sync slave dn1s — and
// nodes added after INIT ALL: datanode masters dn2, dn3, coordinator
// master cn2, datanode slave dn1a of dn1.
func world() *cluster.State {
	s := &cluster.State{Hosts: fleettest.Hosts("h1", "h2", "h3")}
	fleettest.AddNode(s, "gc", "h1", cluster.GtmcoordMaster, "", "", true)
	fleettest.AddNode(s, "cn1", "h2", cluster.CoordinatorMaster, "", "", true)
	fleettest.AddNode(s, "dn1", "h1", cluster.DatanodeMaster, "", "", true)
	fleettest.AddNode(s, "dn1s", "h2", cluster.DatanodeSlave, "dn1", cluster.Sync, true)
	fleettest.AddNode(s, "dn2", "h3", cluster.DatanodeMaster, "", "", false)
	fleettest.AddNode(s, "dn3", "h3", cluster.DatanodeMaster, "", "", false)
	fleettest.AddNode(s, "cn2", "h3", cluster.CoordinatorMaster, "", "", false)
	fleettest.AddNode(s, "dn1a", "h3", cluster.DatanodeSlave, "dn1", cluster.Async, false)
	return s
}

// rig is an Expander over a fake fleet and an in-memory catalog.
type rig struct {
	x   *Expander
	f   *fleettest.Fleet
	cat *memCatalog
	p   *fleettest.Notes
	// checked and prepared list the nodes Check and Prepare saw.
	checked  []string
	prepared int
}

func newRig(s *cluster.State) *rig {
	f := fleettest.New(s)
	f.DealSlots("dn1")
	f.Tables = []coord.Table{{Schema: "public", Name: "t"}}
	r := &rig{f: f, cat: newCatalog(s), p: &fleettest.Notes{}}
	r.x = &Expander{Fleet: f, Catalog: r.cat, Pause: time.Microsecond,
		Conf: func(Snapshot, cluster.Node) (fleet.Conf, error) {
			return fleet.Conf{Set: map[string]string{"port": "1"}}, nil
		},
		Check: func(_ context.Context, _ *cluster.State, n cluster.Node) error {
			r.checked = append(r.checked, n.Name)
			return nil
		},
		Prepare: func(context.Context, *cluster.State, Progress) error { r.prepared++; return nil },
	}
	return r
}

// copied puts the world in the state EXPAND dn1 TO each of dsts left:
// each dst initialised, a standby of dn1 at its position, its expansion
// copied.
func (r *rig) copied(dsts ...string) {
	for _, d := range dsts {
		for i, n := range r.cat.sn.State.Nodes {
			if n.Name == d {
				r.cat.sn.State.Nodes[i].Initialized = true
			}
		}
		r.f.Nodes[d] = &fleettest.Node{Running: true, InRecovery: true, LSN: 100, Parent: "dn1", Conf: map[string]string{}}
		r.cat.sn.Expansions = append(r.cat.sn.Expansions, cluster.Expansion{Dst: d, Src: "dn1", Phase: cluster.ExpansionCopied})
	}
}

func (r *rig) steps(t *testing.T, want ...string) {
	t.Helper()
	fleettest.Diff(t, "steps", want, r.f.StepList())
}

func (r *rig) journal(t *testing.T, want ...string) {
	t.Helper()
	fleettest.Diff(t, "journal", want, r.cat.Rows)
}

func (r *rig) nodes(t *testing.T, want map[string]string) {
	t.Helper()
	fleettest.Each(t, "node", want, func(name string) string { return fleettest.NodeLine(r.cat.sn.State, name) })
}

func (r *rig) growth(t *testing.T, want ...string) {
	t.Helper()
	fleettest.Diff(t, "expansions and copies", want, r.cat.growth())
}

// odd and even are the slots dn1 keeps and gives when one destination
// takes half of its 64.
func slotsWhere(f func(int) bool) []int {
	var out []int
	for k := 0; k < coord.Slots; k++ {
		if f(k) {
			out = append(out, k)
		}
	}
	return out
}

var (
	odd  = cluster.SlotList(slotsWhere(func(k int) bool { return k%2 == 1 }))
	even = cluster.SlotList(slotsWhere(func(k int) bool { return k%2 == 0 }))
)

// refresh is what re-configuring the coordinators in the cluster issues.
func refresh(cs ...string) []string {
	var out []string
	for _, c := range cs {
		out = append(out, "coordinator "+c)
	}
	return out
}
