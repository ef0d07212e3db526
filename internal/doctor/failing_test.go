package doctor

import (
	"strings"
	"testing"
)

func TestTriedCounts(t *testing.T) {
	d := Tried("cannot stop it: agent not reachable", "cannot stop it: agent not reachable")
	if d != "failed 2 times; the last: cannot stop it: agent not reachable" {
		t.Errorf("second: %q", d)
	}
	if d = Tried(d, "timeout"); d != "failed 3 times; the last: timeout" {
		t.Errorf("third: %q", d)
	}
}

func TestFailHint(t *testing.T) {
	for _, tt := range []struct {
		act  ActionKind
		want []string
	}{
		{Fence, []string{"START AGENT", "SET DOCTOR NODE dn1 OFF", "pg_ctl stop"}},
		{Failover, []string{"START AGENT", "FAILOVER DATANODE dn1 FORCE", "SET DOCTOR NODE dn1 OFF"}},
		{Refresh, []string{"SET DOCTOR NODE dn1 OFF"}},
	} {
		h := FailHint(tt.act, "dn1", "datanode")
		for _, w := range tt.want {
			if !strings.Contains(h, w) {
				t.Errorf("%s hint %q lacks %q", tt.act, h, w)
			}
		}
	}
}
