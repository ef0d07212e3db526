package doctor

import (
	"github.com/adbmgr/adbmgr/internal/cluster"
)

// A coordinator the doctor isolated missed, while out of the cluster,
// whatever changed the catalog the coordinators keep alike: distributed
// tables created, dropped or altered through another coordinator (their
// functions reach only the coordinators of adb.node, which no longer
// listed it), slots moved by EXPAND, roles. Before it serves again it is
// compared with a live coordinator (coord.Fingerprint) and, when it
// differs, rebuilt from it as APPEND COORDINATOR copies one: a base backup
// of the source made a standalone coordinator of its own (expand.Maker).

// RejoinSources are the coordinators a waiting coordinator node is
// compared with, and rebuilt from, best first: the gtmcoord master, which
// holds the authoritative adb catalog (DESIGN §2) and which APPEND
// COORDINATOR MASTER clones, then the coordinator masters in the
// cluster in catalog order, read-only ones last (their servers point at
// slaves; Configure re-points a copy's anyway). Only nodes in the
// cluster count: another isolated coordinator missed changes too. None:
// node is the only coordinator, and a plain start is right.
func RejoinSources(s *cluster.State, node string) []cluster.Node {
	var gtm, rw, ro []cluster.Node
	for _, n := range s.Nodes {
		switch {
		case n.Name == node || !n.InCluster:
		case n.Type == cluster.GtmcoordMaster:
			gtm = append(gtm, n)
		case n.Type == cluster.CoordinatorMaster && n.ReadOnly:
			ro = append(ro, n)
		case n.Type == cluster.CoordinatorMaster:
			rw = append(rw, n)
		}
	}
	return append(append(gtm, rw...), ro...)
}

// RejoinLook is what the doctor saw of a waiting coordinator once it
// started it, next to its source's fingerprint.
type RejoinLook struct {
	Source string
	// StartErr: it did not start.
	StartErr error
	// Mine, MineErr: its fingerprint, or why it could not be read.
	Mine    string
	MineErr error
	// Theirs: the source's fingerprint (read: a source that does not
	// answer is not one).
	Theirs string
}

// Rebuild decides whether a waiting coordinator is rebuilt from its
// source before it joins, and says why (the journal's words). Only when
// it differs or cannot be compared: one that missed nothing (its host
// rebooted, its agent came back) keeps its data directory, as a restart
// in place would, and is back in the time of a start instead of a copy.
// Anything that is not a proof of "alike" — a start or a read that
// failed — rebuilds: a copy too many costs seconds, a coordinator that
// diverges answers queries wrongly.
func Rebuild(l RejoinLook) (why string, rebuild bool) {
	switch {
	case l.StartErr != nil:
		return "it does not start: " + l.StartErr.Error(), true
	case l.MineErr != nil:
		return "its catalog cannot be read: " + l.MineErr.Error(), true
	case l.Mine != l.Theirs:
		return "its catalog differs from " + l.Source + "'s", true
	}
	return "", false
}
