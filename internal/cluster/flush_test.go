package cluster

import (
	"net"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// TestAlterHostAfterInit is AntDB's rule (reference §3.1): once a node on
// the host is initialised only the address may change, with a WARNING that
// FLUSH HOST must follow, and the address the processes still use is
// recorded for it.
func TestAlterHostAfterInit(t *testing.T) {
	initialized := func(n Node) Node { n.Initialized = true; return n }
	inCluster := func(n Node) Node { n.Initialized, n.InCluster = true, true; return n }
	warnMoved := func(from, to, still string) []Notice {
		return []Notice{warning(`the address of host "h1" changed from %s to %s, but its initialized nodes and its agent still use %s: run FLUSH HOST to move them and re-point the cluster`, from, to, still)}
	}
	for _, tc := range []struct {
		name    string
		nodes   []Node
		moved   map[string][]string
		spec    HostSpec
		errCode string
		errMsg  string
		field   string
		address string
		wantMov map[string][]string
		notices []Notice
	}{
		{name: "no node: anything goes", spec: HostSpec{User: ptr("u"), Port: ptr(2222), Address: ptr("10.0.0.1")}, address: "10.0.0.1"},
		{name: "uninitialised node: anything goes", nodes: []Node{dn("d1", "h1", 5432)},
			spec: HostSpec{ADBHome: ptr("/opt/x"), Address: ptr("10.0.0.1")}, address: "10.0.0.1"},
		{name: "user", nodes: []Node{initialized(dn("d1", "h1", 5432))}, spec: HostSpec{User: ptr("u")},
			errCode: pgerror.ObjectInUse, errMsg: `host "h1" has been used by initialized nodes, its user cannot be changed`, field: "user"},
		{name: "port", nodes: []Node{inCluster(dn("d1", "h1", 5432))}, spec: HostSpec{Port: ptr(2222)},
			errCode: pgerror.ObjectInUse, errMsg: "its port cannot be changed", field: "port"},
		{name: "protocol", nodes: []Node{inCluster(dn("d1", "h1", 5432))}, spec: HostSpec{Protocol: ptr("local")},
			errCode: pgerror.ObjectInUse, errMsg: "its protocol cannot be changed", field: "protocol"},
		{name: "agentport", nodes: []Node{inCluster(dn("d1", "h1", 5432))}, spec: HostSpec{AgentPort: ptr(9999)},
			errCode: pgerror.ObjectInUse, errMsg: "its agentport cannot be changed", field: "agentport"},
		{name: "adbhome", nodes: []Node{inCluster(dn("d1", "h1", 5432))}, spec: HostSpec{ADBHome: ptr("/opt/x")},
			errCode: pgerror.ObjectInUse, errMsg: "its adbhome cannot be changed", field: "adbhome"},
		{name: "pghome", nodes: []Node{inCluster(dn("d1", "h1", 5432))}, spec: HostSpec{PGHome: ptr("/opt/pg")},
			errCode: pgerror.ObjectInUse, errMsg: "its pghome cannot be changed", field: "pghome"},
		{name: "address with another refused: nothing changes", nodes: []Node{inCluster(dn("d1", "h1", 5432))},
			spec: HostSpec{Address: ptr("10.0.0.1"), User: ptr("u")}, errCode: pgerror.ObjectInUse, errMsg: "its user cannot be changed", field: "user"},
		{name: "same values are no change", nodes: []Node{inCluster(dn("d1", "h1", 5432))},
			spec: HostSpec{Address: ptr("127.0.0.2"), User: ptr("")}, address: "127.0.0.2"},
		{name: "address of an initialised host: WARNING and recorded", nodes: []Node{initialized(dn("d1", "h1", 5432))},
			spec: HostSpec{Address: ptr("10.0.0.1")}, address: "10.0.0.1",
			wantMov: map[string][]string{"h1": {"127.0.0.2"}}, notices: warnMoved("127.0.0.2", "10.0.0.1", "127.0.0.2")},
		{name: "in the cluster too", nodes: []Node{inCluster(dn("d1", "h1", 5432))},
			spec: HostSpec{Address: ptr("10.0.0.1")}, address: "10.0.0.1",
			wantMov: map[string][]string{"h1": {"127.0.0.2"}}, notices: warnMoved("127.0.0.2", "10.0.0.1", "127.0.0.2")},
		{name: "second change before FLUSH: the processes are still where they were", nodes: []Node{inCluster(dn("d1", "h1", 5432))},
			moved: map[string][]string{"h1": {"10.9.9.9"}}, spec: HostSpec{Address: ptr("10.0.0.1")}, address: "10.0.0.1",
			wantMov: map[string][]string{"h1": {"10.9.9.9"}}, notices: warnMoved("127.0.0.2", "10.0.0.1", "10.9.9.9")},
		{name: "back to the address the processes use: nothing to flush", nodes: []Node{inCluster(dn("d1", "h1", 5432))},
			moved: map[string][]string{"h1": {"10.0.0.1"}}, spec: HostSpec{Address: ptr("10.0.0.1")}, address: "10.0.0.1",
			wantMov: map[string][]string{"h1": nil}, notices: []Notice{notice(`host "h1" is back at the address its nodes and agent use: nothing to flush`)}},
		{name: "back after a FLUSH HOST started: still a move", nodes: []Node{inCluster(dn("d1", "h1", 5432))},
			moved: map[string][]string{"h1": {"10.0.0.1", "127.0.0.2"}}, spec: HostSpec{Address: ptr("10.0.0.1")}, address: "10.0.0.1",
			wantMov: map[string][]string{"h1": {"10.0.0.1", "127.0.0.2"}}, notices: warnMoved("127.0.0.2", "10.0.0.1", "10.0.0.1, 127.0.0.2")},
		{name: "another host's address", nodes: []Node{inCluster(dn("d1", "h1", 5432))}, spec: HostSpec{Address: ptr("127.0.0.3")},
			errCode: pgerror.DuplicateObject, errMsg: `address "127.0.0.3" is already in host table (host "h2")`, field: "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := state(tc.nodes...)
			s.Moved = tc.moved
			p, err := AlterHost(s, "h1", tc.spec)
			if tc.errCode != "" {
				checkErr(t, err, tc.errCode, tc.errMsg)
				if f := ErrorField(err); f != tc.field {
					t.Errorf("error about option %q, want %q", f, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.UpdateHost == nil || p.UpdateHost.Address != tc.address {
				t.Errorf("UpdateHost = %+v, want address %s", p.UpdateHost, tc.address)
			}
			if diff := cmp.Diff(tc.wantMov, p.Moved); diff != "" {
				t.Errorf("Moved (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.notices, p.Notices); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanFlush(t *testing.T) {
	in := func(n Node) Node { n.Initialized, n.InCluster = true, true; return n }
	cn := func(name, host string) Node {
		return in(Node{Name: name, Host: host, Type: CoordinatorMaster, Port: 6000, Path: "/d/" + name})
	}
	gc := in(Node{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 5000, Path: "/d/gc"})
	s := state(gc, cn("cn1", "h2"),
		in(dn("d1", "h2", 5432)), in(dns("d1s", "d1", Sync, "h3", 5433)), in(dns("d1c", "d1s", Async, "h2", 5434)),
		in(dn("d2", "h3", 5432)), in(dns("d2s", "d2", Sync, "h1", 5433)),
		dns("d2new", "d2", Async, "h2", 5435)) // added, not initialised
	s.Hosts[1].Address = "127.0.0.9" // h2, was 127.0.0.3
	// A FLUSH HOST that started lists the new address too.
	s.Moved = map[string][]string{"h2": {"127.0.0.3", "127.0.0.9"}}
	p := PlanFlush(s, []string{"127.0.0.1"})

	names := func(ns []Node) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	if diff := cmp.Diff([]MovedHost{{Host: s.Hosts[1], From: []string{"127.0.0.3"}}}, p.Hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	// Parents before slaves: d1c cascades from d1s, on another host.
	if diff := cmp.Diff([]string{"cn1", "d1", "d1c"}, names(p.Restart)); diff != "" {
		t.Errorf("restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"d1s"}, names(p.Repoint)); diff != "" {
		t.Errorf("repoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"gc", "cn1"}, names(p.Coordinators)); diff != "" {
		t.Errorf("coordinators (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"gc", "cn1", "d1", "d1s", "d1c", "d2", "d2s"}, names(p.Configured)); diff != "" {
		t.Errorf("configured (-want +got):\n%s", diff)
	}
	// The old address is admitted while the cluster moves, then removed;
	// 127.0.0.1 stays (connections between loopback hosts come from it).
	var tr []string
	for _, l := range p.Transitional {
		if l.Database == "all" {
			tr = append(tr, l.Address)
		}
	}
	if diff := cmp.Diff([]string{"127.0.0.1/32", "127.0.0.2/32", "127.0.0.3/32", "127.0.0.4/32", "127.0.0.9/32"}, tr); diff != "" {
		t.Errorf("transitional pg_hba lines (-want +got):\n%s", diff)
	}
	want := []HBALine{{"hostssl", "all", "all", "127.0.0.3/32", AuthMethod}, {"hostssl", "replication", "all", "127.0.0.3/32", AuthMethod}}
	if diff := cmp.Diff(want, p.Stale); diff != "" {
		t.Errorf("stale pg_hba lines (-want +got):\n%s", diff)
	}
	// Nothing moved: nothing to do but what every node has.
	s.Moved = nil
	p = PlanFlush(s, []string{"127.0.0.1"})
	if len(p.Hosts)+len(p.Restart)+len(p.Repoint)+len(p.Stale) != 0 {
		t.Errorf("nothing moved, plan %+v", p)
	}
	if diff := cmp.Diff(HBALines(s, "127.0.0.1"), p.Transitional); diff != "" {
		t.Errorf("nothing moved: pg_hba lines differ from HBALines (-want +got):\n%s", diff)
	}
}

// TestAddressParams: FLUSH HOST rewrites exactly the settings of
// ServerParams that follow the address — a new one there must be added to
// AddressParams, or a moved node keeps the old value.
func TestAddressParams(t *testing.T) {
	n := Node{Name: "d1", Port: 5432, Path: "/d/d1"}
	a, b := Host{Name: "h", Address: "10.0.0.1", ADBHome: "/opt/adb"}, Host{Name: "h", Address: "10.0.0.2", ADBHome: "/opt/adb"}
	pa, pb := ServerParams(n, a), ServerParams(n, b)
	changed := map[string]string{}
	for k, v := range pb {
		if pa[k] != v {
			changed[k] = v
		}
	}
	if diff := cmp.Diff(changed, AddressParams(n, b)); diff != "" {
		t.Errorf("AddressParams (-what changes with the address +AddressParams):\n%s", diff)
	}
	if ip := net.ParseIP(AddressParams(n, b)["listen_addresses"]); ip == nil || ip.String() != "10.0.0.2" {
		t.Errorf("listen_addresses = %q", AddressParams(n, b)["listen_addresses"])
	}
}
