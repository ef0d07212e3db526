package parser

import (
	"fmt"
	"strings"
	"testing"
)

// TestHelpSyntaxParses keeps the help text and the grammar in step: every
// entry's example must parse, and parse to a statement whose first words
// are the entry's command (so an entry cannot describe a command the
// parser does not know).
func TestHelpSyntaxParses(t *testing.T) {
	for _, e := range helpEntries {
		if e.example == "" {
			t.Errorf("%s: no example", e.cmd)
			continue
		}
		sts, err := Parse(e.example)
		if err != nil || len(sts) != 1 {
			t.Errorf("%s: example %q: %v, %v", e.cmd, e.example, sts, err)
			continue
		}
		first := strings.Fields(strings.ToUpper(e.example))[0]
		if !strings.HasPrefix(e.cmd, strings.TrimSuffix(first, ";")) {
			t.Errorf("%s: example %q starts with another command", e.cmd, e.example)
		}
	}
}

func TestHelpTopicsUniqueAndFound(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range HelpTopics() {
		if seen[c] {
			t.Errorf("duplicate help topic %s", c)
		}
		seen[c] = true
		text, ok := HelpText(strings.Fields(strings.ToLower(c)))
		if !ok || !strings.HasPrefix(text, "Command:     "+c+"\n") {
			t.Errorf("HelpText(%q) = %q, %v", c, text, ok)
		}
	}
}

// TestHelpCoversCommands checks that every command word the parser
// dispatches on (SQL and transaction control aside) has help.
func TestHelpCoversCommands(t *testing.T) {
	sql := map[string]bool{"with": true, "values": true, "table": true, "create": true,
		"begin": true, "commit": true, "end": true, "rollback": true, "abort": true,
		"savepoint": true, "release": true, "discard": true, "deallocate": true}
	for _, w := range writeVerbs {
		sql[w] = true
	}
	for w := range commands {
		if sql[w] {
			continue
		}
		if _, ok := HelpText([]string{w}); !ok {
			t.Errorf("no help for %q", w)
		}
	}
}

func TestHelpText(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string // the Command: lines, in order
	}{
		{[]string{"add", "datanode"}, []string{"ADD DATANODE"}},
		{[]string{"ADD", "DataNode"}, []string{"ADD DATANODE"}},
		{[]string{"list", "node"}, []string{"LIST NODE"}},
		{[]string{"init"}, []string{"INIT ALL"}},
		{[]string{"drop", "h"}, []string{"DROP HOST", "DROP HBA"}},
		{[]string{"set"}, []string{"SET"}},                 // exact match wins, as psql's \h
		{[]string{"start"}, []string{"START"}},             // idem
		{[]string{"monitor", "h"}, []string{"MONITOR HA"}}, // last word abbreviated
		{[]string{"append"}, []string{"APPEND"}},           // the spec's \h append
		{[]string{"clean"}, []string{"CLEAN"}},             // the spec's \h clean
		{[]string{"add", "datanode", "master", "dn1"}, []string{"ADD DATANODE"}},
		{[]string{"remove", "datanode"}, []string{"REMOVE"}}, // longest command the words start with
		{[]string{"zone"}, []string{"ZONE FAILOVER", "ZONE SWITCHOVER", "ZONE INIT"}},
	} {
		text, ok := HelpText(tc.words)
		if !ok {
			t.Errorf("HelpText(%q) found nothing", tc.words)
			continue
		}
		var got []string
		for _, line := range strings.Split(text, "\n") {
			if c, ok := strings.CutPrefix(line, "Command:     "); ok {
				got = append(got, c)
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("HelpText(%q) commands = %q, want %q", tc.words, got, tc.want)
		}
	}
	if text, ok := HelpText([]string{"bogus"}); ok {
		t.Errorf("HelpText(bogus) = %q, want not found", text)
	}
}

func TestHelpFormat(t *testing.T) {
	text, ok := HelpText([]string{"add", "datanode"})
	want := "Command:     ADD DATANODE\nDescription: add a datanode to the node table\nSyntax:\nADD DATANODE MASTER node_name ( option [, ...] )\n"
	if !ok || !strings.HasPrefix(text, want) {
		t.Errorf("HelpText(add datanode) =\n%s\nwant prefix\n%s", text, want)
	}
	list, ok := HelpText(nil)
	if !ok {
		t.Fatal("HelpText(nil) not ok")
	}
	for _, c := range HelpTopics() {
		n := 0
		for _, line := range strings.Split(list, "\n") {
			if strings.HasPrefix(line, fmt.Sprintf("  %-40s ", c)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("HELP lists %q on %d lines, want 1", c, n)
		}
	}
	all, _ := HelpText([]string{"*"})
	if strings.Count(all, "Command:") != len(HelpTopics()) {
		t.Errorf("HELP * shows %d commands, want %d", strings.Count(all, "Command:"), len(HelpTopics()))
	}
}
