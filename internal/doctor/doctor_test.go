package doctor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecide(t *testing.T) {
	cfg := Config{Failures: 3, Restarts: 1, Follows: 2, Retry: 2}
	down := func(agent bool) []Observation { return []Observation{{Node: "dn1", AgentUp: agent}} }
	up := []Observation{{Node: "dn1", Answering: true}}
	stopped := []Observation{{Node: "dn1", AgentUp: true, Stopped: true}}
	erring := func(agent bool) []Observation {
		return []Observation{{Node: "dn1", Responding: true, AgentUp: agent, Error: "55000: database \"postgres\" is not currently accepting connections"}}
	}
	// s1 is a slave, cn1 a coordinator; gc answers, so the round is not
	// blind.
	seen := Observation{Node: "gc", Answering: true}
	slave := func(o Observation) []Observation { o.Node, o.Role = "s1", Slave; return []Observation{seen, o} }
	coord := func(o Observation) []Observation { o.Node, o.Role = "cn1", Coordinator; return []Observation{seen, o} }
	stray := Observation{Answering: true, Stray: true, AgentUp: true}
	master := func(differs bool, stepUp string) Observation {
		return Observation{Node: "dn1", Role: Master, Answering: true, SyncRead: true, SyncDiffers: differs, StepUp: stepUp}
	}
	syncAct := Action{Kind: Sync, Node: "dn1", Reason: "its synchronous_standby_names does not match the node table"}
	tests := []struct {
		name   string
		rounds [][]Observation
		want   [][]Action // per round
	}{
		{"a blip is not acted on", [][]Observation{down(true), down(true), up, down(true)},
			[][]Action{nil, nil, nil, nil}},
		{"restart first, then fail over", [][]Observation{down(true), down(true), down(true), down(true), down(true), down(true)},
			[][]Action{nil, nil, {{Kind: Restart, Node: "dn1"}}, nil, nil, {{Kind: Failover, Node: "dn1"}}}},
		{"no agent: fail over at once", [][]Observation{{{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}},
			[][]Action{nil, nil, {{Kind: Failover, Node: "dn1"}}}},
		{"a restart that works resets", [][]Observation{down(true), down(true), down(true), up, down(true), down(true), down(true)},
			[][]Action{nil, nil, {{Kind: Restart, Node: "dn1"}}, nil, nil, nil, {{Kind: Restart, Node: "dn1"}}}},
		// Up but answering with an error (SQL, authentication, too many
		// clients): never restarted nor failed over, agent or not.
		{"a master answering with an error is left alone", [][]Observation{erring(false), erring(false), erring(false), erring(true), erring(false)},
			[][]Action{nil, nil, nil, nil, nil}},
		{"an error answer is not a failed round", [][]Observation{down(false), down(false), erring(false), down(false), down(false)},
			[][]Action{nil, nil, nil, nil, nil}},

		// Stopped: its agent says no postmaster runs. Restarted at the
		// first look; a failover still waits for Failures looks, and so
		// does a restart once restarts are spent, or without the agent.
		{"a stopped master is restarted at once, failed over after Failures looks", [][]Observation{stopped, stopped, stopped, stopped},
			[][]Action{{{Kind: Restart, Node: "dn1"}}, nil, nil, {{Kind: Failover, Node: "dn1"}}}},
		{"a stopped master that restarts is restarted at once again", [][]Observation{stopped, up, stopped},
			[][]Action{{{Kind: Restart, Node: "dn1"}}, nil, {{Kind: Restart, Node: "dn1"}}}},
		{"down then stopped: restarted at the stopped look", [][]Observation{down(true), stopped},
			[][]Action{nil, {{Kind: Restart, Node: "dn1"}}}},
		{"stopped without its agent is not a fast restart", [][]Observation{{{Node: "dn1", Stopped: true}, seen}, {{Node: "dn1", Stopped: true}, seen}, {{Node: "dn1", Stopped: true}, seen}},
			[][]Action{nil, nil, {{Kind: Failover, Node: "dn1"}}}},
		{"a stopped slave is restarted at once, isolated after Failures looks", [][]Observation{
			slave(Observation{AgentUp: true, Stopped: true}), slave(Observation{AgentUp: true, Stopped: true}),
			slave(Observation{AgentUp: true, Stopped: true}), slave(Observation{AgentUp: true, Stopped: true})},
			[][]Action{{{Kind: Restart, Node: "s1"}}, nil, nil, {{Kind: Isolate, Node: "s1", Reason: "down, and restarting it did not help"}}}},
		{"a stopped coordinator is restarted at once", [][]Observation{coord(Observation{AgentUp: true, Stopped: true})},
			[][]Action{{{Kind: Restart, Node: "cn1"}}}},
		{"a stopped node that is also answering is left alone", [][]Observation{{{Node: "dn1", Answering: true, AgentUp: true, Stopped: true}}},
			[][]Action{nil}},
		{"a node that leaves is forgotten", [][]Observation{down(true), down(true), nil, down(true), down(true)},
			[][]Action{nil, nil, nil, nil, nil}},

		// A manager that sees nothing (no node, no agent) acts on nothing.
		{"a blind manager does not act", [][]Observation{
			{{Node: "dn1"}, {Node: "s1", Role: Slave}}, {{Node: "dn1"}, {Node: "s1", Role: Slave}}, {{Node: "dn1"}, {Node: "s1", Role: Slave}},
			{{Node: "dn1"}, {Node: "s1", Role: Slave}}},
			[][]Action{nil, nil, nil, nil}},
		{"blind rounds do not count", [][]Observation{
			slave(Observation{}), {{Node: "s1", Role: Slave}}, {{Node: "s1", Role: Slave}}, slave(Observation{}), slave(Observation{})},
			[][]Action{nil, nil, nil, nil, {{Kind: Isolate, Node: "s1", Reason: "down, and the agent of its host does not answer"}}}},

		// Slaves and coordinators: restarted in place, isolated when that
		// does not help or their host's agent is gone.
		{"a crashed slave is restarted", [][]Observation{slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true})},
			[][]Action{nil, nil, {{Kind: Restart, Node: "s1"}}}},
		{"a slave that does not restart is isolated", [][]Observation{
			slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true}),
			slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true})},
			[][]Action{nil, nil, {{Kind: Restart, Node: "s1"}}, nil, nil, {{Kind: Isolate, Node: "s1", Reason: "down, and restarting it did not help"}}}},
		{"a slave whose host is gone is isolated", [][]Observation{slave(Observation{}), slave(Observation{}), slave(Observation{})},
			[][]Action{nil, nil, {{Kind: Isolate, Node: "s1", Reason: "down, and the agent of its host does not answer"}}}},
		{"a crashed coordinator is restarted, then isolated", [][]Observation{
			coord(Observation{AgentUp: true}), coord(Observation{AgentUp: true}), coord(Observation{AgentUp: true}),
			coord(Observation{AgentUp: true}), coord(Observation{AgentUp: true}), coord(Observation{AgentUp: true})},
			[][]Action{nil, nil, {{Kind: Restart, Node: "cn1"}}, nil, nil, {{Kind: Isolate, Node: "cn1", Reason: "down, and restarting it did not help"}}}},

		// A slave that answers but does not stream from its master (it
		// was down when the master failed over) is re-pointed, then
		// isolated.
		{"a stray slave is re-pointed, then isolated", [][]Observation{
			slave(stray), slave(stray), slave(stray), slave(stray), slave(stray), slave(stray), slave(stray), slave(stray), slave(stray)},
			[][]Action{nil, nil, {{Kind: Follow, Node: "s1"}}, nil, nil, {{Kind: Follow, Node: "s1"}}, nil, nil,
				{{Kind: Isolate, Node: "s1", Reason: "does not stream from its master after being re-pointed"}}}},
		{"a stray slave that streams again is forgotten", [][]Observation{
			slave(stray), slave(stray), slave(stray), slave(Observation{Answering: true}), slave(stray), slave(stray), slave(stray)},
			[][]Action{nil, nil, {{Kind: Follow, Node: "s1"}}, nil, nil, nil, {{Kind: Follow, Node: "s1"}}}},

		// Waiting nodes are repaired as soon as their agent answers, and
		// again every Retry rounds.
		{"an old master is rewound once its agent answers", [][]Observation{
			slave(Observation{Cure: OldMaster}), slave(Observation{Cure: OldMaster}), slave(Observation{Cure: OldMaster, AgentUp: true}),
			slave(Observation{Cure: OldMaster, AgentUp: true}), slave(Observation{Cure: OldMaster, AgentUp: true}),
			slave(Observation{Cure: OldMaster, AgentUp: true})},
			[][]Action{nil, nil, {{Kind: Rewind, Node: "s1"}}, nil, nil, {{Kind: Rewind, Node: "s1"}}}},
		{"followfail and isolated slaves are rewound", [][]Observation{
			{seen, {Node: "s1", Role: Slave, Cure: FollowFail, AgentUp: true}, {Node: "s2", Role: Slave, Cure: Isolated, AgentUp: true}}},
			[][]Action{{{Kind: Rewind, Node: "s1"}, {Kind: Rewind, Node: "s2"}}}},
		{"an isolated coordinator rejoins", [][]Observation{coord(Observation{Cure: Isolated}), coord(Observation{Cure: Isolated, AgentUp: true})},
			[][]Action{nil, {{Kind: Rejoin, Node: "cn1"}}}},
		{"a node back in the cluster starts afresh", [][]Observation{
			slave(Observation{Cure: Isolated, AgentUp: true}), slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true}),
			slave(Observation{AgentUp: true})},
			[][]Action{{{Kind: Rewind, Node: "s1"}}, nil, nil, {{Kind: Restart, Node: "s1"}}}},

		// A node the catalog does not call a master that answers as a
		// primary is fenced at once, every round it does, whatever else
		// the doctor counted about it or may do to it.
		{"a slave running as a primary is fenced at once", [][]Observation{
			slave(Observation{Primary: true, Master: "dn1", AgentUp: true}), slave(Observation{AgentUp: true}),
			slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true})},
			[][]Action{{{Kind: Fence, Node: "s1", Reason: "runs as a primary but the catalog says it is a slave of dn1: two masters"}},
				nil, nil, {{Kind: Restart, Node: "s1"}}}},
		{"a fence resets what was counted", [][]Observation{
			slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true}), slave(Observation{Primary: true, Master: "dn1"}),
			slave(Observation{AgentUp: true}), slave(Observation{AgentUp: true})},
			[][]Action{nil, nil, {{Kind: Fence, Node: "s1", Reason: FenceReason("dn1")}}, nil, nil}},
		{"a fence is tried again every round", [][]Observation{
			slave(Observation{Primary: true, Master: "dn1"}), slave(Observation{Primary: true, Master: "dn1"})},
			[][]Action{{{Kind: Fence, Node: "s1", Reason: FenceReason("dn1")}}, {{Kind: Fence, Node: "s1", Reason: FenceReason("dn1")}}}},
		// The old master of a DBA's FAILOVER (allowcure off): fenced when
		// it answers as a primary, otherwise left alone.
		{"a kicked-out old master is fenced, and only that", [][]Observation{
			slave(Observation{FenceOnly: true}), slave(Observation{FenceOnly: true, Primary: true, Master: "dn1s", AgentUp: true}),
			slave(Observation{FenceOnly: true, AgentUp: true}), slave(Observation{FenceOnly: true, AgentUp: true}),
			slave(Observation{FenceOnly: true, AgentUp: true}), slave(Observation{FenceOnly: true, AgentUp: true})},
			[][]Action{nil, {{Kind: Fence, Node: "s1", Reason: FenceReason("dn1s")}}, nil, nil, nil, nil}},
		// The old master of the doctor's own failover: fenced, then
		// rewound (the existing oldmaster path).
		{"the doctor's old master is fenced, then rewound", [][]Observation{
			slave(Observation{Cure: OldMaster}), slave(Observation{Cure: OldMaster, Primary: true, Master: "dn1s", AgentUp: true}),
			slave(Observation{Cure: OldMaster, AgentUp: true})},
			[][]Action{nil, {{Kind: Fence, Node: "s1", Reason: FenceReason("dn1s")}}, {{Kind: Rewind, Node: "s1"}}}},
		// A master is a primary by right: never fenced.
		{"a master is never fenced", [][]Observation{{{Node: "dn1", Role: Master, Answering: true, Primary: true}, {Node: "cn1", Role: Coordinator, Answering: true, Primary: true}}},
			[][]Action{nil}},
		// A fence-only node that does not answer counts nothing and does
		// not make a round seeing something else blind-proof.
		{"fence-only nodes alone are a blind round", [][]Observation{
			{{Node: "dn1"}, {Node: "s1", Role: Slave, FenceOnly: true}}, {{Node: "dn1"}, {Node: "s1", Role: Slave, FenceOnly: true}},
			{{Node: "dn1"}, {Node: "s1", Role: Slave, FenceOnly: true}}},
			[][]Action{nil, nil, nil}},

		// A coordinator that missed a failover's re-point is refreshed at
		// once, then every Retry rounds while it stays stale.
		{"a stale coordinator is refreshed", [][]Observation{
			coord(Observation{Answering: true, Stale: true}), coord(Observation{Answering: true, Stale: true}),
			coord(Observation{Answering: true, Stale: true}), coord(Observation{Answering: true, Stale: true}),
			coord(Observation{Answering: true}), coord(Observation{Answering: true, Stale: true})},
			[][]Action{{{Kind: Refresh, Node: "cn1"}}, nil, nil, {{Kind: Refresh, Node: "cn1"}}, nil, {{Kind: Refresh, Node: "cn1"}}}},
		{"a stale coordinator that is down is not refreshed", [][]Observation{coord(Observation{Stale: true, AgentUp: true})},
			[][]Action{nil}},

		// A look still running but younger than the look deadline is no
		// news: it neither counts nor resets; older, it is a failed look
		// (Observe reports it so).
		{"a pending look counts nothing", [][]Observation{
			{{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}, {{Node: "dn1", Pending: true}, seen}, {{Node: "dn1", Pending: true}, seen},
			{{Node: "dn1"}, seen}},
			[][]Action{nil, nil, nil, nil, {{Kind: Failover, Node: "dn1"}}}},
		{"only pending looks are a blind round", [][]Observation{
			{{Node: "dn1", Pending: true}, {Node: "gc", Pending: true}}, {{Node: "dn1"}, {Node: "gc", Pending: true}},
			{{Node: "dn1"}, {Node: "gc", Pending: true}}, {{Node: "dn1"}, {Node: "gc", Pending: true}}},
			[][]Action{nil, nil, nil, nil}},

		// A master's live sync list that differs from the catalog is
		// written again at once, then every Retry rounds while it does;
		// until a look shows it right, the master is not failed over.
		{"a master's wrong sync list is written again", [][]Observation{
			{master(true, "")}, {master(true, "")}, {master(true, "")}, {master(true, "")}, {master(false, "")}, {master(true, "")}},
			[][]Action{{syncAct}, nil, nil, {syncAct}, nil, {syncAct}}},
		{"a master whose list was wrong is held, not failed over", [][]Observation{
			{master(true, "")}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen},
			{{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}},
			[][]Action{{syncAct}, nil, nil, {{Kind: Hold, Node: "dn1", Reason: HoldReason}}, nil, nil, nil}},
		{"a master held may still be restarted", [][]Observation{
			{master(true, "")}, down(true), down(true), down(true), down(true), down(true), down(true)},
			[][]Action{{syncAct}, nil, nil, {{Kind: Restart, Node: "dn1"}}, nil, nil, {{Kind: Hold, Node: "dn1", Reason: HoldReason}}}},
		{"a list seen right again lifts the hold", [][]Observation{
			{master(true, "")}, {master(false, "")}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}},
			[][]Action{{syncAct}, nil, nil, nil, {{Kind: Failover, Node: "dn1"}}}},
		{"an answer without a look at the list keeps the hold", [][]Observation{
			{master(true, "")}, {{Node: "dn1", Answering: true}, seen}, {{Node: "dn1", Responding: true}, seen},
			{{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}, {{Node: "dn1"}, seen}},
			[][]Action{{syncAct}, nil, nil, nil, nil, {{Kind: Hold, Node: "dn1", Reason: HoldReason}}}},
		{"a slave to step up is written at once", [][]Observation{{master(false, "s2")}, {master(false, "s2")}, {master(false, "")}},
			[][]Action{{{Kind: Sync, Node: "dn1", Reason: "it has no synchronous slave; s2 streams from it and becomes one"}}, nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := Memory{}
			for i, obs := range tt.rounds {
				got := Decide(mem, obs, cfg)
				if diff := cmp.Diff(tt.want[i], got); diff != "" {
					t.Errorf("round %d (-want +got):\n%s", i+1, diff)
				}
			}
		})
	}
}

// TestSkipped: an action a DBA's command kept from running is decided
// again next round, without spending a restart or a re-point.
func TestSkipped(t *testing.T) {
	cfg := Config{Failures: 3, Restarts: 1, Follows: 1, Retry: 5}
	seen := Observation{Node: "gc", Answering: true}
	tests := []struct {
		name string
		obs  Observation
		acts []ActionKind // the action decided, skipped, then decided again
	}{
		{"restart", Observation{Node: "n", Role: Slave, AgentUp: true}, []ActionKind{Restart, Restart}},
		{"restart of a stopped node", Observation{Node: "n", Role: Master, AgentUp: true, Stopped: true}, []ActionKind{Restart, Restart}},
		{"failover", Observation{Node: "n", Role: Master, AgentUp: false}, []ActionKind{Failover, Failover}},
		{"isolate", Observation{Node: "n", Role: Coordinator}, []ActionKind{Isolate, Isolate}},
		{"follow", Observation{Node: "n", Role: Slave, Answering: true, Stray: true}, []ActionKind{Follow, Follow}},
		{"rewind", Observation{Node: "n", Role: Slave, Cure: OldMaster, AgentUp: true}, []ActionKind{Rewind, Rewind}},
		{"fence", Observation{Node: "n", Role: Slave, FenceOnly: true, Primary: true}, []ActionKind{Fence, Fence}},
		{"refresh", Observation{Node: "n", Role: Coordinator, Answering: true, Stale: true}, []ActionKind{Refresh, Refresh}},
		{"sync", Observation{Node: "n", Role: Master, Answering: true, SyncRead: true, SyncDiffers: true}, []ActionKind{Sync, Sync}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := Memory{}
			var got []Action
			for i := 0; i < 10 && len(got) == 0; i++ {
				got = Decide(mem, []Observation{seen, tt.obs}, cfg)
			}
			if len(got) != 1 || got[0].Kind != tt.acts[0] {
				t.Fatalf("first action = %v", got)
			}
			mem.Skipped(got[0], cfg)
			again := Decide(mem, []Observation{seen, tt.obs}, cfg)
			if len(again) != 1 || again[0].Kind != tt.acts[1] {
				t.Errorf("after a skip the next round decides %v, want %s", again, tt.acts[1])
			}
		})
	}
}

// TestSuspect: a look that fails at once makes the next rounds come
// sooner; one that hung past its deadline, a node that answers, or one
// just acted on does not.
func TestSuspect(t *testing.T) {
	cfg := Config{Interval: 400 * time.Millisecond, Failures: 3, Restarts: 0, Follows: 2, Retry: 2}
	seen := Observation{Node: "gc", Answering: true}
	tests := []struct {
		name   string
		rounds [][]Observation
		want   bool
	}{
		{"refused once", [][]Observation{{seen, {Node: "dn1"}}}, true},
		{"refused twice", [][]Observation{{seen, {Node: "dn1"}}, {seen, {Node: "dn1"}}}, true},
		{"hung", [][]Observation{{seen, {Node: "dn1", Hung: true}}}, false},
		{"refused, then hung", [][]Observation{{seen, {Node: "dn1"}}, {seen, {Node: "dn1", Hung: true}}}, false},
		{"pending", [][]Observation{{seen, {Node: "dn1", Pending: true}}}, false},
		{"answers again", [][]Observation{{seen, {Node: "dn1"}}, {seen, {Node: "dn1", Answering: true}}}, false},
		{"acted on: counting starts again", [][]Observation{{seen, {Node: "dn1"}}, {seen, {Node: "dn1"}}, {seen, {Node: "dn1"}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := Memory{}
			for _, obs := range tc.rounds {
				Decide(mem, obs, cfg)
			}
			if got := mem.Suspect(); got != tc.want {
				t.Errorf("Suspect() = %v, want %v", got, tc.want)
			}
		})
	}
	if got := confirmEvery(cfg); got != 100*time.Millisecond {
		t.Errorf("confirmEvery(400ms) = %v", got)
	}
	if got := confirmEvery(Config{Interval: 100 * time.Millisecond}); got != 50*time.Millisecond {
		t.Errorf("confirmEvery(100ms) = %v", got)
	}
}

// TestFailingBacksOff: an action that keeps failing is tried at growing
// intervals, capped, and at once when its node's agent changed; a restart
// is never held back (Decide counts its tries).
func TestFailingBacksOff(t *testing.T) {
	cfg := Config{Interval: 400 * time.Millisecond, Retry: 15}
	for fails, want := range map[int]time.Duration{1: 0, 2: 6 * time.Second, 3: 12 * time.Second, 4: 24 * time.Second,
		5: 48 * time.Second, 6: MaxBackoff, 50: MaxBackoff} {
		if got := backoff(fails, cfg); got != want {
			t.Errorf("backoff(%d) = %v, want %v", fails, got, want)
		}
	}
	f := Failing{}
	now := time.Unix(1000, 0)
	fence := Action{Kind: Fence, Node: "dn1", Reason: "two masters"}
	down := &Observation{Node: "dn1"}
	if !f.Due(fence, down, now) {
		t.Fatal("a first try is due")
	}
	if n, next := f.Failed(fence, down, now, cfg); n != 1 || !next.Equal(now) {
		t.Errorf("first failure: %d, next %v", n, next)
	}
	if !f.Due(fence, down, now.Add(time.Millisecond)) {
		t.Error("a second try is due at once")
	}
	n, next := f.Failed(Action{Kind: Fence, Node: "dn1", Reason: "another reason"}, down, now, cfg)
	if n != 2 || next != now.Add(6*time.Second) {
		t.Errorf("second failure: %d, next %v", n, next)
	}
	if f.Due(fence, down, now.Add(5*time.Second)) || !f.Due(fence, down, now.Add(6*time.Second)) {
		t.Error("the third try waits 6 s")
	}
	if !f.Due(Action{Kind: Failover, Node: "dn1"}, down, now) || !f.Due(Action{Kind: Fence, Node: "dn2"}, nil, now) {
		t.Error("another action, or another node, is not held back")
	}
	if !f.Due(fence, &Observation{Node: "dn1", AgentUp: true}, now.Add(time.Second)) {
		t.Error("the agent came back: due at once")
	}
	if f.Due(fence, down, now.Add(time.Second)) == false {
		t.Error("a change forgets the failures")
	}
	restart := Action{Kind: Restart, Node: "dn1"}
	f.Failed(restart, down, now, cfg)
	f.Failed(restart, down, now, cfg)
	if !f.Due(restart, down, now) {
		t.Error("a restart is never held back")
	}
	f.Failed(fence, down, now, cfg)
	f.Failed(fence, down, now, cfg)
	f.Succeeded(fence)
	if !f.Due(fence, down, now) {
		t.Error("a success forgets the failures")
	}
}

// TestAsyncOnlyMasterIsHeld: a master with no sync or potential slave that
// cannot be restarted is not failed over (a failover without FORCE would
// be refused): Hold, said once, then nothing while it stays down; once it
// answers and dies again, Hold is said again.
func TestAsyncOnlyMasterIsHeld(t *testing.T) {
	cfg := Config{Failures: 2, Restarts: 0, Follows: 2, Retry: 2}
	seen := Observation{Node: "gc", Answering: true}
	down := []Observation{seen, {Node: "dn1", Role: Master, AsyncOnly: true}}
	up := []Observation{seen, {Node: "dn1", Role: Master, AsyncOnly: true, Answering: true, SyncRead: true}}
	hold := []Action{{Kind: Hold, Node: "dn1", Reason: AsyncOnlyReason}}
	mem := Memory{}
	var got [][]Action
	for _, obs := range [][]Observation{down, down, down, down, down, up, down, down} {
		got = append(got, Decide(mem, obs, cfg))
	}
	want := [][]Action{nil, hold, nil, nil, nil, nil, nil, hold}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("actions per round (-want +got):\n%s", d)
	}
}
