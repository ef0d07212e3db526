package mgr

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// The audit (issue 11): every statement that changes something, or tries
// to, is a row of the catalog's audit (the audit view; LIST JOURNAL) with
// its time, user, client address, text with passwords redacted, outcome
// and duration. The row is written when the statement starts, so that the
// operation journal's entries it opens name it (catalog.WithAudit) and a
// manager killed meanwhile leaves it "running" (marked "interrupted" at the
// next start), and completed when it ends. Reads (LIST, MONITOR, SELECT,
// SHOW, HELP) and session settings are not audited.

// auditWriteTimeout bounds an audit write: the audit must not hang a
// command, and a write that fails is logged, as a journal write is.
const auditWriteTimeout = 10 * time.Second

// changes tells whether st may change anything: the statements audited.
// New statements are audited unless listed here.
func changes(st parser.Statement) bool {
	switch st := st.(type) {
	case *parser.Help, *parser.Select, *parser.SetVar, *parser.ResetVar, *parser.ShowVar, *parser.Transaction,
		*parser.SetTransaction, *parser.Discard, *parser.Deallocate, *parser.Other,
		*parser.ListHost, *parser.ListNode, *parser.ListNodeSize, *parser.ListParam, *parser.ListHBA, *parser.ListACL,
		*parser.ListJournal, *parser.ShowParam, *parser.ShowHBA, *parser.ShowBoottime,
		*parser.Monitor, *parser.MonitorHA, *parser.MonitorAgent, *parser.Checkout, *parser.Listen:
		return false
	case *parser.Doctor:
		return st.Action != "list"
	case *parser.Expand:
		return st.Action != "show status" && st.Action != "docheck status" && st.Action != "sleep"
	}
	return true
}

// audited runs st through execute, recording it in the audit when it
// changes something, and tells the Observer.
func (m *Manager) audited(e *req, st parser.Statement) error {
	start := time.Now()
	if !changes(st) {
		err := m.execute(e, st)
		m.observe(st.Command(), time.Since(start), err)
		return err
	}
	if err := readOnlyRefusal(e.sess, st); err != nil {
		// A read-only session or transaction (a JDBC setReadOnly(true)
		// connection, a read-only pool) may not change the cluster.
		m.auditRefusal(e.ctx, e.sess, e.q, st, err)
		m.observe(st.Command(), time.Since(start), err)
		return err
	}
	a := auditEntry(e.sess, e.q, st, start)
	a.Status = catalog.AuditRunning
	id, err := m.writeAudit(e.ctx, 0, a)
	if err == nil {
		e.ctx = catalog.WithAudit(e.ctx, id)
	}
	err = m.execute(e, st)
	a.Duration = time.Since(start)
	a.Status, a.SQLState, a.Message = outcome(e.ctx, err)
	if id != 0 {
		m.writeAudit(e.ctx, id, a)
	}
	m.observe(st.Command(), a.Duration, err)
	return err
}

// auditRefusal records a statement refused before it ran (a privilege
// the user lacks): refusals are what an auditor looks for first.
func (m *Manager) auditRefusal(ctx context.Context, s *pgwire.Session, q string, st parser.Statement, err error) {
	a := auditEntry(s, q, st, time.Now())
	a.Status, a.SQLState, a.Message = outcome(ctx, err)
	if a.Status == catalog.AuditError {
		a.Status = catalog.AuditRefused
	}
	m.writeAudit(ctx, 0, a)
}

// authorizeAudited is authorize, with a refusal audited.
func (m *Manager) authorizeAudited(e *req, st parser.Statement) error {
	err := m.authorize(e, st)
	if err != nil {
		m.auditRefusal(e.ctx, e.sess, e.q, st, err)
	}
	return err
}

func (m *Manager) writeAudit(ctx context.Context, id int64, a catalog.AuditEntry) (int64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	id, err := m.cat.Audit(ctx, id, a)
	if err != nil {
		m.log.Warn("cannot write the audit", "statement", a.Statement, "user", a.User, "error", err)
	}
	return id, err
}

func auditEntry(s *pgwire.Session, q string, st parser.Statement, at time.Time) catalog.AuditEntry {
	a := catalog.AuditEntry{Time: at, Statement: statementText(q, st)}
	if s != nil {
		a.User, a.Address = s.User, clientAddress(s.RemoteAddr)
	}
	return a
}

// clientAddress is the session's peer as PostgreSQL's logs show it:
// "[local]" on the Unix socket.
func clientAddress(remote string) string {
	if remote == "" || remote == "@" || strings.HasPrefix(remote, "/") {
		return "[local]"
	}
	return remote
}

// statementText is st's text in q with its passwords redacted. A
// statement that carries a password the redaction missed (it cannot,
// but the audit is the last place a password may leak to) is recorded
// by its command alone.
func statementText(q string, st parser.Statement) string {
	pos, end := st.Span()
	if pos < 0 || end > len(q) || pos > end {
		return st.Command()
	}
	text := parser.Redact(q[pos:end])
	var pw string
	switch st := st.(type) {
	case *parser.UserStmt:
		pw = st.Password
	case *parser.Deploy:
		pw = st.Password
	case *parser.StartAgent:
		pw = st.Password
	}
	if pw != "" && strings.Contains(text, pw) && !strings.Contains(parser.Redacted, pw) {
		return st.Command() + " … (redacted)"
	}
	return text
}

// outcome is how a statement ended, for the audit.
func outcome(ctx context.Context, err error) (status, sqlstate, message string) {
	if err == nil {
		return catalog.AuditOK, "", ""
	}
	if pe, ok := pgerror.As(err); ok {
		return catalog.AuditError, pe.Code, pe.Message
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return catalog.AuditError, pgerror.QueryCanceled, "canceling statement due to user request"
	}
	return catalog.AuditError, pgerror.Internal, err.Error()
}

// journalQuery is LIST JOURNAL: the statements of the audit and the
// doctor's actions (journal entries "DOCTOR …", which have no statement),
// oldest first; the last n only when n > 0.
const journalQuery = `SELECT time, user, address, statement, outcome, duration_ms FROM (
	SELECT time, 0 AS src, id, user, address, statement, outcome, duration_ms FROM audit
	UNION ALL
	SELECT started, 1, id, 'doctor', '', command,
	       CASE status WHEN 'done' THEN 'ok' ELSE status END || CASE WHEN detail <> '' THEN ': ' || detail ELSE '' END,
	       CAST(round((julianday(updated) - julianday(started)) * 86400000) AS INTEGER)
	FROM journal WHERE command LIKE 'DOCTOR %'
	ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT %d
) ORDER BY time, src, id`

var journalColumns = []pgwire.Column{
	{Name: "time", TypeOID: pgwire.OIDText},
	{Name: "user", TypeOID: pgwire.OIDText},
	{Name: "address", TypeOID: pgwire.OIDText},
	{Name: "statement", TypeOID: pgwire.OIDText},
	{Name: "outcome", TypeOID: pgwire.OIDText},
	{Name: "duration_ms", TypeOID: pgwire.OIDInt8},
}

// listJournal is LIST JOURNAL [n].
func (m *Manager) listJournal(e *req, st *parser.ListJournal) error {
	limit := -1 // SQLite: no limit
	if st.Last > 0 {
		limit = st.Last
	}
	q := strings.Replace(journalQuery, "%d", strconv.Itoa(limit), 1)
	n := 0
	err := m.userSQL(e.ctx, e.sess, func(ctx context.Context) error {
		var err error
		n, err = m.cat.Stream(ctx, q, journalSink{e.w})
		return err
	})
	if err != nil {
		return err
	}
	return complete(e.w, n)
}

// journalSink writes LIST JOURNAL's rows under journalColumns, whatever
// types SQLite guessed.
type journalSink struct{ w pgwire.ResultWriter }

func (s journalSink) Columns([]catalog.Column) error { return s.w.Columns(journalColumns) }
func (s journalSink) Row(values []*string) error     { return s.w.Row(values) }
