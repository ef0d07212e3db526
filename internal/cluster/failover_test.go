package cluster

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

func inCluster(nodes ...Node) []Node {
	for i := range nodes {
		nodes[i].Initialized, nodes[i].InCluster = true, true
	}
	return nodes
}

func TestChooseCandidate(t *testing.T) {
	s := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("p", "m", Potential, "h3", 1),
		dns("a", "m", Async, "h2", 2), dns("c", "s", Async, "h3", 2))...)
	up := func(lsn uint64) Probe { return Probe{Reachable: true, InRecovery: true, LSN: lsn} }
	tests := []struct {
		name      string
		to        string
		force     bool
		probes    map[string]Probe
		want      string
		followers []string
		code      string
	}{
		{"sync is the most advanced", "", false, map[string]Probe{"s": up(300), "p": up(200), "a": up(100)}, "s", []string{"p", "a"}, ""},
		{"tie prefers sync", "", false, map[string]Probe{"s": up(300), "p": up(300), "a": up(300)}, "s", []string{"p", "a"}, ""},
		{"potential acted as sync and is ahead", "", false, map[string]Probe{"s": up(100), "p": up(300), "a": up(50)}, "p", []string{"s", "a"}, ""},
		{"an async slave ahead loses nothing", "", false, map[string]Probe{"s": up(100), "p": up(100), "a": up(300)}, "a", []string{"s", "p"}, ""},
		{"a sync slave down refuses", "", false, map[string]Probe{"s": {}, "p": up(300), "a": up(300)}, "", nil, pgerror.ObjectNotInPrereqState},
		{"a potential slave down refuses", "", false, map[string]Probe{"s": up(300), "p": {Reachable: true}, "a": up(300)}, "", nil, pgerror.ObjectNotInPrereqState},
		{"FORCE takes the best of what answers", "", true, map[string]Probe{"s": {}, "p": up(200), "a": up(300)}, "a", []string{"p"}, ""},
		{"nothing answers", "", true, map[string]Probe{}, "", nil, pgerror.ObjectNotInPrereqState},
		{"TO a slave behind refuses", "p", false, map[string]Probe{"s": up(300), "p": up(200), "a": up(100)}, "", nil, pgerror.ObjectNotInPrereqState},
		{"TO a slave as advanced", "p", false, map[string]Probe{"s": up(300), "p": up(300), "a": up(100)}, "p", []string{"s", "a"}, ""},
		{"TO with FORCE", "a", true, map[string]Probe{"s": up(300), "p": up(200), "a": up(100)}, "a", []string{"s", "p"}, ""},
		{"TO a cascaded slave refuses", "c", true, map[string]Probe{"s": up(300), "c": up(300)}, "", nil, pgerror.ObjectNotInPrereqState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ChooseCandidate(s, "m", tt.to, tt.force, tt.probes)
			if tt.code != "" {
				if pe, ok := pgerror.As(err); !ok || pe.Code != tt.code {
					t.Fatalf("err = %v, want %s", err, tt.code)
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
		})
	}
	onlyAsync := state(inCluster(dn("m", "h1", 1), dns("a", "m", Async, "h2", 1))...)
	if _, err := ChooseCandidate(onlyAsync, "m", "", false, map[string]Probe{"a": up(1)}); err == nil {
		t.Error("failover to an async-only group without FORCE accepted")
	}
}

func TestPlanFailover(t *testing.T) {
	s := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("p", "m", Potential, "h3", 1),
		dns("c", "s", Async, "h3", 2))...)
	p := PlanFailover(s, "m", "s")
	got := map[string]string{}
	for _, n := range p.UpdateNodes {
		got[n.Name] = string(n.Type) + "/" + n.Master + "/" + n.SyncState + "/" + boolText(n.Initialized)
	}
	want := map[string]string{
		"m": "datanode slave/s/async/f",
		"s": "datanode master///t",
		"p": "datanode slave/s/sync/t",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
	if p.UpdateNodes[0].Name != "m" {
		t.Errorf("the old master must be updated first (one gtmcoord master at a time), got %s", p.UpdateNodes[0].Name)
	}
	if lsn, err := ParseLSN("1/2A"); err != nil || lsn != 1<<32|0x2a || FormatLSN(lsn) != "1/2A" {
		t.Errorf("ParseLSN = %d, %v", lsn, err)
	}
}

func boolText(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

func TestPlanSwitchover(t *testing.T) {
	s := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("p", "m", Potential, "h3", 1))...)
	p := PlanSwitchover(s, "m", "s")
	got := map[string]string{}
	for _, n := range p.UpdateNodes {
		got[n.Name] = string(n.Type) + "/" + n.Master + "/" + n.SyncState + "/" + boolText(n.InCluster)
	}
	want := map[string]string{"m": "datanode slave/s/sync/t", "s": "datanode master///t", "p": "datanode slave/s/potential/t"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
}
