package mgr

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
)

// TestGuestPass: an action is let in only while a scope is open, when it
// touches none of its nodes and no other guest acts; Close waits for the
// guest and says how many came.
func TestGuestPass(t *testing.T) {
	var g guestPass
	if _, ok := g.enter([]string{"dn2"}); ok {
		t.Fatal("a guest let in with no scope open")
	}
	if n := g.Close(); n != 0 {
		t.Errorf("Close with no scope = %d", n)
	}
	g.Open([]string{"dn1", "dn1s", "cn1"})
	for _, nodes := range [][]string{{"dn1s"}, {"dn2", "cn1"}, nil} {
		if _, ok := g.enter(nodes); ok {
			t.Errorf("a guest touching %q let in", nodes)
		}
	}
	leave, ok := g.enter([]string{"dn2", "dn2s"})
	if !ok {
		t.Fatal("a guest on another group refused")
	}
	if _, ok := g.enter([]string{"dn3"}); ok {
		t.Error("two guests at once")
	}
	closed := make(chan int)
	go func() { closed <- g.Close() }()
	select {
	case n := <-closed:
		t.Fatalf("Close returned %d while the guest acts", n)
	case <-time.After(50 * time.Millisecond):
	}
	if _, ok := g.enter([]string{"dn3"}); ok {
		t.Error("a guest let in after Close began")
	}
	leave()
	leave() // twice is once
	if n := <-closed; n != 1 {
		t.Errorf("Close = %d, want 1 guest", n)
	}
	if _, ok := g.enter([]string{"dn2"}); ok {
		t.Error("a guest let in after Close")
	}
}

// twoGroupsRig is handsRig with a second group: dn2 (h1) and its slave
// dn2s (h2), which the fake fleet makes on first use.
func twoGroupsRig(t *testing.T) (*Manager, *fleettest.Fleet) {
	t.Helper()
	m, cat, f := handsRig(t)
	mustRun(t, m, `ADD DATANODE MASTER dn2 (HOST=h1, PORT=15442, PATH='/data/dn2');
		ADD DATANODE SLAVE dn2s FOR dn2 (HOST=h2, PORT=15443, PATH='/data/dn2s')`)
	markInitialized(t, cat)
	setNodes(t, cat, func(n *cluster.Node) { n.AllowCure = true })
	return m, f
}

// TestDoctorGuestDuringAWait: while a command holding the cluster lock
// waits with dn1's group and cn1 as its scope, the doctor acts on dn2's
// group, not on dn1's nor on cn1; without a scope it acts on nothing; the
// lock is freed only once the guest's action ended.
func TestDoctorGuestDuringAWait(t *testing.T) {
	m, f := twoGroupsRig(t)
	ctx := context.Background()
	h := doctorHands{m}
	for _, n := range []string{"dn1", "dn1s", "cn1"} {
		f.Nodes[n].Running = false
	}
	unlock, err := m.lockCluster("SWITCHOVER")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Restart(ctx, "dn2"); !errors.Is(err, doctor.ErrBusy) {
		t.Errorf("restart of dn2 with no scope open: %v, want busy", err)
	}
	m.guests.Open([]string{"dn1", "dn1s", "cn1"})
	for _, n := range []string{"dn1s", "cn1"} {
		if err := h.Restart(ctx, n); !errors.Is(err, doctor.ErrBusy) {
			t.Errorf("restart of %s in the scope: %v, want busy", n, err)
		}
	}
	// A rewind or a rejoin may be long; a resume names no node: none is
	// a guest.
	for _, act := range []doctor.ActionKind{doctor.Rewind, doctor.Rejoin, "resume"} {
		node := map[doctor.ActionKind]string{doctor.Rewind: "dn2", doctor.Rejoin: "dn2"}[act]
		if _, err := h.lock(ctx, act, node); !errors.Is(err, doctor.ErrBusy) {
			t.Errorf("%s during the wait: %v, want busy", act, err)
		}
	}
	if err := h.Restart(ctx, "dn2"); err != nil {
		t.Errorf("restart of dn2 outside the scope: %v", err)
	}
	// dn2s is dn2's: a guest too.
	if err := h.Restart(ctx, "dn2s"); err != nil {
		t.Errorf("restart of dn2s outside the scope: %v", err)
	}
	if got := f.StepList(); len(got) != 3 || got[0] != "start dn2" || got[2] != "start dn2s" {
		t.Errorf("steps = %q, want dn2 and dn2s started (and nothing else)", got)
	}

	// A guest that acts holds the lock's release.
	acting, release := make(chan struct{}), make(chan struct{})
	f.Nodes["dn2"].Running = false
	f.Before = func(_ *fleettest.Fleet, step string) error {
		if step == "start dn2" {
			close(acting)
			<-release
		}
		return nil
	}
	done := make(chan error)
	go func() { done <- h.Restart(ctx, "dn2") }()
	<-acting
	unlocked := make(chan struct{})
	go func() { unlock(); close(unlocked) }()
	select {
	case <-unlocked:
		t.Fatal("the lock was freed while the doctor's guest acted")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-unlocked
	unlock2, err := m.lockCluster("INIT ALL")
	if err != nil {
		t.Fatalf("the lock after the command: %v", err)
	}
	unlock2()
}
