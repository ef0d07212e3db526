package catalog

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
)

// A catalog of version 5 (before the audit) migrates: its journal keeps
// its rows, the view gains who ran them (the doctor's say so), and the
// audit and the monitor history start empty.
func TestMigrateToAudit(t *testing.T) {
	dir := t.TempDir()
	createAt(t, dir, 5, func(db *sql.DB) {
		for _, c := range []string{"FLUSH HOST", "DOCTOR RESTART dn1"} {
			if _, err := db.Exec(`INSERT INTO mgr_journal (command, status, step, detail, started, updated)
				VALUES (?, 'done', 'end', '', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z')`, c); err != nil {
				t.Fatal(err)
			}
		}
	})
	c, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	r, err := c.Query(ctx, "SELECT id, command, status, step, detail, started, updated, user, address, statement FROM journal ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range r.Rows {
		var vals []string
		for _, v := range row {
			vals = append(vals, *v)
		}
		got = append(got, strings.Join(vals, "|"))
	}
	want := []string{
		"1|FLUSH HOST|done|end||2026-01-01T00:00:00Z|2026-01-01T00:00:01Z|||",
		"2|DOCTOR RESTART dn1|done|end||2026-01-01T00:00:00Z|2026-01-01T00:00:01Z|doctor||",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal after migration:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, v := range []string{"audit", "monitor_history"} {
		r, err := c.Query(ctx, "SELECT count(*) FROM "+v)
		if err != nil || *r.Rows[0][0] != "0" {
			t.Errorf("%s after migration: %v %v", v, r, err)
		}
	}
	var ver int
	if err := c.rw.QueryRow("PRAGMA user_version").Scan(&ver); err != nil || ver != len(migrations) {
		t.Errorf("user_version %d (%v), want %d", ver, err, len(migrations))
	}
}

// An audit entry is opened running and closed with its outcome; one left
// running by a manager that died is marked interrupted at the next start.
func TestAuditEntries(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	id, err := c.Audit(ctx, 0, AuditEntry{User: "postgres", Address: "[local]", Statement: "INIT ALL", Status: AuditRunning})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Audit(ctx, id, AuditEntry{Status: AuditError, SQLState: "55000", Message: "no", Duration: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Audit(ctx, 0, AuditEntry{User: "postgres", Statement: "START ALL", Status: AuditRunning}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Interrupted(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.Query(ctx, "SELECT statement, outcome, duration_ms FROM audit ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 2 || *r.Rows[0][1] != "55000: no" || *r.Rows[0][2] != "1500" || *r.Rows[1][1] != "interrupted" || r.Rows[1][2] != nil {
		t.Errorf("audit rows: %v", r.Rows)
	}
	// The audit table itself is not for users' SQL, as every mgr_ table.
	if _, err := c.Query(ctx, "SELECT statement FROM mgr_audit"); err == nil {
		t.Error("users' SQL read mgr_audit")
	}
}

// Audit and monitor rows written in the older time format
// (2026-11-30T18:59:21.553Z) are rewritten at open into the one now()
// shows, so that users' comparisons with now() hold for both.
func TestAuditTimesRewritten(t *testing.T) {
	dir := t.TempDir()
	createAt(t, dir, 6, func(db *sql.DB) {
		for _, q := range []string{
			`INSERT INTO mgr_audit (at, user, statement, status) VALUES ('2026-11-30T18:59:21.553Z', 'u', 'ADD HOST h', 'ok')`,
			`INSERT INTO mgr_monitor (at, nodename, nodetype, host, status) VALUES ('2026-11-30T18:59:22.001Z', 'dn1', 'datanode master', 'h', 'up')`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	})
	c, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Query(context.Background(), "SELECT (SELECT time FROM audit) || '|' || (SELECT time FROM monitor_history)")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *r.Rows[0][0], "2026-11-30 18:59:21.553000+00|2026-11-30 18:59:22.001000+00"; got != want {
		t.Errorf("times = %q, want %q", got, want)
	}
	if _, err := time.Parse(TimeFormat, "2026-11-30 18:59:21.553000+00"); err != nil {
		t.Errorf("TimeFormat does not read its own text: %v", err)
	}
}
