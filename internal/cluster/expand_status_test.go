package cluster

import (
	"strings"
	"testing"
)

func TestInterruptedFor(t *testing.T) {
	j := func(cmd, status, step string) JournalRecord {
		return JournalRecord{Command: cmd, Status: status, Step: step}
	}
	for _, tt := range []struct {
		name    string
		entries []JournalRecord
		dst     string
		want    string // step; "" none
	}{
		{"none", nil, "dn3", ""},
		{"a copy interrupted", []JournalRecord{j("EXPAND DATANODE MASTER dn1 TO dn3", "interrupted", "start")}, "dn3", "start"},
		{"another copy's", []JournalRecord{j("EXPAND DATANODE MASTER dn1 TO dn3", "interrupted", "start")}, "dn4", ""},
		{"not dn30", []JournalRecord{j("EXPAND DATANODE MASTER dn1 TO dn30", "interrupted", "start")}, "dn3", ""},
		{"taken up since", []JournalRecord{j("EXPAND DATANODE MASTER dn1 TO dn3", "interrupted", "start"),
			j("EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3", "done", "end")}, "dn3", ""},
		{"a failed retry keeps it", []JournalRecord{j("EXPAND DATANODE MASTER dn1 TO dn3", "interrupted", "start"),
			j("EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn3", "failed", "resume")}, "dn3", "start"},
		{"an activation past dst's promotion", []JournalRecord{j("EXPAND ACTIVATE", "interrupted", "promote dn3")}, "dn3", "promote dn3"},
		{"an activation of another copy", []JournalRecord{j("EXPAND ACTIVATE", "interrupted", "promote dn4")}, "dn3", ""},
		{"an activation at its start", []JournalRecord{j("EXPAND ACTIVATE", "interrupted", "start")}, "dn3", "start"},
		{"an activation done since", []JournalRecord{j("EXPAND ACTIVATE", "interrupted", "prepare dn3"), j("EXPAND ACTIVATE", "done", "end")}, "dn3", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			at, ok := InterruptedFor(tt.entries, tt.dst)
			if ok != (tt.want != "") || at.Step != tt.want {
				t.Errorf("InterruptedFor = %+v %v, want step %q", at, ok, tt.want)
			}
		})
	}
}

func TestExpansionAdvice(t *testing.T) {
	x := Expansion{Dst: "dn3", Src: "dn1", Phase: ExpansionCopied}
	standby := CopySeen{HasData: true, DirUsed: true, Running: true, Answers: true, Standby: true}
	promoted := CopySeen{HasData: true, DirUsed: true, Running: true, Answers: true}
	stopped := CopySeen{HasData: true, DirUsed: true}
	with := func(s CopySeen, f func(*CopySeen)) CopySeen { f(&s); return s }
	act := JournalRecord{Command: "EXPAND ACTIVATE", Status: "interrupted", Step: "promote dn3"}
	for _, tt := range []struct {
		name string
		seen CopySeen
		at   JournalRecord
		ok   bool
		want string
	}{
		{"streaming", standby, JournalRecord{}, true, "streaming from dn1; run EXPAND ACTIVATE"},
		{"killed", stopped, JournalRecord{}, false, "dn3 is not running; run EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn3"},
		{"promoted, not routed", promoted, act, false,
			`EXPAND ACTIVATE was interrupted (step "promote dn3"); dn3 was promoted; run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn3`},
		{"promoted, then killed", with(stopped, func(s *CopySeen) { s.Interrupted = "promote dn3" }), act, false,
			"dn3 was promoted, and is not running; run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn3"},
		{"past the commit", with(promoted, func(s *CopySeen) { s.Routed = []string{"gc", "cn1"} }), JournalRecord{}, false,
			"gc, cn1 route slots to dn3: its activation went past the commit; run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn3"},
		{"past the commit, killed", with(stopped, func(s *CopySeen) { s.Routed = []string{"gc"} }), JournalRecord{}, false,
			"run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn3 (it starts dn3)"},
		{"a standby routed to", with(standby, func(s *CopySeen) { s.Routed = []string{"gc"} }), JournalRecord{}, false,
			"gc route slots to dn3, which is still a standby; Compare adb.slot"},
		{"a coordinator down", with(standby, func(s *CopySeen) { s.Unknown = []string{"cn1"} }), JournalRecord{}, false,
			"cannot tell whether cn1 route slots to dn3"},
		{"an activation interrupted before the promotion", standby, JournalRecord{Command: "EXPAND ACTIVATE", Status: "interrupted", Step: "prepare dn3"}, false,
			"streaming from dn1; run EXPAND ACTIVATE (it rolls back"},
		{"no data", CopySeen{}, JournalRecord{}, false, "holds no base backup; run EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, desc := ExpansionAdvice(x, tt.seen, tt.at)
			if ok != tt.ok || !strings.Contains(desc, tt.want) {
				t.Errorf("ExpansionAdvice = %v %q, want %v %q", ok, desc, tt.ok, tt.want)
			}
		})
	}
}

func TestCopyAdvice(t *testing.T) {
	s := &State{Nodes: []Node{
		{Name: "dn1", Type: DatanodeMaster, Initialized: true, InCluster: true},
		{Name: "dn3", Type: DatanodeMaster},
	}}
	entries := []JournalRecord{{Command: "EXPAND DATANODE MASTER dn1 TO dn3", Status: "interrupted", Step: "start"}}
	cs := InterruptedCopies(s, nil, entries)
	if len(cs) != 1 || cs[0].Src != "dn1" || cs[0].Dst != "dn3" {
		t.Fatalf("InterruptedCopies = %+v", cs)
	}
	if got := InterruptedCopies(s, []Expansion{{Dst: "dn3", Src: "dn1", Phase: ExpansionCopied}}, entries); len(got) != 0 {
		t.Errorf("InterruptedCopies of a recorded expansion = %+v", got)
	}
	for _, tt := range []struct {
		name string
		seen CopySeen
		want string
	}{
		{"a slot left", CopySeen{SlotOnSrc: true}, "dn1 keeps a replication slot for dn3; run EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3 to drop it"},
		{"nothing left", CopySeen{}, "nothing is left of it; run EXPAND DATANODE MASTER dn1 TO dn3 again"},
		{"a base backup", CopySeen{HasData: true, DirUsed: true}, "run EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn3 to finish the copy"},
		{"a half directory", CopySeen{DirUsed: true}, "run EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3 to roll it back"},
		{"the source down", CopySeen{SlotUnknown: true}, "dn1 does not answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := CopyAdvice(s, nil, cs[0], tt.seen)
			if !strings.HasPrefix(got, `EXPAND DATANODE MASTER dn1 TO dn3 was interrupted (step "start"): `) || !strings.Contains(got, tt.want) {
				t.Errorf("CopyAdvice = %q, want %q", got, tt.want)
			}
		})
	}
}
