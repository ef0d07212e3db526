package dataplane

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sess is a remote session of global transaction app ("cn1:10") with pid
// on its node, its transaction age, and its wait (0: none) for blockers.
func sess(pid int, app string, xact, wait time.Duration, blockers ...int) Session {
	s := Session{PID: pid, XactAge: xact, Waiting: wait, BlockedBy: blockers}
	if app != "" {
		s.App = "adb:" + app
	}
	if wait > 0 {
		s.Lock = "ShareLock on transactionid"
	}
	return s
}

func dn(name string, ss ...Session) NodeWaits {
	return NodeWaits{Node: name, DeadlockTimeout: time.Second, Sessions: ss}
}

func g(c string, pid int) Txn { return Txn{Coordinator: c, PID: pid} }

const s = time.Second

func TestFind(t *testing.T) {
	// cn1:10 updated a row on dn1 and waits on dn2 for cn2:20, which
	// updated a row on dn2 and waits on dn1 for cn1:10.
	crossed := []NodeWaits{
		dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn2:20", 5*s, 3*s, 101)),
		dn("dn2", sess(201, "cn1:10", 8*s, 2*s, 202), sess(202, "cn2:20", 5*s, 0)),
	}
	tests := []struct {
		name  string
		nodes []NodeWaits
		want  []Deadlock
	}{
		{name: "nothing waits", nodes: []NodeWaits{dn("dn1", sess(1, "cn1:1", s, 0)), dn("dn2")}},
		{name: "a chain is no cycle", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn2:20", 5*s, 3*s, 101)),
			dn("dn2", sess(202, "cn2:20", 5*s, 0), sess(203, "cn3:30", 4*s, 3*s, 202)),
		}},
		{name: "two datanodes, opposite order: the younger is the victim", nodes: crossed, want: []Deadlock{{
			Victim: g("cn2", 20), Waited: 3 * s,
			Cycle: []Edge{
				{From: g("cn1", 10), To: g("cn2", 20), Node: "dn2", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: g("cn2", 20), To: g("cn1", 10), Node: "dn1", Lock: "ShareLock on transactionid", Age: 3 * s},
			},
		}}},
		{name: "a wait younger than MinWait is no edge yet", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn2:20", 5*s, 3*s, 101)),
			dn("dn2", sess(201, "cn1:10", 8*s, 500*time.Millisecond, 202), sess(202, "cn2:20", 5*s, 0)),
		}},
		{name: "a blocker that ended meanwhile is no edge", nodes: []NodeWaits{
			dn("dn1", sess(102, "cn2:20", 5*s, 3*s, 101)),
			dn("dn2", sess(201, "cn1:10", 8*s, 2*s, 202), sess(202, "cn2:20", 5*s, 0)),
		}},
		{name: "one node's cycle is PostgreSQL's while it may still see it", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 1500*time.Millisecond, 102), sess(102, "cn2:20", 5*s, 1500*time.Millisecond, 101)),
		}},
		{name: "one node's cycle outliving deadlock_timeout + MinWait", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 3*s, 102), sess(102, "cn2:20", 5*s, 3*s, 101)),
		}, want: []Deadlock{{
			Victim: g("cn2", 20), Waited: 3 * s,
			Cycle: []Edge{
				{From: g("cn1", 10), To: g("cn2", 20), Node: "dn1", Lock: "ShareLock on transactionid", Age: 3 * s},
				{From: g("cn2", 20), To: g("cn1", 10), Node: "dn1", Lock: "ShareLock on transactionid", Age: 3 * s},
			},
		}}},
		{name: "two sessions of one transaction: PostgreSQL cannot see it", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn1:10", 9*s, 4*s, 101)),
		}, want: []Deadlock{{
			Victim: g("cn1", 10), Waited: 4 * s,
			Cycle: []Edge{{From: g("cn1", 10), To: g("cn1", 10), Node: "dn1", Lock: "ShareLock on transactionid", Age: 4 * s}},
		}}},
		{name: "through a datanode's local session: the victim is global", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(77, "", 20*s, 2*s, 101), sess(102, "cn2:20", 5*s, 2*s, 77)),
			dn("dn2", sess(201, "cn1:10", 8*s, 2*s, 202), sess(202, "cn2:20", 5*s, 0)),
		}, want: []Deadlock{{
			Victim: g("cn2", 20), Waited: 2 * s,
			Cycle: []Edge{
				{From: g("cn1", 10), To: g("cn2", 20), Node: "dn2", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: g("cn2", 20), To: Txn{Local: "dn1", PID: 77}, Node: "dn1", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: Txn{Local: "dn1", PID: 77}, To: g("cn1", 10), Node: "dn1", Lock: "ShareLock on transactionid", Age: 2 * s},
			},
		}}},
		{name: "a coordinator's own sessions are its transactions", nodes: []NodeWaits{
			{Node: "cn1", Coordinator: true, DeadlockTimeout: s, Sessions: []Session{
				sess(10, "", 9*s, 0), {PID: 11, XactAge: 3 * s, Waiting: 2 * s, BlockedBy: []int{10}}}},
			dn("dn1", sess(101, "cn1:10", 9*s, 2*s, 102), sess(102, "cn1:11", 3*s, 0)),
		}, want: []Deadlock{{
			Victim: g("cn1", 11), Waited: 2 * s,
			Cycle: []Edge{
				{From: g("cn1", 10), To: g("cn1", 11), Node: "dn1", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: g("cn1", 11), To: g("cn1", 10), Node: "cn1", Age: 2 * s},
			},
		}}},
		{name: "one victim breaks a knot of two cycles", nodes: []NodeWaits{
			// cn1:10 → cn2:20 → cn1:10 and cn3:30 → cn2:20 → cn3:30; cn2:20 is youngest.
			dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn2:20", 2*s, 2*s, 101, 103), sess(103, "cn3:30", 7*s, 0)),
			dn("dn2", sess(201, "cn1:10", 8*s, 2*s, 202), sess(202, "cn2:20", 2*s, 0), sess(203, "cn3:30", 7*s, 2*s, 202)),
		}, want: []Deadlock{{
			Victim: g("cn2", 20), Waited: 2 * s,
			Cycle: []Edge{
				{From: g("cn1", 10), To: g("cn2", 20), Node: "dn2", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: g("cn2", 20), To: g("cn1", 10), Node: "dn1", Lock: "ShareLock on transactionid", Age: 2 * s},
			},
		}}},
		{name: "two separate cycles, two victims", nodes: []NodeWaits{
			dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn2:20", 5*s, 3*s, 101),
				sess(103, "cn3:30", 9*s, 0), sess(104, "cn4:40", 6*s, 3*s, 103)),
			dn("dn2", sess(201, "cn1:10", 8*s, 2*s, 202), sess(202, "cn2:20", 5*s, 0),
				sess(203, "cn3:30", 8*s, 2*s, 204), sess(204, "cn4:40", 6*s, 0)),
		}, want: []Deadlock{
			{Victim: g("cn2", 20), Waited: 3 * s, Cycle: []Edge{
				{From: g("cn1", 10), To: g("cn2", 20), Node: "dn2", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: g("cn2", 20), To: g("cn1", 10), Node: "dn1", Lock: "ShareLock on transactionid", Age: 3 * s},
			}},
			{Victim: g("cn4", 40), Waited: 3 * s, Cycle: []Edge{
				{From: g("cn3", 30), To: g("cn4", 40), Node: "dn2", Lock: "ShareLock on transactionid", Age: 2 * s},
				{From: g("cn4", 40), To: g("cn3", 30), Node: "dn1", Lock: "ShareLock on transactionid", Age: 3 * s},
			}},
		}},
		{name: "local sessions alone are PostgreSQL's", nodes: []NodeWaits{
			dn("dn1", sess(1, "", 9*s, 5*s, 2), sess(2, "", 9*s, 5*s, 1)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Find(tt.nodes, DefaultConfig)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseApp(t *testing.T) {
	tests := []struct {
		app  string
		c    string
		pid  int
		isOK bool
	}{
		{"adb:cn1:4242", "cn1", 4242, true},
		{"adb:a:b:17", "a:b", 17, true},
		{"adb:cn1:", "", 0, false},
		{"adb::17", "", 0, false},
		{"adb:cn1:x", "", 0, false},
		{"psql", "", 0, false},
		{"adb:cn1:-3", "", 0, false},
	}
	for _, tt := range tests {
		c, pid, ok := ParseApp(tt.app)
		if c != tt.c || pid != tt.pid || ok != tt.isOK {
			t.Errorf("ParseApp(%q) = %q, %d, %v; want %q, %d, %v", tt.app, c, pid, ok, tt.c, tt.pid, tt.isOK)
		}
	}
}

func TestDetail(t *testing.T) {
	d := Find([]NodeWaits{
		dn("dn1", sess(101, "cn1:10", 9*s, 0), sess(102, "cn2:20", 5*s, 3*s, 101)),
		dn("dn2", sess(201, "cn1:10", 8*s, 2*s, 202), sess(202, "cn2:20", 5*s, 0)),
	}, DefaultConfig)
	if len(d) != 1 {
		t.Fatalf("Find: %d deadlocks, want 1", len(d))
	}
	want := "Transaction cn2:20 waits for ShareLock on transactionid at node dn1; blocked by transaction cn1:10.\n" +
		"Transaction cn1:10 waits for ShareLock on transactionid at node dn2; blocked by transaction cn2:20."
	if got := d[0].Detail(); got != want {
		t.Errorf("Detail:\n%s\nwant:\n%s", got, want)
	}
	if got := d[0].Nodes(); !cmp.Equal(got, []string{"dn2", "dn1"}) {
		t.Errorf("Nodes = %v", got)
	}
}
