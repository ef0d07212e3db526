package cluster

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// state builds a State with hosts h1..h3 and the given nodes, numbering IDs.
func state(nodes ...Node) *State {
	s := &State{Hosts: []Host{
		{Name: "h1", Address: "127.0.0.2"}, {Name: "h2", Address: "127.0.0.3"}, {Name: "h3", Address: "127.0.0.4"},
	}}
	for i, n := range nodes {
		n.ID = int64(i + 1)
		if n.Zone == "" {
			n.Zone = DefaultZone
		}
		if n.CureStatus == "" {
			n.CureStatus = "normal"
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

func dn(name, host string, port int) Node {
	return Node{Name: name, Host: host, Type: DatanodeMaster, Port: port, Path: "/data/" + name}
}

func dns(name, master, sync, host string, port int) Node {
	return Node{Name: name, Host: host, Type: DatanodeSlave, Master: master, SyncState: sync, Port: port, Path: "/data/" + name}
}

func spec(host string, port int, path string) NodeSpec {
	return NodeSpec{Host: &host, Port: &port, Path: &path}
}

func addReq(name string, t NodeType, parent string, sp NodeSpec) AddNodeRequest {
	return AddNodeRequest{Name: name, Type: t, For: parent, Spec: sp, CurrentZone: DefaultZone}
}

func TestAddNodeSyncState(t *testing.T) {
	withSync := func(sp NodeSpec, s string) NodeSpec { sp.SyncState = &s; return sp }
	tests := []struct {
		name     string
		state    *State
		req      AddNodeRequest
		want     string
		notice   string // substring of a notice, if one is expected
		severity string
	}{
		{"first slave is sync", state(dn("d1", "h1", 5432)),
			addReq("s1", DatanodeSlave, "d1", spec("h2", 5432, "/d/s1")), Sync, "", ""},
		{"second slave is potential", state(dn("d1", "h1", 5432), dns("s1", "d1", Sync, "h2", 5432)),
			addReq("s2", DatanodeSlave, "d1", spec("h3", 5432, "/d/s2")), Potential, "", ""},
		{"explicit async", state(dn("d1", "h1", 5432)),
			addReq("s1", DatanodeSlave, "d1", withSync(spec("h2", 5432, "/d/s1"), Async)), Async, "has no synchronous slave node", "WARNING"},
		{"explicit potential without sync sibling becomes sync", state(dn("d1", "h1", 5432), dns("s0", "d1", Async, "h3", 5432)),
			addReq("s1", DatanodeSlave, "d1", withSync(spec("h2", 5432, "/d/s1"), Potential)), Sync, "make this node as synchronous node", "NOTICE"},
		{"explicit potential with sync sibling", state(dn("d1", "h1", 5432), dns("s0", "d1", Sync, "h3", 5432)),
			addReq("s1", DatanodeSlave, "d1", withSync(spec("h2", 5432, "/d/s1"), Potential)), Potential, "", ""},
		{"second explicit sync stays sync", state(dn("d1", "h1", 5432), dns("s0", "d1", Sync, "h3", 5432)),
			addReq("s1", DatanodeSlave, "d1", withSync(spec("h2", 5432, "/d/s1"), Sync)), Sync, "", ""},
		{"default after async-only siblings is sync", state(dn("d1", "h1", 5432), dns("s0", "d1", Async, "h3", 5432)),
			addReq("s1", DatanodeSlave, "d1", spec("h2", 5432, "/d/s1")), Sync, "", ""},
		{"cascaded slave is async", state(dn("d1", "h1", 5432), dns("s1", "d1", Sync, "h2", 5432)),
			addReq("s11", DatanodeSlave, "s1", spec("h2", 5433, "/d/s11")), Async, "", ""},
		{"cascaded slave asked sync is async with a notice", state(dn("d1", "h1", 5432), dns("s1", "d1", Sync, "h2", 5432)),
			addReq("s11", DatanodeSlave, "s1", withSync(spec("h2", 5433, "/d/s11"), Sync)), Async, "cascaded slave", "NOTICE"},
		{"foreign zone slave is async", state(dn("d1", "h1", 5432)),
			func() AddNodeRequest {
				r := addReq("s1", DatanodeSlave, "d1", withSync(spec("h2", 5432, "/d/s1"), Sync))
				r.Spec.Zone = ptr("z2")
				return r
			}(), Async, "zone", "NOTICE"},
		{"gtmcoord slave first is sync", state(Node{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 6768, Path: "/d/gc"}),
			addReq("gcs", GtmcoordSlave, "gc", spec("h2", 6768, "/d/gc")), Sync, "", ""},
		{"coordinator slave", state(Node{Name: "c1", Host: "h1", Type: CoordinatorMaster, Port: 5532, Path: "/d/c1"}),
			addReq("c1s", CoordinatorSlave, "c1", spec("h2", 5532, "/d/c1")), Sync, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := AddNode(tt.state, tt.req)
			if err != nil {
				t.Fatalf("AddNode: %v", err)
			}
			if p.InsertNode == nil {
				t.Fatal("no node inserted")
			}
			if got := p.InsertNode.SyncState; got != tt.want {
				t.Errorf("sync_state = %q, want %q", got, tt.want)
			}
			found := tt.notice == ""
			for _, n := range p.Notices {
				if tt.notice != "" && strings.Contains(n.Message, tt.notice) && n.Severity == tt.severity {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s containing %q in %+v", tt.severity, tt.notice, p.Notices)
			}
		})
	}
}

func TestAddNodeRefusals(t *testing.T) {
	base := state(
		Node{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 6768, Path: "/data/gc"},
		Node{Name: "c1", Host: "h1", Type: CoordinatorMaster, Port: 5532, Path: "/data/c1"},
		Node{Name: "c1s", Host: "h2", Type: CoordinatorSlave, Master: "c1", SyncState: Sync, Port: 5532, Path: "/data/c1s"},
		dn("d1", "h1", 15533),
	)
	tests := []struct {
		name  string
		req   AddNodeRequest
		code  string
		msg   string
		field string
	}{
		{"duplicate name across types", addReq("c1", DatanodeMaster, "", spec("h2", 1, "/x")), pgerror.DuplicateObject, `the name "c1" already exists`, ""},
		{"second gtmcoord master", addReq("gc2", GtmcoordMaster, "", spec("h2", 1, "/x")), pgerror.DuplicateObject, "Only one gtm coordinator master", ""},
		{"missing parent", addReq("s", DatanodeSlave, "nope", spec("h2", 1, "/x")), pgerror.UndefinedObject, `datanode "nope" does not exist`, ""},
		{"parent of other family", addReq("s", DatanodeSlave, "c1", spec("h2", 1, "/x")), pgerror.InvalidParameterValue, "cannot follow coordinator master", ""},
		{"coordinator slave cascade", addReq("s", CoordinatorSlave, "c1s", spec("h3", 1, "/x")), pgerror.FeatureNotSupported, "cannot be cascaded", ""},
		{"unknown host", addReq("d2", DatanodeMaster, "", spec("h9", 1, "/x")), pgerror.UndefinedObject, `host "h9" does not exist`, "host"},
		{"port in use on host", addReq("d2", DatanodeMaster, "", spec("h1", 15533, "/x")), pgerror.DuplicateObject, `the port "15533" has already been used`, "port"},
		{"path in use on host", addReq("d2", DatanodeMaster, "", spec("h1", 1, "/data/d1")), pgerror.DuplicateObject, `the path "/data/d1" has already been used`, "path"},
		{"path nested in another node's", addReq("d2", DatanodeMaster, "", spec("h1", 1, "/data/d1/sub")), pgerror.InvalidParameterValue, "overlaps", "path"},
		{"path holding another node's", addReq("d2", DatanodeMaster, "", spec("h1", 1, "/data")), pgerror.InvalidParameterValue, "overlaps", "path"},
		{"missing path", addReq("d2", DatanodeMaster, "", NodeSpec{Host: ptr("h1"), Port: ptr(1)}), pgerror.SyntaxError, `option "path" must be given`, ""},
		{"missing host", addReq("d2", DatanodeMaster, "", NodeSpec{Port: ptr(1), Path: ptr("/x")}), pgerror.SyntaxError, `option "host" must be given`, ""},
		{"sync_state on a master", func() AddNodeRequest {
			r := addReq("d2", DatanodeMaster, "", spec("h2", 1, "/x"))
			r.Spec.SyncState = ptr(Sync)
			return r
		}(), pgerror.InvalidParameterValue, "must set on the slave node", "sync_state"},
		{"readonly on a datanode", func() AddNodeRequest {
			r := addReq("d2", DatanodeMaster, "", spec("h2", 1, "/x"))
			r.Spec.ReadOnly = ptr(true)
			return r
		}(), pgerror.InvalidParameterValue, `option "readonly" is only valid for coordinator masters`, "readonly"},
		{"master outside the current zone", func() AddNodeRequest {
			r := addReq("d2", DatanodeMaster, "", spec("h2", 1, "/x"))
			r.Spec.Zone = ptr("z2")
			return r
		}(), pgerror.InvalidParameterValue, "should be in the current zone", "zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AddNode(base, tt.req)
			checkErr(t, err, tt.code, tt.msg)
			if got := ErrorField(err); got != tt.field {
				t.Errorf("field = %q, want %q", got, tt.field)
			}
		})
	}
}

func checkErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	pe, ok := pgerror.As(err)
	if !ok {
		t.Fatalf("error = %v, want a *pgerror.Error", err)
	}
	if pe.Code != code || !strings.Contains(pe.Message, msg) {
		t.Errorf("error = %s %q, want %s containing %q", pe.Code, pe.Message, code, msg)
	}
}

func TestAddNodeSecondZoneSlave(t *testing.T) {
	s := state(dn("d1", "h1", 5432), Node{Name: "s1", Host: "h2", Type: DatanodeSlave, Master: "d1", SyncState: Async, Port: 5432, Path: "/d/s1", Zone: "z2"})
	r := addReq("s2", DatanodeSlave, "d1", spec("h3", 5432, "/d/s2"))
	r.Spec.Zone = ptr("z2")
	_, err := AddNode(s, r)
	checkErr(t, err, pgerror.DuplicateObject, `already has slave node "s1" in zone "z2"`)
}

func TestAlterNode(t *testing.T) {
	base := func(inited bool) *State {
		s := state(dn("d1", "h1", 5432), dns("s1", "d1", Sync, "h2", 5432), dns("s2", "d1", Potential, "h3", 5432))
		for i := range s.Nodes {
			s.Nodes[i].Initialized, s.Nodes[i].InCluster = inited, inited
		}
		return s
	}
	req := func(name string, t NodeType, sp NodeSpec) AlterNodeRequest {
		return AlterNodeRequest{Name: name, Type: t, Spec: sp, CurrentZone: DefaultZone}
	}
	t.Run("demoting the sync slave promotes a potential sibling", func(t *testing.T) {
		p, err := AlterNode(base(false), req("s1", DatanodeSlave, NodeSpec{SyncState: ptr(Async)}))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, n := range p.UpdateNodes {
			got[n.Name] = n.SyncState
		}
		if diff := cmp.Diff(map[string]string{"s1": Async, "s2": Sync}, got); diff != "" {
			t.Errorf("sync states (-want +got):\n%s", diff)
		}
		if len(p.Live) != 0 {
			t.Errorf("Live = %v for a node not initialized", p.Live)
		}
	})
	t.Run("before init everything may change", func(t *testing.T) {
		p, err := AlterNode(base(false), req("d1", DatanodeMaster, NodeSpec{Host: ptr("h3"), Port: ptr(6000), Path: ptr("/data/x/")}))
		if err != nil {
			t.Fatal(err)
		}
		n := p.UpdateNodes[0]
		if n.Host != "h3" || n.Port != 6000 || n.Path != "/data/x" {
			t.Errorf("updated node = %+v", n)
		}
	})
	t.Run("altering to its own port is allowed", func(t *testing.T) {
		if _, err := AlterNode(base(false), req("d1", DatanodeMaster, NodeSpec{Port: ptr(5432)})); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("port clash", func(t *testing.T) {
		_, err := AlterNode(base(false), req("s1", DatanodeSlave, NodeSpec{Host: ptr("h3")}))
		checkErr(t, err, pgerror.DuplicateObject, "has already been used")
	})
	t.Run("wrong type", func(t *testing.T) {
		_, err := AlterNode(base(false), req("s1", DatanodeMaster, NodeSpec{Port: ptr(1)}))
		checkErr(t, err, pgerror.UndefinedObject, `datanode master "s1" does not exist`)
	})
	t.Run("sync_state on a master", func(t *testing.T) {
		_, err := AlterNode(base(false), req("d1", DatanodeMaster, NodeSpec{SyncState: ptr(Sync)}))
		checkErr(t, err, pgerror.InvalidParameterValue, "must set on the slave node")
	})
	for _, f := range []struct {
		field string
		sp    NodeSpec
	}{{"host", NodeSpec{Host: ptr("h3")}}, {"path", NodeSpec{Path: ptr("/elsewhere")}}, {"zone", NodeSpec{Zone: ptr("z2")}}} {
		t.Run("after init "+f.field+" is refused", func(t *testing.T) {
			_, err := AlterNode(base(true), req("s1", DatanodeSlave, f.sp))
			checkErr(t, err, pgerror.ObjectNotInPrereqState, "has been initialized in the cluster, its "+f.field+" cannot be changed")
		})
	}
	t.Run("after init sync_state is live", func(t *testing.T) {
		p, err := AlterNode(base(true), req("s2", DatanodeSlave, NodeSpec{SyncState: ptr(Sync)}))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"sync_state"}, p.Live); diff != "" {
			t.Errorf("Live (-want +got):\n%s", diff)
		}
	})
	t.Run("after init port is live", func(t *testing.T) {
		p, err := AlterNode(base(true), req("d1", DatanodeMaster, NodeSpec{Port: ptr(7000)}))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"port"}, p.Live); diff != "" {
			t.Errorf("Live (-want +got):\n%s", diff)
		}
	})
}

func TestDropNodes(t *testing.T) {
	base := func() *State {
		return state(dn("d1", "h1", 5432), dns("s1", "d1", Sync, "h2", 5432), dns("s2", "d1", Potential, "h3", 5432),
			dns("s11", "s1", Async, "h2", 5433))
	}
	t.Run("master with slaves", func(t *testing.T) {
		_, err := DropNodes(base(), DatanodeMaster, []string{"d1"})
		checkErr(t, err, pgerror.ObjectInUse, "has been used by slave, cannot be dropped")
	})
	t.Run("child then parent in one statement", func(t *testing.T) {
		p, err := DropNodes(base(), DatanodeSlave, []string{"s11", "s1"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"s11", "s1"}, p.DeleteNodes); diff != "" {
			t.Errorf("deletes (-want +got):\n%s", diff)
		}
		if len(p.UpdateNodes) != 1 || p.UpdateNodes[0].Name != "s2" || p.UpdateNodes[0].SyncState != Sync {
			t.Errorf("updates = %+v, want s2 promoted to sync", p.UpdateNodes)
		}
	})
	t.Run("parent before child is refused as a whole", func(t *testing.T) {
		_, err := DropNodes(base(), DatanodeSlave, []string{"s1", "s11"})
		checkErr(t, err, pgerror.ObjectInUse, `datanode slave "s1" has been used by slave`)
	})
	t.Run("promoted sibling dropped in the same statement", func(t *testing.T) {
		p, err := DropNodes(base(), DatanodeSlave, []string{"s11", "s1", "s2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.UpdateNodes) != 0 {
			t.Errorf("updates = %+v, want none", p.UpdateNodes)
		}
	})
	t.Run("initialized node", func(t *testing.T) {
		s := base()
		s.Nodes[3].Initialized = true
		_, err := DropNodes(s, DatanodeSlave, []string{"s11"})
		checkErr(t, err, pgerror.ObjectInUse, "has been initialized in the cluster, cannot be dropped")
	})
	t.Run("type mismatch", func(t *testing.T) {
		_, err := DropNodes(base(), DatanodeMaster, []string{"s2"})
		checkErr(t, err, pgerror.UndefinedObject, `datanode master "s2" does not exist`)
	})
}

func TestDropZone(t *testing.T) {
	z2 := func(n Node) Node { n.Zone = "z2"; return n }
	s := state(dn("d1", "h1", 5432), z2(dns("s1", "d1", Async, "h2", 5432)), z2(dns("s11", "s1", Async, "h2", 5433)))
	p, err := DropZone(s, "z2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"s11", "s1"}, p.DeleteNodes); diff != "" {
		t.Errorf("deletes (-want +got):\n%s", diff)
	}
	_, err = DropZone(s, "local")
	checkErr(t, err, pgerror.ObjectInUse, "has slave node in other zone")
	_, err = DropZone(s, "nowhere")
	checkErr(t, err, pgerror.UndefinedObject, `zone "nowhere" has no node`)
}

func TestSortForList(t *testing.T) {
	nodes := []Node{
		{ID: 1, Name: "d1", Type: DatanodeMaster},
		{ID: 2, Name: "d1s2", Type: DatanodeSlave, Master: "d1", SyncState: Potential},
		{ID: 3, Name: "gc", Type: GtmcoordMaster},
		{ID: 4, Name: "d1s1", Type: DatanodeSlave, Master: "d1", SyncState: Sync},
		{ID: 5, Name: "c1", Type: CoordinatorMaster},
		{ID: 6, Name: "gcs", Type: GtmcoordSlave, Master: "gc", SyncState: Sync},
		{ID: 7, Name: "d0", Type: DatanodeMaster},
		{ID: 8, Name: "d1s3", Type: DatanodeSlave, Master: "d1", SyncState: Async},
	}
	SortForList(nodes)
	var got []string
	for _, n := range nodes {
		got = append(got, n.Name)
	}
	want := []string{"gc", "gcs", "c1", "d1", "d0", "d1s1", "d1s2", "d1s3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestHosts(t *testing.T) {
	s := state(dn("d1", "h1", 5432))
	def := HostDefaults{User: "postgres", ADBHome: "/opt/adb", Address: "10.0.0.9"}
	p, err := AddHost(s, "h4", HostSpec{}, def, false)
	if err != nil {
		t.Fatal(err)
	}
	want := Host{Name: "h4", User: "postgres", Port: 22, Protocol: "ssh", AgentPort: 5430, Address: "10.0.0.9", ADBHome: "/opt/adb", PGHome: DefaultPGHome}
	if diff := cmp.Diff(&want, p.InsertHost); diff != "" {
		t.Errorf("host (-want +got):\n%s", diff)
	}
	_, err = AddHost(s, "h1", HostSpec{}, def, false)
	checkErr(t, err, pgerror.DuplicateObject, `host "h1" already exists`)
	p, err = AddHost(s, "h1", HostSpec{}, def, true)
	if err != nil || p.InsertHost != nil || len(p.Notices) != 1 {
		t.Errorf("IF NOT EXISTS: plan %+v, err %v", p, err)
	}
	_, err = AddHost(s, "h5", HostSpec{Address: ptr("127.0.0.3")}, def, false)
	checkErr(t, err, pgerror.DuplicateObject, `address "127.0.0.3" is already in host table`)

	_, err = DropHosts(s, []string{"h2", "h1"}, false)
	checkErr(t, err, pgerror.ObjectInUse, `host "h1" has been used, cannot be dropped`)
	_, err = DropHosts(s, []string{"h2", "h9"}, false)
	checkErr(t, err, pgerror.UndefinedObject, `host "h9" does not exist`)
	p, err = DropHosts(s, []string{"h2", "h9"}, true)
	if err != nil || len(p.DeleteHosts) != 1 || len(p.Notices) != 1 {
		t.Errorf("IF EXISTS: plan %+v, err %v", p, err)
	}

}
