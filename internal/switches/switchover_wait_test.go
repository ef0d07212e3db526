package switches

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// fakeWaiter records the scopes a switchover declares; guest, when set,
// is what "the doctor" does under the first scope (its Close reports one
// action let in).
type fakeWaiter struct {
	open   []string
	scopes [][]string
	closes int
	guest  func()
}

func (w *fakeWaiter) Open(scope []string) {
	if w.open == nil {
		w.open = scope
		w.scopes = append(w.scopes, scope)
	}
}

func (w *fakeWaiter) Close() int {
	w.closes++
	if w.open == nil {
		return 0
	}
	w.open = nil
	if w.guest != nil {
		w.guest()
		w.guest = nil
		return 1
	}
	return 0
}

// twoGroups is world() with a second datanode group dn2 (h3) and its sync
// slave dn2s (h2).
func twoGroups() *cluster.State {
	s := world()
	fleettest.AddNode(s, "dn2", "h3", cluster.DatanodeMaster, "", "", true)
	fleettest.AddNode(s, "dn2s", "h2", cluster.DatanodeSlave, "dn2", cluster.Sync, true)
	return s
}

// statesSeen wraps the fake fleet to keep the catalog states the
// coordinators are configured from (in a hold's re-point or not).
type statesSeen struct {
	*fleettest.Fleet
	mu   sync.Mutex // the holds re-point in parallel
	seen []*cluster.State
}

func (f *statesSeen) saw(s *cluster.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, s)
}

func (f *statesSeen) ConfigureCoordinator(ctx context.Context, s *cluster.State, c fleet.Member, ok func(cluster.Node) bool) error {
	f.saw(s)
	return f.Fleet.ConfigureCoordinator(ctx, s, c, ok)
}

func (f *statesSeen) HoldWrites(ctx context.Context, c fleet.Member, server string) (fleet.WriteHold, error) {
	h, err := f.Fleet.HoldWrites(ctx, c, server)
	if err != nil {
		return nil, err
	}
	return &seenHold{h, f}, nil
}

type seenHold struct {
	fleet.WriteHold
	f *statesSeen
}

func (h *seenHold) Repoint(ctx context.Context, s *cluster.State, old, newName string, ok func(cluster.Node) bool) error {
	h.f.saw(s)
	return h.WriteHold.Repoint(ctx, s, old, newName, ok)
}

// TestSwitchoverLetsTheDoctorActWhileItWaits: a switchover waiting for its
// master's clients declares its group and the coordinators as its scope,
// and only while it waits; a doctor's failover of another group made
// meanwhile is read again before the switch goes on, so the coordinators
// are re-pointed from the catalog the doctor left, not the one the
// switchover first read.
func TestSwitchoverLetsTheDoctorActWhileItWaits(t *testing.T) {
	r := newRig(twoGroups())
	spy := &statesSeen{Fleet: r.f}
	r.x.Fleet = spy
	w := &fakeWaiter{}
	r.x.Guests = w
	r.f.Nodes["dn1"].Sessions = 1
	asked := 0
	r.f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "busy dn1" {
			if asked++; asked == 3 {
				f.Nodes["dn1"].Sessions = 0
			}
		}
		return nil
	}
	w.guest = func() {
		// The doctor's failover of dn2, as its catalog step writes it.
		if err := r.cat.Commit(context.Background(), &Journal{Command: "DOCTOR FAILOVER dn2"}, Step{"done", "end", ""},
			func(sn Snapshot) (cluster.Plan, error) {
				return cluster.PlanFailover(sn.State, "dn2", "dn2s"), nil
			}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := switchover(r, Switchover{MaxTrys: 30}); err != nil {
		t.Fatal(err)
	}
	if len(w.scopes) == 0 {
		t.Fatal("the switchover never let the doctor in while it waited")
	}
	want := []string{"dn1", "dn1s", "dn1p", "gc", "cn1"}
	if got := w.scopes[0]; !slices.Equal(got, want) {
		t.Errorf("scope = %q, want %q", got, want)
	}
	if w.open != nil {
		t.Error("the scope is still open after the switch")
	}
	if len(spy.seen) == 0 {
		t.Fatal("no coordinator was configured")
	}
	for _, s := range spy.seen {
		if n, _ := s.Node("dn2s"); n.Type != cluster.DatanodeMaster {
			t.Errorf("a coordinator was configured from a catalog where dn2s is %s: the doctor's failover would be undone", n.Type)
		}
	}
	r.nodes(t, map[string]string{"dn1s": "datanode master   true true true", "dn2s": "datanode master   true true true"})
}

// TestSwitchoverNoWaitNoScope: a master without clients is switched at
// once; nothing is declared, and a switch without a Waiter works as before.
func TestSwitchoverNoWaitNoScope(t *testing.T) {
	r := newRig(twoGroups())
	w := &fakeWaiter{}
	r.x.Guests = w
	if _, err := switchover(r, Switchover{}); err != nil {
		t.Fatal(err)
	}
	if len(w.scopes) != 0 {
		t.Errorf("scopes declared without a wait: %q", w.scopes)
	}
}

// TestSwitchoverRefusesWhatChangedWhileWaiting: should anything the
// switchover decided on change while it waited (its group), it refuses
// with nothing switched, journaled at the quiesce.
func TestSwitchoverRefusesWhatChangedWhileWaiting(t *testing.T) {
	r := newRig(twoGroups())
	w := &fakeWaiter{}
	r.x.Guests = w
	r.f.Nodes["dn1"].Sessions = 1
	r.f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "busy dn1" && len(w.scopes) > 0 {
			f.Nodes["dn1"].Sessions = 0
		}
		return nil
	}
	w.guest = func() {
		r.cat.apply(cluster.Plan{UpdateNodes: []cluster.Node{func() cluster.Node {
			n, _ := r.cat.sn.State.Node("dn1p")
			n.SyncState = cluster.Async
			return n
		}()}})
	}
	_, err := switchover(r, Switchover{MaxTrys: 30})
	pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
	if !strings.Contains(pe.Message, "dn1p changed while SWITCHOVER waited") {
		t.Errorf("message = %q", pe.Message)
	}
	if n := r.f.Node("dn1"); !n.Running || n.InRecovery {
		t.Errorf("dn1 after the refusal: %+v", n)
	}
	if len(r.f.Held) != 0 {
		t.Errorf("writes still held: %v", r.f.Held)
	}
	r.journal(t, "SWITCHOVER dn1s running start", "SWITCHOVER dn1s failed quiesce")
}

// TestSwitchoverReplayError: a slave that does not replay the old
// master's shutdown checkpoint is said with the checkpoint's LSN and the
// cause; a statement cancelled during that wait is a cancellation.
func TestSwitchoverReplayError(t *testing.T) {
	r := newRig(world())
	r.f.Fail["waitreplay dn1s"] = fleettest.ErrBoom
	_, err := switchover(r, Switchover{})
	pe := wantCode(t, err, pgerror.ObjectNotInPrereqState)
	if !strings.HasPrefix(pe.Message, "check dn1 and dn1s have the same xlog position failed: the shutdown checkpoint of dn1 is at ") ||
		!strings.HasSuffix(pe.Message, ": boom") || !errors.Is(err, fleettest.ErrBoom) {
		t.Errorf("err = %q", pe.Message)
	}

	r = newRig(world())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.f.Before = func(_ *fleettest.Fleet, step string) error {
		if step == "waitreplay dn1s" {
			cancel()
		}
		return nil
	}
	_, err = r.x.Switchover(ctx, Switchover{Family: cluster.Datanode, Slave: "dn1s"}, r.p)
	pe = wantCode(t, err, pgerror.QueryCanceled)
	if !strings.HasPrefix(pe.Message, "SWITCHOVER cancelled while waiting for dn1s to replay the shutdown checkpoint of dn1 at ") ||
		!errors.Is(err, context.Canceled) {
		t.Errorf("err = %q", pe.Message)
	}
	if n := r.f.Node("dn1"); !n.Running || n.InRecovery {
		t.Errorf("dn1 after a cancelled switchover: %+v", n)
	}
}
