package switches

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

// memCatalog is an in-memory Catalog: a snapshot, the journal, and
// commits that can be made to fail by step name.
type memCatalog struct {
	sn                Snapshot
	fleettest.Journal // rows: "command status step"
	// fail makes a commit fail when its "status step" is listed.
	fail map[string]error
}

func newCatalog(s *cluster.State) *memCatalog {
	return &memCatalog{sn: Snapshot{State: s}, fail: map[string]error{}}
}

func (c *memCatalog) Read(context.Context) (Snapshot, error) { return c.copy(), nil }

func (c *memCatalog) copy() Snapshot {
	return Snapshot{State: fleettest.CopyState(c.sn.State), Params: append([]cluster.Param(nil), c.sn.Params...), HBA: c.sn.HBA}
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
	command := c.Entry(&j.ID, j.Command)
	c.Rows = append(c.Rows, strings.TrimSpace(fmt.Sprintf("%s %s %s", command, step.Status, step.Name)))
	return nil
}

func (c *memCatalog) apply(p cluster.Plan) {
	fleettest.UpdateNodes(c.sn.State, p)
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
	return fmt.Sprintf("%s %v", fleettest.NodeLine(c.sn.State, name), n.AllowCure)
}

// world is a cluster of three hosts: gtmcoord master gc, coordinator
// master cn1, datanode master dn1 with sync slave dn1s and potential slave
// dn1p, all initialised and in the cluster.
func world() *cluster.State {
	s := &cluster.State{Hosts: fleettest.Hosts("h1", "h2", "h3")}
	fleettest.AddNode(s, "gc", "h1", cluster.GtmcoordMaster, "", "", true)
	fleettest.AddNode(s, "cn1", "h2", cluster.CoordinatorMaster, "", "", true)
	fleettest.AddNode(s, "dn1", "h1", cluster.DatanodeMaster, "", "", true)
	fleettest.AddNode(s, "dn1s", "h2", cluster.DatanodeSlave, "dn1", cluster.Sync, true)
	fleettest.AddNode(s, "dn1p", "h3", cluster.DatanodeSlave, "dn1", cluster.Potential, true)
	return s
}

// rig is a Switches over a fake fleet and an in-memory catalog.
type rig struct {
	x   *Switches
	f   *fleettest.Fleet
	cat *memCatalog
	p   *fleettest.Notes
}

func newRig(s *cluster.State) *rig {
	f := fleettest.New(s)
	cat := newCatalog(s)
	x := &Switches{Fleet: f, Catalog: cat, Retry: 1,
		Conf: func(sn Snapshot, n cluster.Node) (fleet.Conf, error) {
			return fleet.Conf{Set: map[string]string{"port": "1"}}, nil
		}}
	return &rig{x: x, f: f, cat: cat, p: &fleettest.Notes{}}
}

func (r *rig) steps(t *testing.T, want ...string) {
	t.Helper()
	fleettest.Diff(t, "steps", canonHolds(want), canonHolds(r.f.StepList()))
}

func (r *rig) journal(t *testing.T, want ...string) {
	t.Helper()
	fleettest.Diff(t, "journal", want, r.cat.Rows)
}

func (r *rig) nodes(t *testing.T, want map[string]string) {
	t.Helper()
	fleettest.Each(t, "node", want, r.cat.node)
}

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
