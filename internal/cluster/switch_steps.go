package cluster

// The node steps of the switches (FAILOVER, SWITCHOVER, REWIND), decided
// here and executed by internal/switches over the fleet. They share
// GrowStepKind with the steps of EXPAND and APPEND (expand.go): a step that
// does what a growth step does has its word (GrowPromote, GrowStandalone,
// GrowStart, GrowCatalog, GrowSyncNames, GrowRefreshCoordinators); the
// switches' own are below.

const (
	// SwitchFence stops the old master Node for a failover (fast, then
	// immediate), refused while it answers and its agent is down; a
	// revert starts it again only if this stopped it.
	SwitchFence GrowStepKind = "fence"
	// SwitchStopMaster stops the running master Node for a switchover the
	// same way; a revert always starts it again.
	SwitchStopMaster GrowStepKind = "stop old master"
	// SwitchQuiesce waits, before a switchover stops the master Node, up
	// to Seconds for its clients' transactions to end while new writes are
	// held at the coordinators (SwitchoverQuiet); with Force it ends them.
	SwitchQuiesce GrowStepKind = "quiesce"
	// SwitchCaughtUp checks that Node received every record of the
	// cleanly stopped From, its shutdown checkpoint included, within
	// Seconds.
	SwitchCaughtUp GrowStepKind = "caught up"
	// SwitchFollow makes the running slave Node a standby of From (slot,
	// recovery settings) and reloads it; one that cannot is left to
	// REWIND, with a warning.
	SwitchFollow GrowStepKind = "follow"
	// SwitchRejoin makes the stopped old master Node a standby of From and
	// starts it; one that cannot is kicked out until REWIND.
	SwitchRejoin GrowStepKind = "rejoin"
	// SwitchCleanShutdown stops Node cleanly, as pg_rewind requires: one
	// that crashed is started once as a standby of From and stopped.
	SwitchCleanShutdown GrowStepKind = "clean shutdown"
	// SwitchCheckpoint runs CHECKPOINT on Node, so that its control file
	// shows the timeline it runs on.
	SwitchCheckpoint GrowStepKind = "checkpoint"
	// SwitchSlot creates the replication slot named Node on From.
	SwitchSlot GrowStepKind = "replication slot"
	// SwitchRewind runs pg_rewind on Node from From.
	SwitchRewind GrowStepKind = "pg_rewind"
	// SwitchConfigure writes Node's own configuration back.
	SwitchConfigure GrowStepKind = "configure"
	// SwitchStandbyOf makes the stopped Node a standby of From.
	SwitchStandbyOf GrowStepKind = "standby"
	// SwitchStop stops Node (fast, then immediate), however it ran.
	SwitchStop GrowStepKind = "stop"
	// SwitchCleanDir empties Node's stopped data directory.
	SwitchCleanDir GrowStepKind = "clean"
)

// SwitchStep is one thing a switch does to the nodes.
type SwitchStep struct {
	Kind GrowStepKind
	Node string
	// From is the node Node follows, is rewound from or is checked
	// against; for GrowRefreshCoordinators, the replaced master whose
	// foreign server is renamed to Node ("" renames nothing); for
	// GrowSyncNames, the master whose synchronous_standby_names are
	// written.
	From string
	// Journal, when set, is the journal row written before the step or,
	// for GrowCatalog, with its rows.
	Journal *JournalEntry
	// Seconds is how long SwitchCaughtUp waits.
	Seconds int
	// WaitAll: GrowSyncNames waits until every slave streams as the
	// catalog says (otherwise the absent ones are named).
	WaitAll bool
	// Force: SwitchQuiesce ends the transactions instead of waiting.
	Force bool
	// Quick: GrowPromote over SQL without a checkpoint, which a later
	// SwitchCheckpoint step makes while the writes go on.
	Quick bool
}

// SwitchPlan is a switch's decision: its node steps in order, the notices
// said before them, and who replaces whom — the GrowCatalog step decides
// its rows from a fresh State inside the catalog transaction (Rows).
type SwitchPlan struct {
	Steps   []SwitchStep
	Notices []Notice
	// Kind is "failover", "switchover" or "rewind".
	Kind string
	// Old is the replaced master (failover, switchover) or the master a
	// node is rewound from; New the new master or the rewound node.
	Old, New string
	// Lost are the slaves a failover leaves out of the cluster.
	Lost []string
	// Done is the journal row written once every step ran.
	Done JournalEntry
}

// Rows is the catalog side of p on a fresh s.
func (p SwitchPlan) Rows(s *State) Plan {
	switch p.Kind {
	case "failover":
		return PlanFailover(s, p.Old, p.New, p.Lost...)
	case "switchover":
		return PlanSwitchover(s, p.Old, p.New)
	case "rewind":
		return PlanRewound(s, p.Old, p.New)
	}
	return Plan{}
}

// FenceSteps is the first part of a failover, decided on a first look at
// the slaves (CheckCandidate): the old master is fenced before the
// candidate is chosen on the slaves' final positions.
func FenceSteps(old string) []SwitchStep {
	return []SwitchStep{{Kind: SwitchFence, Node: old}}
}

// FailoverSteps is the rest of a failover from old once c was chosen
// (ChooseCandidate, FollowOrRewind): promote c (quick), record it, re-point
// the coordinators (first: writes through them resume as soon as they
// route to c), then c's checkpoint (it records the new timeline for a
// later pg_rewind; made before, it held the coordinators' writes back by
// 0.1–0.3 s), the running slaves and c's sync names (the absent slaves
// named, not waited for).
func FailoverSteps(old string, c Candidate) SwitchPlan {
	p := SwitchPlan{Kind: "failover", Old: old, New: c.Name, Lost: c.Lost, Notices: c.Notices, Done: done(c.Name)}
	p.Steps = append(p.Steps,
		SwitchStep{Kind: GrowPromote, Node: c.Name, Quick: true, Journal: running("promote "+c.Name, "")},
		SwitchStep{Kind: GrowStandalone, Node: c.Name},
		SwitchStep{Kind: GrowCatalog, Node: c.Name, From: old, Journal: running("catalog", c.Name)},
		SwitchStep{Kind: GrowRefreshCoordinators, Node: c.Name, From: old, Journal: running("coordinators", c.Name)},
		SwitchStep{Kind: SwitchCheckpoint, Node: c.Name})
	for _, f := range c.Followers {
		p.Steps = append(p.Steps, SwitchStep{Kind: SwitchFollow, Node: f, From: c.Name, Journal: running("follow "+f, c.Name)})
	}
	p.Steps = append(p.Steps, SwitchStep{Kind: GrowSyncNames, From: c.Name})
	return p
}

// SwitchoverSteps is a switchover of old's direct slave n, decided on the
// probes of old's slaves, ordered so that the writes pause as briefly as
// is safe: wait up to maxTrys seconds (10 to 3600) for old's clients'
// transactions to end, new writes held at the coordinators meanwhile (with
// force: end them); stop old; n must catch up within maxTrys seconds;
// promote n (quick); record it; the coordinators route to n (their held
// writes go on there) — the writes resume here; then n's checkpoint (it
// records the new timeline for a later pg_rewind), old rejoins as n's
// standby, the other slaves that answered follow, n's sync names (every
// slave must stream) and the coordinators' node lists.
func SwitchoverSteps(s *State, old, n string, maxTrys int, force bool, probes map[string]Probe) SwitchPlan {
	secs := min(max(maxTrys, 10), 3600)
	p := SwitchPlan{Kind: "switchover", Old: old, New: n, Done: done(n)}
	p.Steps = append(p.Steps,
		SwitchStep{Kind: SwitchQuiesce, Node: old, Seconds: secs, Force: force},
		// Journaled: a manager killed after the stop or the promotion
		// leaves an entry that says which of the two it reached.
		SwitchStep{Kind: SwitchStopMaster, Node: old, Journal: running("stop old master "+old, "")},
		SwitchStep{Kind: SwitchCaughtUp, Node: n, From: old, Seconds: secs},
		SwitchStep{Kind: GrowPromote, Node: n, Quick: true, Journal: running("promote "+n, "")},
		SwitchStep{Kind: GrowStandalone, Node: n},
		SwitchStep{Kind: GrowCatalog, Node: n, From: old, Journal: running("catalog", n)},
		SwitchStep{Kind: GrowRefreshCoordinators, Node: n, From: old},
		SwitchStep{Kind: SwitchCheckpoint, Node: n},
		SwitchStep{Kind: SwitchRejoin, Node: old, From: n})
	for _, f := range SwitchoverFollowers(s, old, n, probes) {
		p.Steps = append(p.Steps, SwitchStep{Kind: SwitchFollow, Node: f, From: n})
	}
	p.Steps = append(p.Steps,
		SwitchStep{Kind: GrowSyncNames, From: n, WaitAll: true},
		SwitchStep{Kind: GrowRefreshCoordinators})
	return p
}

// Quiet is what a switchover of a master waits on before stopping it
// (reference §4.12 step 7): the nodes whose client sessions are counted —
// the master first, where every open transaction dies with it (Idle),
// then every coordinator in the cluster, where a statement under way may
// be using the master — and the coordinators that hold new writes to the
// distributed tables on the master's foreign server (Server) meanwhile:
// a datanode master's only; a gtmcoord master holds no datanode's data.
type Quiet struct {
	Count  []string
	Hold   []string
	Server string
}

// SwitchoverQuiet is the Quiet of a switchover of master old.
func SwitchoverQuiet(s *State, old string) Quiet {
	q := Quiet{Count: []string{old}}
	m, ok := s.Node(old)
	if !ok {
		return q
	}
	for _, c := range s.Nodes {
		if c.Name == old || !c.InCluster || !c.Initialized || (c.Type != GtmcoordMaster && c.Type != CoordinatorMaster) {
			continue
		}
		q.Count = append(q.Count, c.Name)
		if m.Type == DatanodeMaster {
			q.Hold = append(q.Hold, c.Name)
		}
	}
	if len(q.Hold) > 0 {
		q.Server = old
	}
	return q
}

// RewindSteps is a REWIND of node from master: a clean shutdown, a
// checkpoint on the master, the slot, pg_rewind, then what every REWIND
// ends with (rewindPlan).
func RewindSteps(master, node string) SwitchPlan {
	return rewindPlan(master, node, "",
		SwitchStep{Kind: SwitchCleanShutdown, Node: node, From: master},
		SwitchStep{Kind: SwitchCheckpoint, Node: master},
		SwitchStep{Kind: SwitchSlot, Node: node, From: master},
		// Journaled, as the data copy of the base backup and the steps
		// after it: a manager killed during a REWIND leaves an entry that
		// says whether the node's data directory was touched.
		SwitchStep{Kind: SwitchRewind, Node: node, From: master, Journal: running("pg_rewind", "")})
}

// ByBaseBackup is the journal detail of a REWIND made with a base backup.
const ByBaseBackup = "by base backup"

// RewindBaseBackupSteps is REWIND … BASEBACKUP of node from master, the way
// out when pg_rewind cannot work: the node is stopped, its data directory
// emptied and filled again by pg_basebackup from master over its slot
// (pg_basebackup checkpoints the master itself), then what every REWIND
// ends with.
func RewindBaseBackupSteps(master, node string) SwitchPlan {
	return rewindPlan(master, node, ByBaseBackup,
		SwitchStep{Kind: SwitchStop, Node: node},
		SwitchStep{Kind: SwitchCleanDir, Node: node},
		SwitchStep{Kind: SwitchSlot, Node: node, From: master},
		SwitchStep{Kind: GrowBaseBackup, Node: node, From: master, Journal: running("pg_basebackup", "")})
}

// rewindPlan is a REWIND whose first steps made node's data directory a
// copy of master's history: the node's configuration back, standby.signal,
// start; then the catalog, the master's sync names and the coordinators'
// node lists. how is the detail of its catalog and last journal rows.
func rewindPlan(master, node, how string, first ...SwitchStep) SwitchPlan {
	return SwitchPlan{Kind: "rewind", Old: master, New: node, Done: done(how), Steps: append(first,
		SwitchStep{Kind: SwitchConfigure, Node: node, Journal: running("configure", how)},
		SwitchStep{Kind: SwitchStandbyOf, Node: node, From: master},
		SwitchStep{Kind: GrowStart, Node: node},
		SwitchStep{Kind: GrowCatalog, Node: node, From: master, Journal: running("rejoined", how)},
		SwitchStep{Kind: GrowSyncNames, Node: node, From: master, WaitAll: true},
		SwitchStep{Kind: GrowRefreshCoordinators},
	)}
}

// RewindFallsBack reports whether a REWIND that failed at st may go on
// with a base backup (RewindBaseBackupSteps), as the doctor's does: the
// steps on the node's own data directory, which a fresh copy replaces.
// A master that cannot checkpoint or keep a slot would fail the base
// backup too.
func RewindFallsBack(st SwitchStep) bool {
	switch st.Kind {
	case SwitchCleanShutdown, SwitchRewind, SwitchConfigure, SwitchStandbyOf, GrowStart:
		return true
	}
	return false
}

// running is a journal row of a switch under way.
func running(step, detail string) *JournalEntry {
	return &JournalEntry{Status: "running", Step: step, Detail: detail}
}

// done is a switch's last journal row.
func done(detail string) JournalEntry {
	return JournalEntry{Status: "done", Step: "end", Detail: detail}
}
