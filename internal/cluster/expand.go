package cluster

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Growing the cluster: EXPAND moves slots to a new datanode master (DESIGN
// §3, reference §4.15), APPEND adds a node to a running cluster (reference
// §4.9, §4.10). Both keep state in the catalog between statements
// (Expansion, CoordinatorCopy), and both are decided here, without I/O: a
// decision returns a GrowPlan — the node steps in order, and the catalog
// rows, journal entry and result that the GrowCatalog step writes in one
// transaction. The rows are decided inside that transaction, from a fresh
// State, by the functions named for the state reached (ExpandCopied,
// ExpandActivated, …), so that a change made while the nodes were busy is
// never overwritten with what the command saw at its start.

// ExpansionPhase is how far an EXPAND DATANODE MASTER src TO dst got.
type ExpansionPhase string

const (
	// ExpansionCopied: dst is initialised, not in the cluster, and
	// streams from src; EXPAND ACTIVATE is next.
	ExpansionCopied ExpansionPhase = "copied"
	// ExpansionActivated: dst is a master in the cluster that owns Slots;
	// each side still holds the rows of the other side's slots until
	// EXPAND CLEAN.
	ExpansionActivated ExpansionPhase = "activated"
)

// Expansion is one EXPAND DATANODE MASTER Src TO Dst until EXPAND CLEAN.
type Expansion struct {
	Dst, Src string
	Phase    ExpansionPhase
	// Slots are the slots moved to Dst (ExpansionActivated only).
	Slots []int
	// Started and Updated are kept by the catalog (RFC 3339, UTC).
	Started, Updated string
}

// CoordinatorCopy is APPEND COORDINATOR Node FOR Source until APPEND
// ACTIVATE COORDINATOR Node: Node streams from Source.
type CoordinatorCopy struct {
	Node, Source string
	Started      string // kept by the catalog
}

// GrowStepKind names what a GrowStep does to the nodes.
type GrowStepKind string

const (
	// GrowBaseBackup makes Node a standby streaming from From (a slot
	// named after Node on From, pg_basebackup, recovery settings, start).
	GrowBaseBackup GrowStepKind = "basebackup"
	// GrowInitDB creates Node's data directory and configuration.
	GrowInitDB GrowStepKind = "initdb"
	// GrowStart starts Node.
	GrowStart GrowStepKind = "start"
	// GrowClone makes Node a copy of From that opens as a primary of its
	// own (a base backup started without standby.signal).
	GrowClone GrowStepKind = "clone"
	// GrowBlockWrites opens a transaction on every coordinator that locks
	// the distributed tables with partitions of Slots on From, until
	// GrowCommit: writes through the coordinators pause, reads go on.
	GrowBlockWrites GrowStepKind = "block writes"
	// GrowWaitReplay waits for Node to replay From's current WAL position.
	GrowWaitReplay GrowStepKind = "wait replay"
	// GrowRepoint re-creates, in the coordinators' open transactions, the
	// partitions of Slots as foreign tables on Node's server, and gives
	// Slots to Node in adb.slot.
	GrowRepoint GrowStepKind = "re-point"
	// GrowPrepare prepares the coordinators' transactions of
	// GrowBlockWrites (PREPARE TRANSACTION, one global transaction
	// identifier per destination Node): from here until GrowCommit they
	// survive the manager's end, the writes paused and the new routing
	// neither committed nor lost, so that a restarted manager can commit
	// them (Node promoted) or roll them back (Node still a standby).
	GrowPrepare GrowStepKind = "prepare"
	// GrowPromote promotes the standby Node.
	GrowPromote GrowStepKind = "promote"
	// GrowStandalone removes Node's primary_conninfo and primary_slot_name.
	GrowStandalone GrowStepKind = "standalone"
	// GrowCommit commits the coordinators' transactions of GrowBlockWrites.
	GrowCommit GrowStepKind = "commit"
	// GrowDropSlot drops Node's replication slot on From.
	GrowDropSlot GrowStepKind = "drop slot"
	// GrowCatalog writes the plan's rows and journal entry, in one
	// catalog transaction.
	GrowCatalog GrowStepKind = "catalog"
	// GrowSyncNames recomputes From's synchronous_standby_names, Node
	// being a new slave of it.
	GrowSyncNames GrowStepKind = "sync names"
	// GrowRefreshCoordinators brings every coordinator's node list and
	// foreign servers up to date with the catalog.
	GrowRefreshCoordinators GrowStepKind = "refresh coordinators"
	// GrowTruncate empties, on Node, the shard tables of every slot Node
	// does not own.
	GrowTruncate GrowStepKind = "truncate"
)

// GrowStep is one thing done to the nodes.
type GrowStep struct {
	Kind  GrowStepKind
	Node  string
	From  string // the node Node copies, streams from or takes slots of
	Slots []int
	// Notice is said once the step is done.
	Notice string
}

// JournalEntry is what a state change writes to its command's journal
// entry, in the same transaction as its rows.
type JournalEntry struct {
	Status string // running, done or failed
	Step   string
	Detail string
}

// GrowPlan is a decision of EXPAND or APPEND: node steps in order, and the
// rows, journal entry and result row description of the state reached.
type GrowPlan struct {
	Plan
	Steps   []GrowStep
	Journal JournalEntry
	Result  string
}

// PlanExpandCopy decides EXPAND DATANODE MASTER src TO dst: dst, an added
// datanode master never initialised, becomes a streaming copy of src, a
// datanode master in the cluster. Several copies may wait for one EXPAND
// ACTIVATE (reference §4.15: "EXPAND dn1 TO dn3; EXPAND dn2 TO dn4;
// EXPAND ACTIVATE"), a source may be copied to several destinations
// (AntDB's ALTER NODE DATA (src TO (dstA, dstB))), but no copy starts while
// an activated expansion waits for EXPAND CLEAN: AntDB refuses while
// adb_clean holds anything, and a new copy of src would carry rows src no
// longer owns.
func PlanExpandCopy(s *State, exps []Expansion, src, dst string) (GrowPlan, error) {
	sn, ok := s.Node(src)
	if !ok || sn.Type != DatanodeMaster || !sn.InCluster {
		return GrowPlan{}, fieldErr("src", pgerror.ObjectNotInPrereqState, `%s is not a datanode master in the cluster`, src)
	}
	dn, ok := s.Node(dst)
	if !ok || dn.Type != DatanodeMaster {
		return GrowPlan{}, &FieldError{Field: "dst", Err: pgerror.New(pgerror.UndefinedObject,
			`datanode master "%s" does not exist in the node table`, dst).WithHint("ADD DATANODE MASTER it first.")}
	}
	if dn.InCluster || dn.Initialized {
		return GrowPlan{}, fieldErr("dst", pgerror.ObjectNotInPrereqState,
			"The node %s status is error. It should be not initialized and not in cluster.", dst)
	}
	for _, x := range exps {
		if x.Phase == ExpansionActivated {
			return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, "an expansion is not cleaned yet").
				WithHint("Run EXPAND CLEAN first.")
		}
	}
	return GrowPlan{Steps: []GrowStep{
		{Kind: GrowBaseBackup, Node: dst, From: src},
		{Kind: GrowCatalog, Node: dst},
	}}, nil
}

// ExpandCopied is the state after EXPAND's copy: dst initialised, not in
// the cluster, and its expansion copied.
func ExpandCopied(s *State, src, dst string) (GrowPlan, error) {
	p, err := copyOf(s, dst, src, "EXPAND")
	if err != nil {
		return GrowPlan{}, err
	}
	p.PutExpansions = []Expansion{{Dst: dst, Src: src, Phase: ExpansionCopied}}
	p.Result = "streaming from " + src + "; run EXPAND ACTIVATE"
	return p, nil
}

// copyOf is the node row of name once it is a streaming copy of source:
// initialised, not in the cluster.
func copyOf(s *State, name, source, command string) (GrowPlan, error) {
	n, ok := s.Node(name)
	if _, srcOK := s.Node(source); !ok || !srcOK {
		return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s or %s left the node table during %s", source, name, command)
	}
	n.Initialized, n.InCluster = true, false
	var p GrowPlan
	p.UpdateNodes = []Node{n}
	p.Journal = JournalEntry{Status: "done", Step: "copy", Detail: source}
	return p, nil
}

// ExpansionsToActivate lists, by destination, the expansions one EXPAND
// ACTIVATE activates: every copied one.
func ExpansionsToActivate(exps []Expansion) []Expansion {
	var out []Expansion
	for _, x := range exps {
		if x.Phase == ExpansionCopied {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out
}

// SplitSlots deals the slots src owns (owned, any order) between src and
// the destinations activated with it (dsts, in their order): with k
// destinations, the i-th slot in ascending order stays on src when
// i % (k+1) == 0 and goes to dsts[i % (k+1) - 1] otherwise. With one
// destination every second slot moves: the doubling the reference
// recommends (2 servers to 4) keeps the slots balanced.
func SplitSlots(owned []int, dsts []string) map[string][]int {
	sorted := append([]int(nil), owned...)
	sort.Ints(sorted)
	out := map[string][]int{}
	for i, k := range sorted {
		if j := i % (len(dsts) + 1); j > 0 {
			out[dsts[j-1]] = append(out[dsts[j-1]], k)
		}
	}
	return out
}

// PlanExpandActivate decides the activation of exp, given the slots its
// source owns (read from the coordinators before any destination of that
// source is activated) and the destinations activated with it from the
// same source (exp.Dst among them). The order is what makes a failure
// harmless: writes pause, dst catches up, the coordinators' slot map and
// partitions change in transactions not yet committed (a failure rolls
// them back with dst still a standby, and ACTIVATE can run again), and
// only then dst is promoted and the transactions commit. Prepared before
// the promotion, the transactions outlive a manager killed in between
// (PlanExpandRecover…).
func PlanExpandActivate(s *State, exp Expansion, owned []int, with []string) (GrowPlan, error) {
	src, ok := s.Node(exp.Src)
	if !ok || src.Type != DatanodeMaster || !src.InCluster {
		return GrowPlan{}, fmt.Errorf("%s is not a datanode master in the cluster", exp.Src)
	}
	dst, ok := s.Node(exp.Dst)
	if !ok || dst.Type != DatanodeMaster || dst.InCluster || !dst.Initialized {
		return GrowPlan{}, fmt.Errorf("%s is not a copy of %s waiting for EXPAND ACTIVATE", exp.Dst, exp.Src)
	}
	moving := SplitSlots(owned, with)[exp.Dst]
	if len(moving) == 0 {
		return GrowPlan{}, fmt.Errorf("%s owns %d slot(s): nothing to move", exp.Src, len(owned))
	}
	return GrowPlan{Steps: []GrowStep{
		// What an earlier activation of dst, interrupted before the
		// promotion, prepared: rolled back (dst is still a standby).
		{Kind: GrowAbandonHolds, Node: exp.Dst},
		{Kind: GrowBlockWrites, Node: exp.Dst, From: exp.Src, Slots: moving,
			Notice: fmt.Sprintf("writes to slots %s of %s are blocked; waiting for %s to catch up", SlotList(moving), exp.Src, exp.Dst)},
		{Kind: GrowWaitReplay, Node: exp.Dst, From: exp.Src},
		{Kind: GrowRepoint, Node: exp.Dst, From: exp.Src, Slots: moving},
		{Kind: GrowPrepare, Node: exp.Dst},
		{Kind: GrowPromote, Node: exp.Dst},
		{Kind: GrowStandalone, Node: exp.Dst},
		{Kind: GrowCommit, Node: exp.Dst},
		{Kind: GrowDropSlot, Node: exp.Dst, From: exp.Src},
		{Kind: GrowCatalog, Node: exp.Dst, From: exp.Src, Slots: moving},
		{Kind: GrowRefreshCoordinators},
	}}, nil
}

// ExpandActivated is the state after the activation of src TO dst: dst is
// a master in the cluster, and its expansion, activated, remembers the
// slots it took until EXPAND CLEAN.
func ExpandActivated(s *State, src, dst string, moved []int) (GrowPlan, error) {
	p, err := joined(s, dst)
	if err != nil {
		return GrowPlan{}, err
	}
	p.PutExpansions = []Expansion{{Dst: dst, Src: src, Phase: ExpansionActivated, Slots: moved}}
	p.Result = fmt.Sprintf("slots %s moved from %s", SlotList(moved), src)
	p.Journal = JournalEntry{Status: "running", Step: "activated " + dst, Detail: p.Result}
	return p, nil
}

// PlanExpandClean decides EXPAND CLEAN: for each activated expansion, by
// destination, both sides empty the shard tables of the slots they do not
// own (a source shared by several expansions once), then the expansion
// ends. Nothing to clean gives no plan.
func PlanExpandClean(exps []Expansion) []GrowPlan {
	var todo []Expansion
	for _, x := range exps {
		if x.Phase == ExpansionActivated {
			todo = append(todo, x)
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].Dst < todo[j].Dst })
	done := map[string]bool{}
	var out []GrowPlan
	for _, x := range todo {
		var p GrowPlan
		for _, side := range []string{x.Src, x.Dst} {
			if !done[side] {
				done[side] = true
				p.Steps = append(p.Steps, GrowStep{Kind: GrowTruncate, Node: side})
			}
		}
		p.Steps = append(p.Steps, GrowStep{Kind: GrowCatalog, Node: x.Dst, From: x.Src})
		out = append(out, p)
	}
	return out
}

// ExpandCleaned is the state after EXPAND CLEAN of the expansion of dst:
// it is over.
func ExpandCleaned(dst string) GrowPlan {
	var p GrowPlan
	p.DeleteExpansions = []string{dst}
	p.Journal = JournalEntry{Status: "running", Step: "cleaned " + dst}
	return p
}

// Unowned lists the slots, of total, not in owned: the shard tables EXPAND
// CLEAN empties on a node.
func Unowned(owned []int, total int) []int {
	own := map[int]bool{}
	for _, k := range owned {
		own[k] = true
	}
	var out []int
	for k := 0; k < total; k++ {
		if !own[k] {
			out = append(out, k)
		}
	}
	return out
}

// Status is the description EXPAND SHOW STATUS gives the expansion.
func (x Expansion) Status() string {
	if x.Phase == ExpansionActivated {
		return "activated (" + x.Src + ":" + SlotList(x.Slots) + "); run EXPAND CLEAN"
	}
	return "streaming from " + x.Src + "; run EXPAND ACTIVATE"
}

// CheckInitAll refuses INIT ALL while a copy waits for its activation: INIT
// ALL would initialise the copy as an empty master of its own.
func CheckInitAll(exps []Expansion, copies []CoordinatorCopy) error {
	for _, x := range exps {
		if x.Phase == ExpansionCopied {
			return pgerror.New(pgerror.ObjectInUse, "cannot INIT ALL while datanode %s is being expanded", x.Dst).
				WithHint("Finish with EXPAND ACTIVATE (or CLEAN the new datanode) first.")
		}
	}
	for _, c := range copies {
		return pgerror.New(pgerror.ObjectInUse, "cannot INIT ALL while coordinator %s is a copy waiting for APPEND ACTIVATE", c.Node).
			WithHint("Run APPEND ACTIVATE COORDINATOR %s first.", c.Node)
	}
	return nil
}

// joined is the node row of name once it has joined the cluster:
// initialised, in the cluster, and the doctor's to look after.
func joined(s *State, name string) (GrowPlan, error) {
	n, ok := s.Node(name)
	if !ok {
		return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, `node "%s" left the node table while it joined the cluster`, name)
	}
	n.Initialized, n.InCluster, n.AllowCure, n.CureStatus = true, true, true, "normal"
	var p GrowPlan
	p.UpdateNodes = []Node{n}
	return p, nil
}

// SlotList renders slots as the catalog and the messages show them: k,k,…
// (ParseSlots reads it back).
func SlotList(slots []int) string {
	s := make([]string, len(slots))
	for i, k := range slots {
		s[i] = strconv.Itoa(k)
	}
	return strings.Join(s, ",")
}

// ParseSlots reads a slotList; the catalog stores slots so.
func ParseSlots(v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var out []int
	var errs []error
	for _, f := range strings.Split(v, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, k)
	}
	return out, errors.Join(errs...)
}
