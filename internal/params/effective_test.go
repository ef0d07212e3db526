package params

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/google/go-cmp/cmp"
)

func node(s *cluster.State, name string) cluster.Node {
	n, ok := s.Node(name)
	if !ok {
		panic("no node " + name)
	}
	return n
}

func TestEffective(t *testing.T) {
	s := testState()
	// Rows deliberately out of level order: precedence is by level, not by
	// position.
	all := []cluster.Param{
		row("dm0", dnM, "work_mem", "32MB"),
		row("*", dnM, "work_mem", "16MB"),
		row("*", dnFam, "work_mem", "8MB"),
		row("*", dnFam, "wal_log_hints", "on"),
		row("*", dnS, "wal_log_hints", Removed),
		row("ds1", dnS, "wal_log_hints", "on"),
		row("*", dnFam, "archive_command", "cp %p /arch/%f"),
		row("dm1", dnM, "archive_command", Removed),
		row("ds0", dnM, "work_mem", "1MB"), // stale type: ds0 is a slave
		row("*", "coordinator", "work_mem", "2MB"),
		row("*", dnFam, "port", "1"), // a manager key in an old catalog
		// Rows the agent refuses, in a catalog from before SET checked
		// them: left out, so that INIT still works.
		row("*", dnFam, "a.b.c", "1"),
		row("*", dnFam, "include_dir", "/etc"),
		row("dm0", dnM, "Include", Removed),
		row("*", dnFam, "x.y", "a\x00b"),
		row("ds1", dnS, "Work_Mem", "8MB"), // keys come out lower-cased
	}
	tests := []struct {
		node       string
		wantSet    map[string]string
		wantRemove []string
	}{
		{"dm0", map[string]string{"work_mem": "32MB", "wal_log_hints": "on", "archive_command": "cp %p /arch/%f"}, nil},
		{"dm1", map[string]string{"work_mem": "16MB", "wal_log_hints": "on"}, []string{"archive_command"}},
		{"ds0", map[string]string{"work_mem": "8MB", "archive_command": "cp %p /arch/%f"}, []string{"wal_log_hints"}},
		{"ds1", map[string]string{"work_mem": "8MB", "wal_log_hints": "on", "archive_command": "cp %p /arch/%f"}, nil},
		{"cn1", map[string]string{"work_mem": "2MB"}, nil},
		{"gc1", map[string]string{}, nil},
	}
	for _, tt := range tests {
		set, remove := Effective(node(s, tt.node), all)
		if diff := cmp.Diff(tt.wantSet, set); diff != "" {
			t.Errorf("%s set (-want +got):\n%s", tt.node, diff)
		}
		if diff := cmp.Diff(tt.wantRemove, remove); diff != "" {
			t.Errorf("%s remove (-want +got):\n%s", tt.node, diff)
		}
	}
}

func TestUpdates(t *testing.T) {
	s := testState()
	all := []cluster.Param{row("*", dnFam, "work_mem", "8MB"), row("dm0", dnM, "archive_mode", Removed)}
	set, remove := Updates(node(s, "dm0"), all, []string{"work_mem", "archive_mode", "Wal_Keep_Size"})
	if diff := cmp.Diff(map[string]string{"work_mem": "8MB"}, set); diff != "" {
		t.Errorf("set (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"archive_mode", "wal_keep_size"}, remove); diff != "" {
		t.Errorf("remove (-want +got):\n%s", diff)
	}
}

func TestTypeLabel(t *testing.T) {
	for p, want := range map[cluster.Param]string{
		row("*", dnFam, "k", "v"):         "datanode master|slave",
		row("*", "gtmcoord", "k", "v"):    "gtmcoord master|slave",
		row("*", "coordinator", "k", "v"): "coordinator master|slave",
		row("*", dnM, "k", "v"):           "datanode master",
		row("ds0", dnS, "k", "v"):         "datanode slave",
	} {
		if got := TypeLabel(p); got != want {
			t.Errorf("TypeLabel(%+v) = %q, want %q", p, got, want)
		}
	}
}

func TestList(t *testing.T) {
	all := []cluster.Param{
		row("ds0", dnS, "work_mem", "1MB"),
		row("dm1", dnM, "work_mem", "2MB"),
		row("dm0", dnM, "work_mem", "3MB"),
		row("*", dnM, "wal_keep_size", "1GB"),
		row("*", dnFam, "wal_log_hints", "on"),
		row("*", dnS, "hot_standby_feedback", "on"),
		row("*", "coordinator", "work_mem", "4MB"),
		row("*", "gtmcoord", "work_mem", "5MB"),
		row("dm0", dnM, "archive_command", "cp"),
	}
	tests := []struct {
		name    string
		target  *Target
		pattern string
		want    []cluster.Param
	}{
		{"everything, sorted", nil, "", []cluster.Param{
			row("*", "gtmcoord", "work_mem", "5MB"),
			row("*", "coordinator", "work_mem", "4MB"),
			row("*", dnFam, "wal_log_hints", "on"),
			row("*", dnM, "wal_keep_size", "1GB"),
			row("dm0", dnM, "archive_command", "cp"),
			row("dm0", dnM, "work_mem", "3MB"),
			row("dm1", dnM, "work_mem", "2MB"),
			row("*", dnS, "hot_standby_feedback", "on"),
			row("ds0", dnS, "work_mem", "1MB"),
		}},
		{"pattern", nil, "WORK", []cluster.Param{
			row("*", "gtmcoord", "work_mem", "5MB"),
			row("*", "coordinator", "work_mem", "4MB"),
			row("dm0", dnM, "work_mem", "3MB"),
			row("dm1", dnM, "work_mem", "2MB"),
			row("ds0", dnS, "work_mem", "1MB"),
		}},
		{"datanode master dm0: its rows and the wider ones", &Target{Family: cluster.Datanode, Role: "master", Names: []string{"dm0"}}, "", []cluster.Param{
			row("*", dnFam, "wal_log_hints", "on"),
			row("*", dnM, "wal_keep_size", "1GB"),
			row("dm0", dnM, "archive_command", "cp"),
			row("dm0", dnM, "work_mem", "3MB"),
		}},
		{"datanode slave all", &dnSlaveAll, "", []cluster.Param{
			row("*", dnFam, "wal_log_hints", "on"),
			row("*", dnS, "hot_standby_feedback", "on"),
			row("ds0", dnS, "work_mem", "1MB"),
		}},
		{"coordinator all", &coordAll, "", []cluster.Param{row("*", "coordinator", "work_mem", "4MB")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, List(all, tt.target, tt.pattern)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnwritable(t *testing.T) {
	s := testState()
	all := []cluster.Param{
		row("*", dnFam, "a.b.c", "1"),
		row("dm1", dnM, "include", "/etc/passwd"),
		row("*", dnFam, "x.y", "a\x00b"),
		row("*", dnFam, "work_mem", "8MB"),
		row("*", dnFam, "archive_command", Removed),
		row("*", dnFam, "port", "1"), // the manager's: skipped for another reason
		row("*", "coordinator", "include_dir", "/etc"),
	}
	got := Unwritable(node(s, "dm0"), all)
	want := []cluster.Param{row("*", dnFam, "a.b.c", "1"), row("*", dnFam, "x.y", "a\x00b")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dm0 (-want +got):\n%s", diff)
	}
	if got := Unwritable(node(s, "cn1"), all); len(got) != 1 || got[0].Key != "include_dir" {
		t.Errorf("cn1: %v", got)
	}
}
