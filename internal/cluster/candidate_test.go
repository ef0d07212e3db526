package cluster

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// TestChooseCandidateNotInRecovery: a slave that answers but is not in
// recovery (promoted by hand, or a primary of its own after a botched
// restore) is never the candidate, however much WAL it has: its WAL is
// not the old master's. It counts as lost.
func TestChooseCandidateNotInRecovery(t *testing.T) {
	s := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("p", "m", Potential, "h3", 1),
		dns("a", "m", Async, "h2", 2))...)
	up := func(lsn uint64) Probe { return Probe{Reachable: true, InRecovery: true, LSN: lsn} }
	primary := func(lsn uint64) Probe { return Probe{Reachable: true, LSN: lsn} }
	tests := []struct {
		name      string
		to        string
		force     bool
		probes    map[string]Probe
		want      string
		followers []string
		lost      []string
		code      string
	}{
		{"FORCE passes over a primary ahead of the rest", "", true, map[string]Probe{"s": primary(900), "p": up(200), "a": up(300)},
			"a", []string{"p"}, []string{"s"}, ""},
		{"without FORCE a sync slave out of recovery refuses", "", false, map[string]Probe{"s": primary(900), "p": up(300), "a": up(300)},
			"", nil, nil, pgerror.ObjectNotInPrereqState},
		{"an async slave out of recovery is lost, not chosen", "", false, map[string]Probe{"s": up(300), "p": up(300), "a": primary(900)},
			"s", []string{"p"}, []string{"a"}, ""},
		{"TO a slave out of recovery refuses", "a", true, map[string]Probe{"s": up(300), "p": up(300), "a": primary(900)},
			"", nil, nil, pgerror.ObjectNotInPrereqState},
		{"nothing in recovery refuses", "", true, map[string]Probe{"s": primary(900), "p": primary(900), "a": primary(900)},
			"", nil, nil, pgerror.ObjectNotInPrereqState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ChooseCandidate(s, "m", tt.to, tt.force, tt.probes)
			if tt.code != "" {
				if pe, ok := pgerror.As(err); !ok || pe.Code != tt.code {
					t.Fatalf("err = %v (candidate %q), want %s", err, c.Name, tt.code)
				}
				if cerr := CheckCandidate(s, "m", tt.to, tt.force, tt.probes); cerr == nil {
					t.Error("CheckCandidate accepted what ChooseCandidate refuses")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tt.want {
				t.Errorf("candidate = %s, want %s", c.Name, tt.want)
			}
			if diff := cmp.Diff(tt.followers, c.Followers); diff != "" {
				t.Errorf("followers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.lost, c.Lost); diff != "" {
				t.Errorf("lost (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanSwitchoverSaysNothingOfAFailover: the failover's notices (a
// potential slave stepping up, the old master kicked out) do not apply to
// a switchover, which keeps the old master and every sync state.
func TestPlanSwitchoverSaysNothingOfAFailover(t *testing.T) {
	s := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("p", "m", Potential, "h3", 1))...)
	if f := PlanFailover(s, "m", "s"); len(f.Notices) != 2 {
		t.Fatalf("failover notices = %v, want the step up and the kick-out", f.Notices)
	}
	p := PlanSwitchover(s, "m", "s")
	if len(p.Notices) != 0 {
		t.Errorf("switchover notices = %v", p.Notices)
	}
}

// TestChooseCandidatePrefersTheMastersZone: on equal WAL and sync state,
// the slave in the master's zone is promoted, not one of another zone.
func TestChooseCandidatePrefersTheMastersZone(t *testing.T) {
	s := state(inCluster(dn("m", "h1", 1), dns("far", "m", Async, "h2", 1), dns("near", "m", Async, "h3", 1),
		dns("s", "m", Sync, "h2", 2))...)
	for i := range s.Nodes {
		if s.Nodes[i].Name == "far" {
			s.Nodes[i].Zone = "z2"
		}
	}
	up := Probe{Reachable: true, InRecovery: true, LSN: 300}
	c, err := ChooseCandidate(s, "m", "", true, map[string]Probe{"far": up, "near": up, "s": {Reachable: true, InRecovery: true, LSN: 200}})
	if err != nil || c.Name != "near" {
		t.Errorf("chose %q (%v), want near", c.Name, err)
	}
}
