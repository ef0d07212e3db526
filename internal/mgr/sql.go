package mgr

import (
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// sqlSelect runs a user's read-only query over the catalog views (host,
// node) on the catalog's read-only connection.
func (m *Manager) sqlSelect(e *req, st *parser.Select) error {
	res, err := m.cat.Query(e.ctx, st.Text)
	if err != nil {
		return err
	}
	if err := e.w.Columns(resultColumns(res)); err != nil {
		return err
	}
	for _, r := range res.Rows {
		if err := e.w.Row(r); err != nil {
			return err
		}
	}
	return complete(e.w, len(res.Rows))
}

func resultColumns(res *catalog.Result) []pgwire.Column {
	cols := make([]pgwire.Column, len(res.Columns))
	for i, c := range res.Columns {
		cols[i] = pgwire.Column{Name: c.Name, TypeOID: pgwire.OIDText}
		if c.Integer {
			cols[i].TypeOID = pgwire.OIDInt8
		}
	}
	return cols
}
