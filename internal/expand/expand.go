// Package expand executes what grows the cluster: EXPAND (a datanode
// master copied to a new one, ACTIVATE moving slots to it, CLEAN emptying
// what each side no longer owns), APPEND (a node joining the running
// cluster; a coordinator copy waiting for APPEND ACTIVATE) and REMOVE —
// and it makes data directories for INIT ALL as for them (Maker).
//
// The decisions are cluster's (PlanExpandCopy, PlanExpandActivate,
// PlanExpandClean, PlanAppend, PlanAppendActivate: GrowPlans of typed
// steps); what is done to the nodes goes through a fleet.Fleet; every
// state change (copied, activated, cleaned, joined) is one transaction of
// a narrow Catalog together with its journal row. So every path — a base
// backup that fails, a promotion whose outcome is unknown, a coordinator
// that does not answer while the others hold their locks — can be driven
// against fleettest's fake and an in-memory catalog.
package expand

import (
	"context"
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// Progress receives the NOTICEs and WARNINGs as they happen.
type Progress = switches.Progress

// Journal is one command's entry of the operation journal; ID is 0 until
// its first row is written.
type Journal = switches.Journal

// Snapshot is what the growing commands read of the catalog.
type Snapshot struct {
	switches.Snapshot
	// Expansions and Copies are the state kept between statements
	// (mgr_expansion, mgr_append).
	Expansions []cluster.Expansion
	Copies     []cluster.CoordinatorCopy
	// Journal are the EXPAND commands' journal entries, in order, from
	// the first the manager's end interrupted (cluster.InterruptedFor);
	// none when no EXPAND was ever interrupted.
	Journal []cluster.JournalRecord
}

// Catalog is the part of the manager's catalog the growing commands use.
type Catalog interface {
	// Read returns a consistent snapshot.
	Read(ctx context.Context) (Snapshot, error)
	// Commit writes, in one transaction, the rows of the GrowPlan decide
	// makes from a fresh node table and its Journal entry into journal j
	// (a new entry when j.ID is 0, whose ID it sets). A plan without its
	// journal row (Status "") is refused: every state change says which
	// step made it. It runs even when ctx was cancelled: it records what
	// was done to the nodes.
	Commit(ctx context.Context, j *Journal, decide func(*cluster.State) (cluster.GrowPlan, error)) (cluster.GrowPlan, error)
}

// Expander runs the growing commands over a fleet and a catalog.
type Expander struct {
	Fleet   fleet.Fleet
	Catalog Catalog
	// Conf is the configuration a new node's data directory is given.
	Conf func(Snapshot, cluster.Node) (fleet.Conf, error)
	// Check refuses, before anything is touched, a node that cannot be
	// made: its agent down, its directory not empty, its port taken.
	Check func(ctx context.Context, s *cluster.State, n cluster.Node) error
	// Prepare makes the running nodes ready for a node that joins: they
	// trust its host, the DBA's password file knows it.
	Prepare func(ctx context.Context, s *cluster.State, p Progress) error
	// Pause is the wait between two tries of dropping a copy's
	// replication slot, or of the catalog write that must follow a
	// promotion; zero means half a second.
	Pause time.Duration
	// AfterStep, when set, hears of each step done, with its journal
	// command: the crash test hook (mgr/crash.go).
	AfterStep func(command string, st cluster.GrowStep)
}

func (x *Expander) pause() time.Duration {
	if x.Pause == 0 {
		return 500 * time.Millisecond
	}
	return x.Pause
}

// Row is a result row: nodename, status, description.
type Row struct {
	Node        string
	OK          bool
	Description string
}

// journal is one command's journal entry. A state change writes its rows
// and the entry in one catalog transaction (commit), so the journal never
// tells of a state the catalog does not hold, nor the reverse.
type journal struct {
	cat    Catalog
	j      Journal
	status string // as last written
}

// open starts command's journal entry.
func (x *Expander) open(ctx context.Context, command string) *journal {
	j := &journal{cat: x.Catalog, j: Journal{Command: command}}
	j.note(ctx, "running", "start", "")
	return j
}

// note updates the entry alone: a failure, the end. A journal that
// cannot be written is never a reason to stop (the Catalog logs it).
func (j *journal) note(ctx context.Context, status, step, detail string) {
	entry := cluster.JournalEntry{Status: status, Step: step, Detail: detail}
	if _, err := j.cat.Commit(ctx, &j.j, func(*cluster.State) (cluster.GrowPlan, error) {
		return cluster.GrowPlan{Journal: entry}, nil
	}); err == nil {
		j.status = status
	}
}

// end closes the entry, unless the last state change did; a failure
// names the step it happened at.
func (j *journal) end(ctx context.Context, step string, err error) {
	switch {
	case err != nil:
		j.note(ctx, "failed", step, err.Error())
	case j.status != "done":
		j.note(ctx, "done", "end", "")
	}
}

// commit writes the state a command reached (decide runs inside the
// transaction on a fresh node table) and shows its notices.
func (j *journal) commit(ctx context.Context, p Progress, decide func(*cluster.State) (cluster.GrowPlan, error)) (cluster.GrowPlan, error) {
	plan, err := j.cat.Commit(ctx, &j.j, decide)
	if err != nil {
		return plan, err
	}
	j.status = plan.Journal.Status
	for _, n := range plan.Notices {
		p.Notice(n.Severity, n.Message)
	}
	return plan, nil
}

// member resolves node name of sn with its host.
func member(s *cluster.State, name string) (fleet.Member, error) {
	return fleet.Of(s, name)
}

// reachable resolves every node the steps name, so that a plan naming a
// node whose host is unknown is refused before it starts.
func reachable(s *cluster.State, steps []cluster.GrowStep) error {
	for _, st := range steps {
		for _, name := range []string{st.Node, st.From} {
			if n, ok := s.Node(name); ok {
				if _, err := fleet.At(s, n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// coordinators lists the coordinators that route to datanodes: the
// gtmcoord master and the coordinator masters in the cluster.
func coordinators(s *cluster.State) []cluster.Node {
	var out []cluster.Node
	for _, n := range s.Nodes {
		if coord.IsCoordinator(n) && n.InCluster {
			out = append(out, n)
		}
	}
	return out
}

// firstCoordinator is the coordinator the slot map and the distributed
// tables are read from.
func firstCoordinator(s *cluster.State) (fleet.Member, error) {
	cns := coordinators(s)
	if len(cns) == 0 {
		return fleet.Member{}, fmt.Errorf("no coordinator in the cluster")
	}
	return fleet.At(s, cns[0])
}

// inCluster selects the nodes in the cluster.
func inCluster(n cluster.Node) bool { return n.InCluster }
