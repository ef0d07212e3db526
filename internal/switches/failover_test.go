package switches

import (
	"context"
	"errors"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet/fleettest"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

func failover(r *rig, req Failover) (Result, error) {
	if req.Family == "" {
		req.Family = cluster.Datanode
	}
	if req.Master == "" {
		req.Master = "dn1"
	}
	if req.Zone == "" {
		req.Zone = cluster.DefaultZone
	}
	return r.x.Failover(context.Background(), req, r.p)
}

func wantCode(t *testing.T, err error, code string) *pgerror.Error {
	t.Helper()
	pe, ok := pgerror.As(err)
	if !ok || pe.Code != code {
		t.Fatalf("err = %v, want SQLSTATE %s", err, code)
	}
	return pe
}

// unchanged is the node table before any switch.
var unchanged = map[string]string{
	"dn1":  "datanode master   true true true",
	"dn1s": "datanode slave dn1 sync true true true",
	"dn1p": "datanode slave dn1 potential true true true",
}

func TestFailover(t *testing.T) {
	r := newRig(world())
	res, err := failover(r, Failover{})
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{"dn1s", "failover datanode success"}) {
		t.Errorf("result = %+v", res)
	}
	r.nodes(t, map[string]string{
		"dn1":  "datanode slave dn1s async false false false",
		"dn1s": "datanode master   true true true",
		"dn1p": "datanode slave dn1s sync true true true",
	})
	r.steps(t, fleettest.Join([]string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"},
		coordinatorSteps("dn1", "dn1s"), []string{"checkpoint dn1s", "standby dn1p of dn1s", "reload dn1p", `syncnames dn1s FIRST 1 ("dn1p")`})...)
	r.journal(t, "FAILOVER dn1 running start", "FAILOVER dn1 running promote dn1s", "FAILOVER dn1 running catalog",
		"FAILOVER dn1 running coordinators", "FAILOVER dn1 running follow dn1p", "FAILOVER dn1 done end")
	r.p.Has(t, "the old master dn1 was stopped", "dn1s have the best wal lsn", "dn1s was successfully promoted", "dn1p has followed dn1s success",
		"make potential node", "dn1 has been kicked out of the cluster; REWIND DATANODE SLAVE dn1", "successfully completed")
	if n := r.f.Node("dn1p"); n.Parent != "dn1s" {
		t.Errorf("dn1p follows %q", n.Parent)
	}
}

func TestFailoverGtmcoordParamsFollowTheType(t *testing.T) {
	s := world()
	s.Nodes = append(s.Nodes, cluster.Node{ID: 9, Name: "gcs", Host: "h2", Type: cluster.GtmcoordSlave, Master: "gc", Port: 6000, SyncState: cluster.Sync,
		Path: "/data/gcs", Initialized: true, InCluster: true, Zone: cluster.DefaultZone, AllowCure: true})
	r := newRig(s)
	r.cat.sn.Params = []cluster.Param{{Node: "gc", Type: string(cluster.GtmcoordMaster), Key: "work_mem", Value: "8MB"}}
	if _, err := failover(r, Failover{Family: cluster.Gtmcoord, Master: "gc"}); err != nil {
		t.Fatal(err)
	}
	r.nodes(t, map[string]string{"gc": "gtmcoord slave gcs async false false false", "gcs": "gtmcoord master   true true true"})
	if p := r.cat.sn.Params; len(p) != 1 || p[0].Type != string(cluster.GtmcoordSlave) {
		t.Errorf("params after the switch = %+v, want gc's row retyped", p)
	}
}

// TestFailoverRefusals: nothing is touched, nothing journaled.
func TestFailoverRefusals(t *testing.T) {
	tests := []struct {
		name  string
		req   Failover
		setup func(*rig)
		code  string
		field string
	}{
		{"no such master", Failover{Master: "nope"}, nil, pgerror.UndefinedObject, "name"},
		{"a slave", Failover{Master: "dn1s"}, nil, pgerror.UndefinedObject, "name"},
		{"another zone", Failover{Zone: "z2"}, nil, pgerror.ObjectNotInPrereqState, ""},
		{"not initialised", Failover{}, func(r *rig) { r.cat.sn.State.Nodes[2].Initialized = false }, pgerror.ObjectNotInPrereqState, ""},
		{"kicked out", Failover{}, func(r *rig) { r.cat.sn.State.Nodes[2].InCluster = false }, pgerror.ObjectNotInPrereqState, ""},
		{"sync slave down", Failover{}, func(r *rig) { r.f.Nodes["dn1p"].Running = false }, pgerror.ObjectNotInPrereqState, ""},
		{"the doctor after a DBA's STOP", Failover{Doctor: true}, func(r *rig) { r.cat.sn.State.Nodes[2].AllowCure = false }, pgerror.ObjectNotInPrereqState, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			if tt.setup != nil {
				tt.setup(r)
			}
			_, err := failover(r, tt.req)
			wantCode(t, err, tt.code)
			if f := cluster.ErrorField(err); f != tt.field {
				t.Errorf("field = %q, want %q", f, tt.field)
			}
			r.steps(t)
			r.journal(t)
		})
	}
}

// TestFailoverReverts: a failure before the promotion starts the old
// master again and gives the doctor its node back.
func TestFailoverReverts(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*rig)
		code    string
		steps   []string
		journal string // the last row
		notice  string
	}{
		{"the old master answers but its agent is down", func(r *rig) { r.f.AgentDown["h1"] = true },
			pgerror.ObjectNotInPrereqState, nil, "FAILOVER dn1 failed fence", ""},
		{"the old master cannot be stopped", func(r *rig) {
			r.f.Fail["stop dn1 fast"], r.f.Fail["stop dn1 immediate"] = fleettest.ErrBoom, fleettest.ErrBoom
		}, pgerror.ObjectNotInPrereqState, []string{"stop dn1 fast", "stop dn1 immediate"}, "FAILOVER dn1 failed fence", ""},
		{"the candidates die meanwhile", func(r *rig) {
			r.f.Before = func(f *fleettest.Fleet, step string) error {
				if step == "stop dn1 fast" {
					f.Nodes["dn1s"].Running, f.Nodes["dn1p"].Running = false, false
				}
				return nil
			}
		}, pgerror.ObjectNotInPrereqState, []string{"stop dn1 fast", "start dn1"}, "FAILOVER dn1 failed revert", "dn1 is running again as the master"},
		{"the promotion fails and the candidate is still a standby", func(r *rig) { r.f.Fail["end recovery dn1s"] = fleettest.ErrBoom },
			pgerror.ObjectNotInPrereqState, []string{"stop dn1 fast", "end recovery dn1s", "start dn1"}, "FAILOVER dn1 failed revert", "nothing was switched"},
		{"the old master does not start again", func(r *rig) {
			r.f.Fail["end recovery dn1s"], r.f.Fail["start dn1"] = fleettest.ErrBoom, fleettest.ErrBoom
		}, pgerror.ObjectNotInPrereqState, []string{"stop dn1 fast", "end recovery dn1s", "start dn1"}, "FAILOVER dn1 failed revert", "could not start the old master dn1 again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(world())
			tt.setup(r)
			_, err := failover(r, Failover{})
			wantCode(t, err, tt.code)
			r.nodes(t, unchanged)
			r.steps(t, tt.steps...)
			if rows := r.cat.Rows; len(rows) == 0 || rows[len(rows)-1] != tt.journal {
				t.Errorf("journal = %q, want it to end with %q", rows, tt.journal)
			}
			if tt.notice != "" {
				r.p.Has(t, tt.notice)
			}
		})
	}
}

func TestFailoverUnclearPromotion(t *testing.T) {
	r := newRig(world())
	r.f.Fail["end recovery dn1s"], r.f.Fail["inrecovery dn1s"] = fleettest.ErrBoom, fleettest.ErrBoom
	_, err := failover(r, Failover{})
	if !errors.Is(err, ErrUnclearPromotion) {
		t.Fatalf("err = %v, want an unclear promotion", err)
	}
	wantCode(t, err, pgerror.Internal)
	// Nothing is reverted: the old master stays down, and the doctor off it.
	r.steps(t, "stop dn1 fast", "end recovery dn1s")
	r.nodes(t, map[string]string{"dn1": "datanode master   true true false"})
	r.journal(t, "FAILOVER dn1 running start", "FAILOVER dn1 running promote dn1s", "FAILOVER dn1 failed promote")
}

func TestFailoverPromotionReportedFailedButDone(t *testing.T) {
	r := newRig(world())
	r.f.Before = func(f *fleettest.Fleet, step string) error {
		if step == "end recovery dn1s" {
			f.Nodes["dn1s"].InRecovery = false
			return fleettest.ErrBoom
		}
		return nil
	}
	if _, err := failover(r, Failover{}); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, "pg_ctl promote of dn1s reported boom, but it runs as a primary: the switch goes on")
	r.nodes(t, map[string]string{"dn1s": "datanode master   true true true"})
}

func TestFailoverCatalogFailsAfterPromotion(t *testing.T) {
	r := newRig(world())
	r.cat.fail["running catalog"] = fleettest.ErrBoom
	_, err := failover(r, Failover{})
	pe := wantCode(t, err, pgerror.Internal)
	if pe.Message != "dn1s was promoted but the node table could not be updated: boom" {
		t.Errorf("message = %q", pe.Message)
	}
	r.steps(t, "stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name")
	r.journal(t, "FAILOVER dn1 running start", "FAILOVER dn1 running promote dn1s", "FAILOVER dn1 failed catalog")
}

// TestFailoverProblemsAfterPromotion: once promoted, the switch finishes;
// what could not be done is reported.
func TestFailoverProblemsAfterPromotion(t *testing.T) {
	r := newRig(world())
	r.f.Fail["standby dn1p of dn1s"] = fleettest.ErrBoom
	r.f.Fail["rename dn1 to dn1s on cn1"] = fleettest.ErrBoom
	r.f.Fail[`syncnames dn1s FIRST 1 ("dn1p")`] = fleettest.ErrBoom
	if _, err := failover(r, Failover{}); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, "WARNING: dn1p could not follow dn1s: boom; REWIND DATANODE SLAVE dn1p repairs it",
		`WARNING: could not update coordinator master "cn1": boom`, "WARNING: boom")
	r.steps(t, "stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name",
		"rename dn1 to dn1s on gc", "coordinator gc", "rename dn1 to dn1s on cn1", "checkpoint dn1s", "standby dn1p of dn1s", `syncnames dn1s FIRST 1 ("dn1p")`)
	r.journal(t, "FAILOVER dn1 running start", "FAILOVER dn1 running promote dn1s", "FAILOVER dn1 running catalog",
		"FAILOVER dn1 running coordinators", "FAILOVER dn1 running follow dn1p", "FAILOVER dn1 done end")
}

// TestFailoverToForceLeavesAheadFollowerOut: with TO … FORCE a follower
// ahead of the new master cannot stream from it; it leaves the cluster
// until REWIND.
func TestFailoverToForceLeavesAheadFollowerOut(t *testing.T) {
	r := newRig(world())
	r.f.Nodes["dn1p"].LSN = 500
	if _, err := failover(r, Failover{To: "dn1s"}); err == nil {
		t.Fatal("TO a slave behind without FORCE was not refused")
	}
	r = newRig(world())
	r.f.Nodes["dn1p"].LSN = 500
	res, err := failover(r, Failover{To: "dn1s", Force: true})
	if err != nil || res.Node != "dn1s" {
		t.Fatalf("res, err = %+v, %v", res, err)
	}
	r.p.Has(t, "WARNING: dn1p is ahead of dn1s and cannot follow it; REWIND it")
	r.nodes(t, map[string]string{"dn1p": "datanode slave dn1s async false false false"})
	r.steps(t, fleettest.Join([]string{"stop dn1 fast", "end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"},
		coordinatorSteps("dn1", "dn1s"), []string{"checkpoint dn1s", "syncnames dn1s "})...)
}

// TestFailoverOldMasterDown: a master whose agent and port are both dead
// is taken as down; there is nothing to start again on a revert.
func TestFailoverOldMasterDown(t *testing.T) {
	r := newRig(world())
	r.f.AgentDown["h1"] = true
	r.f.Nodes["dn1"].Running = false
	if _, err := failover(r, Failover{}); err != nil {
		t.Fatal(err)
	}
	r.p.Has(t, "the old master dn1 does not answer and its agent is unreachable; taking it as down")
	// gc shares h1's dead agent: the coordinators still get their SQL.
	r.steps(t, fleettest.Join([]string{"end recovery dn1s", "auto.conf dn1s -primary_conninfo -primary_slot_name"},
		coordinatorSteps("dn1", "dn1s"), []string{"checkpoint dn1s", "standby dn1p of dn1s", "reload dn1p", `syncnames dn1s FIRST 1 ("dn1p")`})...)

	r = newRig(world())
	r.f.Nodes["dn1"].Running = false
	r.f.Fail["end recovery dn1s"] = fleettest.ErrBoom
	if _, err := failover(r, Failover{}); err == nil {
		t.Fatal("a failed promotion succeeded")
	}
	r.steps(t, "end recovery dn1s")
}

func TestFailoverFirstCatalogWriteFails(t *testing.T) {
	r := newRig(world())
	r.cat.fail["running start"] = fleettest.ErrBoom
	if _, err := failover(r, Failover{}); !errors.Is(err, fleettest.ErrBoom) {
		t.Fatalf("err = %v", err)
	}
	r.steps(t)
}
