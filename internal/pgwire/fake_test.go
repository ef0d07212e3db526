package pgwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// fakeHandler understands a handful of one-word statements, separated by
// ';' like the real executor's:
//
//	rows      two rows of every column type the manager uses
//	notice    two notices, then one row
//	fail      a *pgerror.Error with detail, hint and position
//	plainerr  a plain Go error
//	fatal     a FATAL *pgerror.Error
//	sleep     blocks until its context is cancelled
//	cmd       a command without rows ("ADD NODE")
//	discard   DISCARD ALL: drops the session's prepared statements
//	whoami    the Session as a row
//	panic     panics, if panics are allowed
//
// Anything else is a syntax error positioned at the unknown word.
type fakeHandler struct {
	allowPanic bool
}

var (
	rowsCols = []Column{
		{Name: "name", TypeOID: OIDText},
		{Name: "n", TypeOID: OIDInt4},
		{Name: "ok", TypeOID: OIDBool},
		{Name: "big", TypeOID: OIDInt8},
		{Name: "node", TypeOID: OIDName},
	}
	noticeCols = []Column{{Name: "result", TypeOID: OIDText}}
	whoamiCols = []Column{
		{Name: "user", TypeOID: OIDName},
		{Name: "database", TypeOID: OIDName},
		{Name: "application", TypeOID: OIDText},
		{Name: "pid", TypeOID: OIDInt4},
		{Name: "params", TypeOID: OIDText},
	}
)

type fakeStmt struct {
	text string
	off  int // byte offset of text in the query string
}

func splitStatements(q string) []fakeStmt {
	var out []fakeStmt
	start := 0
	for i := 0; i <= len(q); i++ {
		if i < len(q) && q[i] != ';' {
			continue
		}
		part := q[start:i]
		trimmed := strings.TrimSpace(part)
		if trimmed != "" {
			out = append(out, fakeStmt{text: trimmed, off: start + strings.Index(part, trimmed)})
		}
		start = i + 1
	}
	return out
}

func str(s string) *string { return &s }

func (h fakeHandler) Query(ctx context.Context, s *Session, q string, w ResultWriter) error {
	stmts := splitStatements(q)
	if len(stmts) == 0 {
		return w.EmptyQuery()
	}
	for _, st := range stmts {
		if err := h.run(ctx, s, q, st, w); err != nil {
			return err
		}
	}
	return nil
}

func (h fakeHandler) run(ctx context.Context, s *Session, q string, st fakeStmt, w ResultWriter) error {
	switch st.text {
	case "rows":
		if err := w.Columns(rowsCols); err != nil {
			return err
		}
		if err := w.Row([]*string{str("alpha"), str("1"), str("t"), str("10000000000"), str("dn1")}); err != nil {
			return err
		}
		if err := w.Row([]*string{nil, str("-2"), str("f"), str("-3"), str("cn1")}); err != nil {
			return err
		}
		return w.Complete("SELECT 2")
	case "notice":
		w.Notice("NOTICE", "step 1 of 2")
		w.Notice("warning", "step 2 of 2 is slow")
		if err := w.Columns(noticeCols); err != nil {
			return err
		}
		if err := w.Row([]*string{str("done")}); err != nil {
			return err
		}
		return w.Complete("SELECT 1")
	case "fail":
		return pgerror.New(pgerror.ObjectNotInPrereqState, "node \"dn9\" is not running").
			WithDetail("Its agent reports no postmaster.").
			WithHint("Start it with START DATANODE dn9.").
			At(q, st.off)
	case "plainerr":
		return errors.New("disk on fire")
	case "fatal":
		e := pgerror.New(pgerror.ConnectionFailure, "catalog is gone")
		e.Severity = "FATAL"
		return e
	case "sleep":
		<-ctx.Done()
		return fmt.Errorf("sleeping: %w", ctx.Err())
	case "cmd":
		return w.Complete("ADD NODE")
	case "discard":
		s.Deallocate("", true)
		return w.Complete("DISCARD ALL")
	case "whoami":
		if err := w.Columns(whoamiCols); err != nil {
			return err
		}
		pid := fmt.Sprint(s.ProcessID)
		params := fmt.Sprintf("user=%s database=%s", s.Params["user"], s.Params["database"])
		if err := w.Row([]*string{&s.User, &s.Database, &s.Application, &pid, &params}); err != nil {
			return err
		}
		return w.Complete("SELECT 1")
	case "panic":
		if h.allowPanic {
			panic("boom")
		}
	}
	word := strings.Fields(st.text)[0]
	return pgerror.New(pgerror.SyntaxError, "syntax error at or near \"%s\"", word).At(q, st.off)
}

func (h fakeHandler) Describe(ctx context.Context, s *Session, q string) ([]Column, error) {
	stmts := splitStatements(q)
	switch len(stmts) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, pgerror.New(pgerror.SyntaxError, "cannot insert multiple commands into a prepared statement")
	}
	switch st := stmts[0]; st.text {
	case "rows":
		return rowsCols, nil
	case "notice":
		return noticeCols, nil
	case "whoami":
		return whoamiCols, nil
	case "fail", "plainerr", "fatal", "sleep", "cmd", "panic", "discard":
		return nil, nil
	default:
		word := strings.Fields(st.text)[0]
		return nil, pgerror.New(pgerror.SyntaxError, "syntax error at or near \"%s\"", word).At(q, st.off)
	}
}

// logSink collects the server's log lines for the test log (if t is set)
// and remembers whether anything was logged at ERROR level (a recovered
// panic).
type logSink struct {
	t      testing.TB
	mu     sync.Mutex
	errors []string
	closed bool
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := string(bytes.TrimSpace(p))
	if strings.Contains(line, "level=ERROR") {
		l.errors = append(l.errors, line)
	}
	if l.t != nil && !l.closed {
		l.t.Log(line)
	}
	return len(p), nil
}

func (l *logSink) errorLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

func newLogSink(t testing.TB) *logSink {
	l := &logSink{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
	})
	return l
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testServer struct {
	srv  *Server
	addr *net.TCPAddr
	log  *logSink
	stop func() error // cancels Serve and returns its error
}

// startServer serves h on a random loopback port until the test ends.
func startServer(t *testing.T, h Handler, opts Options) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, h, opts)
}

func serveOn(t *testing.T, l net.Listener, h Handler, opts Options) *testServer {
	t.Helper()
	sink := newLogSink(t)
	if opts.Logger == nil {
		opts.Logger = sink.logger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(h, opts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(2 * shutdownGrace):
				serveErr = errors.New("Serve did not return after cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{srv: srv, addr: l.Addr().(*net.TCPAddr), log: sink, stop: stop}
}

// hasRunningQuery reports whether any session is inside a Handler call.
func (s *Server) hasRunningQuery() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sessions {
		c.qmu.Lock()
		running := c.qcancel != nil
		c.qmu.Unlock()
		if running {
			return true
		}
	}
	return false
}
