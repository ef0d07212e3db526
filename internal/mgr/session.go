package mgr

import (
	"fmt"
	"sort"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Run-time parameters a session can SHOW without setting them first: what
// drivers ask for, plus AntDB's mgr_zone.
var defaultParams = map[string]string{
	"server_version":                "15.0",
	"server_encoding":               "UTF8",
	"client_encoding":               "UTF8",
	"datestyle":                     "ISO, MDY",
	"intervalstyle":                 "postgres",
	"timezone":                      "UTC",
	"integer_datetimes":             "on",
	"standard_conforming_strings":   "on",
	"transaction_isolation":         "read committed",
	"default_transaction_read_only": "off",
	"search_path":                   `"$user", public`,
	"mgr_zone":                      "local",
	"max_identifier_length":         "63",
	"extra_float_digits":            "1",
	"statement_timeout":             defaultStatementTimeout,
}

func (m *Manager) param(e *req, name string) (string, bool) {
	if v, ok := e.sess.Params[name]; ok {
		return v, true
	}
	v, ok := defaultParams[name]
	return v, ok
}

func (m *Manager) setVar(e *req, st *parser.SetVar) error {
	name := st.Name.Name
	if e.sess.Params == nil {
		e.sess.Params = map[string]string{}
	}
	if st.Default {
		delete(e.sess.Params, name)
		return e.w.Complete("SET")
	}
	if name == "mgr_zone" {
		if hint := zoneName(st.Value); hint != "" {
			return pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "mgr_zone": "%s"`, st.Value).WithHint("%s", hint)
		}
	}
	if name == "statement_timeout" {
		d, err := parseDuration(st.Value)
		if err != nil {
			return pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "statement_timeout": "%s"`, st.Value).
				WithHint(`Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".`)
		}
		e.sess.Params[name] = formatDuration(d)
		if d <= 0 || d > maxStatementTimeout {
			// The user-SQL connections are few and shared: say so rather
			// than let SHOW suggest a longer (or no) limit applies.
			e.w.Notice("NOTICE", fmt.Sprintf("SQL over the catalog still stops after %s: the manager's cap on statement_timeout", formatDuration(maxStatementTimeout)))
		}
		return e.w.Complete("SET")
	}
	e.sess.Params[name] = st.Value
	return e.w.Complete("SET")
}

func (m *Manager) resetVar(e *req, st *parser.ResetVar) error {
	if st.Name.Name == "all" {
		for k := range e.sess.Params {
			delete(e.sess.Params, k)
		}
	} else {
		delete(e.sess.Params, st.Name.Name)
	}
	return e.w.Complete("RESET")
}

func showColumns(st *parser.ShowVar) []pgwire.Column {
	if st.Name.Name == "all" {
		return []pgwire.Column{{Name: "name", TypeOID: pgwire.OIDText}, {Name: "setting", TypeOID: pgwire.OIDText}}
	}
	return []pgwire.Column{{Name: st.Name.Name, TypeOID: pgwire.OIDText}}
}

func (m *Manager) showVar(e *req, st *parser.ShowVar) error {
	name := st.Name.Name
	if name == "all" {
		all := map[string]string{}
		for k, v := range defaultParams {
			all[k] = v
		}
		for k, v := range e.sess.Params {
			all[k] = v
		}
		keys := make([]string, 0, len(all))
		for k := range all {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		rows := make([]map[string]string, len(keys))
		for i, k := range keys {
			rows[i] = map[string]string{"name": k, "setting": all[k]}
		}
		return writeTable(e.w, showColumns(st), rows)
	}
	v, ok := m.param(e, name)
	if name == "server_version" {
		v, ok = strings.TrimPrefix(catalog.Version, "PostgreSQL "), true
		if i := strings.IndexByte(v, ' '); i > 0 {
			v = v[:i]
		}
	}
	if !ok {
		return pgerror.New(pgerror.UndefinedObject, `unrecognized configuration parameter "%s"`, name).At(e.q, st.Name.Pos)
	}
	return writeTable(e.w, showColumns(st), []map[string]string{{name: v}})
}
