package mgr

import (
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

var helpColumns = []pgwire.Column{{Name: "help", TypeOID: pgwire.OIDText}}

// notBuilt tells whether execute answers st with "not implemented yet"
// (0A000): the commands of the AntDB set the parser recognises but the
// manager does not run. HELP lists them apart. TestHelpMarksMatchDispatch
// runs every HELP example (and notBuiltVariants) through execute and fails
// when this function and the dispatch disagree, so the marks cannot drift
// from what the manager does.
func notBuilt(st parser.Statement) bool {
	switch st := st.(type) {
	case *parser.Other, *parser.SetClusterInit, *parser.ListNodeSize:
		return true
	case *parser.RotateCertificates:
		return st.CA
	}
	return false
}

// notBuiltVariants are forms of built commands that are not built
// themselves: HELP lists them under the unbuilt commands, by name, with
// what they would do and an example the test runs.
var notBuiltVariants = []struct{ name, desc, example string }{
	{"ROTATE CERTIFICATES CA", "replace the manager's certificate authority", "ROTATE CERTIFICATES CA"},
	{"LIST NODE SIZE", "show the nodes' data directory sizes", "LIST NODE SIZE ALL"},
}

// help answers HELP [words]: psql's \h never reaches a server, so the
// manager serves the syntax itself, one row per line.
func (m *Manager) help(e *req, st *parser.Help) error {
	var text string
	if len(st.Words) == 0 {
		text = helpIndex()
	} else {
		var ok bool
		text, ok = parser.HelpText(st.Words)
		if !ok {
			pos, _ := st.Span()
			return pgerror.New(pgerror.UndefinedObject, `no help available for "%s"`, strings.Join(st.Words, " ")).
				WithHint("HELP alone lists every command.").At(e.q, pos)
		}
		text = markUnbuilt(text)
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	rows := make([]map[string]string, len(lines))
	for i, l := range lines {
		rows[i] = map[string]string{"help": l}
	}
	return writeTable(e.w, helpColumns, rows)
}

// topicBuilt tells whether the HELP topic's example runs.
func topicBuilt(t parser.HelpTopic) bool {
	sts, err := parser.Parse(t.Example)
	return err != nil || len(sts) != 1 || !notBuilt(sts[0])
}

// helpIndex lists the commands that run, then those that answer "not
// implemented yet".
func helpIndex() string {
	var built, unbuilt strings.Builder
	for _, t := range parser.HelpIndex() {
		w := &built
		if !topicBuilt(t) {
			w = &unbuilt
		}
		fmt.Fprintf(w, "  %-40s %s\n", t.Command, t.Description)
	}
	for _, v := range notBuiltVariants {
		if sts, err := parser.Parse(v.example); err == nil && len(sts) == 1 && notBuilt(sts[0]) {
			fmt.Fprintf(&unbuilt, "  %-40s %s\n", v.name, v.desc)
		}
	}
	var b strings.Builder
	b.WriteString("Available help:\n")
	b.WriteString(built.String())
	if unbuilt.Len() > 0 {
		b.WriteString("\nRecognised but not built yet (they answer \"not implemented yet\", SQLSTATE 0A000):\n")
		b.WriteString(unbuilt.String())
	}
	b.WriteString("\nType HELP followed by a command for its syntax, e.g. HELP add datanode.")
	return b.String()
}

// markUnbuilt adds a status line to each command of a HELP answer that is
// not built yet.
func markUnbuilt(text string) string {
	unbuilt := map[string]bool{}
	for _, t := range parser.HelpIndex() {
		if !topicBuilt(t) {
			unbuilt[t.Command] = true
		}
	}
	lines := strings.Split(text, "\n")
	out := make([]string, 0, len(lines)+4)
	for _, l := range lines {
		out = append(out, l)
		if cmd, ok := strings.CutPrefix(l, "Command:     "); ok && unbuilt[cmd] {
			out = append(out, "Status:      not built yet: adbmgr recognises it and answers \"not implemented yet\" (SQLSTATE 0A000)")
		}
	}
	return strings.Join(out, "\n")
}
