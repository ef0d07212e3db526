package cluster

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func TestPromoteReady(t *testing.T) {
	n := Node{Name: "s", Type: DatanodeSlave}
	m := Node{Name: "m", Type: DatanodeMaster}
	primary := Probe{Reachable: true}
	tests := []struct {
		name          string
		probe, mprobe Probe
		master        Node
		msg           string
	}{
		{"a standby whose master is down", up(1), Probe{}, m, ""},
		{"a standby without master", up(1), Probe{}, Node{}, ""},
		{"down", Probe{}, Probe{}, m, "is not running"},
		{"a primary already", primary, Probe{}, m, "runs as a primary already"},
		{"the master runs", up(1), primary, m, "would make two masters"},
		{"the master is a standby", up(1), up(1), m, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := PromoteReady(n, tt.probe, tt.master, tt.mprobe)
			if tt.msg == "" {
				refusal(t, err, "", "", "")
				return
			}
			refusal(t, err, pgerror.ObjectNotInPrereqState, tt.msg, "")
		})
	}
}

func TestAdbmgrPromoteReady(t *testing.T) {
	dn := Node{Name: "s", Type: DatanodeSlave}
	gc := Node{Name: "gs", Type: GtmcoordSlave}
	old := Node{Name: "m", Type: DatanodeMaster}
	primary := Probe{Reachable: true}
	tests := []struct {
		name    string
		n       Node
		probe   Probe
		routing []string
		msg     string
		hint    string
	}{
		{"promoted and configured", dn, primary, nil, "", ""},
		{"a gtmcoord slave promoted", gc, primary, nil, "", ""},
		{"down", dn, Probe{}, nil, "is not running", "Start it, then PROMOTE DATANODE SLAVE s, then CONFIG DATANODE SLAVE s first."},
		{"still a standby", dn, up(1), nil, "still runs as a standby", "PROMOTE DATANODE SLAVE s, then CONFIG DATANODE SLAVE s first."},
		{"a gtmcoord slave still a standby", gc, up(1), nil, "still runs as a standby", "PROMOTE GTMCOORD SLAVE gs first."},
		{"not configured", dn, primary, []string{"cn1", "gc"}, "the data of m is still routed to it by cn1, gc", "CONFIG DATANODE SLAVE s first."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AdbmgrPromoteReady(tt.n, tt.probe, old, tt.routing)
			if tt.msg == "" {
				refusal(t, err, "", "", "")
				return
			}
			refusal(t, err, pgerror.ObjectNotInPrereqState, tt.msg, "")
			if pe, _ := pgerror.As(err); pe.Hint != tt.hint {
				t.Errorf("hint = %q, want %q", pe.Hint, tt.hint)
			}
		})
	}
}

func TestManualChecks(t *testing.T) {
	s := group()
	s.Nodes = append(s.Nodes, Node{ID: 9, Name: "x", Type: DatanodeSlave, Master: "m", Zone: DefaultZone})
	_, err := CheckPromote(s, DatanodeSlave, "m")
	refusal(t, err, pgerror.UndefinedObject, "does not exist", "name")
	_, err = CheckPromote(s, DatanodeSlave, "x")
	refusal(t, err, pgerror.ObjectNotInPrereqState, "has not been initialized", "")
	_, _, err = CheckConfigSlave(s, "c")
	refusal(t, err, pgerror.ObjectNotInPrereqState, "is not a datanode master", "")
	_, _, err = CheckConfigSlave(s, "x")
	refusal(t, err, pgerror.ObjectNotInPrereqState, "is not in the cluster", "")
	n, m, err := CheckConfigSlave(s, "s")
	refusal(t, err, "", "", "")
	if n.Name != "s" || m.Name != "m" {
		t.Errorf("CheckConfigSlave = %s, %s", n.Name, m.Name)
	}
	_, _, err = CheckAdbmgrPromote(s, DatanodeSlave, "c")
	refusal(t, err, pgerror.ObjectNotInPrereqState, "only a direct slave of a master", "")
	_, _, err = CheckAdbmgrPromote(s, GtmcoordSlave, "s")
	refusal(t, err, pgerror.UndefinedObject, "does not exist", "name")
}

func TestPlanAdbmgrPromote(t *testing.T) {
	s := group()
	p := PlanAdbmgrPromote(s, "m", "s")
	after := Applied(s, p)
	line := func(name string) string {
		n, _ := after.Node(name)
		return strings.Join([]string{string(n.Type), n.Master, n.SyncState}, " ")
	}
	for name, want := range map[string]string{
		"s": "datanode master  ", "m": "datanode slave s async", "p": "datanode slave s sync", "a": "datanode slave s async", "c": "datanode slave s async",
	} {
		if got := line(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if len(s.Children("m")) == 0 {
		t.Fatal("the state itself changed")
	}
	drop := PlanAdbmgrDropOld(s, "m")
	if len(drop.DeleteNodes) != 0 {
		t.Errorf("m deleted while it has slaves: %v", drop.DeleteNodes)
	}
	if drop := PlanAdbmgrDropOld(after, "m"); len(drop.DeleteNodes) != 1 {
		t.Errorf("m not deleted once its slaves moved: %+v", drop)
	}
	// Only async slaves left: one becomes sync; none: a warning.
	lone := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1), dns("a", "m", Async, "h3", 1))...)
	after = Applied(lone, PlanAdbmgrPromote(lone, "m", "s"))
	if a, _ := after.Node("a"); a.SyncState != Sync {
		t.Errorf("a = %s, want sync", a.SyncState)
	}
	pair := state(inCluster(dn("m", "h1", 1), dns("s", "m", Sync, "h2", 1))...)
	if p := PlanAdbmgrPromote(pair, "m", "s"); len(p.Notices) == 0 || !strings.Contains(p.Notices[len(p.Notices)-1].Message, "no slave node now") {
		t.Errorf("notices = %v", p.Notices)
	}
}
