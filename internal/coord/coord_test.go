package coord

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

func TestRenameServer(t *testing.T) {
	got := RenameServer("dn1", `d"n`)
	for _, want := range []string{
		`srvname = 'dn1'`, `ALTER SERVER "dn1" RENAME TO "d""n";`,
		`UPDATE adb.slot SET node = 'd"n' WHERE node = 'dn1';`, "IF to_regclass('adb.slot') IS NOT NULL",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("RenameServer lacks %q:\n%s", want, got)
		}
	}
}

func TestConfigure(t *testing.T) {
	s := &cluster.State{Hosts: []cluster.Host{{Name: "h1", Address: "10.0.0.1", User: "pg"}, {Name: "h2", Address: "10.0.0.2", User: "pg"}}}
	add := func(n cluster.Node) { n.ID = int64(len(s.Nodes) + 1); n.InCluster = true; s.Nodes = append(s.Nodes, n) }
	add(cluster.Node{Name: "gc", Host: "h1", Type: cluster.GtmcoordMaster, Port: 1})
	add(cluster.Node{Name: "cn", Host: "h2", Type: cluster.CoordinatorMaster, Port: 2, ReadOnly: true})
	add(cluster.Node{Name: "dn2", Host: "h1", Type: cluster.DatanodeMaster, Port: 3})
	add(cluster.Node{Name: "dn2s", Host: "h2", Type: cluster.DatanodeSlave, Master: "dn2", Port: 4, SyncState: cluster.Sync})
	// dn1, the master before a failover this coordinator missed.
	add(cluster.Node{Name: "dn1", Host: "h1", Type: cluster.DatanodeSlave, Master: "dn2s", Port: 5, SyncState: cluster.Async})
	ok := func(n cluster.Node) bool { return n.InCluster }
	tests := []struct {
		name     string
		c        string
		want     []string
		dontWant []string
	}{
		{"the gtmcoord master", "gc", []string{
			Schema, "DELETE FROM adb.node;",
			"INSERT INTO adb.node VALUES ('dn2s', 'datanode slave', '10.0.0.2', 4, 'dn2');",
			"(ARRAY['dn2'])[k % 1 + 1] FROM generate_series(0, 63)",
			"SELECT adb.move_server('dn1', 'dn2');", "SELECT adb.orphans();",
			"INSERT INTO adb.prev_node SELECT name, master FROM adb.node;\nDELETE FROM adb.node;",
			`CREATE SERVER "dn2" FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '10.0.0.1', port '3', dbname 'postgres');`,
			"SELECT adb.secure_server('dn2');", `CREATE USER MAPPING IF NOT EXISTS FOR PUBLIC SERVER "dn2" OPTIONS (user 'pg', password_required 'false');`,
			"ALTER USER MAPPING FOR PUBLIC SERVER \"dn2\" OPTIONS (ADD password_required 'false');",
			"('fetch_size', '10000'), ('batch_size', '100'), ('async_capable', 'true'), ('fdw_tuple_cost', '0.2'), ('extensions', ext)",
			"info text := adb.conninfo('dn2');", "WHERE s.srvname = 'dn2' AND opt LIKE o.name || '=%')",
		}, []string{`CREATE SERVER "dn2s"`}},
		{"a read-only coordinator reads from the sync slave", "cn", []string{"OPTIONS (host '10.0.0.2', port '4', dbname 'postgres')"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := s.Node(tt.c)
			got := Configure(s, c, ok)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q", w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(got, w) {
					t.Errorf("has %q", w)
				}
			}
		})
	}
	if !IsCoordinator(s.Nodes[0]) || !IsCoordinator(s.Nodes[1]) || IsCoordinator(s.Nodes[2]) {
		t.Error("IsCoordinator")
	}
}

// TestStale: a coordinator that missed a failover (a server still named
// after the old master, none for the new one), whose server points
// elsewhere, or that routes to a name that is no node is stale; one
// Configure wrote is not.
func TestStale(t *testing.T) {
	s := &cluster.State{Hosts: []cluster.Host{{Name: "h1", Address: "10.0.0.1"}, {Name: "h2", Address: "10.0.0.2"}}}
	add := func(n cluster.Node) { n.ID = int64(len(s.Nodes) + 1); n.InCluster = true; s.Nodes = append(s.Nodes, n) }
	add(cluster.Node{Name: "cn", Host: "h2", Type: cluster.CoordinatorMaster, Port: 2})
	add(cluster.Node{Name: "dn1s", Host: "h2", Type: cluster.DatanodeMaster, Port: 4})
	add(cluster.Node{Name: "dn1", Host: "h1", Type: cluster.DatanodeSlave, Master: "dn1s", Port: 5})
	add(cluster.Node{Name: "dn2", Host: "h1", Type: cluster.DatanodeMaster, Port: 3})
	ok := func(n cluster.Node) bool { return n.InCluster }
	c, _ := s.Node("cn")
	tests := []struct {
		name string
		have map[string]string
		want bool
	}{
		{"up to date", map[string]string{"dn1s": "10.0.0.2:4", "dn2": "10.0.0.1:3"}, false},
		// ADBMGR PROMOTE deleted the old master while this coordinator
		// was not told: a server, or slots, named after no node.
		{"a server of a deleted node", map[string]string{"dn1s": "10.0.0.2:4", "dn2": "10.0.0.1:3", "dn0": "10.0.0.1:9"}, true},
		{"slots on a deleted node", map[string]string{"dn1s": "10.0.0.2:4", "dn2": "10.0.0.1:3", "dn0": ""}, true},
		{"slots on a slave", map[string]string{"dn1s": "10.0.0.2:4", "dn2": "10.0.0.1:3", "dn1": ""}, true},
		{"missed the failover", map[string]string{"dn1": "10.0.0.1:5", "dn2": "10.0.0.1:3"}, true},
		{"renamed but not re-pointed", map[string]string{"dn1s": "10.0.0.1:5", "dn2": "10.0.0.1:3"}, true},
		{"a server missing", map[string]string{"dn1s": "10.0.0.2:4"}, true},
	}
	for _, tt := range tests {
		if got := Stale(s, c, ok, tt.have); got != tt.want {
			t.Errorf("%s: Stale = %v, want %v", tt.name, got, tt.want)
		}
	}
}
