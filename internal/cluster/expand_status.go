package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// EXPAND SHOW STATUS and EXPAND DOCHECK STATUS say what the nodes show,
// not only the catalog's phase: after a manager's end or a copy killed,
// the row names the command that takes the expansion up — the one whose
// plan (PlanExpandRecoverFail, PlanExpandRecoverSuccess, PlanExpandFinish,
// ResumeActivation) accepts what was seen (CopySeen).

// JournalRecord is one journal entry of an EXPAND command, as the status
// reads it.
type JournalRecord struct {
	Command, Status, Step string
}

// InterruptedFor returns the entry about copy dst that the manager's end
// interrupted and that no later command about dst ended (ok false: none).
// entries are in journal order. An entry is about dst when its command
// names dst last (EXPAND DATANODE MASTER src TO dst, the RECOVER forms),
// or it is an EXPAND ACTIVATE: interrupted, it concerns dst when its step
// names dst or names no node yet ("start"); ended, it concerns every copy.
func InterruptedFor(entries []JournalRecord, dst string) (JournalRecord, bool) {
	var at JournalRecord
	found := false
	for _, e := range entries {
		activate := e.Command == "EXPAND ACTIVATE"
		if !activate && !strings.HasSuffix(e.Command, " "+dst) {
			continue
		}
		switch e.Status {
		case "interrupted":
			if !activate || e.Step == "start" || strings.HasSuffix(e.Step, " "+dst) {
				at, found = e, true
			}
		case "done":
			at, found = JournalRecord{}, false
		}
	}
	return at, found
}

// InterruptedCopy is an EXPAND DATANODE MASTER src TO dst (or a RECOVER
// of one) the manager's end interrupted before the catalog recorded its
// expansion.
type InterruptedCopy struct {
	Src, Dst string
	Entry    JournalRecord
}

// InterruptedCopies lists, from the journal entries, the copies src TO
// dst interrupted (InterruptedFor) whose dst has no expansion and is an
// added datanode master out of the cluster: nothing else shows them.
func InterruptedCopies(s *State, exps []Expansion, entries []JournalRecord) []InterruptedCopy {
	has := map[string]bool{}
	for _, x := range exps {
		has[x.Dst] = true
	}
	var out []InterruptedCopy
	for _, e := range entries {
		f := strings.Fields(e.Command)
		if e.Status != "interrupted" || len(f) < 3 || f[len(f)-2] != "TO" || has[f[len(f)-1]] {
			continue
		}
		src, dst := f[len(f)-3], f[len(f)-1]
		if at, ok := InterruptedFor(entries, dst); !ok || at != e {
			continue
		}
		if n, ok := s.Node(dst); !ok || n.Type != DatanodeMaster || n.InCluster {
			continue
		}
		has[dst] = true
		out = append(out, InterruptedCopy{Src: src, Dst: dst, Entry: e})
	}
	return out
}

// CopyAdvice is the status of interrupted copy c: what is left of it and
// the RECOVER command that takes it up, the first whose plan accepts it.
func CopyAdvice(s *State, exps []Expansion, c InterruptedCopy, seen CopySeen) string {
	what := fmt.Sprintf("%s was interrupted (step %q): ", c.Entry.Command, c.Entry.Step)
	if _, err := PlanExpandRecoverSuccess(s, exps, c.Src, c.Dst, seen); err == nil {
		return what + fmt.Sprintf("%s holds a base backup of %s; run EXPAND RECOVER BASEBACKUP SUCCESS %s TO %s to finish the copy, or EXPAND RECOVER BASEBACKUP FAIL %s TO %s to roll it back",
			c.Dst, c.Src, c.Src, c.Dst, c.Src, c.Dst)
	}
	_, err := PlanExpandRecoverFail(s, exps, c.Src, c.Dst, seen)
	empty := !seen.DirUsed && !seen.Running
	switch {
	case err == nil && empty:
		return what + fmt.Sprintf("%s keeps a replication slot for %s; run EXPAND RECOVER BASEBACKUP FAIL %s TO %s to drop it, then EXPAND DATANODE MASTER %s TO %s again",
			c.Src, c.Dst, c.Src, c.Dst, c.Src, c.Dst)
	case err == nil:
		return what + fmt.Sprintf("run EXPAND RECOVER BASEBACKUP FAIL %s TO %s to roll it back", c.Src, c.Dst)
	case empty && !seen.SlotOnSrc && !seen.SlotUnknown:
		return what + fmt.Sprintf("nothing is left of it; run EXPAND DATANODE MASTER %s TO %s again", c.Src, c.Dst)
	}
	return what + advice(err)
}

// ExpansionAdvice is the status of expansion x from what the nodes show
// (seen, with its Interrupted step) and the interrupted journal entry
// about it (at; Command "" none). ok tells that it waits as it should.
func ExpansionAdvice(x Expansion, seen CopySeen, at JournalRecord) (ok bool, desc string) {
	if x.Phase == ExpansionActivated {
		return true, x.Status()
	}
	note := ""
	if at.Command != "" {
		note = fmt.Sprintf("%s was interrupted (step %q); ", at.Command, at.Step)
	}
	fin := "run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS " + x.Dst
	switch {
	case len(seen.Unknown) > 0:
		return false, note + advice(notRouted(seen, x.Dst))
	case len(seen.Routed) > 0 && seen.Answers && seen.Standby:
		_, err := ResumeActivation(x, seen)
		return false, note + advice(err)
	case len(seen.Routed) > 0:
		desc := fmt.Sprintf("%s route slots to %s: its activation went past the commit; %s", strings.Join(seen.Routed, ", "), x.Dst, fin)
		if !seen.Running {
			desc += " (it starts " + x.Dst + ")"
		}
		return false, note + desc
	case !seen.HasData:
		return false, note + fmt.Sprintf("the data directory of %s holds no base backup; run EXPAND RECOVER BASEBACKUP FAIL %s TO %s", x.Dst, x.Src, x.Dst)
	case seen.promoted(x.Dst):
		desc := fmt.Sprintf("%s was promoted", x.Dst)
		if !seen.Running {
			desc += ", and is not running"
		}
		return false, note + desc + fmt.Sprintf("; %s to finish its activation, or EXPAND RECOVER BASEBACKUP FAIL %s TO %s to roll it back", fin, x.Src, x.Dst)
	case !seen.Running:
		return false, note + fmt.Sprintf("%s is not running; run EXPAND RECOVER BASEBACKUP SUCCESS %s TO %s to start it again as a copy of %s", x.Dst, x.Src, x.Dst, x.Src)
	case !seen.Answers:
		return false, note + fmt.Sprintf("%s runs but does not answer; look at its log, then run EXPAND RECOVER BASEBACKUP SUCCESS %s TO %s", x.Dst, x.Src, x.Dst)
	case note != "":
		return false, note + "streaming from " + x.Src + "; run EXPAND ACTIVATE (it rolls back what the interrupted activation prepared)"
	}
	return true, x.Status()
}

// advice is a refusal as a status says it: its message, then its hint.
func advice(err error) string {
	var pe *pgerror.Error
	if errors.As(err, &pe) && pe.Hint != "" {
		return pe.Message + "; " + strings.TrimSuffix(pe.Hint, ".")
	}
	return err.Error()
}
