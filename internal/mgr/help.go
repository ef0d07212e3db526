package mgr

import (
	"strings"

	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

var helpColumns = []pgwire.Column{{Name: "help", TypeOID: pgwire.OIDText}}

// help answers HELP [words]: psql's \h never reaches a server, so the
// manager serves the syntax itself, one row per line.
func (m *Manager) help(e *req, st *parser.Help) error {
	text, ok := parser.HelpText(st.Words)
	if !ok {
		pos, _ := st.Span()
		return pgerror.New(pgerror.UndefinedObject, `no help available for "%s"`, strings.Join(st.Words, " ")).
			WithHint("HELP alone lists every command.").At(e.q, pos)
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	rows := make([]map[string]string, len(lines))
	for i, l := range lines {
		rows[i] = map[string]string{"help": l}
	}
	return writeTable(e.w, helpColumns, rows)
}
