package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Probe is what the manager saw of a slave when it looked, just before a
// switch: whether it answered, whether it is a standby, and how much WAL it
// has (received and flushed; what a promotion replays).
type Probe struct {
	Reachable  bool
	InRecovery bool
	LSN        uint64
}

// ParseLSN reads PostgreSQL's "X/Y" LSN text.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	return h<<32 | l, nil
}

// FormatLSN writes an LSN as PostgreSQL does.
func FormatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, lsn&0xffffffff) }

// Candidate is a failover decision: the slave to promote and the running
// slaves that will follow it.
type Candidate struct {
	Name      string
	LSN       uint64
	Followers []string // other running direct slaves of the old master
	Lost      []string // direct slaves that did not answer (they follow later, by REWIND)
	Notices   []Notice
}

// ChooseCandidate picks the slave to promote when master fails (reference
// §4.11.1 steps 3–7), from the probes of its direct slaves.
//
// The rule that keeps acknowledged commits: with synchronous_standby_names
// = 'FIRST n (sync…, potential…)', a commit is acknowledged once the acting
// synchronous standbys have flushed it, and a potential slave becomes an
// acting one as soon as a sync one drops out. So without FORCE every sync
// and potential slave must answer (the one holding the last acknowledged
// commits could be any of them), and the candidate is the running slave
// with the most WAL — it has everything any of them has. AntDB also
// requires the candidate to be a sync slave; an async slave with at least
// as much WAL loses nothing either, so adbmgr takes the most advanced one
// and prefers sync, then potential, then the master's zone, on a tie.
//
// With FORCE, unanswered slaves are only warned about: commits acknowledged
// by them alone are lost. to, when set, names the slave to promote; without
// FORCE it must be as advanced as the best.
func ChooseCandidate(s *State, master, to string, force bool, probes map[string]Probe) (Candidate, error) {
	var c Candidate
	var running, syncish []Node
	for _, n := range s.Children(master) {
		if !n.InCluster {
			continue
		}
		p := probes[n.Name]
		if n.SyncState == Sync || n.SyncState == Potential {
			syncish = append(syncish, n)
		}
		if p.Reachable && p.InRecovery && p.LSN > 0 {
			running = append(running, n)
		} else {
			c.Lost = append(c.Lost, n.Name)
		}
	}
	if len(running) == 0 {
		return c, pgerror.New(pgerror.ObjectNotInPrereqState, "Can't find any slave node that can be promoted").
			WithHint("No slave of %s answered as a standby; MONITOR HA shows them.", master)
	}
	if !force {
		if len(syncish) == 0 {
			return c, pgerror.New(pgerror.ObjectNotInPrereqState, "Can't find a Synchronous standby node, Abort switching to avoid data loss").
				WithHint("Every slave of %s is async: commits were acknowledged without them. Use FORCE to accept losing them.", master)
		}
		if err := syncRefusal(s, master, "", probes); err != nil {
			return c, err
		}
	} else if len(c.Lost) > 0 {
		c.Notices = append(c.Notices, warning("There are some slave nodes failed, force switch may cause data loss: %s", strings.Join(c.Lost, ", ")))
	}
	rank := func(n Node) int {
		switch n.SyncState {
		case Sync:
			return 0
		case Potential:
			return 1
		}
		return 2
	}
	m, _ := s.Node(master)
	sort.SliceStable(running, func(i, j int) bool {
		a, b := probes[running[i].Name].LSN, probes[running[j].Name].LSN
		if a != b {
			return a > b
		}
		if ra, rb := rank(running[i]), rank(running[j]); ra != rb {
			return ra < rb
		}
		// Last, the master's zone: its slaves there stay sync of the new
		// master, those of another zone async (RewoundSyncState).
		return running[i].Zone == m.Zone && running[j].Zone != m.Zone
	})
	best := running[0]
	if to != "" {
		found := false
		for _, n := range running {
			if n.Name == to {
				best, found = n, true
			}
		}
		if !found {
			return c, pgerror.New(pgerror.ObjectNotInPrereqState, `"%s" is not a running slave of %s`, to, master).
				WithHint("FAILOVER … TO names a direct slave that answers as a standby.")
		}
		if !force && probes[best.Name].LSN < probes[running[0].Name].LSN {
			return c, pgerror.New(pgerror.ObjectNotInPrereqState,
				"candidate %s is behind %s (%s < %s), abort switching to avoid data loss", best.Name, running[0].Name,
				FormatLSN(probes[best.Name].LSN), FormatLSN(probes[running[0].Name].LSN)).
				WithHint("Fail over to the most advanced slave, or use FORCE.")
		}
	}
	c.Name, c.LSN = best.Name, probes[best.Name].LSN
	for _, n := range running {
		if n.Name != best.Name {
			c.Followers = append(c.Followers, n.Name)
		}
	}
	c.Notices = append(c.Notices, notice("%s have the best wal lsn, choose it as a candidate for promotion", best.Name))
	return c, nil
}

// PlanFailover is the catalog side of a failover from old to newMaster
// (reference §4.11.1 steps 16–17): the new master takes the master type;
// the old master's other direct slaves follow it with their sync states
// (a potential one becomes sync if no sync one is left); the old master is
// kicked out — a slave of the new master, not initialised, not in the
// cluster — until REWIND brings it back. Slaves in lost (they did not
// answer, or are ahead of the new master and cannot follow it) leave the
// cluster too, async, until REWIND: listed as sync they would make every
// commit on the new master wait.
func PlanFailover(s *State, old, newMaster string, lost ...string) Plan {
	p, stepUp := failoverRows(s, old, newMaster, lost...)
	o, _ := s.Node(old)
	p.Notices = append(stepUp, notice("%s has been kicked out of the cluster; REWIND %s SLAVE %s brings it back as a slave of %s",
		old, strings.ToUpper(string(o.Type.Family())), old, newMaster))
	return p
}

// failoverRows is PlanFailover's rows, with the notices of the potential
// slaves that step up to sync.
func failoverRows(s *State, old, newMaster string, lost ...string) (Plan, []Notice) {
	var p Plan
	var stepUp []Notice
	o, _ := s.Node(old)
	n, _ := s.Node(newMaster)
	// Old master first: only one gtmcoord master may exist at any moment.
	o.Type = TypeOf(o.Type.Family(), false)
	o.Master, o.SyncState = newMaster, Async
	o.Initialized, o.InCluster, o.AllowCure, o.CureStatus = false, false, false, "normal"
	p.UpdateNodes = append(p.UpdateNodes, o)
	n.Type = TypeOf(n.Type.Family(), true)
	n.Master, n.SyncState, n.CureStatus = "", NoSync, "normal"
	p.UpdateNodes = append(p.UpdateNodes, n)
	hasSync := false
	var siblings []Node
	for _, c := range s.Children(old) {
		if c.Name == newMaster {
			continue
		}
		c.Master = newMaster
		if slices.Contains(lost, c.Name) {
			c = TakenOut(c)
			c.SyncState, c.InCluster, c.Initialized, c.AllowCure = Async, false, false, false
		}
		if c.SyncState == Sync && c.InCluster {
			hasSync = true
		}
		siblings = append(siblings, c)
	}
	for i := range siblings {
		if !hasSync && siblings[i].SyncState == Potential && siblings[i].InCluster {
			siblings[i].SyncState = Sync
			hasSync = true
			stepUp = append(stepUp, notice(`make potential node %s as synchronous node`, describe(siblings[i].Type, siblings[i].Name)))
		}
	}
	p.UpdateNodes = append(p.UpdateNodes, siblings...)
	return p, stepUp
}

// RewoundSyncState is the sync state a node gets when REWIND brings it back
// under master: sync when the master has no sync slave, else potential
// (reference §4.13 step 10 and the spec's example) — but async for a
// cascaded slave, for a slave in another zone than its master (as APPEND
// makes it), and for one that was async when it was taken out of the
// cluster (PreSync: a DBA's choice is kept).
func RewoundSyncState(s *State, master, node string) string {
	p, ok := s.Node(master)
	if ok && !p.Type.IsMaster() {
		return Async // a cascaded slave replicates asynchronously
	}
	if n, found := s.Node(node); found && (n.PreSync == Async || (ok && n.Zone != p.Zone)) {
		return Async
	}
	if hasSyncChild(s, master, node) {
		return Potential
	}
	return Sync
}

// TakenOut is n leaving the cluster until a REWIND brings it back: a slave
// in the cluster remembers its sync state (PreSync, for RewoundSyncState);
// one already out keeps what it remembered.
func TakenOut(n Node) Node {
	if n.InCluster && !n.Type.IsMaster() && n.SyncState != NoSync {
		n.PreSync = n.SyncState
	}
	return n
}

// PlanSwitchover is the catalog side of a planned switch from old to
// newMaster (reference §4.12 step 15): as a failover, except that the old
// master stays in the cluster as a slave of the new one, taking the sync
// state the new master had as a slave. So nobody is kicked out, and the
// siblings keep their sync states (a potential one need not step up): a
// failover's notices do not apply.
func PlanSwitchover(s *State, old, newMaster string) Plan {
	p, _ := failoverRows(s, old, newMaster)
	was, _ := s.Node(newMaster)
	for i := range p.UpdateNodes {
		if p.UpdateNodes[i].Name == old {
			o := &p.UpdateNodes[i]
			o.Initialized, o.InCluster, o.AllowCure = true, true, true
			o.SyncState = was.SyncState
			if o.SyncState == NoSync {
				o.SyncState = Async
			}
		}
	}
	// The new master's sync state moved to the old one, so a potential
	// sibling need not step up.
	for i := range p.UpdateNodes {
		u := &p.UpdateNodes[i]
		if u.Name != old && u.Name != newMaster {
			if orig, ok := s.Node(u.Name); ok {
				u.SyncState = orig.SyncState
			}
		}
	}
	return p
}

// PlanRemove takes nodes out of the cluster (REMOVE, reference §4.7 step
// 5): not initialised, not in the cluster, slaves async; a sync slave that
// leaves hands its role to a potential sibling that stays.
func PlanRemove(s *State, names []string) Plan {
	var p Plan
	work := State{Hosts: s.Hosts, Nodes: append([]Node(nil), s.Nodes...)}
	for _, name := range names {
		n, ok := work.Node(name)
		if !ok {
			continue
		}
		wasSync := n.SyncState == Sync
		n.Initialized, n.InCluster, n.AllowCure = false, false, false
		if !n.Type.IsMaster() {
			n.SyncState = Async
		}
		replaceNode(&work, n)
		p.UpdateNodes = upsert(p.UpdateNodes, n)
		if wasSync {
			if sib, ns, ok := promotePotential(&work, n.Master, n.Name); ok && sib.InCluster {
				replaceNode(&work, sib)
				p.UpdateNodes = upsert(p.UpdateNodes, sib)
				p.Notices = append(p.Notices, ns...)
			}
		}
	}
	return p
}

// CheckCandidate is ChooseCandidate's refusal alone, for the first look
// before a switch touches anything: the candidate is chosen again, with
// its notices, on the slaves' final positions once the master is fenced.
func CheckCandidate(s *State, master, to string, force bool, probes map[string]Probe) error {
	_, err := ChooseCandidate(s, master, to, force, probes)
	return err
}
