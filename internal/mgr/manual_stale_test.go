package mgr

import (
	"context"
	"testing"

	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/google/go-cmp/cmp"
)

// TestHandsRefreshDanglingRoutes: a coordinator that routes to a name the
// catalog does not have — a server of a deleted master (ADBMGR PROMOTE
// while it was not told), or slots on one (coord.ServersQuery gives them
// with no address) — is stale and refreshed; once refreshed it is quiet:
// no more refreshes, round after round.
func TestHandsRefreshDanglingRoutes(t *testing.T) {
	for name, have := range map[string]map[string]string{
		"a server of a deleted master": {"dn1": "127.0.0.2:15432", "dn0": "127.0.0.9:15432"},
		"slots on a deleted master":    {"dn1": "127.0.0.2:15432", "dn0": ""},
		"slots on a slave":             {"dn1": "127.0.0.2:15432", "dn1s": ""},
	} {
		t.Run(name, func(t *testing.T) {
			m, _, f := handsRig(t)
			f.Servers["cn1"] = have
			mem := doctor.Memory{}
			var acts []doctor.Action
			for round := 0; round < 10; round++ {
				o := observed(t, m)
				for _, a := range doctor.Decide(mem, []doctor.Observation{o["dn1"], o["dn1s"], o["cn1"]}, doctor.DefaultConfig) {
					if a.Node != "cn1" {
						continue // the fake's own sync list, not this test's
					}
					acts = append(acts, a)
					if a.Kind == doctor.Refresh {
						if err := (doctorHands{m}).Refresh(context.Background(), a.Node); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if diff := cmp.Diff([]doctor.Action{{Kind: doctor.Refresh, Node: "cn1"}}, acts); diff != "" {
				t.Errorf("actions in ten rounds (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"dn1": "127.0.0.2:15432"}, f.Servers["cn1"]); diff != "" {
				t.Errorf("cn1 routes to (-want +got):\n%s", diff)
			}
		})
	}
}
