package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func all(Node) bool { return true }

func TestSyncNames(t *testing.T) {
	s := state(dn("d1", "h1", 5432), dns("a", "d1", Async, "h2", 1), dns("p1", "d1", Potential, "h2", 2),
		dns("s1", "d1", Sync, "h2", 3), dns("s2", "d1", Sync, "h3", 4), dns("c", "s1", Async, "h3", 5))
	if got, want := SyncNames(s, "d1", all), `FIRST 2 ("s1", "s2", "p1")`; got != want {
		t.Errorf("SyncNames = %s, want %s", got, want)
	}
	want := map[string]string{"a": Async, "p1": Potential, "s1": Sync, "s2": Sync}
	if diff := cmp.Diff(want, ExpectedReplication(s, "d1", all)); diff != "" {
		t.Errorf("ExpectedReplication (-want +got):\n%s", diff)
	}
	onlyPot := state(dn("d1", "h1", 5432), dns("p1", "d1", Potential, "h2", 2), dns("p2", "d1", Potential, "h2", 3))
	if got := SyncNames(onlyPot, "d1", all); got != `FIRST 1 ("p1", "p2")` {
		t.Errorf("only potentials: %s", got)
	}
	if diff := cmp.Diff(map[string]string{"p1": Sync, "p2": Potential}, ExpectedReplication(onlyPot, "d1", all)); diff != "" {
		t.Errorf("only potentials (-want +got):\n%s", diff)
	}
	if got := SyncNames(s, "s1", all); got != "" {
		t.Errorf("a slave with an async cascade: %q", got)
	}
	if got := SyncNames(s, "d1", func(n Node) bool { return n.Name != "s1" }); got != `FIRST 1 ("s2", "p1")` {
		t.Errorf("s1 not in cluster: %s", got)
	}
}

func TestPlanInit(t *testing.T) {
	gc := Node{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 1, Path: "/gc"}
	s := state(gc, Node{Name: "gcs", Host: "h2", Type: GtmcoordSlave, Master: "gc", SyncState: Sync, Port: 1, Path: "/gcs"},
		Node{Name: "c1", Host: "h1", Type: CoordinatorMaster, Port: 2, Path: "/c1"},
		dn("d1", "h1", 3), dns("d1s", "d1", Sync, "h2", 3), dns("d1ss", "d1s", Async, "h3", 3), dn("d2", "h2", 4))
	stages, err := PlanInit(s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range stages {
		line := st.Operation + ":"
		for _, n := range st.Nodes {
			line += " " + n.Name
		}
		got = append(got, line)
	}
	want := []string{
		"init gtmcoord master: gc", "start gtmcoord master: gc", "init gtmcoord slave: gcs",
		"init coordinator master: c1", "start coordinator master: c1",
		"init datanode master: d1 d2", "start datanode master: d1 d2", "init datanode slave: d1s", "init datanode slave: d1ss",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	if _, err := PlanInit(state(dn("d1", "h1", 3))); err == nil {
		t.Error("INIT without a gtmcoord master accepted")
	}
}

func TestHBALinesLoopback(t *testing.T) {
	s := state(dn("d1", "h1", 1), dns("d1s", "d1", Sync, "h2", 1))
	got := HBALines(s, "127.0.0.1")
	var nets []string
	for _, l := range got {
		if l.Database == "all" {
			nets = append(nets, l.Address)
		}
	}
	if diff := cmp.Diff([]string{"127.0.0.1/32", "127.0.0.2/32", "127.0.0.3/32"}, nets); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
}

func TestConnInfo(t *testing.T) {
	if got := ConnInfo("host", "10.0.0.1", "application_name", `a'b\c`); got != `host='10.0.0.1' application_name='a\'b\\c'` {
		t.Errorf("ConnInfo = %s", got)
	}
}
