package catalog

import (
	"context"
	"fmt"
	"time"
)

// TimeFormat is how the audit and the monitor history write times: UTC,
// microseconds, in the text PostgreSQL gives a timestamptz and the
// manager's now() answers, so that users' `WHERE time > now() - interval
// '1 hour'` compares like with like (SQLite compares text as text), and
// rows of one second keep their order.
const TimeFormat = "2006-01-02 15:04:05.000000+00"

// isoTimes rewrites the times of audit and monitor rows written before
// TimeFormat was PostgreSQL's (2026-11-30T18:59:21.553Z) into it, so that
// a catalog of either age compares its times as one format. Idempotent:
// rows already rewritten hold no 'T'.
const isoTimes = `
UPDATE mgr_audit SET at = strftime('%Y-%m-%d %H:%M:%f', at) || '000+00' WHERE at GLOB '*T*';
UPDATE mgr_monitor SET at = strftime('%Y-%m-%d %H:%M:%f', at) || '000+00' WHERE at GLOB '*T*';`

// Audit statuses.
const (
	AuditRunning = "running"
	AuditOK      = "ok"
	AuditError   = "error"
	// AuditRefused is a statement refused before it ran (a privilege).
	AuditRefused = "refused"
)

// AuditEntry is one row of the audit: a statement that changes something,
// who ran it and how it ended.
type AuditEntry struct {
	Time      time.Time
	User      string
	Address   string
	Statement string // passwords redacted
	Status    string // AuditRunning, AuditOK, AuditError, AuditRefused
	SQLState  string
	Message   string
	Duration  time.Duration // set when it ended
}

type auditKey struct{}

// WithAudit marks ctx as running for the audit entry id: journal entries
// opened under it name that entry (the journal view's user, address and
// statement).
func WithAudit(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, auditKey{}, id)
}

func auditOf(ctx context.Context) any {
	if id, ok := ctx.Value(auditKey{}).(int64); ok && id != 0 {
		return id
	}
	return nil
}

// Audit writes an audit entry: a new one when id is 0 (its id is
// returned), else the end of entry id (status, SQLSTATE, message and
// duration).
func (c *SQLite) Audit(ctx context.Context, id int64, a AuditEntry) (int64, error) {
	err := c.write(ctx, func(q queryer) error {
		var dur any
		if a.Status != AuditRunning {
			dur = a.Duration.Milliseconds()
		}
		if id != 0 {
			_, err := q.ExecContext(ctx, `UPDATE mgr_audit SET status = ?, sqlstate = ?, message = ?, duration_ms = ? WHERE id = ?`,
				a.Status, a.SQLState, a.Message, dur, id)
			return err
		}
		at := a.Time
		if at.IsZero() {
			at = time.Now()
		}
		res, err := q.ExecContext(ctx, `INSERT INTO mgr_audit (at, user, address, statement, status, sqlstate, message, duration_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, at.UTC().Format(TimeFormat), a.User, a.Address, a.Statement, a.Status, a.SQLState, a.Message, dur)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write the audit: %w", err)
	}
	return id, nil
}

// Sample is one node's state at one time (the monitor history).
type Sample struct {
	Time        time.Time
	Node        string
	NodeType    string
	Host        string
	Up          bool
	Role        string // "primary", "standby"; "" when down
	Timeline    *int64
	Connections *int64
	SyncState   string
	LagBytes    *int64
	LagSeconds  *float64
	Description string
}

// AddSamples writes one round of samples in one transaction.
func (c *SQLite) AddSamples(ctx context.Context, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	return c.write(ctx, func(q queryer) error {
		for _, s := range samples {
			status := "down"
			if s.Up {
				status = "up"
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO mgr_monitor (at, nodename, nodetype, host, status, role, timeline,
				connections, sync_state, lag_bytes, lag_seconds, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				s.Time.UTC().Format(TimeFormat), s.Node, s.NodeType, s.Host, status, s.Role, s.Timeline,
				s.Connections, s.SyncState, s.LagBytes, s.LagSeconds, s.Description); err != nil {
				return fmt.Errorf("write the monitor history: %w", err)
			}
		}
		return nil
	})
}

// CleanMonitor deletes the samples taken before before and returns how
// many went.
func (c *SQLite) CleanMonitor(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := c.write(ctx, func(q queryer) error {
		// replace(): a row in the older format (isoTimes) compares too.
		res, err := q.ExecContext(ctx, `DELETE FROM mgr_monitor WHERE replace(at, 'T', ' ') < ?`, before.UTC().Format(TimeFormat))
		if err != nil {
			return fmt.Errorf("clean the monitor history: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
