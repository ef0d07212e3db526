package doctor

import (
	"errors"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/google/go-cmp/cmp"
)

func TestRejoinSources(t *testing.T) {
	ro := node(6, "ro", cluster.CoordinatorMaster, "", "", true)
	ro.ReadOnly = true
	gc := node(1, "gc", cluster.GtmcoordMaster, "", "", true)
	for _, tc := range []struct {
		name string
		s    *cluster.State
		want []string
	}{
		{"the gtmcoord master first, read-only coordinators last", state(
			node(2, "cn1", cluster.CoordinatorMaster, "", "", true),
			ro,
			node(3, "cn2", cluster.CoordinatorMaster, "", "", false),
			node(4, "cn3", cluster.CoordinatorMaster, "", "", true),
			gc,
			node(5, "gcs", cluster.GtmcoordSlave, "gc", "sync", true),
			node(7, "dn1", cluster.DatanodeMaster, "", "", true),
		), []string{"gc", "cn1", "cn3", "ro"}},
		{"others out of the cluster missed changes too", state(
			node(2, "cn2", cluster.CoordinatorMaster, "", "", false),
			node(3, "cn3", cluster.CoordinatorMaster, "", "", false),
		), nil},
		{"alone", state(node(2, "cn2", cluster.CoordinatorMaster, "", "", false)), nil},
	} {
		var got []string
		for _, n := range RejoinSources(tc.s, "cn2") {
			got = append(got, n.Name)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestRebuild(t *testing.T) {
	for _, tc := range []struct {
		name    string
		look    RejoinLook
		rebuild bool
		why     string
	}{
		{"alike: started, no copy", RejoinLook{Source: "gc", Mine: "a", Theirs: "a"}, false, ""},
		{"missed DDL", RejoinLook{Source: "gc", Mine: "a", Theirs: "b"}, true, "its catalog differs from gc's"},
		{"does not start", RejoinLook{Source: "gc", StartErr: errors.New("pg_ctl: could not start"), Theirs: "b"}, true,
			"it does not start: pg_ctl: could not start"},
		{"cannot be read: not a proof of alike", RejoinLook{Source: "gc", MineErr: errors.New("no schema adb"), Theirs: ""}, true,
			"its catalog cannot be read: no schema adb"},
	} {
		why, rebuild := Rebuild(tc.look)
		if rebuild != tc.rebuild || why != tc.why {
			t.Errorf("%s: Rebuild = %q, %v; want %q, %v", tc.name, why, rebuild, tc.why, tc.rebuild)
		}
	}
}
