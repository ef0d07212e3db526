package switches

import (
	"context"
	"slices"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// A SWITCHOVER without FORCE may wait up to an hour (maxTrys) for its
// master's clients, holding the cluster lock all along: the doctor would
// leave a dead master of another group down for as long. While it only
// waits it declares what it is about to touch (its scope: its replication
// group, and the coordinators and gtmcoord master whose sessions it counts
// or whose writes it holds) to a Waiter, which lets the doctor act on
// nodes outside it meanwhile. Before it goes on it closes the scope,
// waits for those actions to end, reads the catalog again — the steps
// after the wait re-point the coordinators from it, which must not undo a
// failover the doctor made meanwhile — and checks that nothing it decided
// on changed.
//
// The doctor's re-point of the coordinators (RefreshCoordinators) cannot
// deadlock with the holds: a hold has, while it waits, only read the
// catalogs and taken EXCLUSIVE locks on the distributed tables (their
// foreign partitions with them); the re-point touches the adb tables and
// the foreign servers, never a distributed table.

// Waiter lets other actions run on nodes outside a declared scope while
// the command holding the cluster lock only waits.
type Waiter interface {
	// Open declares scope; it does nothing when a scope is open already.
	Open(scope []string)
	// Close ends the scope and returns once every action let in under it
	// ended: how many were let in since Open (0 when none was open).
	Close() int
}

// Group is the replication group of node: its root master and every node
// below it (just node when it is not in s).
func Group(s *cluster.State, node string) []string {
	n, ok := s.Node(node)
	if !ok {
		return []string{node}
	}
	root := cluster.Root(s, n).Name
	var out []string
	for _, m := range s.Nodes {
		if cluster.Root(s, m).Name == root {
			out = append(out, m.Name)
		}
	}
	return out
}

// waitScope is what a switchover of master old may not have touched by
// others while it waits: its group and q's nodes.
func waitScope(s *cluster.State, old string, q cluster.Quiet) []string {
	out := Group(s, old)
	for _, n := range slices.Concat(q.Count, q.Hold) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// openWait declares the run's scope to the Waiter, when there is one.
func (r *switchRun) openWait(scope []string) {
	if r.x.Guests != nil {
		r.x.Guests.Open(scope)
	}
}

// endWait ends the scope, if any, waiting for the actions let in under it.
func (r *switchRun) endWait() {
	if r.x.Guests != nil {
		r.x.Guests.Close()
	}
}

// closeWait ends the scope, waiting for the actions let in under it; when
// there were some, the catalog is read again and checked (recheck).
func (r *switchRun) closeWait(ctx context.Context, old string, q cluster.Quiet) (guests bool, err error) {
	if r.x.Guests == nil || r.x.Guests.Close() == 0 {
		return false, nil
	}
	return true, r.recheck(ctx, old, q)
}

// recheck reads the catalog again after the doctor acted during the wait
// and refuses the switch when anything it decided on changed: the master
// and its group (the candidate, its sync siblings, who follows), the
// nodes whose sessions are counted or writes held. The doctor is kept off
// all of them, so this is a guard, not a path.
func (r *switchRun) recheck(ctx context.Context, old string, q cluster.Quiet) error {
	sn, err := r.x.Catalog.Read(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	changed := ""
	g := Group(r.sn.State, old)
	if !slices.Equal(g, Group(sn.State, old)) {
		changed = "the group of " + old
	}
	for _, name := range g {
		a, _ := r.sn.State.Node(name)
		if b, _ := sn.State.Node(name); changed == "" && !sameRole(a, b) {
			changed = name
		}
	}
	if nq := cluster.SwitchoverQuiet(sn.State, old); changed == "" && (!slices.Equal(nq.Count, q.Count) || !slices.Equal(nq.Hold, q.Hold)) {
		changed = "the coordinators"
	}
	if changed != "" {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "%s changed while SWITCHOVER waited for the clients; nothing was switched", changed).
			WithHint("Run SWITCHOVER again.")
	}
	r.sn = sn
	return nil
}

// sameRole reports whether a and b are the same node in the same place
// of the cluster (allowcure aside: the switch itself changes it).
func sameRole(a, b cluster.Node) bool {
	return a.Name == b.Name && a.Type == b.Type && a.Master == b.Master && a.SyncState == b.SyncState &&
		a.InCluster == b.InCluster && a.Host == b.Host && a.Port == b.Port && a.Zone == b.Zone
}
