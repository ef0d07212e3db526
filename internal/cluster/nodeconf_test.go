package cluster

import (
	"strings"
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

// No node is ever told to trust anyone: every line the manager writes
// needs TLS and a SCRAM password, for queries and for replication, from
// every cluster host and the manager, whatever the addresses.
func TestHBALinesNoTrust(t *testing.T) {
	hosts := []Host{
		{Name: "h1", Address: "10.0.0.1", User: "postgres"},
		{Name: "h2", Address: "10.0.0.2", User: "postgres"},
		{Name: "h6", Address: "fd00::6", User: "adb"},
	}
	s := &State{Hosts: hosts, Nodes: []Node{
		{Name: "gc", Host: "h1", Type: GtmcoordMaster, Port: 5432, Path: "/d/gc"},
		{Name: "dn1", Host: "h2", Type: DatanodeMaster, Port: 5433, Path: "/d/dn1"},
		{Name: "dn1s", Host: "h6", Type: DatanodeSlave, Master: "dn1", SyncState: Sync, Port: 5433, Path: "/d/dn1s"},
	}}
	tests := []struct {
		name    string
		manager []string
		want    []HBALine
	}{
		{"manager on a cluster host", []string{"10.0.0.1"}, []HBALine{
			{"hostssl", "all", "all", "10.0.0.1/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.0.0.1/32", "scram-sha-256"},
			{"hostssl", "all", "all", "10.0.0.2/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.0.0.2/32", "scram-sha-256"},
			{"hostssl", "all", "all", "fd00::6/128", "scram-sha-256"},
			{"hostssl", "replication", "all", "fd00::6/128", "scram-sha-256"},
		}},
		{"manager elsewhere", []string{"10.9.9.9"}, []HBALine{
			{"hostssl", "all", "all", "10.0.0.1/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.0.0.1/32", "scram-sha-256"},
			{"hostssl", "all", "all", "10.0.0.2/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.0.0.2/32", "scram-sha-256"},
			{"hostssl", "all", "all", "10.9.9.9/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.9.9.9/32", "scram-sha-256"},
			{"hostssl", "all", "all", "fd00::6/128", "scram-sha-256"},
			{"hostssl", "replication", "all", "fd00::6/128", "scram-sha-256"},
		}},
		// Hosts on two networks (loopback hosts and hosts behind a
		// bridge): the manager reaches them from two addresses, and each
		// is listed once.
		{"manager on two routes", []string{"10.0.0.1", "127.0.0.1", "10.0.0.1"}, []HBALine{
			{"hostssl", "all", "all", "10.0.0.1/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.0.0.1/32", "scram-sha-256"},
			{"hostssl", "all", "all", "10.0.0.2/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "10.0.0.2/32", "scram-sha-256"},
			{"hostssl", "all", "all", "127.0.0.1/32", "scram-sha-256"},
			{"hostssl", "replication", "all", "127.0.0.1/32", "scram-sha-256"},
			{"hostssl", "all", "all", "fd00::6/128", "scram-sha-256"},
			{"hostssl", "replication", "all", "fd00::6/128", "scram-sha-256"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := HBALines(s, tc.manager...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("HBALines (-want +got):\n%s", diff)
			}
			for _, l := range got {
				if l.Method != "scram-sha-256" || l.Type != "hostssl" {
					t.Errorf("line %v is not hostssl scram-sha-256", l)
				}
			}
		})
	}
}

// The socket directory lies under the host's adbhome (never a predictable
// name in /tmp), outside the data directory, one per node and data path;
// the node's secrets lie in it; TLS is on with them.
func TestNodeFiles(t *testing.T) {
	h := Host{Name: "h1", Address: "10.0.0.1", User: "postgres", ADBHome: "/opt/adb"}
	n := Node{Name: "dn1", Host: "h1", Type: DatanodeMaster, Port: 5433, Path: "/data/dn1"}
	sd := SocketDir(n, h)
	if !strings.HasPrefix(sd, "/opt/adb/run/dn1-") || len(sd) != len("/opt/adb/run/dn1-")+8 {
		t.Errorf("SocketDir = %s, want /opt/adb/run/dn1-<8 hex>", sd)
	}
	moved := n
	moved.Path = "/data2/dn1"
	if SocketDir(moved, h) == sd {
		t.Errorf("two data paths share the socket directory %s", sd)
	}
	p := ServerParams(n, h)
	want := map[string]string{
		"unix_socket_directories": sd,
		"ssl":                     "on",
		"ssl_cert_file":           sd + "/server.crt",
		"ssl_key_file":            sd + "/server.key",
		"ssl_ca_file":             sd + "/root.crt",
		"password_encryption":     "scram-sha-256",
		// A standby reconnects quickly: a master's commits wait for it.
		"wal_retrieve_retry_interval": "200ms",
		// Crash recovery syncs the data directory's file system at once.
		"recovery_init_sync_method": "syncfs",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("ServerParams[%s] = %q, want %q", k, p[k], v)
		}
	}
	long := h
	long.ADBHome = "/" + strings.Repeat("x", 80)
	if err := CheckSocketPath(n, long); err == nil {
		t.Errorf("socket path under a long adbhome accepted")
	}
	if err := CheckSocketPath(n, h); err != nil {
		t.Errorf("CheckSocketPath: %v", err)
	}
}

// A slave's primary_conninfo names its password file and requires a
// verified certificate; the password itself is never in it.
func TestStandbyParams(t *testing.T) {
	mh := Host{Name: "h1", Address: "10.0.0.1", User: "postgres", ADBHome: "/opt/adb"}
	sh := Host{Name: "h2", Address: "10.0.0.2", User: "postgres", ADBHome: "/opt/adb2"}
	m := Node{Name: "dn1", Host: "h1", Type: DatanodeMaster, Port: 5433, Path: "/data/dn1"}
	s := Node{Name: "dn1s", Host: "h2", Type: DatanodeSlave, Master: "dn1", Port: 5434, Path: "/data/dn1s"}
	sd := SocketDir(s, sh)
	got := StandbyParams(s, m, mh, sh)
	want := map[string]string{
		"primary_conninfo": "host='10.0.0.1' port='5433' user='postgres' application_name='dn1s' passfile='" + sd + "/pgpass' " +
			"sslmode='verify-full' sslrootcert='" + sd + "/root.crt'",
		"primary_slot_name":        "dn1s",
		"recovery_target_timeline": "latest",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("StandbyParams (-want +got):\n%s", diff)
	}
}
