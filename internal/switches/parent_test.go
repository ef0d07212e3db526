package switches

import (
	"context"
	"errors"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func reparentReq(node, parent string) cluster.ReparentRequest {
	return cluster.ReparentRequest{Name: node, Type: cluster.DatanodeSlave, Parent: parent, CurrentZone: cluster.DefaultZone}
}

func TestReparentCascade(t *testing.T) {
	r := newRig(world())
	res, err := r.x.Reparent(context.Background(), reparentReq("dn1p", "dn1s"), r.p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Node != "dn1p" {
		t.Errorf("result = %+v", res)
	}
	r.steps(t,
		"standby dn1p of dn1s", "reload dn1p",
		"syncnames dn1s ", "syncnames dn1 FIRST 1 (\"dn1s\")",
		"dropslot dn1p on dn1",
		"coordinator gc", "coordinator cn1")
	r.journal(t, "ALTER PARENT dn1p running start", "ALTER PARENT dn1p running catalog", "ALTER PARENT dn1p done end")
	r.nodes(t, map[string]string{"dn1p": "datanode slave dn1s async true true true"})
}

func TestReparentSyncSlaveHandsOver(t *testing.T) {
	r := newRig(world())
	if _, err := r.x.Reparent(context.Background(), reparentReq("dn1s", "dn1p"), r.p); err != nil {
		t.Fatal(err)
	}
	r.nodes(t, map[string]string{
		"dn1s": "datanode slave dn1p async true true true",
		"dn1p": "datanode slave dn1 sync true true true",
	})
}

func TestReparentRefusals(t *testing.T) {
	t.Run("the slave is down", func(t *testing.T) {
		r := newRig(world())
		r.f.Nodes["dn1p"].Running = false
		_, err := r.x.Reparent(context.Background(), reparentReq("dn1p", "dn1s"), r.p)
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ObjectNotInPrereqState {
			t.Fatalf("err = %v", err)
		}
		r.steps(t)
		r.journal(t)
	})
	t.Run("the new parent is down", func(t *testing.T) {
		r := newRig(world())
		r.f.Nodes["dn1s"].Running = false
		if _, err := r.x.Reparent(context.Background(), reparentReq("dn1p", "dn1s"), r.p); err == nil {
			t.Fatal("no error")
		}
		r.steps(t)
	})
	t.Run("a cycle", func(t *testing.T) {
		s := world()
		for i := range s.Nodes {
			if s.Nodes[i].Name == "dn1p" {
				s.Nodes[i].Master, s.Nodes[i].SyncState = "dn1s", cluster.Async
			}
		}
		r := newRig(s)
		if _, err := r.x.Reparent(context.Background(), reparentReq("dn1s", "dn1p"), r.p); cluster.ErrorField(err) != "parent" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestReparentRevertsWhenTheCatalogFails(t *testing.T) {
	r := newRig(world())
	r.cat.fail["running catalog"] = errors.New("disk full")
	if _, err := r.x.Reparent(context.Background(), reparentReq("dn1p", "dn1s"), r.p); err == nil {
		t.Fatal("no error")
	}
	r.steps(t, "standby dn1p of dn1s", "reload dn1p", "recovery dn1p of dn1", "reload dn1p")
	r.journal(t, "ALTER PARENT dn1p running start", "ALTER PARENT dn1p failed re-point")
	r.nodes(t, map[string]string{"dn1p": "datanode slave dn1 potential true true true"})
}
