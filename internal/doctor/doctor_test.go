package doctor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecide(t *testing.T) {
	cfg := Config{Failures: 3, Restarts: 1}
	down := func(agent bool) []Observation { return []Observation{{Node: "dn1", AgentUp: agent}} }
	up := []Observation{{Node: "dn1", Answering: true}}
	erring := func(agent bool) []Observation {
		return []Observation{{Node: "dn1", Responding: true, AgentUp: agent, Error: "55000: database \"postgres\" is not currently accepting connections"}}
	}
	tests := []struct {
		name   string
		rounds [][]Observation
		want   [][]Action // per round
	}{
		{"a blip is not acted on", [][]Observation{down(true), down(true), up, down(true)},
			[][]Action{nil, nil, nil, nil}},
		{"restart first, then fail over", [][]Observation{down(true), down(true), down(true), down(true), down(true), down(true)},
			[][]Action{nil, nil, {{Restart, "dn1"}}, nil, nil, {{Failover, "dn1"}}}},
		{"no agent: fail over at once", [][]Observation{down(false), down(false), down(false)},
			[][]Action{nil, nil, {{Failover, "dn1"}}}},
		{"a restart that works resets", [][]Observation{down(true), down(true), down(true), up, down(true), down(true), down(true)},
			[][]Action{nil, nil, {{Restart, "dn1"}}, nil, nil, nil, {{Restart, "dn1"}}}},
		// Up but answering with an error (SQL, authentication, too many
		// clients): never restarted nor failed over, agent or not.
		{"a master answering with an error is left alone", [][]Observation{erring(false), erring(false), erring(false), erring(true), erring(false)},
			[][]Action{nil, nil, nil, nil, nil}},
		{"an error answer is not a failed round", [][]Observation{down(false), down(false), erring(false), down(false), down(false)},
			[][]Action{nil, nil, nil, nil, nil}},
		{"a node that leaves is forgotten", [][]Observation{down(true), down(true), nil, down(true), down(true)},
			[][]Action{nil, nil, nil, nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := Memory{}
			for i, obs := range tt.rounds {
				got := Decide(mem, obs, cfg)
				if diff := cmp.Diff(tt.want[i], got); diff != "" {
					t.Errorf("round %d (-want +got):\n%s", i+1, diff)
				}
			}
		})
	}
}
