package mgr

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Run-time parameters a session can SHOW without setting them first: what
// drivers ask for, plus AntDB's mgr_zone.
var defaultParams = map[string]string{
	"server_version":                 "15.0",
	"server_encoding":                "UTF8",
	"client_encoding":                "UTF8",
	"datestyle":                      "ISO, MDY",
	"intervalstyle":                  "postgres",
	"timezone":                       "UTC",
	"integer_datetimes":              "on",
	"standard_conforming_strings":    "on",
	"transaction_isolation":          "read committed",
	"default_transaction_isolation":  "read committed",
	"default_transaction_read_only":  "off",
	"default_transaction_deferrable": "off",
	"transaction_deferrable":         "off",
	"in_hot_standby":                 "off",
	"lc_messages":                    "C",
	"lc_monetary":                    "C",
	"lc_numeric":                     "C",
	"lc_time":                        "C",
	"max_connections":                "100",
	"bytea_output":                   "hex",
	"search_path":                    `"$user", public`,
	"mgr_zone":                       "local",
	"max_identifier_length":          "63",
	"extra_float_digits":             "1",
	"statement_timeout":              defaultStatementTimeout,
	// psql's \password asks it, then sends the verifier it computed.
	"password_encryption": "scram-sha-256",
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
		clear(e.sess.Params)
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

// settings are every setting the session can SHOW: the defaults, the
// session's own, and those computed from the manager (server_version).
func settings(sess *pgwire.Session) map[string]string {
	all := make(map[string]string, len(defaultParams)+8)
	for k, v := range defaultParams {
		all[k] = v
	}
	if sess != nil {
		for k, v := range sess.Params {
			all[k] = v
		}
		// The startup packet's user and database are who and where, not
		// settings (PostgreSQL's SHOW knows neither).
		delete(all, "user")
		delete(all, "database")
		for k, v := range map[string]string{"session_authorization": sess.User, "application_name": sess.Application, "is_superuser": map[bool]string{true: "on", false: "off"}[sess.Superuser]} {
			if _, set := sess.Params[k]; !set {
				all[k] = v
			}
		}
	}
	v, num := serverVersion()
	all["server_version"], all["server_version_num"] = v, num
	// SET SESSION CHARACTERISTICS changes the default of the next
	// transaction; with no transactions of its own the manager shows it
	// as the current one too.
	if _, ok := all["transaction_isolation"]; ok && sess != nil {
		if _, set := sess.Params["transaction_isolation"]; !set {
			all["transaction_isolation"] = all["default_transaction_isolation"]
		}
	}
	if sess != nil {
		if _, set := sess.Params["transaction_read_only"]; !set {
			all["transaction_read_only"] = all["default_transaction_read_only"]
		}
	}
	return all
}

// serverVersion is the PostgreSQL version the manager speaks as, in SHOW
// server_version's and server_version_num's forms ("15.0", "150000").
func serverVersion() (string, string) {
	v := strings.TrimPrefix(catalog.Version, "PostgreSQL ")
	if i := strings.IndexByte(v, ' '); i > 0 {
		v = v[:i]
	}
	major, minor, _ := strings.Cut(v, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return v, "150000"
	}
	return v, strconv.Itoa(ma*10000 + mi)
}

func (m *Manager) showVar(e *req, st *parser.ShowVar) error {
	name := st.Name.Name
	all := settings(e.sess)
	if name == "all" {
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
	v, ok := all[name]
	if !ok {
		return pgerror.New(pgerror.UndefinedObject, `unrecognized configuration parameter "%s"`, name).At(e.q, st.Name.Pos)
	}
	return writeTable(e.w, showColumns(st), []map[string]string{{name: v}})
}

// setTransaction answers SET TRANSACTION and SET SESSION CHARACTERISTICS
// AS TRANSACTION. The manager has no transactions (each command commits on
// its own, BEGIN and COMMIT are accepted and do nothing), so SET
// TRANSACTION changes nothing; the session characteristics are kept, for
// SHOW default_transaction_isolation and SHOW TRANSACTION ISOLATION LEVEL.
func (m *Manager) setTransaction(e *req, st *parser.SetTransaction) error {
	if !st.Session {
		if !e.sess.InBlock {
			e.w.Notice("WARNING", "SET TRANSACTION can only be used in transaction blocks")
			return e.w.Complete("SET")
		}
		if st.ReadOnly != "" {
			setParam(e.sess, "transaction_read_only", st.ReadOnly)
		}
		return e.w.Complete("SET")
	}
	if st.Session {
		if e.sess.Params == nil {
			e.sess.Params = map[string]string{}
		}
		for name, v := range map[string]string{
			"default_transaction_isolation":  st.Isolation,
			"default_transaction_read_only":  st.ReadOnly,
			"default_transaction_deferrable": st.Deferrable,
		} {
			if v != "" {
				e.sess.Params[name] = v
			}
		}
	}
	return e.w.Complete("SET")
}

// discard answers DISCARD, which PgBouncer sends between two clients of
// one server connection: ALL resets the session's settings, drops its
// prepared statements and stops its LISTENs, as in PostgreSQL; the manager has no plans,
// sequences or temporary tables, so the other forms have nothing to drop.
func (m *Manager) discard(e *req, st *parser.Discard) error {
	if st.What == "ALL" {
		clear(e.sess.Params)
		e.sess.InBlock = false
		if e.sess.Deallocate != nil {
			e.sess.Deallocate("", true)
		}
		// UNLISTEN *, as PostgreSQL's DISCARD ALL: behind PgBouncer the
		// next client must not inherit the doctor's notifications.
		if b := m.events.box(e.sess, false); b != nil {
			b.mu.Lock()
			clear(b.channels)
			clear(b.queue)
			b.queue = b.queue[:0]
			b.mu.Unlock()
		}
	}
	return e.w.Complete(st.Command())
}

// deallocate answers DEALLOCATE, the SQL spelling of the extended
// protocol's Close.
func (m *Manager) deallocate(e *req, st *parser.Deallocate) error {
	if e.sess.Deallocate == nil || !e.sess.Deallocate(st.Name, st.All) {
		if !st.All {
			return pgerror.New("26000", `prepared statement "%s" does not exist`, st.Name)
		}
	}
	if st.All {
		return e.w.Complete("DEALLOCATE ALL")
	}
	return e.w.Complete("DEALLOCATE")
}

// transaction answers BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE. They
// are accepted so that drivers work, but a command inside the block runs
// and commits on its own; only the block's READ ONLY mode is kept, until
// it ends.
func (m *Manager) transaction(e *req, st *parser.Transaction) error {
	switch st.Verb {
	case "BEGIN":
		e.sess.InBlock = true
		delete(e.sess.Params, "transaction_read_only")
		if st.ReadOnly != "" {
			setParam(e.sess, "transaction_read_only", st.ReadOnly)
		}
	case "COMMIT", "ROLLBACK":
		if st.Verb == "ROLLBACK" {
			e.w.Notice("NOTICE", "ROLLBACK undoes nothing here: each manager command commits when it runs, inside a transaction block too")
		}
		e.sess.InBlock = false
		delete(e.sess.Params, "transaction_read_only")
	}
	return e.w.Complete(st.Verb)
}

func setParam(sess *pgwire.Session, name, v string) {
	if sess.Params == nil {
		sess.Params = map[string]string{}
	}
	sess.Params[name] = v
}

// readOnlyRefusal refuses st, a statement that changes something, in a
// read-only session or transaction (SET SESSION CHARACTERISTICS AS
// TRANSACTION READ ONLY, SET default_transaction_read_only = on, BEGIN
// READ ONLY), as PostgreSQL refuses an INSERT there.
func readOnlyRefusal(sess *pgwire.Session, st parser.Statement) error {
	if sess == nil || !changes(st) || !boolSetting(settings(sess)["transaction_read_only"]) {
		return nil
	}
	return pgerror.New(pgerror.ReadOnlySQLTransaction, "cannot execute %s in a read-only transaction", st.Command()).
		WithHint("The session or its transaction is READ ONLY: SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE (or COMMIT a BEGIN READ ONLY block) to change the cluster.")
}

// boolSetting reads a boolean setting as PostgreSQL does (on, true, yes,
// 1 and their prefixes).
func boolSetting(v string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(v), "'")) {
	case "on", "true", "tru", "tr", "t", "yes", "ye", "y", "1":
		return true
	}
	return false
}
