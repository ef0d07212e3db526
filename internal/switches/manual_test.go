package switches

import (
	"context"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func TestPromoteNode(t *testing.T) {
	t.Run("refused while the master runs", func(t *testing.T) {
		r := newRig(world())
		_, err := r.x.PromoteNode(context.Background(), cluster.DatanodeSlave, "dn1s", r.p)
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ObjectNotInPrereqState {
			t.Fatalf("err = %v", err)
		}
		r.steps(t)
		r.journal(t)
	})
	t.Run("the master is down", func(t *testing.T) {
		r := newRig(world())
		r.f.Nodes["dn1"].Running = false
		res, err := r.x.PromoteNode(context.Background(), cluster.DatanodeSlave, "dn1s", r.p)
		if err != nil || res.Description != "promote success" {
			t.Fatalf("res = %+v, err = %v", res, err)
		}
		if r.f.Node("dn1s").InRecovery {
			t.Error("dn1s still in recovery")
		}
		r.journal(t, "PROMOTE dn1s running promote", "PROMOTE dn1s done end")
		r.nodes(t, map[string]string{"dn1s": "datanode slave dn1 sync true true true"})
	})
}

func TestConfigSlave(t *testing.T) {
	r := newRig(world())
	if _, err := r.x.ConfigSlave(context.Background(), "dn1s", r.p); err == nil {
		t.Fatal("CONFIG of a standby was not refused")
	}
	r.f.Nodes["dn1s"].InRecovery = false
	res, err := r.x.ConfigSlave(context.Background(), "dn1s", r.p)
	if err != nil || res.Node != "dn1s" {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
	r.steps(t, coordinatorSteps("dn1", "dn1s")...)
	r.journal(t, "CONFIG dn1s running coordinators", "CONFIG dn1s done end")
	r.nodes(t, map[string]string{"dn1s": "datanode slave dn1 sync true true true"})
}

func TestAdbmgrPromote(t *testing.T) {
	// Each manual step is refused unless the one before it was done:
	// nothing stopped, nothing journaled, the node table unchanged.
	for _, tt := range []struct {
		name  string
		setup func(r *rig)
		msg   string
	}{
		{"before PROMOTE", func(r *rig) {}, "PROMOTE DATANODE SLAVE dn1s, then CONFIG DATANODE SLAVE dn1s first."},
		{"the slave is down", func(r *rig) { r.f.Nodes["dn1s"].Running = false }, "Start it, then PROMOTE DATANODE SLAVE dn1s"},
		{"before CONFIG", func(r *rig) {
			r.f.Nodes["dn1s"].InRecovery = false
			r.f.Servers = map[string]map[string]string{"cn1": {"dn1": "h1:1"}, "gc": {"dn1s": "h2:1"}}
		}, "CONFIG DATANODE SLAVE dn1s first."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			_, err := r.x.AdbmgrPromote(context.Background(), cluster.DatanodeSlave, "dn1s", r.p)
			if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ObjectNotInPrereqState || pe.Hint != tt.msg && !strings.HasPrefix(pe.Hint, tt.msg) {
				t.Fatalf("err = %v (%+v)", err, pe)
			}
			r.steps(t)
			r.journal(t)
			r.nodes(t, map[string]string{"dn1": "datanode master   true true true", "dn1s": "datanode slave dn1 sync true true true"})
		})
	}
	r := newRig(world())
	r.f.Nodes["dn1s"].InRecovery = false
	res, err := r.x.AdbmgrPromote(context.Background(), cluster.DatanodeSlave, "dn1s", r.p)
	if err != nil || res.Description != "adbmgr promote success" {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
	r.steps(t, "stop dn1 fast")
	r.journal(t, "ADBMGR PROMOTE dn1s running start", "ADBMGR PROMOTE dn1s running catalog",
		"ADBMGR PROMOTE dn1s running delete dn1", "ADBMGR PROMOTE dn1s done end")
	r.nodes(t, map[string]string{
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s sync true true true",
		"dn1":  "missing",
	})
}
