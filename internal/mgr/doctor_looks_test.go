package mgr

import (
	"context"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/doctor"
)

// TestLookoutDoesNotWaitForACutHost: a round waits for its looks at most
// the interval; a look still running is no news while young, a failed look
// once older than the deadline, and not begun again meanwhile; its result,
// once it ends, is the next round's; a node the catalog changed gets a
// fresh look.
func TestLookoutDoesNotWaitForACutHost(t *testing.T) {
	var l lookout
	l.reset(20 * time.Millisecond)
	l.late = 100 * time.Millisecond
	release := make(chan struct{})
	started := map[string]int{}
	do := func(names []string) func(context.Context, int, func()) lookResult {
		return func(_ context.Context, i int, answered func()) lookResult {
			if names[i] == "slow" {
				answered()
			}
			if names[i] == "cut" || names[i] == "slow" {
				<-release
			}
			return lookResult{obs: doctor.Observation{Node: names[i], Answering: true}}
		}
	}
	names := []string{"ok", "cut", "slow"}
	round := func(keys []string) []lookAge {
		for i := range names {
			if l.looks[names[i]] == nil || l.looks[names[i]].key != keys[i] {
				started[names[i]]++
			}
		}
		begin := time.Now()
		res, ages := l.round(context.Background(), names, keys, do(names))
		if d := time.Since(begin); d > 500*time.Millisecond {
			t.Errorf("a round waited %v", d)
		}
		if ages[0] != lookDone || !res[0].obs.Answering {
			t.Errorf("the node that answers: %v %+v", ages[0], res[0])
		}
		return ages
	}
	keys := []string{"a", "a", "a"}
	if got := round(keys); got[1] != lookYoung || got[2] != lookYoung {
		t.Errorf("first round: %v, want young", got)
	}
	time.Sleep(120 * time.Millisecond)
	// A node that answered its login and is slow in the rest of its look
	// gets twice the deadline.
	if got := round(keys); got[1] != lookOverdue || got[2] != lookYoung {
		t.Errorf("after the deadline: %v, want overdue and young", got)
	}
	time.Sleep(100 * time.Millisecond)
	if got := round(keys)[2]; got != lookOverdue {
		t.Errorf("after twice the deadline: %v, want overdue", got)
	}
	if started["cut"] != 1 {
		t.Errorf("looks begun at the cut node: %d, want 1", started["cut"])
	}
	close(release)
	time.Sleep(20 * time.Millisecond)
	if got := round(keys)[1]; got != lookDone {
		t.Errorf("once it ended: %v, want done", got)
	}
	if got := round([]string{"a", "b", "a"})[1]; got != lookDone || started["cut"] != 2 {
		t.Errorf("a changed node: %v, looks begun %d", got, started["cut"])
	}
}
