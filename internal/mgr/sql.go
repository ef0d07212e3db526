package mgr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Users' SQL over the catalog runs with a statement timeout, like
// PostgreSQL's statement_timeout but on by default: a recursive CTE that
// never ends must give its connection back. SET statement_timeout changes
// it per session; 0 ("no timeout" in PostgreSQL) and anything longer than
// maxStatementTimeout get maxStatementTimeout, because the connections for
// user SQL are few and shared by every session.
const (
	defaultStatementTimeout = "30s"
	maxStatementTimeout     = 5 * time.Minute
)

// errStatementTimeout is the cause of a context ended by the timeout, so
// that the error can be told apart from a cancel or a client that left.
var errStatementTimeout = errors.New("statement timeout")

// errDescribed stops a query once Describe has its columns.
var errDescribed = errors.New("described")

// sqlSelect runs a user's read-only query over the catalog views (host,
// node, …) on the catalog's connections for user SQL, writing rows as they
// are read: a client that reads slowly slows the query down instead of
// making the manager buffer the result.
func (m *Manager) sqlSelect(e *req, st *parser.Select) error {
	n := 0
	err := m.userSQL(e.ctx, e.sess, func(ctx context.Context) error {
		q, pgCatalog, err := m.sqliteQuery(ctx, e.sess, st.Text)
		if err != nil {
			return err
		}
		n, err = m.cat.Stream(ctx, q, selectSink{e.w})
		return sqliteError(err, pgCatalog)
	})
	if err != nil {
		return err
	}
	return complete(e.w, n)
}

// describeSelect returns the columns of a user's query. It reads no more
// of the result than Stream needs to type the columns.
func (m *Manager) describeSelect(ctx context.Context, sess *pgwire.Session, st *parser.Select) ([]pgwire.Column, error) {
	var sink describeSink
	err := m.userSQL(ctx, sess, func(ctx context.Context) error {
		q, pgCatalog, err := m.sqliteQuery(ctx, sess, st.Text)
		if err != nil {
			return err
		}
		_, err = m.cat.Stream(ctx, q, &sink)
		if errors.Is(err, errDescribed) {
			return nil
		}
		return sqliteError(err, pgCatalog)
	})
	return sink.cols, err
}

// sqliteQuery translates a user's query into SQLite's dialect over the
// catalog (pgsql.go, pgcatalog.go); pgCatalog tells that it read
// pg_catalog or information_schema.
func (m *Manager) sqliteQuery(ctx context.Context, sess *pgwire.Session, text string) (q string, pgCatalog bool, err error) {
	env := &sqlEnv{now: time.Now().UTC().Format("2006-01-02 15:04:05.000000+00"), settings: settings(sess), database: "postgres"}
	if sess != nil {
		env.user, env.pid, env.changed = sess.User, sess.ProcessID, sess.Params
		if sess.Database != "" {
			env.database = sess.Database
		}
	}
	q, pgCatalog, err = translateSQL(text, *env)
	if err != nil {
		return "", pgCatalog, err
	}
	names := pgTablesNamed(q)
	if len(names) == 0 {
		return q, pgCatalog, nil
	}
	d, err := m.pgData(ctx, env, names)
	if err != nil {
		return "", true, err
	}
	return withPgCatalog(q, names, d), true, nil
}

// sqliteError words SQLite's refusals of a translated query as PostgreSQL
// would: an unknown function is 42883, and a pg_catalog probe the
// emulation cannot answer is 0A000 or 42P01, never a SQLite syntax
// message.
func sqliteError(err error, pgCatalog bool) error {
	pe, ok := pgerror.As(err)
	if !ok {
		return err
	}
	msg := pe.Message
	switch {
	case strings.HasPrefix(msg, "no such function: "):
		name := strings.TrimPrefix(msg, "no such function: ")
		return pgerror.New(codeUndefinedFunction, "function %s() does not exist", name).
			WithHint("SQL over the manager's catalog runs on SQLite: its functions and a few of PostgreSQL's (now(), version(), current_setting(), …) are there.")
	case pgCatalog && strings.HasPrefix(msg, "no such table: "):
		name := strings.TrimPrefix(msg, "no such table: ")
		return pgerror.New(pgerror.UndefinedTable, `relation "pg_catalog.%s" does not exist`, name).
			WithHint("adbmgr emulates the part of pg_catalog that psql's \\d, \\l and \\du read; the catalog views are " + catalogViews + ".")
	case pgCatalog && pe.Code == pgerror.SyntaxError:
		return pgerror.New(pgerror.FeatureNotSupported, "this query over pg_catalog is not supported by adbmgr").
			WithDetail("The catalog's SQL engine answered: %s.", msg).
			WithHint("adbmgr emulates the part of pg_catalog that psql's \\d, \\l and \\du read; query the catalog views " + catalogViews + ".")
	case strings.HasPrefix(msg, "no such column: "):
		return pgerror.New(pgerror.UndefinedColumn, `column "%s" does not exist`, strings.TrimPrefix(msg, "no such column: ")).
			WithHint("SQL over the manager's catalog reads the views " + catalogViews + "; \\d VIEW lists a view's columns.")
	case pe.Code == pgerror.SyntaxError:
		// SQLite's own words ("near "x": syntax error", "incomplete
		// input", "unrecognized token") in PostgreSQL's.
		near := "end of input"
		if strings.HasPrefix(msg, "near ") && strings.HasSuffix(msg, ": syntax error") {
			near = strings.TrimSuffix(strings.TrimPrefix(msg, "near "), ": syntax error")
		} else if v, ok := strings.CutPrefix(msg, "unrecognized token: "); ok {
			near = v
		} else if msg != "incomplete input" {
			return pgerror.New(pgerror.FeatureNotSupported, "this query is not supported by adbmgr").
				WithDetail("The catalog's SQL engine answered: %s.", msg).
				WithHint(sqlDialectHint)
		}
		if near == "end of input" {
			near = "at end of input"
		} else {
			near = "at or near " + near
		}
		return pgerror.New(pgerror.SyntaxError, "syntax error %s", near).WithHint(sqlDialectHint)
	}
	return err
}

// catalogViews names the views users' SQL reads.
const catalogViews = "host, node, param, hba, journal, expansion, audit and monitor_history"

// sqlDialectHint says what of PostgreSQL's SQL the catalog understands.
const sqlDialectHint = "SQL over the manager's catalog reads its views with a subset of PostgreSQL's SQL (casts, now() ± interval '…', current_user, ARRAY[…], the pg_catalog psql reads); other PostgreSQL syntax is not supported."

// writeSQLRefusal refuses SQL that is not a SELECT: what would write the
// catalog is 25006 (it is read-only to SQL); COPY … TO (psql's \copy of a
// query) and PREPARE/EXECUTE read, but are not supported: 0A000.
func writeSQLRefusal(q string, st *parser.WriteSQL) error {
	verb := strings.ToUpper(st.Verb)
	reads := verb == "PREPARE" || verb == "EXECUTE"
	if verb == "COPY" && st.End <= len(q) && st.Pos <= st.End {
		depth := 0
		for _, t := range lexSQL(q[st.Pos:st.End]) {
			depth += nesting(t)
			if depth == 0 && t.kind == tkIdent && t.low == "to" {
				reads = true
			}
		}
	}
	if reads {
		return pgerror.New(pgerror.FeatureNotSupported, "%s is not supported by adbmgr", verb).
			WithHint("Run the SELECT itself: psql's \\copy and SQL-level PREPARE are not supported over the manager's catalog; drivers' prepared statements (the extended protocol) are.")
	}
	return pgerror.New(pgerror.ReadOnlySQLTransaction, "cannot execute %s: SQL access to the manager catalog is read-only", st.Verb).
		WithHint("Change hosts and nodes with ADD, ALTER and DROP commands; see HELP.")
}

// userSQL runs fn under the session's statement timeout and reports the
// timeout as PostgreSQL does (57014).
func (m *Manager) userSQL(ctx context.Context, sess *pgwire.Session, fn func(ctx context.Context) error) error {
	v := defaultStatementTimeout
	if sess != nil {
		if s, ok := sess.Params["statement_timeout"]; ok {
			v = s
		}
	}
	d, err := parseDuration(v)
	if err != nil || d <= 0 || d > maxStatementTimeout {
		d = maxStatementTimeout
	}
	tctx, cancel := context.WithTimeoutCause(ctx, d, errStatementTimeout)
	defer cancel()
	err = fn(tctx)
	if err != nil && ctx.Err() == nil && context.Cause(tctx) == errStatementTimeout {
		return pgerror.New(pgerror.QueryCanceled, "canceling statement due to statement timeout")
	}
	return err
}

type selectSink struct{ w pgwire.ResultWriter }

func (s selectSink) Columns(cols []catalog.Column) error { return s.w.Columns(wireColumns(cols)) }
func (s selectSink) Row(values []*string) error          { return s.w.Row(values) }

type describeSink struct{ cols []pgwire.Column }

func (s *describeSink) Columns(cols []catalog.Column) error {
	s.cols = wireColumns(cols)
	return errDescribed
}
func (s *describeSink) Row([]*string) error { return errDescribed }

func wireColumns(in []catalog.Column) []pgwire.Column {
	cols := make([]pgwire.Column, len(in))
	for i, c := range in {
		cols[i] = pgwire.Column{Name: c.Name, TypeOID: pgwire.OIDText}
		if c.Integer {
			cols[i].TypeOID = pgwire.OIDInt8
		}
	}
	return cols
}

// parseDuration reads a time setting as PostgreSQL does for a GUC whose
// unit is milliseconds: a number with an optional unit (us, ms, s, min, h,
// d), rounded to whole milliseconds.
func parseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || (i == 0 && (s[i] == '-' || s[i] == '+'))) {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("not a number")
	}
	mult := map[string]float64{"": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	ms := math.Round(f * mult)
	if ms < 0 || ms > math.MaxInt32 {
		return 0, fmt.Errorf("%.0f ms is out of range", ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// formatDuration shows a time setting as PostgreSQL's SHOW does: in the
// largest unit that divides it.
func formatDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		ms   int64
	}{{"d", 86400000}, {"h", 3600000}, {"min", 60000}, {"s", 1000}} {
		if ms%u.ms == 0 {
			return strconv.FormatInt(ms/u.ms, 10) + u.name
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}
