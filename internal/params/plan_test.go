package params

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testState is one gtmcoord master, one coordinator, two datanode masters
// with a slave each — the shape of the user's guide examples (dm0, dm1).
func testState() *cluster.State {
	s := &cluster.State{Hosts: []cluster.Host{{Name: "h1", Address: "10.0.0.1"}}}
	for i, n := range []cluster.Node{
		{Name: "gc1", Type: cluster.GtmcoordMaster},
		{Name: "cn1", Type: cluster.CoordinatorMaster},
		{Name: "dm0", Type: cluster.DatanodeMaster},
		{Name: "dm1", Type: cluster.DatanodeMaster},
		{Name: "ds0", Type: cluster.DatanodeSlave, Master: "dm0", SyncState: cluster.Sync},
		{Name: "ds1", Type: cluster.DatanodeSlave, Master: "dm1", SyncState: cluster.Sync},
	} {
		n.ID, n.Host, n.Port, n.Path = int64(i+1), "h1", 5432+i, "/data/"+n.Name
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

// Targets as the statements write them.
var (
	datanodeAll  = Target{Family: cluster.Datanode, All: true}
	dnMasterAll  = Target{Family: cluster.Datanode, Role: "master", All: true}
	dnSlaveAll   = Target{Family: cluster.Datanode, Role: "slave", All: true}
	dnMaster     = func(names ...string) Target { return Target{Family: cluster.Datanode, Role: "master", Names: names} }
	coordAll     = Target{Family: cluster.Coordinator, All: true}
	gtmcoordAll  = Target{Family: cluster.Gtmcoord, All: true}
	restartWalLH = cluster.Notice{Severity: "NOTICE", Message: `parameter "wal_log_hints" cannot be changed without restarting the server`}
)

func row(node, typ, key, value string) cluster.Param {
	return cluster.Param{Node: node, Type: typ, Key: key, Value: value}
}

func set(k, v string) Setting { return Setting{Key: k, Value: v, HasValue: true} }

func keys(ks ...string) []Setting {
	out := make([]Setting, len(ks))
	for i, k := range ks {
		out[i] = Setting{Key: k}
	}
	return out
}

const (
	dnFam = "datanode"
	dnM   = "datanode master"
	dnS   = "datanode slave"
	cnM   = "coordinator master"
)

func TestPlanSet(t *testing.T) {
	tests := []struct {
		name     string
		existing []cluster.Param
		target   Target
		settings []Setting
		force    bool
		reset    bool
		want     cluster.Plan
	}{
		{
			name:     "family-wide SET stores one * row with the family type",
			target:   datanodeAll,
			settings: []Setting{set("wal_log_hints", "on"), set("full_page_writes", "on")},
			want: cluster.Plan{
				PutParams: []cluster.Param{row("*", dnFam, "wal_log_hints", "on"), row("*", dnFam, "full_page_writes", "on")},
				Notices:   []cluster.Notice{restartWalLH},
			},
		},
		{
			name: "family-wide SET deletes the key's type and node rows of the family, nothing else",
			existing: []cluster.Param{
				row("*", dnFam, "work_mem", "8MB"),
				row("*", dnM, "work_mem", "16MB"),
				row("dm0", dnM, "work_mem", "32MB"),
				row("ds0", dnS, "work_mem", "64MB"),
				row("cn1", cnM, "work_mem", "1MB"),
				row("dm0", dnM, "wal_keep_size", "1024"),
			},
			target:   datanodeAll,
			settings: []Setting{set("work_mem", "4MB")},
			want: cluster.Plan{
				PutParams: []cluster.Param{row("*", dnFam, "work_mem", "4MB")},
				DeleteParams: []cluster.Param{
					row("*", dnM, "work_mem", "16MB"), row("dm0", dnM, "work_mem", "32MB"), row("ds0", dnS, "work_mem", "64MB"),
				},
			},
		},
		{
			name: "type-wide SET deletes node rows of that type only",
			existing: []cluster.Param{
				row("*", dnFam, "work_mem", "8MB"),
				row("dm0", dnM, "work_mem", "32MB"),
				row("ds0", dnS, "work_mem", "64MB"),
			},
			target:   dnMasterAll,
			settings: []Setting{set("work_mem", "4MB")},
			want: cluster.Plan{
				PutParams:    []cluster.Param{row("*", dnM, "work_mem", "4MB")},
				DeleteParams: []cluster.Param{row("dm0", dnM, "work_mem", "32MB")},
			},
		},
		{
			name: "type-wide SET to the family value leaves no type row",
			existing: []cluster.Param{
				row("*", dnFam, "work_mem", "8MB"),
				row("*", dnM, "work_mem", "16MB"),
				row("dm1", dnM, "work_mem", "32MB"),
			},
			target:   dnMasterAll,
			settings: []Setting{set("work_mem", "8MB")},
			want: cluster.Plan{
				DeleteParams: []cluster.Param{row("dm1", dnM, "work_mem", "32MB"), row("*", dnM, "work_mem", "16MB")},
			},
		},
		{
			name:     "per-node SET stores a node row",
			target:   dnMaster("dm0"),
			settings: []Setting{set("work_mem", "8MB")},
			want:     cluster.Plan{PutParams: []cluster.Param{row("dm0", dnM, "work_mem", "8MB")}},
		},
		{
			name:     "per-node SET replaces the node's row",
			existing: []cluster.Param{row("dm0", dnM, "work_mem", "4MB")},
			target:   dnMaster("dm0"),
			settings: []Setting{set("work_mem", "8MB")},
			want:     cluster.Plan{PutParams: []cluster.Param{row("dm0", dnM, "work_mem", "8MB")}},
		},
		{
			name:     "per-node SET equal to the family value deletes the redundant row",
			existing: []cluster.Param{row("*", dnFam, "work_mem", "8MB"), row("dm0", dnM, "work_mem", "4MB")},
			target:   dnMaster("dm0"),
			settings: []Setting{set("work_mem", "8 MB")},
			want:     cluster.Plan{DeleteParams: []cluster.Param{row("dm0", dnM, "work_mem", "4MB")}},
		},
		{
			name: "per-node SET compares with the type value before the family value",
			existing: []cluster.Param{
				row("*", dnFam, "work_mem", "8MB"), row("*", dnM, "work_mem", "16MB"), row("dm0", dnM, "work_mem", "4MB"),
			},
			target:   dnMaster("dm0"),
			settings: []Setting{set("work_mem", "8MB")},
			want:     cluster.Plan{PutParams: []cluster.Param{row("dm0", dnM, "work_mem", "8MB")}},
		},
		{
			name:     "per-node SET equal to the type value, no row of its own: nothing to do",
			existing: []cluster.Param{row("*", dnM, "work_mem", "16MB")},
			target:   dnMaster("dm0"),
			settings: []Setting{set("work_mem", "16MB")},
			want:     cluster.Plan{},
		},
		{
			name:     "SET over a RESET FORCE row replaces it",
			existing: []cluster.Param{row("*", dnFam, "work_mem", Removed)},
			target:   datanodeAll,
			settings: []Setting{set("work_mem", "8MB")},
			want:     cluster.Plan{PutParams: []cluster.Param{row("*", dnFam, "work_mem", "8MB")}},
		},
		{
			name:     "coordinator and gtmcoord families have their own rows",
			existing: []cluster.Param{row("*", dnFam, "work_mem", "8MB")},
			target:   coordAll,
			settings: []Setting{set("work_mem", "8MB")},
			want:     cluster.Plan{PutParams: []cluster.Param{row("*", "coordinator", "work_mem", "8MB")}},
		},
		{
			name:     "FORCE stores an unknown key verbatim",
			target:   gtmcoordAll,
			settings: []Setting{set("pg_stat_statements.max", "10000")},
			force:    true,
			want:     cluster.Plan{PutParams: []cluster.Param{row("*", "gtmcoord", "pg_stat_statements.max", "10000")}},
		},
		{
			name:     "notices: one per restart parameter",
			target:   dnMasterAll,
			settings: []Setting{set("wal_log_hints", "on"), set("archive_mode", "on"), set("wal_keep_size", "1GB")},
			want: cluster.Plan{
				PutParams: []cluster.Param{
					row("*", dnM, "wal_log_hints", "on"), row("*", dnM, "archive_mode", "on"), row("*", dnM, "wal_keep_size", "1GB"),
				},
				Notices: []cluster.Notice{restartWalLH,
					{Severity: "NOTICE", Message: `parameter "archive_mode" cannot be changed without restarting the server`}},
			},
		},

		// RESET
		{
			name: "family-wide RESET removes every row of the key in the family",
			existing: []cluster.Param{
				row("*", dnFam, "work_mem", "8MB"), row("*", dnS, "work_mem", "16MB"),
				row("dm0", dnM, "work_mem", "32MB"), row("cn1", cnM, "work_mem", "1MB"),
			},
			target:   datanodeAll,
			settings: keys("work_mem"),
			reset:    true,
			want: cluster.Plan{DeleteParams: []cluster.Param{
				row("*", dnFam, "work_mem", "8MB"), row("*", dnS, "work_mem", "16MB"), row("dm0", dnM, "work_mem", "32MB"),
			}},
		},
		{
			name:     "family-wide RESET FORCE records --",
			existing: []cluster.Param{row("*", dnFam, "work_mem", "8MB"), row("ds1", dnS, "work_mem", "16MB")},
			target:   datanodeAll,
			settings: keys("work_mem"),
			force:    true,
			reset:    true,
			want: cluster.Plan{
				PutParams:    []cluster.Param{row("*", dnFam, "work_mem", Removed)},
				DeleteParams: []cluster.Param{row("ds1", dnS, "work_mem", "16MB")},
			},
		},
		{
			name:     "type-wide RESET without a family row removes the rows",
			existing: []cluster.Param{row("*", dnM, "work_mem", "16MB"), row("dm1", dnM, "work_mem", "32MB"), row("ds1", dnS, "work_mem", "1MB")},
			target:   dnMasterAll,
			settings: keys("work_mem"),
			reset:    true,
			want: cluster.Plan{DeleteParams: []cluster.Param{
				row("dm1", dnM, "work_mem", "32MB"), row("*", dnM, "work_mem", "16MB"),
			}},
		},
		{
			name:     "type-wide RESET under a family row stores the default",
			existing: []cluster.Param{row("*", dnFam, "work_mem", "8MB"), row("*", dnM, "work_mem", "16MB")},
			target:   dnMasterAll,
			settings: keys("work_mem"),
			reset:    true,
			want:     cluster.Plan{PutParams: []cluster.Param{row("*", dnM, "work_mem", "4096")}},
		},
		{
			name:     "type-wide RESET under a family -- row needs no row",
			existing: []cluster.Param{row("*", dnFam, "work_mem", Removed), row("*", dnS, "work_mem", "16MB")},
			target:   dnSlaveAll,
			settings: keys("work_mem"),
			reset:    true,
			want:     cluster.Plan{DeleteParams: []cluster.Param{row("*", dnS, "work_mem", "16MB")}},
		},
		{
			name:     "per-node RESET removes the node's row",
			existing: []cluster.Param{row("dm0", dnM, "work_mem", "32MB"), row("dm1", dnM, "work_mem", "32MB")},
			target:   dnMaster("dm0"),
			settings: keys("work_mem"),
			reset:    true,
			want:     cluster.Plan{DeleteParams: []cluster.Param{row("dm0", dnM, "work_mem", "32MB")}},
		},
		{
			name:     "per-node RESET under a * row stores the default so it overrides the family value",
			existing: []cluster.Param{row("*", dnFam, "wal_log_hints", "on"), row("*", dnFam, "archive_mode", "on")},
			target:   dnMaster("dm0"),
			settings: keys("wal_log_hints", "archive_mode"),
			reset:    true,
			want: cluster.Plan{
				PutParams: []cluster.Param{row("dm0", dnM, "wal_log_hints", "off"), row("dm0", dnM, "archive_mode", "off")},
				Notices: []cluster.Notice{restartWalLH,
					{Severity: "NOTICE", Message: `parameter "archive_mode" cannot be changed without restarting the server`}},
			},
		},
		{
			name:     "per-node RESET under a type row equal to the default needs no row",
			existing: []cluster.Param{row("*", dnM, "work_mem", "4096"), row("dm0", dnM, "work_mem", "8MB")},
			target:   dnMaster("dm0"),
			settings: keys("work_mem"),
			reset:    true,
			want:     cluster.Plan{DeleteParams: []cluster.Param{row("dm0", dnM, "work_mem", "8MB")}},
		},
		{
			name:     "per-node RESET FORCE records --",
			existing: []cluster.Param{row("dm0", dnM, "work_mem", "8MB")},
			target:   dnMaster("dm0"),
			settings: keys("work_mem"),
			force:    true,
			reset:    true,
			want:     cluster.Plan{PutParams: []cluster.Param{row("dm0", dnM, "work_mem", Removed)}},
		},
		{
			name:     "per-node RESET FORCE under a -- row needs no row",
			existing: []cluster.Param{row("*", dnFam, "work_mem", Removed), row("dm0", dnM, "work_mem", "8MB")},
			target:   dnMaster("dm0"),
			settings: keys("work_mem"),
			force:    true,
			reset:    true,
			want:     cluster.Plan{DeleteParams: []cluster.Param{row("dm0", dnM, "work_mem", "8MB")}},
		},
		{
			name:     "RESET FORCE of an unknown key",
			existing: []cluster.Param{row("*", dnFam, "pg_stat_statements.max", "10000")},
			target:   datanodeAll,
			settings: keys("pg_stat_statements.max"),
			force:    true,
			reset:    true,
			want:     cluster.Plan{PutParams: []cluster.Param{row("*", dnFam, "pg_stat_statements.max", Removed)}},
		},
		{
			name:     "RESET of a key nobody set is a no-op",
			target:   dnMaster("dm1"),
			settings: keys("work_mem"),
			reset:    true,
			want:     cluster.Plan{},
		},
		{
			name:     "RESET ignores values and folds case",
			existing: []cluster.Param{row("*", dnFam, "work_mem", "8MB")},
			target:   datanodeAll,
			settings: []Setting{set("WORK_MEM", "whatever")},
			reset:    true,
			want:     cluster.Plan{DeleteParams: []cluster.Param{row("*", dnFam, "work_mem", "8MB")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanSet(testState(), tt.existing, tt.target, tt.settings, testGUCs(), tt.force, tt.reset)
			if err != nil {
				t.Fatalf("PlanSet: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// A default that does not pass its own check (postgres --describe-config
// prints 0 for every integer) is not stored: "--" removes the line instead.
func TestPlanSetBadDefault(t *testing.T) {
	gucs := testGUCs()
	g := gucs["shared_buffers"]
	g.Default = "0"
	gucs["shared_buffers"] = g
	existing := []cluster.Param{row("*", dnFam, "shared_buffers", "1GB")}
	got, err := PlanSet(testState(), existing, dnMaster("dm0"), keys("shared_buffers"), gucs, false, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []cluster.Param{row("dm0", dnM, "shared_buffers", Removed)}
	if diff := cmp.Diff(want, got.PutParams); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPlanSetErrors(t *testing.T) {
	tests := []struct {
		name     string
		target   Target
		settings []Setting
		force    bool
		reset    bool
		want     outcome
	}{
		{"unknown node", dnMaster("dmx"), []Setting{set("work_mem", "8MB")}, false, false,
			fail(pgerror.UndefinedObject, `datanode master "dmx" does not exist`, "")},
		{"node of another type", dnMaster("ds0"), []Setting{set("work_mem", "8MB")}, false, false,
			fail(pgerror.UndefinedObject, `datanode master "ds0" does not exist`, "")},
		{"unknown key", datanodeAll, []Setting{set("work_mem", "8MB"), set("wal_keep_segments", "64")}, false, false,
			fail(pgerror.UndefinedObject, `unrecognized configuration parameter "wal_keep_segments"`, "")},
		{"unknown key on RESET", datanodeAll, keys("wal_keep_segments"), false, true,
			fail(pgerror.UndefinedObject, `unrecognized configuration parameter "wal_keep_segments"`, "")},
		{"bad value", dnMasterAll, []Setting{set("work_mem", "lots")}, false, false,
			invalid("work_mem", "lots", "")},
		{"port", datanodeAll, []Setting{set("port", "6000")}, true, false, fail(pgerror.InsufficientPrivilege,
			`permission denied: "port" should be modified in "node" table before init all`, managedHints["port"])},
		{"port on RESET FORCE", datanodeAll, keys("port"), true, true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "port" should be modified in "node" table before init all`, managedHints["port"])},
		{"key twice", datanodeAll, []Setting{set("work_mem", "8MB"), set("Work_Mem", "16MB")}, false, false,
			fail(pgerror.SyntaxError, "conflicting or redundant options", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanSet(testState(), nil, tt.target, tt.settings, testGUCs(), tt.force, tt.reset)
			if err == nil {
				t.Fatalf("PlanSet succeeded with %+v", plan)
			}
			if diff := cmp.Diff(tt.want, outcomeOf(t, "", err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Rows the agent refuses, planted by a catalog from before SET checked
// names: RESET (with or without FORCE) deletes the rows it covers and
// stores nothing, so the nodes can be INITed and restarted again.
func TestPlanResetUnwritable(t *testing.T) {
	planted := []cluster.Param{
		row("*", dnFam, "a.b.c", "1"),
		row("*", dnM, "INCLUDE_DIR", "/etc"),
		row("dm0", dnM, "include", "/etc/passwd"),
		row("*", "coordinator", "a.b.c", "2"),
		row("*", dnFam, "work_mem", "8MB"),
	}
	removed := func(k string) cluster.Notice {
		return cluster.Notice{Severity: "NOTICE", Message: `removed parameter "` + k + `" from the catalog; it was never written to postgresql.conf`}
	}
	tests := []struct {
		name     string
		target   Target
		settings []Setting
		force    bool
		want     cluster.Plan
		wantErr  outcome
	}{
		{name: "family RESET FORCE deletes the family's rows of the key", target: datanodeAll, settings: keys("a.b.c"), force: true,
			want: cluster.Plan{DeleteParams: []cluster.Param{row("*", dnFam, "a.b.c", "1")}, Notices: []cluster.Notice{removed("a.b.c")}}},
		{name: "plain RESET as well, any case", target: datanodeAll, settings: keys("Include_Dir", "include"),
			want: cluster.Plan{
				DeleteParams: []cluster.Param{row("*", dnM, "INCLUDE_DIR", "/etc"), row("dm0", dnM, "include", "/etc/passwd")},
				Notices:      []cluster.Notice{removed("include_dir"), removed("include")},
			}},
		{name: "type RESET deletes the type and node rows", target: dnMasterAll, settings: keys("include"), force: true,
			want: cluster.Plan{DeleteParams: []cluster.Param{row("dm0", dnM, "include", "/etc/passwd")}, Notices: []cluster.Notice{removed("include")}}},
		{name: "node RESET deletes the node's row", target: dnMaster("dm0"), settings: keys("include"),
			want: cluster.Plan{DeleteParams: []cluster.Param{row("dm0", dnM, "include", "/etc/passwd")}, Notices: []cluster.Notice{removed("include")}}},
		{name: "a level that does not hold it", target: dnMaster("dm1"), settings: keys("include"),
			wantErr: fail(pgerror.UndefinedObject, `parameter "include" is not stored at this level`,
				"LIST PARAM shows its rows; RESET the level that holds it (a SET DATANODE ALL row with RESET DATANODE ALL).")},
		{name: "not in the catalog at all", target: datanodeAll, settings: keys("x.y.z"), force: true,
			wantErr: fail(pgerror.InvalidName, `invalid configuration parameter name "x.y.z"`, "")},
		{name: "given twice", target: datanodeAll, settings: keys("a.b.c", "A.B.C"), force: true,
			wantErr: fail(pgerror.SyntaxError, "conflicting or redundant options", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanSet(testState(), planted, tt.target, tt.settings, testGUCs(), tt.force, true)
			if tt.wantErr != (outcome{}) {
				if diff := cmp.Diff(tt.wantErr, outcomeOf(t, "", err)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, plan, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// After the plan nothing of the key reaches the agent, and
			// what the nodes get is writable.
			after := Apply(planted, plan)
			for _, n := range testState().Nodes {
				set, remove := Effective(n, after)
				for k := range set {
					if !Writable(k) {
						t.Errorf("%s: Effective sets %q", n.Name, k)
					}
				}
				for _, k := range remove {
					if !Writable(k) {
						t.Errorf("%s: Effective removes %q", n.Name, k)
					}
				}
				if _, remove := Updates(n, after, []string{"a.b.c", "include", "include_dir"}); len(remove) > 0 {
					t.Errorf("%s: Updates removes %q", n.Name, remove)
				}
			}
		})
	}
}

func TestAffected(t *testing.T) {
	names := func(ns []cluster.Node) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	tests := []struct {
		target Target
		want   []string
	}{
		{datanodeAll, []string{"dm0", "dm1", "ds0", "ds1"}},
		{dnMasterAll, []string{"dm0", "dm1"}},
		{dnSlaveAll, []string{"ds0", "ds1"}},
		{dnMaster("dm1", "dm0", "dm1"), []string{"dm1", "dm0"}},
		{coordAll, []string{"cn1"}},
		{Target{Family: cluster.Coordinator, Role: "slave", All: true}, nil},
	}
	for _, tt := range tests {
		got, err := Affected(testState(), tt.target)
		if err != nil {
			t.Fatalf("Affected(%+v): %v", tt.target, err)
		}
		if diff := cmp.Diff(tt.want, names(got)); diff != "" {
			t.Errorf("Affected(%+v) (-want +got):\n%s", tt.target, diff)
		}
	}
	for _, bad := range []Target{
		{Family: cluster.Datanode},
		{Family: cluster.Datanode, Names: []string{"dm0"}},
		{Family: cluster.Datanode, Role: "master", All: true, Names: []string{"dm0"}},
		{Family: cluster.Datanode, Role: "extra", All: true},
		{Family: "gtm", All: true},
	} {
		if _, err := Affected(testState(), bad); err == nil {
			t.Errorf("Affected(%+v) accepted an impossible target", bad)
		}
	}
}

func TestApply(t *testing.T) {
	existing := []cluster.Param{row("*", dnFam, "a", "1"), row("dm0", dnM, "a", "2"), row("*", dnFam, "b", "3")}
	plan := cluster.Plan{
		DeleteParams: []cluster.Param{row("dm0", dnM, "a", "2")},
		PutParams:    []cluster.Param{row("*", dnFam, "b", "4"), row("ds0", dnS, "c", "5")},
	}
	want := []cluster.Param{row("*", dnFam, "a", "1"), row("*", dnFam, "b", "4"), row("ds0", dnS, "c", "5")}
	if diff := cmp.Diff(want, Apply(existing, plan)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRetype(t *testing.T) {
	existing := []cluster.Param{row("ds0", dnS, "work_mem", "8MB"), row("*", dnS, "work_mem", "4MB"), row("dm0", dnM, "work_mem", "1MB")}
	want := cluster.Plan{
		DeleteParams: []cluster.Param{row("ds0", dnS, "work_mem", "8MB")},
		PutParams:    []cluster.Param{row("ds0", dnM, "work_mem", "8MB")},
	}
	if diff := cmp.Diff(want, Retype(existing, "ds0", cluster.DatanodeMaster)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A name SET … FORCE stored (a valid GUC name the server does not list)
// is RESET without FORCE too: the catalog knows it.
func TestPlanResetForcedName(t *testing.T) {
	stored := []cluster.Param{row("*", dnFam, "plpgsql.extra_warnings", "all")}
	if _, err := PlanSet(testState(), stored, datanodeAll, keys("plpgsql.extra_warnings"), testGUCs(), false, true); err != nil {
		t.Fatalf("RESET of a FORCE-stored name: %v", err)
	}
	_, err := PlanSet(testState(), nil, datanodeAll, keys("plpgsql.extra_warnings"), testGUCs(), false, true)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.UndefinedObject {
		t.Fatalf("RESET of an unknown name nobody stored: %v, want 42704", err)
	}
}
