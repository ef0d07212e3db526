package pgwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// execModes are the pgx modes the manager must serve: the default one, which
// uses the extended protocol with cached prepared statements, and the simple
// protocol that psql also speaks.
var execModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"CacheStatement", pgx.QueryExecModeCacheStatement},
	{"SimpleProtocol", pgx.QueryExecModeSimpleProtocol},
}

type noticeLog struct {
	mu      sync.Mutex
	notices []pgconn.Notice
}

func (n *noticeLog) take() []pgconn.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.notices
	n.notices = nil
	return out
}

func connect(t *testing.T, ts *testServer, mode pgx.QueryExecMode, notices *noticeLog) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&application_name=pgwire-test", ts.addr.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if notices != nil {
			notices.mu.Lock()
			notices.notices = append(notices.notices, *n)
			notices.mu.Unlock()
		}
	}
	// pgx's default reaction to a cancelled context is to break the
	// connection; a CancelRequest is what psql sends on Ctrl-C.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

type rowsRow struct {
	Name *string
	N    int32
	OK   bool
	Big  int64
	Node string
}

func queryRows(t *testing.T, conn *pgx.Conn, sql string) []rowsRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("Query(%q): %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rowsRow, error) {
		var x rowsRow
		err := r.Scan(&x.Name, &x.N, &x.OK, &x.Big, &x.Node)
		return x, err
	})
	if err != nil {
		t.Fatalf("Query(%q): %v", sql, err)
	}
	return got
}

func str2(s string) *string { return &s }

var wantRows = []rowsRow{
	{Name: str2("alpha"), N: 1, OK: true, Big: 10000000000, Node: "dn1"},
	{Name: nil, N: -2, OK: false, Big: -3, Node: "cn1"},
}

// pgError runs sql and returns the *pgconn.PgError it must fail with.
func pgError(t *testing.T, conn *pgx.Conn, ctx context.Context, sql string) *pgconn.PgError {
	t.Helper()
	rows, err := conn.Query(ctx, sql)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("Query(%q) error = %v (%T), want a *pgconn.PgError", sql, err, err)
	}
	return pe
}

func TestPgx(t *testing.T) {
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			ts := startServer(t, fakeHandler{}, Options{})
			var notices noticeLog
			conn := connect(t, ts, m.mode, &notices)
			ctx := context.Background()

			t.Run("rows", func(t *testing.T) {
				// Twice: the second run uses pgx's statement cache.
				for range 2 {
					if diff := cmp.Diff(wantRows, queryRows(t, conn, "rows")); diff != "" {
						t.Errorf("rows (-want +got):\n%s", diff)
					}
				}
			})

			t.Run("exec", func(t *testing.T) {
				tag, err := conn.Exec(ctx, "cmd")
				if err != nil || tag.String() != "ADD NODE" {
					t.Errorf("Exec(cmd) = %q, %v; want ADD NODE", tag, err)
				}
				rows, err := conn.Query(ctx, "cmd")
				if err != nil {
					t.Fatal(err)
				}
				rows.Close()
				if rows.Err() != nil || rows.CommandTag().String() != "ADD NODE" {
					t.Errorf("Query(cmd) tag = %q, %v; want ADD NODE", rows.CommandTag(), rows.Err())
				}
				if _, err := conn.Exec(ctx, ""); err != nil {
					t.Errorf("Exec(empty): %v", err)
				}
			})

			t.Run("session", func(t *testing.T) {
				var user, db, app, params string
				var pid int32
				if err := conn.QueryRow(ctx, "whoami").Scan(&user, &db, &app, &pid, &params); err != nil {
					t.Fatal(err)
				}
				got := []string{user, db, app, fmt.Sprint(pid), params}
				want := []string{"postgres", "postgres", "pgwire-test", fmt.Sprint(conn.PgConn().PID()), "user=postgres database=postgres"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("session (-want +got):\n%s", diff)
				}
				for k, want := range map[string]string{
					"server_version":        DefaultServerVersion,
					"session_authorization": "postgres",
					"application_name":      "pgwire-test",
					"client_encoding":       "UTF8",
				} {
					if got := conn.PgConn().ParameterStatus(k); got != want {
						t.Errorf("ParameterStatus(%s) = %q, want %q", k, got, want)
					}
				}
			})

			t.Run("errors", func(t *testing.T) {
				pe := pgError(t, conn, ctx, "  fail")
				got := *pe
				want := pgconn.PgError{
					Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "55000",
					Message: `node "dn9" is not running`, Detail: "Its agent reports no postmaster.",
					Hint: "Start it with START DATANODE dn9.", Position: 3,
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("PgError (-want +got):\n%s", diff)
				}

				pe = pgError(t, conn, ctx, "bogus")
				if pe.Code != "42601" || pe.Position != 1 || pe.Message != `syntax error at or near "bogus"` {
					t.Errorf("bogus: got %s %q at %d", pe.Code, pe.Message, pe.Position)
				}
				pe = pgError(t, conn, ctx, "plainerr")
				if pe.Code != "XX000" || pe.Message != "disk on fire" {
					t.Errorf("plainerr: got %s %q", pe.Code, pe.Message)
				}
				// The session survives errors.
				if diff := cmp.Diff(wantRows, queryRows(t, conn, "rows")); diff != "" {
					t.Errorf("rows after errors (-want +got):\n%s", diff)
				}
			})

			t.Run("notices", func(t *testing.T) {
				notices.take()
				var result string
				if err := conn.QueryRow(ctx, "notice").Scan(&result); err != nil || result != "done" {
					t.Fatalf("notice = %q, %v", result, err)
				}
				type n struct{ Severity, V, Code, Message string }
				var got []n
				for _, x := range notices.take() {
					got = append(got, n{x.Severity, x.SeverityUnlocalized, x.Code, x.Message})
				}
				want := []n{
					{"NOTICE", "NOTICE", "00000", "step 1 of 2"},
					{"WARNING", "WARNING", "01000", "step 2 of 2 is slow"},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("notices (-want +got):\n%s", diff)
				}
			})

			t.Run("cancel", func(t *testing.T) {
				for range 2 { // the session must accept a second cancel too
					qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
					start := time.Now()
					pe := pgError(t, conn, qctx, "sleep")
					cancel()
					if pe.Code != "57014" || pe.Message != "canceling statement due to user request" {
						t.Errorf("cancelled sleep: got %s %q", pe.Code, pe.Message)
					}
					if d := time.Since(start); d > 4*time.Second {
						t.Errorf("cancel took %v", d)
					}
					if diff := cmp.Diff(wantRows, queryRows(t, conn, "rows")); diff != "" {
						t.Errorf("rows after cancel (-want +got):\n%s", diff)
					}
				}
			})
		})
	}
}

// TestPgconnMultiStatement checks that every statement of a simple query is
// answered, and that an error in a later one keeps the earlier results.
func TestPgconnMultiStatement(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	conn := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	results, err := conn.PgConn().Exec(context.Background(), "cmd; rows; bogus; rows").ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42601" || pe.Position != 12 {
		t.Fatalf("Exec error = %v, want 42601 at 12", err)
	}
	var tags []string
	for _, r := range results {
		tags = append(tags, fmt.Sprintf("%s/%d", r.CommandTag, len(r.Rows)))
	}
	if diff := cmp.Diff([]string{"ADD NODE/0", "SELECT 2/2"}, tags[:2]); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	// In the extended protocol the Handler's Describe refuses the string.
	_, err = conn.Query(context.Background(), "cmd; rows", pgx.QueryExecModeCacheStatement)
	if !errors.As(err, &pe) || pe.Code != "42601" || !strings.Contains(pe.Message, "multiple commands") {
		t.Errorf("extended multi-statement error = %v", err)
	}
}

// TestDeallocate: the Handler drops the session's prepared statements
// through Session.Deallocate (DISCARD ALL, DEALLOCATE).
func TestDeallocate(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	pc := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil).PgConn()
	ctx := context.Background()
	if _, err := pc.Prepare(ctx, "s1", "rows", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Prepare(ctx, "s1", "rows", nil); err == nil {
		t.Fatal("a second s1 was prepared")
	}
	if _, err := pc.Exec(ctx, "discard").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Prepare(ctx, "s1", "rows", nil); err != nil {
		t.Errorf("s1 after DISCARD ALL: %v", err)
	}
}

// TestShutdown checks that cancelling Serve's context ends a running query
// and idle sessions promptly, with PostgreSQL's FATAL 57P01.
func TestShutdown(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	idle := connect(t, ts, pgx.QueryExecModeCacheStatement, nil)
	busy := connect(t, ts, pgx.QueryExecModeCacheStatement, nil)

	errc := make(chan error, 1)
	go func() {
		_, err := busy.Exec(context.Background(), "sleep")
		errc <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); !ts.srv.hasRunningQuery(); {
		if time.Now().After(deadline) {
			t.Fatal("query never started")
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d >= shutdownGrace {
		t.Errorf("shutdown took %v; sessions did not end on their own", d)
	}
	var pe *pgconn.PgError
	if err := <-errc; !errors.As(err, &pe) || pe.Code != "57P01" || pe.Severity != "FATAL" {
		t.Errorf("running query ended with %v, want FATAL 57P01", err)
	}
	if _, err := idle.Exec(context.Background(), "cmd"); err == nil {
		t.Errorf("idle session still works after shutdown")
	}
}

// TestListenerClosed checks that Serve returns when someone else closes its
// listener, and still ends its sessions.
func TestListenerClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := newLogSink(t)
	srv := New(fakeHandler{}, Options{Logger: sink.logger()})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	ts := &testServer{srv: srv, addr: l.Addr().(*net.TCPAddr)}
	conn := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Serve returned nil after its listener was closed")
		}
	case <-time.After(2 * shutdownGrace):
		t.Fatal("Serve did not return")
	}
	if _, err := conn.Exec(context.Background(), "cmd"); err == nil {
		t.Errorf("session still works after Serve returned")
	}
}

// TestPanicClosesOneSession checks that a panicking Handler costs one
// connection, not the server.
func TestPanicClosesOneSession(t *testing.T) {
	ts := startServer(t, fakeHandler{allowPanic: true}, Options{})
	conn := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	_, err := conn.Exec(context.Background(), "panic")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Severity != "FATAL" || pe.Code != "XX000" {
		t.Errorf("panic: got %v, want FATAL XX000", err)
	}
	if len(ts.log.errorLines()) == 0 {
		t.Errorf("panic was not logged")
	}
	other := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	if diff := cmp.Diff(wantRows, queryRows(t, other, "rows")); diff != "" {
		t.Errorf("rows after panic (-want +got):\n%s", diff)
	}
}
