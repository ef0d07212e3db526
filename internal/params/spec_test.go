package params

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/google/go-cmp/cmp"
)

// TestUserGuideExamples runs the SET statements of the user's guide
// (antdb-node-management: rewind and expansion preparation) one after the
// other through PlanSet and Apply, as the executor does, and checks the
// catalog, the notices, and what each datanode's postgresql.conf gets.
func TestUserGuideExamples(t *testing.T) {
	s := testState()
	gucs := testGUCs()
	type step struct {
		stmt     string
		target   Target
		settings []Setting // values as the parser hands them over (quotes removed)
		notices  []string
	}
	steps := []step{
		{"SET DATANODE ALL (wal_log_hints=on, full_page_writes=on);", datanodeAll,
			[]Setting{set("wal_log_hints", "on"), set("full_page_writes", "on")},
			[]string{`parameter "wal_log_hints" cannot be changed without restarting the server`}},
		{`SET DATANODE master ALL (archive_mode = "on");`, dnMasterAll,
			[]Setting{set("archive_mode", "on")},
			[]string{`parameter "archive_mode" cannot be changed without restarting the server`}},
		{`SET DATANODE master dm0 (archive_command = "rsync -a %p /data2/antdb/data/arch/dm0/%f");`, dnMaster("dm0"),
			[]Setting{set("archive_command", "rsync -a %p /data2/antdb/data/arch/dm0/%f")}, nil},
		{"SET DATANODE ALL (wal_sender_timeout = 0);", datanodeAll,
			[]Setting{set("wal_sender_timeout", "0")}, nil},
		{"SET DATANODE master ALL (wal_keep_size = 102400);", dnMasterAll,
			[]Setting{set("wal_keep_size", "102400")}, nil},
	}
	var rows []cluster.Param
	for _, st := range steps {
		plan, err := PlanSet(s, rows, st.target, st.settings, gucs, false, false)
		if err != nil {
			t.Fatalf("%s: %v", st.stmt, err)
		}
		var notices []string
		for _, n := range plan.Notices {
			notices = append(notices, n.Message)
		}
		if diff := cmp.Diff(st.notices, notices); diff != "" {
			t.Errorf("%s: notices (-want +got):\n%s", st.stmt, diff)
		}
		rows = Apply(rows, plan)
	}
	wantRows := []cluster.Param{
		row("*", dnFam, "wal_log_hints", "on"),
		row("*", dnFam, "full_page_writes", "on"),
		row("*", dnM, "archive_mode", "on"),
		row("dm0", dnM, "archive_command", "rsync -a %p /data2/antdb/data/arch/dm0/%f"),
		row("*", dnFam, "wal_sender_timeout", "0"),
		row("*", dnM, "wal_keep_size", "102400"),
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	common := map[string]string{"wal_log_hints": "on", "full_page_writes": "on", "wal_sender_timeout": "0"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	want := map[string]map[string]string{
		"dm0": with(map[string]string{"archive_mode": "on", "wal_keep_size": "102400",
			"archive_command": "rsync -a %p /data2/antdb/data/arch/dm0/%f"}),
		"dm1": with(map[string]string{"archive_mode": "on", "wal_keep_size": "102400"}),
		"ds0": common,
		"ds1": common,
		"cn1": {},
	}
	for name, w := range want {
		set, remove := Effective(node(s, name), rows)
		if diff := cmp.Diff(w, set); diff != "" {
			t.Errorf("%s postgresql.conf (-want +got):\n%s", name, diff)
		}
		if len(remove) != 0 {
			t.Errorf("%s: unexpected removals %v", name, remove)
		}
	}

	// After the expansion the guide restores the 60 s default.
	plan, err := PlanSet(s, rows, datanodeAll, keys("wal_sender_timeout"), gucs, false, true)
	if err != nil {
		t.Fatal(err)
	}
	rows = Apply(rows, plan)
	set, remove := Updates(node(s, "ds1"), rows, []string{"wal_sender_timeout"})
	if len(set) != 0 || !cmp.Equal(remove, []string{"wal_sender_timeout"}) {
		t.Errorf("after RESET DATANODE ALL (wal_sender_timeout): set %v remove %v, want the line removed", set, remove)
	}
}
