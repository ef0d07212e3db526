package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// kinds are the kinds of steps, in order.
func kinds(steps []GrowStep) []GrowStepKind {
	var out []GrowStepKind
	for _, st := range steps {
		out = append(out, st.Kind)
	}
	return out
}

func TestPlanExpandRecover(t *testing.T) {
	copy3 := with(growState(), "dn3", func(n *Node) { n.Initialized = true })
	exps := []Expansion{copied("dn1", "dn3")}
	standby := CopySeen{DirUsed: true, HasData: true, Running: true, Answers: true, Standby: true}
	stopped := CopySeen{DirUsed: true, HasData: true}
	tests := []struct {
		name    string
		fail    bool // RECOVER BASEBACKUP FAIL, else SUCCESS
		s       *State
		exps    []Expansion
		seen    CopySeen
		want    []GrowStepKind
		code    string
		field   string
		message string
	}{
		{"fail: a running copy", true, copy3, exps, standby,
			[]GrowStepKind{GrowAbandonHolds, GrowStop, GrowEmpty, GrowDropSlot, GrowCatalog}, "", "", ""},
		{"fail: a half-made directory", true, growState(), nil, CopySeen{DirUsed: true},
			[]GrowStepKind{GrowAbandonHolds, GrowEmpty, GrowDropSlot, GrowCatalog}, "", "", ""},
		{"fail: nothing there", true, growState(), nil, CopySeen{}, nil, pgerror.ObjectNotInPrereqState, "dst", "nothing to recover"},
		{"fail: routed", true, copy3, exps, CopySeen{Routed: []string{"gc"}, Running: true}, nil, pgerror.ObjectNotInPrereqState, "", "gc route slots to dn3"},
		{"fail: a coordinator unknown", true, copy3, exps, CopySeen{Unknown: []string{"cn1"}}, nil, pgerror.ObjectNotInPrereqState, "", "cannot tell whether cn1"},
		{"fail: activated", true, copy3, []Expansion{activated("dn1", "dn3", 1)}, standby, nil, pgerror.ObjectNotInPrereqState, "dst", "activated already"},
		{"fail: other source", true, copy3, exps, standby, nil, pgerror.ObjectNotInPrereqState, "src", "dn3 is a copy of dn1, not of dn2"},
		{"success: a stopped copy", false, copy3, exps, stopped, []GrowStepKind{GrowResume, GrowCatalog}, "", "", ""},
		{"success: marked, no expansion row", false, copy3, nil, standby, []GrowStepKind{GrowResume, GrowCatalog}, "", "", ""},
		{"success: no data", false, growState(), nil, CopySeen{DirUsed: true}, nil, pgerror.ObjectNotInPrereqState, "dst", "holds no base backup"},
		{"success: promoted", false, copy3, exps, CopySeen{HasData: true, Running: true, Answers: true}, nil, pgerror.ObjectNotInPrereqState, "dst", "dn3 was promoted"},
		{"success: unknown target", false, growState(), nil, stopped, nil, pgerror.UndefinedObject, "dst", `datanode master "dn9" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := "dn1", "dn3"
			if strings.Contains(tt.name, "other source") {
				src = "dn2"
			}
			if strings.Contains(tt.name, "unknown target") {
				dst = "dn9"
			}
			plan := PlanExpandRecoverSuccess
			if tt.fail {
				plan = PlanExpandRecoverFail
			}
			p, err := plan(tt.s, tt.exps, src, dst, tt.seen)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, kinds(p.Steps)); diff != "" {
					t.Errorf("steps (-want +got):\n%s", diff)
				}
				return
			}
			var pe *pgerror.Error
			if !errors.As(err, &pe) || pe.Code != tt.code || !strings.Contains(pe.Message, tt.message) || ErrorField(err) != tt.field {
				t.Errorf("error %v (field %q), want %s %q on %q", err, ErrorField(err), tt.code, tt.message, tt.field)
			}
		})
	}
}

func TestResumeActivation(t *testing.T) {
	x := copied("dn1", "dn3")
	for _, tt := range []struct {
		name   string
		seen   CopySeen
		finish bool
		err    string
	}{
		{"a standby is activated again", CopySeen{Running: true, Answers: true, Standby: true}, false, ""},
		{"a promoted copy is finished", CopySeen{Running: true, Answers: true}, true, ""},
		{"a copy that does not answer", CopySeen{}, false, "dn3 does not answer"},
		{"a standby the coordinators route to", CopySeen{Answers: true, Standby: true, Routed: []string{"gc"}}, false, "gc route slots to dn3, which is still a standby"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			finish, err := ResumeActivation(x, tt.seen)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || finish != tt.finish {
				t.Errorf("finish %v, %v; want %v", finish, err, tt.finish)
			}
		})
	}
	copy3 := with(growState(), "dn3", func(n *Node) { n.Initialized = true })
	p, err := PlanExpandFinish(copy3, x, CopySeen{Running: true, Answers: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []GrowStepKind{GrowFinishHolds, GrowStandalone, GrowDropSlot, GrowCatalog, GrowRefreshCoordinators}
	if diff := cmp.Diff(want, kinds(p.Steps)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if _, err := PlanExpandFinish(copy3, x, CopySeen{Running: true, Answers: true, Standby: true}); err == nil || !strings.Contains(err.Error(), "was not promoted") {
		t.Errorf("finish of a standby: %v", err)
	}
}
