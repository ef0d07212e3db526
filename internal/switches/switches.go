// Package switches executes the switches of a replication group: FAILOVER
// (promote the slave holding every acknowledged commit after fencing the
// master), SWITCHOVER (a planned swap without loss) and REWIND (bring a
// node that was kicked out back as a slave), for the statements and the
// doctor alike.
//
// The decisions are cluster's (pure); what is done to the nodes goes
// through a fleet.Fleet; every change of the catalog is one transaction of
// a narrow Catalog together with the journal row that says which step made
// it. So every path — the refusals, the reverts, a promotion whose outcome
// is unknown — can be driven against fleettest's fake and an in-memory
// catalog.
package switches

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/params"
)

// Progress receives the NOTICEs and WARNINGs of a switch as they happen
// (a session's client, or the manager's log for the doctor).
type Progress interface {
	Notice(severity, message string)
}

// Snapshot is what a switch reads of the catalog.
type Snapshot struct {
	State  *cluster.State
	Params []cluster.Param
	HBA    []cluster.HBARule
}

// Journal is one entry of the operation journal; ID is 0 until its first
// row is written.
type Journal struct {
	ID      int64
	Command string
}

// Step is a journal row: the entry's status ("running", "done", "failed"),
// the step it is at and a detail.
type Step struct {
	Status, Name, Detail string
}

// Catalog is the part of the manager's catalog the switches use.
type Catalog interface {
	// Read returns a consistent snapshot.
	Read(ctx context.Context) (Snapshot, error)
	// Commit writes step into journal j (a new entry when j.ID is 0,
	// whose ID it sets) and, when decide is not nil, the plan decide
	// makes from a fresh snapshot — in one transaction, which runs even
	// when ctx was cancelled: it records what was done to the nodes.
	Commit(ctx context.Context, j *Journal, step Step, decide func(Snapshot) (cluster.Plan, error)) error
}

// Switches runs the switches over a fleet and a catalog.
type Switches struct {
	Fleet   fleet.Fleet
	Catalog Catalog
	// Conf is the configuration a node's data directory is given (the
	// manager's parameters, the DBA's SET rows, pg_hba.conf lines); REWIND
	// writes it again after pg_rewind copied the source's files.
	Conf func(Snapshot, cluster.Node) (fleet.Conf, error)
	// Retry is the pause between two tries of the catalog change that
	// must follow a promotion; zero means a second.
	Retry time.Duration
	// Second is how long one of SWITCHOVER's maxTrys seconds waits for
	// the clients' transactions to end; zero means a second (tests make
	// it shorter).
	Second time.Duration
	// Guests, when set, lets the doctor act on other nodes while a
	// SWITCHOVER only waits for its master's clients
	// (switchover_wait.go); nil keeps everything off until it ends.
	Guests Waiter
	// AfterStep, when set, is called after each step of a switch that
	// succeeded, with the switch's journal command (the manager's crash
	// test hook, --crash-at; nil otherwise).
	AfterStep func(command string, st cluster.SwitchStep)
}

// Result is the row a switch answers: the node that is now what the
// statement asked for, and what happened.
type Result struct {
	Node        string
	Description string
}

// notices shows a plan's notices.
func notices(p Progress, ns []cluster.Notice) {
	for _, n := range ns {
		p.Notice(n.Severity, n.Message)
	}
}

// note writes a journal row alone. A journal that cannot be written is
// never a reason to stop a switch half-way (the Catalog logs it).
func (x *Switches) note(ctx context.Context, j *Journal, status, step, detail string) {
	_ = x.Catalog.Commit(ctx, j, Step{status, step, detail}, nil)
}

// commitRetry is Commit tried a few times: after a promotion the catalog
// must follow, or a later START ALL would start the old master as a second
// primary.
func (x *Switches) commitRetry(ctx context.Context, j *Journal, step Step, decide func(Snapshot) (cluster.Plan, error)) error {
	pause := x.Retry
	if pause == 0 {
		pause = time.Second
	}
	var err error
	for try := 0; try < 5; try++ {
		if err = x.Catalog.Commit(ctx, j, step, decide); err == nil {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
	}
	return err
}

// retyped is the catalog side of a switch from old to newMaster: plan's
// rows, with the parameter rows of both nodes following their new types.
func retyped(sn Snapshot, plan cluster.Plan, old, newMaster string) cluster.Plan {
	for _, n := range plan.UpdateNodes {
		if n.Name == old || n.Name == newMaster {
			r := params.Retype(sn.Params, n.Name, n.Type)
			plan.PutParams = append(plan.PutParams, r.PutParams...)
			plan.DeleteParams = append(plan.DeleteParams, r.DeleteParams...)
		}
	}
	return plan
}

// allowCure is the plan letting the doctor act on node, or not.
func allowCure(node string, allow bool) func(Snapshot) (cluster.Plan, error) {
	return func(sn Snapshot) (cluster.Plan, error) { return cluster.PlanAllowCure(sn.State, allow, node), nil }
}

// probeSlaves looks, in parallel, at every direct slave of master.
func (x *Switches) probeSlaves(ctx context.Context, s *cluster.State, master string) map[string]cluster.Probe {
	kids := s.Children(master)
	probes := make([]cluster.Probe, len(kids))
	var wg sync.WaitGroup
	for i, n := range kids {
		m, err := fleet.At(s, n)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			probes[i] = x.Fleet.Probe(ctx, m)
		}()
	}
	wg.Wait()
	out := map[string]cluster.Probe{}
	for i, n := range kids {
		out[n.Name] = probes[i]
	}
	return out
}

// SyncNames writes node's synchronous_standby_names from the catalog and
// checks pg_stat_replication agrees (fleet.SetSyncNames); slaves not
// streaming are named in a NOTICE.
func SyncNames(ctx context.Context, f fleet.Fleet, s *cluster.State, node cluster.Node, ok func(cluster.Node) bool, waitAll bool, p Progress) error {
	m, err := fleet.At(s, node)
	if err != nil {
		return err
	}
	names, want := cluster.SyncTarget(s, node, ok)
	absent, err := f.SetSyncNames(ctx, m, names, want, waitAll)
	if len(absent) > 0 {
		p.Notice("NOTICE", fmt.Sprintf("%s not streaming from %s; the new state applies when it reconnects",
			strings.Join(absent, ", "), node.Name))
	}
	return err
}

// RefreshCoordinators tells every coordinator in the cluster where the
// datanode masters are now. With old set, the foreign server of the
// replaced datanode master old is renamed to newMaster first, not dropped,
// so that foreign tables built on it keep working.
func RefreshCoordinators(ctx context.Context, f fleet.Fleet, s *cluster.State, old, newMaster string, p Progress) {
	refreshCoordinators(ctx, f, s, old, newMaster, p, nil)
}

// refreshCoordinators is RefreshCoordinators but for the coordinators in
// done.
func refreshCoordinators(ctx context.Context, f fleet.Fleet, s *cluster.State, old, newMaster string, p Progress, done map[string]bool) {
	for _, c := range s.Nodes {
		if !coord.IsCoordinator(c) || !c.InCluster || done[c.Name] {
			continue
		}
		m, err := fleet.At(s, c)
		if err == nil && old != "" {
			err = f.RenameServer(ctx, m, old, newMaster)
		}
		if err == nil {
			err = f.ConfigureCoordinator(ctx, s, m, inCluster)
		}
		if err != nil {
			p.Notice("WARNING", fmt.Sprintf("could not update %s: %s", cluster.Describe(c), err))
		}
	}
}

// inCluster selects the nodes in the cluster.
func inCluster(n cluster.Node) bool { return n.InCluster }
