// Package doctor is the manager's self-healing loop. It watches every node
// it may cure and, round after round, restarts one that went down while
// its host's agent is there to do it, fails over a master that cannot be
// brought back, re-points a slave that lost its master, isolates a node it
// cannot repair (out of the cluster, so that no commit waits for it) and
// brings back — rewinds — the nodes that wait out of the cluster: the old
// master of its own failover, a slave that could not follow it, an
// isolated node. Whatever a DBA allowed it, it fences (stops) a node the
// catalog does not call a master that answers as a primary — an old master
// cut off during a failover, seen again — and refreshes a coordinator that
// still routes to a node that is no longer a master (docs/HA.md). The decision (Decide) is a pure function over what one
// round observed and what earlier rounds remembered; the actions are the
// manager's, behind the Actions interface, so the loop knows nothing of
// agents or SQL.
package doctor

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Role is what the doctor may do to a node.
type Role int

const (
	// Master: a gtmcoord or datanode master — restarted, else failed over.
	Master Role = iota
	// Slave: a gtmcoord, coordinator or datanode slave — restarted or
	// re-pointed, else isolated; rewound when it waits.
	Slave
	// Coordinator: a coordinator master — restarted, else isolated;
	// started and taken back when it waits.
	Coordinator
)

// Cure statuses (the node table's curestatus, AntDB's words) of a node
// that waits out of the cluster for the doctor.
const (
	// Normal: in the cluster, or left out by a DBA.
	Normal = "normal"
	// OldMaster: the old master of the doctor's failover, to be rewound
	// as a slave of the new master.
	OldMaster = "oldmaster"
	// FollowFail: a slave that was down during the doctor's failover and
	// could not follow the new master.
	FollowFail = "followfail"
	// Isolated: a node the doctor could not repair in place.
	Isolated = "isolated"
)

// Waiting reports whether cure is the status of a node waiting out of the
// cluster for the doctor.
func Waiting(cure string) bool { return cure == OldMaster || cure == FollowFail || cure == Isolated }

// Observation is what one round saw of a node.
type Observation struct {
	Node string
	Role Role
	// Cure is the node's curestatus; a Waiting one is out of the cluster
	// and is repaired as soon as its host's agent answers.
	Cure string
	// Answering: it accepted an SQL connection and answered in its role
	// (a master as a primary, a slave in recovery), or it runs but
	// refuses connections for a while (crash recovery, startup).
	Answering bool
	// Responding: it runs and answered the manager with an error of its
	// own (an SQL or authentication error, too many clients, a database
	// that refuses connections). It is not down, and neither a restart nor
	// a failover cures what a DBA must fix, so the doctor leaves it alone.
	// Down means cannot connect or not running.
	Responding bool
	// Error is what it answered when Responding, for the log.
	Error string
	// AgentUp: the agent of its host answered, so a restart is possible.
	AgentUp bool
	// Stopped: down, and its agent said for certain that no postmaster
	// runs in its data directory (not "cannot tell", not "cannot
	// connect"). Starting it in place cannot make two of anything, so it
	// is restarted at the first such look; only a failover or an isolation
	// waits for Failures looks.
	Stopped bool
	// Stray: a slave that answers while its master answers as a primary,
	// but is not among the master's streaming standbys.
	Stray bool
	// Primary: a Slave — a node the catalog does not call a master (a
	// slave, the kicked-out old master of a failover) — answers as a primary
	// (pg_is_in_recovery() false): a second writable master. It is fenced
	// at once, whatever its allowcure or curestatus.
	Primary bool
	// Master is its master in the catalog, for the fence's reason.
	Master string
	// FenceOnly: a node the doctor may not cure (a DBA stopped it, kicked
	// it out with FAILOVER, or turned the doctor off for it or its host),
	// watched only so that it is fenced when it answers as a primary.
	FenceOnly bool
	// Stale: a coordinator that answers but whose foreign servers do not
	// match the catalog (it missed a failover's re-point while it was cut
	// off): it would route to the old master.
	Stale bool
	// Pending: the look at it has not ended yet, but it is younger than the
	// look deadline (a slow login on a busy machine): no news this round,
	// so nothing is counted either way. A look older than the deadline is
	// a failed look (not Answering), so that a host cut off from the
	// manager costs no more than a dead one.
	Pending bool
	// AsyncOnly: a master with no sync or potential slave in the cluster
	// (the catalog). It acknowledges commits alone, so a failover without
	// FORCE is refused (docs/HA.md rule 1a): when it cannot be restarted
	// the doctor holds, says so once, and tries nothing (AsyncOnlyReason).
	AsyncOnly bool
	// Hung: a failed look that did not fail but hung past the look
	// deadline (a host cut off, or a very slow master). It counts as a
	// failed look, but does not make the next looks come sooner
	// (Memory.Suspect): a loaded master keeps its full grace.
	Hung bool
	// SyncDiffers: a master that answers, whose live
	// synchronous_standby_names is not what the catalog implies
	// (cluster.SyncNames) — a write of it failed, or someone changed it
	// behind the manager's back. Written again at once (Sync); until a
	// look shows it right, the doctor does not fail the master over.
	SyncDiffers bool
	// SyncRead: the master's live list was read this round (it may
	// answer without it: in crash recovery, or the read failed), so
	// SyncDiffers says something.
	SyncRead bool
	// StepUp: a master that answers with no sync or potential slave in the
	// cluster, while it lost one to a failure the doctor repairs, names the
	// async slave in the cluster that streams from it and becomes its sync
	// slave (StepUp).
	StepUp string
}

// Config tunes the loop.
type Config struct {
	// Interval between rounds.
	Interval time.Duration
	// Failures is how many consecutive rounds a node must fail before the
	// doctor acts (a restart or a blip must not cause a failover).
	Failures int
	// Restarts is how many restarts are tried before failing a master
	// over or isolating another node.
	Restarts int
	// Follows is how many times a stray slave is re-pointed at its master
	// before it is isolated (and then rewound).
	Follows int
	// Retry is how many rounds pass before a repair of a waiting node
	// that failed is tried again.
	Retry int
}

// DefaultConfig acts on a node well within a second of its death: three
// failed looks in a row, 400 ms apart — 100 ms apart once a look failed at
// once (Memory.Suspect: a node that refuses connections, its postmaster
// gone). A look that hangs fails only at its deadline (a second or more)
// and does not speed the rounds up, so a loaded master keeps its grace;
// a single failed look, a blip, never acts. A master that cannot be
// restarted is failed over (make bench, BenchmarkDoctorNodeDeath); one
// whose agent says it is Stopped is restarted at the first look
// (BenchmarkDoctorCrashInPlace).
var DefaultConfig = Config{Interval: 400 * time.Millisecond, Failures: 3, Restarts: 1, Follows: 2, Retry: 15}

// ActionKind is what the doctor decided for a node.
type ActionKind string

const (
	Restart  ActionKind = "restart"
	Failover ActionKind = "failover"
	// Follow re-points a stray slave at its master.
	Follow ActionKind = "follow"
	// Isolate takes a node out of the cluster (curestatus isolated), its
	// master's sync names and the coordinators updated.
	Isolate ActionKind = "isolate"
	// Rewind makes a waiting slave a streaming slave of its master again,
	// back in the cluster.
	Rewind ActionKind = "rewind"
	// Rejoin takes a waiting coordinator back, level with a live one
	// (rebuilt from it when its catalog differs: RejoinSources, Rebuild).
	Rejoin ActionKind = "rejoin"
	// Fence stops (fast, then immediate) a node that answers as a primary
	// while the catalog says it is not a master.
	Fence ActionKind = "fence"
	// Refresh writes a stale coordinator's node list and foreign servers
	// again.
	Refresh ActionKind = "refresh"
	// Sync writes a master's synchronous_standby_names again from the
	// catalog, stepping an async slave up to sync first when StepUp
	// names one.
	Sync ActionKind = "sync"
	// Hold is not an action: a master the doctor would fail over, whose
	// sync list differed from the catalog when it was last seen, is left
	// for a DBA (a failover without FORCE could lose commits it
	// acknowledged alone). Said once in the log.
	Hold ActionKind = "hold"
)

// Action is one decision of a round.
type Action struct {
	Kind ActionKind
	Node string
	// Reason says why, for Isolate and Fence (the journal and the log).
	Reason string
}

// health is what the doctor remembers of a node between rounds.
type health struct {
	cure     string // the curestatus these counts are about
	failures int    // consecutive failed rounds
	restarts int    // restarts tried since it last answered
	strays   int    // consecutive rounds it answered but did not stream
	follows  int    // re-points tried since it last streamed
	wait     int    // rounds before a waiting node's repair is tried again
	refresh  int    // rounds before a stale coordinator is refreshed again
	sync     int    // rounds before a master's sync list is written again
	unsynced bool   // a master whose live sync list differed when last seen
	held     bool   // Hold was said for it
	hung     bool   // its last failed look hung (Observation.Hung)
}

// Memory is the state Decide carries from round to round.
type Memory map[string]*health

func (mem Memory) get(o Observation) *health {
	h := mem[o.Node]
	if h == nil || h.cure != o.Cure {
		h = &health{cure: o.Cure}
		mem[o.Node] = h
	}
	return h
}

// Suspect reports whether a node failed its last look at once (it
// refuses connections: its postmaster is gone) and is being counted
// towards an action: the next looks come sooner (Run), so that Failures
// looks confirm a death in a fraction of the interval.
func (mem Memory) Suspect() bool {
	for _, h := range mem {
		if h.failures > 0 && !h.hung {
			return true
		}
	}
	return false
}

// confirmEvery is the spacing of the rounds while a node is suspect: a
// quarter of the interval, at least 50 ms. Only looks that fail at once —
// a node that refuses connections, its postmaster gone — are counted that
// fast; a look that hangs is a failed look only at its deadline (a second
// or more) and does not speed the rounds up, so a slow, loaded master is
// not taken as dead any sooner.
func confirmEvery(cfg Config) time.Duration {
	return max(cfg.Interval/4, 50*time.Millisecond)
}

// blind reports a round in which no node answered and no agent did: the
// manager, not the cluster, is cut off, and acting on what it cannot see
// would isolate or fail over everything.
func blind(obs []Observation) bool {
	for _, o := range obs {
		if o.Answering || o.Responding || o.AgentUp {
			return false
		}
	}
	return len(obs) > 0
}

// Decide returns the actions of one round and updates mem, at most one
// action a node. A node that answers, if only with an error of its own, is
// forgotten; one that failed cfg.Failures rounds in a row is restarted
// while restarts remain and its agent is up — at the first failed round
// when its agent says it is Stopped — and otherwise failed over (a master)
// or isolated, always after cfg.Failures rounds. A slave that answers but does not stream from its
// master for cfg.Failures rounds is re-pointed, and isolated after
// cfg.Follows tries. A waiting node is repaired as soon as its agent
// answers, and again every cfg.Retry rounds while it waits. After an
// action the count starts again. A node the catalog does not call a master
// that answers as a primary is fenced at once, every round it does,
// before anything else and whatever the doctor may otherwise do to it (a
// FenceOnly node: nothing else); a stale coordinator is refreshed at once,
// then every cfg.Retry rounds while it stays stale. A round that saw
// nothing at all decides nothing.
func Decide(mem Memory, obs []Observation, cfg Config) []Action {
	if blind(obs) {
		return nil
	}
	var out []Action
	seen := map[string]bool{}
	for _, o := range obs {
		seen[o.Node] = true
		if a, ok := decideOne(mem, o, cfg); ok {
			out = append(out, a)
		}
	}
	// Nodes no longer watched (failed over, stopped by a DBA) are forgotten.
	for n := range mem {
		if !seen[n] {
			delete(mem, n)
		}
	}
	return out
}

func decideOne(mem Memory, o Observation, cfg Config) (Action, bool) {
	if o.Primary && o.Role == Slave {
		// Safety first: whatever was counted about it no longer holds.
		delete(mem, o.Node)
		return Action{Kind: Fence, Node: o.Node, Reason: FenceReason(o.Master)}, true
	}
	if o.FenceOnly {
		delete(mem, o.Node)
		return Action{}, false
	}
	if o.Pending {
		return Action{}, false
	}
	if Waiting(o.Cure) {
		return decideWaiting(mem.get(o), o, cfg)
	}
	if o.Answering && o.Stale {
		h := mem.get(o)
		if h.refresh > 0 {
			h.refresh--
			return Action{}, false
		}
		h.refresh = cfg.Retry
		return Action{Kind: Refresh, Node: o.Node}, true
	}
	if o.Role == Master && o.Answering {
		return decideSync(mem, o, cfg)
	}
	if o.Responding || (o.Answering && !o.Stray) {
		if h := mem[o.Node]; h != nil && h.unsynced {
			// Not a look at its list: what was seen of it still holds.
			h.failures, h.restarts = 0, 0
			return Action{}, false
		}
		delete(mem, o.Node)
		return Action{}, false
	}
	h := mem.get(o)
	if o.Answering { // a stray slave
		h.failures, h.restarts = 0, 0
		if h.strays++; h.strays < cfg.Failures {
			return Action{}, false
		}
		h.strays = 0
		if h.follows < cfg.Follows {
			h.follows++
			return Action{Kind: Follow, Node: o.Node}, true
		}
		delete(mem, o.Node)
		return Action{Kind: Isolate, Node: o.Node, Reason: "does not stream from its master after being re-pointed"}, true
	}
	h.strays = 0
	restart := o.AgentUp && h.restarts < cfg.Restarts
	// A node certainly stopped is restarted at once: only what would
	// take it out of place (a failover, an isolation) waits for
	// cfg.Failures looks, in case the look was a blip.
	h.hung = o.Hung
	if h.failures++; h.failures < cfg.Failures && !(restart && o.Stopped) {
		return Action{}, false
	}
	h.failures = 0
	if restart {
		h.restarts++
		return Action{Kind: Restart, Node: o.Node}, true
	}
	if o.Role == Master && (h.unsynced || o.AsyncOnly) {
		// Its list was weaker than the catalog says, or unknown, or it
		// has no sync slave at all: its slaves may lack commits it
		// acknowledged alone. Restarting it stays allowed; failing it
		// over is the DBA's call.
		if h.held {
			return Action{}, false
		}
		h.held = true
		reason := HoldReason
		if !h.unsynced {
			reason = AsyncOnlyReason
		}
		return Action{Kind: Hold, Node: o.Node, Reason: reason}, true
	}
	delete(mem, o.Node)
	if o.Role == Master {
		return Action{Kind: Failover, Node: o.Node}, true
	}
	reason := "down, and the agent of its host does not answer"
	if o.AgentUp {
		reason = "down, and restarting it did not help"
	}
	return Action{Kind: Isolate, Node: o.Node, Reason: reason}, true
}

// HoldReason is why the doctor does not fail over a master whose sync list
// differed from the catalog when it was last seen.
const HoldReason = "its synchronous_standby_names did not match the node table when it was last seen, so its slaves may lack commits it acknowledged alone: not failed over by the doctor (a DBA decides: FAILOVER … FORCE)"

// AsyncOnlyReason is why the doctor does not fail over a master that has
// no sync or potential slave.
const AsyncOnlyReason = "it has no sync or potential slave, so its slaves may lack commits it acknowledged alone: not failed over by the doctor (a DBA decides: FAILOVER … FORCE)"

// decideSync is the round of a master that answers: what was counted of
// it is forgotten, and a live sync list that differs from the catalog, or
// a slave to step up, is written at once, then every cfg.Retry rounds
// while it stays so.
func decideSync(mem Memory, o Observation, cfg Config) (Action, bool) {
	unsynced := o.SyncDiffers
	if h := mem[o.Node]; !o.SyncRead && h != nil {
		unsynced = h.unsynced // not looked at: what was seen still holds
	}
	if !unsynced && o.StepUp == "" {
		delete(mem, o.Node)
		return Action{}, false
	}
	h := mem.get(o)
	*h = health{cure: h.cure, sync: h.sync, unsynced: unsynced}
	if !o.SyncDiffers && o.StepUp == "" {
		return Action{}, false
	}
	if h.sync > 0 {
		h.sync--
		return Action{}, false
	}
	h.sync = cfg.Retry
	reason := "its synchronous_standby_names does not match the node table"
	if o.StepUp != "" {
		reason = "it has no synchronous slave; " + o.StepUp + " streams from it and becomes one"
	}
	return Action{Kind: Sync, Node: o.Node, Reason: reason}, true
}

// FenceReason is why a node that answers as a primary is fenced: the
// journal's, the log's and MONITOR's words.
func FenceReason(master string) string {
	if master == "" {
		return "runs as a primary but the catalog says it is not a master: two masters"
	}
	return "runs as a primary but the catalog says it is a slave of " + master + ": two masters"
}

// decideWaiting repairs a waiting node once its agent answers, then every
// cfg.Retry rounds.
func decideWaiting(h *health, o Observation, cfg Config) (Action, bool) {
	if !o.AgentUp {
		return Action{}, false
	}
	if h.wait > 0 {
		h.wait--
		return Action{}, false
	}
	h.wait = cfg.Retry
	if o.Role == Coordinator {
		return Action{Kind: Rejoin, Node: o.Node}, true
	}
	return Action{Kind: Rewind, Node: o.Node}, true
}

// Skipped undoes what deciding a could not do because a DBA's command
// held the cluster (ErrBusy): the next round decides it again, without
// spending a restart or a re-point on it.
func (mem Memory) Skipped(a Action, cfg Config) {
	h := mem[a.Node]
	if h == nil {
		h = &health{}
		mem[a.Node] = h
	}
	switch a.Kind {
	case Restart:
		h.restarts--
		h.failures = cfg.Failures - 1
	case Follow:
		h.follows--
		h.strays = cfg.Failures - 1
	case Failover:
		// Decide forgot it; it fails over next round, not restarts.
		h.restarts = cfg.Restarts
		h.failures = cfg.Failures - 1
	case Isolate:
		h.restarts, h.follows = cfg.Restarts, cfg.Follows
		h.failures, h.strays = cfg.Failures-1, cfg.Failures-1
	case Rewind, Rejoin:
		h.wait = 0
	case Refresh:
		h.refresh = 0
	case Sync:
		h.sync = 0
	}
	// Fence: decided again at once next round, nothing to undo.
}

// ErrBusy marks an action that did not run because a DBA's command holds
// the cluster: the doctor never waits for one nor disturbs it, and decides
// again next round.
var ErrBusy = errors.New("a cluster operation is running")

// Actions are the manager's hands.
type Actions interface {
	// Observe looks at every node the doctor may cure.
	Observe(ctx context.Context) ([]Observation, error)
	// Restart starts a node that is down, in place.
	Restart(ctx context.Context, node string) error
	// Failover fails a master over (without FORCE: no acknowledged commit
	// may be lost, or the manager refuses and the doctor tries again).
	Failover(ctx context.Context, node string) error
	// Follow re-points a slave at its master.
	Follow(ctx context.Context, node string) error
	// Isolate takes a node out of the cluster, for reason.
	Isolate(ctx context.Context, node, reason string) error
	// Rewind makes a waiting slave a streaming slave of its master again.
	Rewind(ctx context.Context, node string) error
	// Rejoin takes a waiting coordinator back once it holds what a live
	// coordinator holds (rebuilt from it when it missed changes).
	Rejoin(ctx context.Context, node string) error
	// Fence stops a node that answers as a primary while the catalog says
	// it is not a master (fast, then immediate), for reason.
	Fence(ctx context.Context, node, reason string) error
	// Refresh writes a coordinator's node list and foreign servers again.
	Refresh(ctx context.Context, node string) error
	// Sync writes a master's synchronous_standby_names from the catalog
	// again, stepping an async slave up to sync first when StepUp names
	// one; it does nothing when a fresh look finds nothing to do.
	Sync(ctx context.Context, node string) error
}

// do runs one action.
func do(ctx context.Context, a Actions, act Action) error {
	switch act.Kind {
	case Restart:
		return a.Restart(ctx, act.Node)
	case Failover:
		return a.Failover(ctx, act.Node)
	case Follow:
		return a.Follow(ctx, act.Node)
	case Isolate:
		return a.Isolate(ctx, act.Node, act.Reason)
	case Rewind:
		return a.Rewind(ctx, act.Node)
	case Rejoin:
		return a.Rejoin(ctx, act.Node)
	case Fence:
		return a.Fence(ctx, act.Node, act.Reason)
	case Refresh:
		return a.Refresh(ctx, act.Node)
	case Sync:
		return a.Sync(ctx, act.Node)
	}
	return errors.New("unknown action " + string(act.Kind))
}

// what the log says before each action.
var says = map[ActionKind]string{
	Restart:  "doctor: node down, restarting it",
	Failover: "doctor: master down and cannot be restarted, failing over",
	Follow:   "doctor: slave does not stream from its master, re-pointing it",
	Isolate:  "doctor: node cannot be repaired in place, isolating it",
	Rewind:   "doctor: node waits out of the cluster, rewinding it",
	Rejoin:   "doctor: coordinator waits out of the cluster, taking it back",
	Fence:    "doctor: a node that is not a master runs as a primary, fencing it",
	Refresh:  "doctor: coordinator routes to nodes that are no longer masters, refreshing it",
	Sync:     "doctor: master's synchronous_standby_names must be written again",
	Hold:     "doctor: master down, but it is not failed over",
}

// Run is the loop; it returns when ctx is cancelled. Actions run one at a
// time, so two never touch one node at once.
func Run(ctx context.Context, a Actions, cfg Config, log *slog.Logger) {
	r := &runner{a: a, cfg: cfg, log: log, mem: Memory{}, responding: map[string]bool{}, failing: Failing{}}
	t := time.NewTimer(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.round(ctx)
		// The next round is timed from the end of this one (a round that
		// acts may take longer than the interval), and comes sooner while
		// a node is suspect.
		next := cfg.Interval
		if r.mem.Suspect() {
			next = confirmEvery(cfg)
		}
		t.Reset(next)
	}
}

// runner is what Run carries from round to round.
type runner struct {
	a          Actions
	cfg        Config
	log        *slog.Logger
	mem        Memory
	responding map[string]bool // said once, not every round
	wasBlind   bool
	failing    Failing
}

// MaxBackoff caps the pause between two tries of an action that keeps
// failing (Failing).
const MaxBackoff = time.Minute

// Failing remembers the actions that failed, by kind and node, so that one
// that cannot complete (a fence or a failover whose agent is unreachable)
// is not tried, and journaled, every round: a first failure is tried
// again as Decide decides (a passing cause: a slave still catching up);
// after the k-th failure in a row, k ≥ 2, the next try waits
// cfg.Retry × 2^(k-2) rounds, at most MaxBackoff — but comes at once when
// the node's agent changed (it came back, or went).
// Restart and Follow are not held back: Decide counts their tries.
type Failing map[Action]*failure

type failure struct {
	fails   int
	next    time.Time
	agentUp bool
}

// backoff is the pause after fails failures in a row.
func backoff(fails int, cfg Config) time.Duration {
	if fails < 2 {
		return 0
	}
	d := cfg.Interval * time.Duration(max(cfg.Retry, 1))
	for i := 2; i < fails && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// key is what identifies a repeated action (its reason may change).
func key(a Action) Action { return Action{Kind: a.Kind, Node: a.Node} }

// Due reports whether act may run at now, o being the latest look at its
// node (nil when there is none).
func (f Failing) Due(act Action, o *Observation, now time.Time) bool {
	x := f[key(act)]
	if x == nil || act.Kind == Restart || act.Kind == Follow {
		return true
	}
	if o != nil && o.AgentUp != x.agentUp {
		delete(f, key(act))
		return true
	}
	return !now.Before(x.next)
}

// Failed records that act failed at now, o being the look it was decided
// on; it returns how many times in a row it failed and when it is tried
// next.
func (f Failing) Failed(act Action, o *Observation, now time.Time, cfg Config) (int, time.Time) {
	x := f[key(act)]
	if x == nil {
		x = &failure{}
		f[key(act)] = x
	}
	x.fails++
	x.next = now.Add(backoff(x.fails, cfg))
	x.agentUp = o != nil && o.AgentUp
	return x.fails, x.next
}

// Succeeded forgets act's failures.
func (f Failing) Succeeded(act Action) { delete(f, key(act)) }

// round is one look at the cluster and the actions decided on it.
func (r *runner) round(ctx context.Context) {
	obs, err := r.a.Observe(ctx)
	if err != nil {
		r.log.Warn("doctor: cannot observe the cluster", "error", err)
		return
	}
	now := map[string]bool{}
	for _, o := range obs {
		if o.Responding {
			now[o.Node] = true
			if !r.responding[o.Node] {
				r.log.Warn("doctor: node runs but answers with an error; leaving it alone", "node", o.Node, "error", o.Error)
			}
		}
	}
	r.responding = now
	// Said once a blind spell: rounds are a fraction of a second apart.
	switch b := blind(obs); {
	case b && !r.wasBlind:
		r.log.Warn("doctor: no node and no agent answers; the manager may be cut off, so it acts on nothing")
	case !b && r.wasBlind:
		r.log.Info("doctor: nodes or agents answer again")
	}
	r.wasBlind = blind(obs)
	look := map[string]*Observation{}
	for i := range obs {
		look[obs[i].Node] = &obs[i]
	}
	for _, act := range Decide(r.mem, obs, r.cfg) {
		if ctx.Err() != nil {
			return
		}
		if !r.failing.Due(act, look[act.Node], time.Now()) {
			continue // it failed lately: tried again later (Failing)
		}
		args := []any{"node", act.Node}
		if act.Reason != "" {
			args = append(args, "reason", act.Reason)
		}
		r.log.Warn(says[act.Kind], args...)
		if act.Kind == Hold {
			continue // nothing to do: said
		}
		switch err := do(ctx, r.a, act); {
		case errors.Is(err, ErrBusy):
			r.mem.Skipped(act, r.cfg)
			r.log.Info("doctor: a DBA's command is running; trying next round", "action", act.Kind, "node", act.Node)
		case err != nil:
			fails, next := r.failing.Failed(act, look[act.Node], time.Now(), r.cfg)
			r.log.Warn("doctor: action failed; it will be tried again", "action", act.Kind, "node", act.Node, "error", err,
				"failures", fails, "next", next.Format(time.RFC3339))
		default:
			r.failing.Succeeded(act)
			r.log.Info("doctor: action done", "action", act.Kind, "node", act.Node)
		}
	}
}
