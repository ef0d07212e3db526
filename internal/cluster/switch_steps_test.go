package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stepLines renders steps as "kind node [from from] [Ns] [all] [journal status step detail]".
func stepLines(steps []SwitchStep) []string {
	var out []string
	for _, st := range steps {
		l := string(st.Kind)
		if st.Node != "" {
			l += " " + st.Node
		}
		if st.From != "" {
			l += " from " + st.From
		}
		if st.Seconds != 0 {
			l += fmt.Sprintf(" %ds", st.Seconds)
		}
		if st.WaitAll {
			l += " all"
		}
		if st.Force {
			l += " force"
		}
		if st.Quick {
			l += " quick"
		}
		if j := st.Journal; j != nil {
			l += " [" + strings.TrimSpace(fmt.Sprintf("%s %s %s", j.Status, j.Step, j.Detail)) + "]"
		}
		out = append(out, l)
	}
	return out
}

func TestSwitchSteps(t *testing.T) {
	s := group()
	tests := []struct {
		name string
		plan SwitchPlan
		want []string
		done JournalEntry
	}{
		{"fence", SwitchPlan{Steps: FenceSteps("m")}, []string{"fence m"}, JournalEntry{}},
		{"failover", FailoverSteps("m", Candidate{Name: "s", Followers: []string{"p", "a"}}), []string{
			"promote s quick [running promote s]",
			"standalone s",
			"catalog s from m [running catalog s]",
			"refresh coordinators s from m [running coordinators s]",
			"checkpoint s",
			"follow p from s [running follow p s]",
			"follow a from s [running follow a s]",
			"sync names from s",
		}, JournalEntry{"done", "end", "s"}},
		{"failover, nobody follows", FailoverSteps("m", Candidate{Name: "p", Lost: []string{"s"}}), []string{
			"promote p quick [running promote p]",
			"standalone p",
			"catalog p from m [running catalog p]",
			"refresh coordinators p from m [running coordinators p]",
			"checkpoint p",
			"sync names from p",
		}, JournalEntry{"done", "end", "p"}},
		{"switchover", SwitchoverSteps(s, "m", "s", 0, false, map[string]Probe{"s": up(5), "p": up(5), "a": {}}), []string{
			"quiesce m 10s",
			"stop old master m [running stop old master m]",
			"caught up s from m 10s",
			"promote s quick [running promote s]",
			"standalone s",
			"catalog s from m [running catalog s]",
			"refresh coordinators s from m",
			"checkpoint s",
			"rejoin m from s",
			"follow p from s",
			"sync names from s all",
			"refresh coordinators",
		}, JournalEntry{"done", "end", "s"}},
		{"switchover waits at most an hour, forced", SwitchoverSteps(s, "m", "p", 7200, true, nil), []string{
			"quiesce m 3600s force",
			"stop old master m [running stop old master m]",
			"caught up p from m 3600s",
			"promote p quick [running promote p]",
			"standalone p",
			"catalog p from m [running catalog p]",
			"refresh coordinators p from m",
			"checkpoint p",
			"rejoin m from p",
			"sync names from p all",
			"refresh coordinators",
		}, JournalEntry{"done", "end", "p"}},
		{"rewind", RewindSteps("s", "m"), []string{
			"clean shutdown m from s",
			"checkpoint s",
			"replication slot m from s",
			"pg_rewind m from s [running pg_rewind]",
			"configure m [running configure]",
			"standby m from s",
			"start m",
			"catalog m from s [running rejoined]",
			"sync names m from s all",
			"refresh coordinators",
		}, JournalEntry{"done", "end", ""}},
		{"rewind by base backup", RewindBaseBackupSteps("s", "m"), []string{
			"stop m",
			"clean m",
			"replication slot m from s",
			"basebackup m from s [running pg_basebackup]",
			"configure m [running configure by base backup]",
			"standby m from s",
			"start m",
			"catalog m from s [running rejoined by base backup]",
			"sync names m from s all",
			"refresh coordinators",
		}, JournalEntry{"done", "end", "by base backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, stepLines(tt.plan.Steps)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if tt.plan.Done != tt.done {
				t.Errorf("done = %+v, want %+v", tt.plan.Done, tt.done)
			}
		})
	}
}

// TestSwitchPlanRows: the catalog step decides the rows of its kind on the
// state it is given.
func TestSwitchPlanRows(t *testing.T) {
	s := group()
	c := Candidate{Name: "s", Lost: []string{"a"}, Notices: []Notice{notice("n")}}
	fo := FailoverSteps("m", c)
	if fo.Kind != "failover" || !cmp.Equal(fo.Notices, c.Notices) {
		t.Errorf("failover plan = %+v", fo)
	}
	if diff := cmp.Diff(PlanFailover(s, "m", "s", "a"), fo.Rows(s)); diff != "" {
		t.Errorf("failover rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(PlanSwitchover(s, "m", "s"), SwitchoverSteps(s, "m", "s", 10, false, nil).Rows(s)); diff != "" {
		t.Errorf("switchover rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(PlanRewound(s, "s", "c"), RewindSteps("s", "c").Rows(s)); diff != "" {
		t.Errorf("rewind rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(PlanRewound(s, "s", "c"), RewindBaseBackupSteps("s", "c").Rows(s)); diff != "" {
		t.Errorf("rewind by base backup rows (-want +got):\n%s", diff)
	}
	if rows := (SwitchPlan{}).Rows(s); len(rows.UpdateNodes) != 0 {
		t.Errorf("a plan of no kind has rows: %+v", rows)
	}
}

// TestRewindFallsBack: a REWIND goes on with a base backup only after a
// step on the node's own data directory failed.
func TestRewindFallsBack(t *testing.T) {
	var got []string
	for _, st := range RewindSteps("s", "m").Steps {
		if RewindFallsBack(st) {
			got = append(got, string(st.Kind))
		}
	}
	if diff := cmp.Diff([]string{"clean shutdown", "pg_rewind", "configure", "standby", "start"}, got); diff != "" {
		t.Errorf("steps that fall back (-want +got):\n%s", diff)
	}
}

// TestSwitchoverQuiet: a datanode's switchover counts the sessions on the
// master and on every coordinator in the cluster, and holds the writes at
// those coordinators to the master's server; a gtmcoord's holds nothing.
func TestSwitchoverQuiet(t *testing.T) {
	s := &State{Nodes: []Node{
		{Name: "gc", Type: GtmcoordMaster, Initialized: true, InCluster: true},
		{Name: "gcs", Type: GtmcoordSlave, Master: "gc", Initialized: true, InCluster: true},
		{Name: "cn1", Type: CoordinatorMaster, Initialized: true, InCluster: true},
		{Name: "cn2", Type: CoordinatorMaster, Initialized: true, InCluster: false},
		{Name: "cn3", Type: CoordinatorMaster},
		{Name: "dn1", Type: DatanodeMaster, Initialized: true, InCluster: true},
		{Name: "dn1s", Type: DatanodeSlave, Master: "dn1", Initialized: true, InCluster: true},
		{Name: "dn2", Type: DatanodeMaster, Initialized: true, InCluster: true},
	}}
	tests := []struct {
		old  string
		want Quiet
	}{
		{"dn1", Quiet{Count: []string{"dn1", "gc", "cn1"}, Hold: []string{"gc", "cn1"}, Server: "dn1"}},
		{"gc", Quiet{Count: []string{"gc", "cn1"}}},
		{"nosuch", Quiet{Count: []string{"nosuch"}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, SwitchoverQuiet(s, tt.old)); diff != "" {
			t.Errorf("SwitchoverQuiet(%s) (-want +got):\n%s", tt.old, diff)
		}
	}
	s.Nodes = s.Nodes[:1]
	s.Nodes = append(s.Nodes, Node{Name: "dn9", Type: DatanodeMaster, Initialized: true, InCluster: true})
	if diff := cmp.Diff(Quiet{Count: []string{"dn9", "gc"}, Hold: []string{"gc"}, Server: "dn9"}, SwitchoverQuiet(s, "dn9")); diff != "" {
		t.Errorf("SwitchoverQuiet(dn9) (-want +got):\n%s", diff)
	}
}
