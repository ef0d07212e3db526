package cluster

import (
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Recovering an expansion cut short (reference §4.15; the spec's
// "扩容异常情况处理"): EXPAND DATANODE MASTER that failed or was
// interrupted after its base backup, EXPAND ACTIVATE interrupted after
// the promotion. What each recovery does depends on what the nodes show
// (CopySeen), not on what a journal row claims: a manager killed at any
// step leaves nodes the next command looks at. The journal only tells
// that a copy which does not run now was promoted (CopySeen.Interrupted).
//
//   - EXPAND RECOVER BASEBACKUP FAIL src TO dst rolls the copy back: the
//     coordinators' prepared transactions of an interrupted activation
//     are rolled back, dst is stopped and its data directory emptied, its
//     slot on src dropped, and the catalog says dst was never
//     initialised — EXPAND DATANODE MASTER can run again. Refused once a
//     coordinator routes slots to dst: rows may have been written there.
//     With no copy at all (a base backup cut short) it drops the slot dst
//     left on src, which would keep src's WAL for ever.
//   - EXPAND RECOVER BASEBACKUP SUCCESS src TO dst redoes what follows a
//     base backup: configuration, recovery settings, the initialised
//     mark, the start (so it also restarts a copy that was killed), then
//     the expansion is copied, as after EXPAND DATANODE MASTER.
//   - EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dst finishes an
//     activation whose promotion happened: the coordinators' prepared
//     transactions are committed, every coordinator must then route the
//     same slots to dst, and the catalog writes the expansion activated.
//     EXPAND ACTIVATE does the same for a promoted copy, and rolls back
//     what an interrupted activation prepared for a copy still a standby
//     before it activates it again.

const (
	// GrowAbandonHolds rolls back, on every coordinator, what an
	// interrupted activation of Node prepared (GrowPrepare).
	GrowAbandonHolds GrowStepKind = "abandon holds"
	// GrowFinishHolds commits, on every coordinator, what an interrupted
	// activation of Node prepared, then reads the slots each coordinator
	// routes to Node: the same on every one, and not none.
	GrowFinishHolds GrowStepKind = "finish holds"
	// GrowStop stops Node, immediately: its data is thrown away.
	GrowStop GrowStepKind = "stop"
	// GrowEmpty empties Node's data directory.
	GrowEmpty GrowStepKind = "empty"
	// GrowResume redoes what follows the base backup of Node from From:
	// the slot on From, configuration, recovery settings, the initialised
	// mark, the start; Node must then answer as a standby.
	GrowResume GrowStepKind = "resume"
)

// CopySeen is what a recovery command saw of a copy and of the
// coordinators before it decides.
type CopySeen struct {
	// Routed names the coordinators whose adb.slot gives the copy slots;
	// Unknown those that could not be asked.
	Routed, Unknown []string
	// DirUsed: the copy's data directory is not empty. HasData: it holds
	// a data directory (PG_VERSION).
	DirUsed, HasData bool
	// Running: its postmaster runs. Answers: it answers SQL, Standby: in
	// recovery.
	Running, Answers, Standby bool
	// SlotOnSrc: the source holds a replication slot named after the
	// copy; SlotUnknown: the source could not be asked.
	SlotOnSrc, SlotUnknown bool
	// Interrupted is the step of the journal entry the manager's end
	// interrupted about the copy (InterruptedFor; "" none): "promote dst"
	// tells a copy that does not run now was promoted.
	Interrupted string
}

// promoted tells that copy dst was promoted: it answers out of
// recovery, or the interrupted activation got past its promotion.
func (seen CopySeen) promoted(dst string) bool {
	return (seen.Answers && !seen.Standby) || seen.Interrupted == "promote "+dst || seen.Interrupted == "commit "+dst
}

// recoverable checks what every recovery of src TO dst requires: src a
// datanode master in the cluster, dst an added datanode master out of the
// cluster, and no activated expansion of dst nor a copy of another source.
// It returns dst's row and its expansion (Phase "" when there is none).
func recoverable(s *State, exps []Expansion, src, dst string) (Node, Expansion, error) {
	dn, ok := s.Node(dst)
	if !ok || dn.Type != DatanodeMaster {
		return dn, Expansion{}, &FieldError{Field: "dst", Err: pgerror.New(pgerror.UndefinedObject,
			`datanode master "%s" does not exist in the node table`, dst)}
	}
	var x Expansion
	for _, e := range exps {
		if e.Dst == dst {
			x = e
		}
	}
	if x.Phase == ExpansionActivated {
		return dn, x, fieldErrH("dst", pgerror.ObjectNotInPrereqState,
			"the expansion of %s was activated already: nothing to recover", dst).WithHint("Run EXPAND CLEAN.")
	}
	if dn.InCluster {
		return dn, x, fieldErr("dst", pgerror.ObjectNotInPrereqState, "%s is in the cluster: it is no copy being expanded", dst)
	}
	if x.Phase != "" && x.Src != src {
		return dn, x, fieldErr("src", pgerror.ObjectNotInPrereqState, "%s is a copy of %s, not of %s", dst, x.Src, src)
	}
	sn, ok := s.Node(src)
	if !ok || sn.Type != DatanodeMaster || !sn.InCluster {
		return dn, x, fieldErr("src", pgerror.ObjectNotInPrereqState, `%s is not a datanode master in the cluster`, src)
	}
	return dn, x, nil
}

// CheckRecoverable refuses EXPAND RECOVER BASEBACKUP … src TO dst for
// the names alone, before the nodes are looked at (recoverable).
func CheckRecoverable(s *State, exps []Expansion, src, dst string) error {
	_, _, err := recoverable(s, exps, src, dst)
	return err
}

// notRouted refuses a rollback or a redo of the copy once a coordinator
// routes slots to dst, or while one cannot be asked.
func notRouted(seen CopySeen, dst string) error {
	if len(seen.Unknown) > 0 {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "cannot tell whether %s route slots to %s: they do not answer",
			strings.Join(seen.Unknown, ", "), dst).WithHint("Start them, then run the command again.")
	}
	if len(seen.Routed) > 0 {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "%s route slots to %s: its activation went past the commit, it cannot be rolled back",
			strings.Join(seen.Routed, ", "), dst).WithHint("Finish it: EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS %s.", dst)
	}
	return nil
}

// PlanExpandRecoverFail decides EXPAND RECOVER BASEBACKUP FAIL src TO dst:
// the copy is rolled back so that EXPAND DATANODE MASTER src TO dst can
// run again. Only dst's own directory is emptied, and only while no
// coordinator routes anything to it.
func PlanExpandRecoverFail(s *State, exps []Expansion, src, dst string, seen CopySeen) (GrowPlan, error) {
	dn, x, err := recoverable(s, exps, src, dst)
	if err != nil {
		return GrowPlan{}, err
	}
	if err := notRouted(seen, dst); err != nil {
		return GrowPlan{}, err
	}
	if x.Phase == "" && !dn.Initialized && !seen.DirUsed && !seen.Running {
		// No copy, but perhaps the slot of one a manager's end cut
		// short during its base backup: it would keep src's WAL for ever.
		switch {
		case seen.SlotOnSrc:
			return GrowPlan{Steps: []GrowStep{
				{Kind: GrowDropSlot, Node: dst, From: src, Notice: fmt.Sprintf(
					`replication slot "%s" dropped on %s: no copy is behind it (the data directory of %s is empty), it only kept %s's WAL`, dst, src, dst, src)},
				{Kind: GrowCatalog, Node: dst, From: src},
			}}, nil
		case seen.SlotUnknown:
			return GrowPlan{}, fieldErrH("src", pgerror.ObjectNotInPrereqState,
				"%s holds no copy of %s, and %s does not answer: cannot tell whether it keeps a replication slot for %s", dst, src, src, dst).WithHint(
				"Start %s, then run the command again.", src)
		}
		return GrowPlan{}, fieldErrH("dst", pgerror.ObjectNotInPrereqState,
			"nothing to recover: %s holds no copy of %s", dst, src).WithHint("Run EXPAND DATANODE MASTER %s TO %s.", src, dst)
	}
	hold := GrowStep{Kind: GrowAbandonHolds, Node: dst}
	if seen.promoted(dst) {
		// Safe: no coordinator routes a slot to dst (notRouted), so the
		// writes of the moving slots were held and went nowhere but src.
		hold.Notice = fmt.Sprintf("%s was promoted by the interrupted activation: its copy is discarded. No coordinator routes a slot to %s, "+
			"so no write reached it; %s still holds every row", dst, dst, src)
	}
	steps := []GrowStep{hold}
	if seen.Running {
		steps = append(steps, GrowStep{Kind: GrowStop, Node: dst})
	}
	steps = append(steps,
		GrowStep{Kind: GrowEmpty, Node: dst},
		GrowStep{Kind: GrowDropSlot, Node: dst, From: src},
		GrowStep{Kind: GrowCatalog, Node: dst, From: src})
	return GrowPlan{Steps: steps}, nil
}

// ExpandRolledBack is the state after EXPAND RECOVER BASEBACKUP FAIL: dst
// is an added datanode master never initialised, its expansion gone.
func ExpandRolledBack(s *State, src, dst string) (GrowPlan, error) {
	n, ok := s.Node(dst)
	if !ok {
		return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s left the node table during EXPAND RECOVER", dst)
	}
	n.Initialized, n.InCluster = false, false
	var p GrowPlan
	p.UpdateNodes = []Node{n}
	p.DeleteExpansions = []string{dst}
	p.Journal = JournalEntry{Status: "done", Step: "rolled back", Detail: src}
	p.Result = fmt.Sprintf("copy of %s removed; run EXPAND DATANODE MASTER %s TO %s again", src, src, dst)
	return p, nil
}

// PlanExpandRecoverSuccess decides EXPAND RECOVER BASEBACKUP SUCCESS src
// TO dst: dst's data directory holds src's base backup; what follows it
// is done again, and the expansion waits for EXPAND ACTIVATE.
func PlanExpandRecoverSuccess(s *State, exps []Expansion, src, dst string, seen CopySeen) (GrowPlan, error) {
	if _, _, err := recoverable(s, exps, src, dst); err != nil {
		return GrowPlan{}, err
	}
	if err := notRouted(seen, dst); err != nil {
		return GrowPlan{}, err
	}
	if !seen.HasData {
		h := fieldErrH("dst", pgerror.ObjectNotInPrereqState, "the data directory of %s holds no base backup", dst)
		if !seen.DirUsed && !seen.Running {
			return GrowPlan{}, h.WithHint("Run EXPAND DATANODE MASTER %s TO %s again (EXPAND RECOVER BASEBACKUP FAIL %s TO %s drops a replication slot left for %s on %s).",
				src, dst, src, dst, dst, src)
		}
		return GrowPlan{}, h.WithHint(
			"EXPAND RECOVER BASEBACKUP FAIL %s TO %s empties it; then run EXPAND DATANODE MASTER %s TO %s again.", src, dst, src, dst)
	}
	if seen.promoted(dst) {
		return GrowPlan{}, fieldErrH("dst", pgerror.ObjectNotInPrereqState,
			"%s was promoted: it no longer streams from %s", dst, src).WithHint(
			"EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS %s finishes its activation; EXPAND RECOVER BASEBACKUP FAIL %s TO %s rolls it back.", dst, src, dst)
	}
	return GrowPlan{Steps: []GrowStep{
		{Kind: GrowResume, Node: dst, From: src},
		{Kind: GrowCatalog, Node: dst, From: src},
	}}, nil
}

// CopiedExpansion is dst's expansion, refused unless it is copied: EXPAND
// ACTIVATE RECOVER DOPROMOTE SUCCESS names a copy whose activation is to
// be finished.
func CopiedExpansion(s *State, exps []Expansion, dst string) (Expansion, error) {
	if n, ok := s.Node(dst); !ok || n.Type != DatanodeMaster {
		return Expansion{}, &FieldError{Field: "dst", Err: pgerror.New(pgerror.UndefinedObject,
			`datanode master "%s" does not exist in the node table`, dst)}
	}
	for _, x := range exps {
		if x.Dst != dst {
			continue
		}
		if x.Phase == ExpansionActivated {
			return x, fieldErrH("dst", pgerror.ObjectNotInPrereqState,
				"the expansion of %s was activated already: nothing to recover", dst).WithHint("Run EXPAND CLEAN.")
		}
		return x, nil
	}
	return Expansion{}, fieldErrH("dst", pgerror.ObjectNotInPrereqState, "%s is not being expanded", dst).WithHint(
		"EXPAND SHOW STATUS lists the expansions.")
}

// PlanExpandFinish decides the end of an activation whose promotion
// happened (EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dst, and EXPAND
// ACTIVATE for a copy it finds promoted): the coordinators' prepared
// transactions commit, and the expansion is activated with the slots
// the coordinators route to dst.
func PlanExpandFinish(s *State, x Expansion, seen CopySeen) (GrowPlan, error) {
	src, ok := s.Node(x.Src)
	if !ok || src.Type != DatanodeMaster || !src.InCluster {
		return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not a datanode master in the cluster`, x.Src)
	}
	switch {
	case !seen.Answers:
		return GrowPlan{}, fieldErrH("dst", pgerror.ConnectionFailure, "%s does not answer", x.Dst).WithHint(
			"Start it (EXPAND RECOVER BASEBACKUP SUCCESS %s TO %s starts a copy), then run the command again.", x.Src, x.Dst)
	case seen.Standby:
		return GrowPlan{}, fieldErrH("dst", pgerror.ObjectNotInPrereqState,
			"%s was not promoted: it is still a standby of %s", x.Dst, x.Src).WithHint(
			"Run EXPAND ACTIVATE: it rolls back what the interrupted activation prepared and activates %s again.", x.Dst)
	case len(seen.Unknown) > 0:
		return GrowPlan{}, pgerror.New(pgerror.ObjectNotInPrereqState, "%s do not answer: the activation of %s must reach every coordinator",
			strings.Join(seen.Unknown, ", "), x.Dst).WithHint("Start them, then run the command again.")
	}
	return GrowPlan{Steps: []GrowStep{
		{Kind: GrowFinishHolds, Node: x.Dst, From: x.Src},
		{Kind: GrowStandalone, Node: x.Dst},
		{Kind: GrowDropSlot, Node: x.Dst, From: x.Src},
		{Kind: GrowCatalog, Node: x.Dst, From: x.Src},
		{Kind: GrowRefreshCoordinators},
	}}, nil
}

// ResumeActivation decides what EXPAND ACTIVATE does with a copied
// expansion, given what it sees: a copy still a standby is activated
// (what an interrupted activation prepared is rolled back first); a
// promoted one is finished (PlanExpandFinish). A copy that does not
// answer, or a standby the coordinators route to, is refused.
func ResumeActivation(x Expansion, seen CopySeen) (finish bool, err error) {
	switch {
	case !seen.Answers:
		return false, pgerror.New(pgerror.ConnectionFailure, "%s does not answer", x.Dst).WithHint(
			"EXPAND RECOVER BASEBACKUP SUCCESS %s TO %s starts it; then run EXPAND ACTIVATE again.", x.Src, x.Dst)
	case seen.Standby && len(seen.Routed) > 0:
		return false, pgerror.New(pgerror.ObjectNotInPrereqState, "%s route slots to %s, which is still a standby",
			strings.Join(seen.Routed, ", "), x.Dst).WithHint("Compare adb.slot on the coordinators before anything else.")
	}
	return !seen.Standby, nil
}

// fieldErrH is a refusal about field whose hint follows (WithHint).
func fieldErrH(field, code, format string, args ...any) hinted {
	return hinted{field: field, err: pgerror.New(code, format, args...)}
}

// hinted is a FieldError under construction: WithHint ends it.
type hinted struct {
	field string
	err   *pgerror.Error
}

func (h hinted) WithHint(format string, args ...any) error {
	return &FieldError{Field: h.field, Err: h.err.WithHint(format, args...)}
}
