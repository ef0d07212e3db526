package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// watchedHandler is fakeHandler plus:
//
//	sleep   as fakeHandler's, and reports the context's cause on ended
//	flood   rows until writing fails, reported on ended
type watchedHandler struct {
	fakeHandler
	ended chan error
}

func (h watchedHandler) Query(ctx context.Context, s *Session, q string, w ResultWriter) error {
	switch q {
	case "sleep":
		<-ctx.Done()
		h.ended <- context.Cause(ctx)
		return ctx.Err()
	case "flood":
		if err := w.Columns(noticeCols); err != nil {
			return err
		}
		row := []*string{str(strings.Repeat("x", 1000))}
		for {
			if err := w.Row(row); err != nil {
				h.ended <- err
				return err
			}
		}
	}
	return h.fakeHandler.Query(ctx, s, q, w)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) counts() (pending, established int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), s.established
}

// A client that closes its connection while its query runs cancels the
// query, as PostgreSQL's client_connection_check_interval does.
func TestDisconnectCancelsQuery(t *testing.T) {
	h := watchedHandler{ended: make(chan error, 1)}
	ts := startServer(t, h, Options{})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})
	rc.fe.Send(&pgproto3.Query{String: "sleep"})
	if err := rc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the query to run", ts.srv.hasRunningQuery)
	rc.nc.Close()
	select {
	case cause := <-h.ended:
		if cause != errClientGone {
			t.Errorf("query ended with cause %v, want errClientGone", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the query still runs 5s after its client left")
	}
	waitFor(t, "the session to end", func() bool { _, n := ts.srv.counts(); return n == 0 })
}

// The watch for a leaving client never consumes what the client sends
// meanwhile: a query pipelined behind a running one is answered after it.
func TestPipelinedQueryKept(t *testing.T) {
	h := watchedHandler{ended: make(chan error, 1)}
	ts := startServer(t, h, Options{})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})
	rc.fe.Send(&pgproto3.Query{String: "sleep"})
	if err := rc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the query to run", ts.srv.hasRunningQuery)
	// Sent while the watch runs, so it is the watch that sees it first.
	rc.fe.Send(&pgproto3.Query{String: "cmd"})
	if err := rc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if !ts.srv.cancel(rc.pid, rc.key) {
		t.Fatal("cancel found no session")
	}
	if cause := <-h.ended; cause != errCancelRequest {
		t.Errorf("cause = %v, want errCancelRequest", cause)
	}
	got := rc.untilReady()
	got = append(got, rc.untilReady()...)
	want := []string{"E ERROR 57014 canceling statement due to user request", "Z I", "C ADD NODE", "Z I"}
	if !cmp.Equal(got, want) {
		t.Errorf("answers = %q, want %q", got, want)
	}
}

// A client that accepts no data for WriteTimeout loses its session, so a
// query never waits on it for ever.
func TestWriteTimeout(t *testing.T) {
	h := watchedHandler{ended: make(chan error, 1)}
	ts := startServer(t, h, Options{WriteTimeout: 200 * time.Millisecond})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})
	rc.fe.Send(&pgproto3.Query{String: "flood"})
	if err := rc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.ended:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("flood ended with %v, want a write timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a client that reads nothing holds its query for ever")
	}
	waitFor(t, "the session to end", func() bool { _, n := ts.srv.counts(); return n == 0 })
}

// isClosed reports whether the server closed nc (EOF), as opposed to nc
// staying open and silent.
func isClosed(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	_, err := nc.Read(b[:])
	return err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestStartupTimeout(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{StartupTimeout: 200 * time.Millisecond})
	nc, err := net.Dial("tcp", ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := nc.Read(b[:]); err != io.EOF {
		t.Fatalf("silent client: read = %v, want EOF", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("silent client closed after %v", d)
	}
	if p, _ := ts.srv.counts(); p != 0 {
		t.Errorf("%d connections still in startup", p)
	}
}

// Silent connections beyond MaxStartup close the oldest ones at once, and
// a real client arriving after them gets in.
func TestStartupCap(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{MaxStartup: 3})
	var conns []net.Conn
	for i := range 10 {
		nc, err := net.Dial("tcp", ts.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns = append(conns, nc)
		waitFor(t, "admission", func() bool {
			p, _ := ts.srv.counts()
			return p == min(i+1, 3) && ts.srv.evicted.Load() == int64(max(0, i+1-3))
		})
	}
	closed := 0
	for i, nc := range conns {
		c := isClosed(nc)
		if c {
			closed++
		}
		if c != (i < 7) {
			t.Errorf("connection %d: closed = %v, want the 7 oldest closed", i, c)
		}
	}
	if closed != 7 {
		t.Errorf("%d connections closed, want 7", closed)
	}
	conn := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	if _, err := conn.Exec(context.Background(), "cmd"); err != nil {
		t.Fatalf("a client after the flood: %v", err)
	}
	if p, _ := ts.srv.counts(); p > 3 {
		t.Errorf("%d connections in startup, cap 3", p)
	}
}

// Past MaxSessions a client is refused with PostgreSQL's 53300; connections
// still in the handshake give way to it; CancelRequest still works.
func TestSessionCap(t *testing.T) {
	h := watchedHandler{ended: make(chan error, 1)}
	ts := startServer(t, h, Options{MaxSessions: 2})
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ts.addr.Port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	waitFor(t, "the session", func() bool { p, n := ts.srv.counts(); return p == 0 && n == 1 })
	// A silent connection does not keep the second session away.
	idle, err := net.Dial("tcp", ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waitFor(t, "admission", func() bool { p, _ := ts.srv.counts(); return p == 1 })
	c2, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatalf("second session with a silent connection pending: %v", err)
	}
	if !isClosed(idle) {
		t.Error("the silent connection was not closed to make room")
	}
	_, err = pgconn.Connect(ctx, url)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || pe.Severity != "FATAL" || pe.Message != "sorry, too many clients already" {
		t.Fatalf("third session: got %v, want FATAL 53300", err)
	}
	// A full server still takes CancelRequests.
	done := make(chan error, 1)
	go func() { done <- c1.Exec(ctx, "sleep").Close() }()
	waitFor(t, "the query to run", ts.srv.hasRunningQuery)
	if err := c1.CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if cause := <-h.ended; cause != errCancelRequest {
		t.Errorf("cause = %v, want errCancelRequest", cause)
	}
	if err := <-done; !errors.As(err, &pe) || pe.Code != "57014" {
		t.Errorf("cancelled query: %v", err)
	}
	c2.Close(ctx)
	waitFor(t, "the session to end", func() bool { _, n := ts.srv.counts(); return n == 1 })
	c3, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatalf("a session after one ended: %v", err)
	}
	c3.Close(ctx)
}

func TestPreparedStatementCap(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{MaxPrepared: 3})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})
	for i := range 3 {
		if got := rc.send(&pgproto3.Parse{Name: fmt.Sprint("s", i), Query: "cmd"}, &pgproto3.Sync{}); !cmp.Equal(got, []string{"ParseComplete", "Z I"}) {
			t.Fatalf("Parse s%d: %q", i, got)
		}
	}
	// The unnamed statement does not count.
	if got := rc.send(&pgproto3.Parse{Query: "cmd"}, &pgproto3.Sync{}); !cmp.Equal(got, []string{"ParseComplete", "Z I"}) {
		t.Fatalf("Parse unnamed: %q", got)
	}
	want := []string{"E ERROR 53400 too many prepared statements in this session (at most 3)", "Z I"}
	if got := rc.send(&pgproto3.Parse{Name: "s3", Query: "cmd"}, &pgproto3.Sync{}); !cmp.Equal(got, want) {
		t.Fatalf("Parse s3 = %q, want %q", got, want)
	}
	if got := rc.send(&pgproto3.Close{ObjectType: 'S', Name: "s0"}, &pgproto3.Parse{Name: "s3", Query: "cmd"}, &pgproto3.Sync{}); !cmp.Equal(got, []string{"CloseComplete", "ParseComplete", "Z I"}) {
		t.Fatalf("Close s0, Parse s3: %q", got)
	}
	// Portals too, within one batch.
	var msgs []pgproto3.FrontendMessage
	for i := range 4 {
		msgs = append(msgs, &pgproto3.Bind{DestinationPortal: fmt.Sprint("p", i), PreparedStatement: "s1"})
	}
	want = []string{"BindComplete", "BindComplete", "BindComplete", "E ERROR 53400 too many portals in this session (at most 3)", "Z I"}
	if got := rc.send(append(msgs, &pgproto3.Sync{})...); !cmp.Equal(got, want) {
		t.Fatalf("4 portals = %q, want %q", got, want)
	}
}

// The query text prepared statements hold is bounded, whatever their number.
func TestPreparedBytesCap(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})
	big := "cmd" + strings.Repeat(" ", maxPreparedBytes/2)
	for i := range 2 {
		if got := rc.send(&pgproto3.Parse{Name: fmt.Sprint("s", i), Query: big}, &pgproto3.Sync{}); !cmp.Equal(got, []string{"ParseComplete", "Z I"}) && i == 0 {
			t.Fatalf("Parse s%d: %q", i, got)
		} else if i == 1 && !strings.HasPrefix(got[0], "E ERROR 53400 ") {
			t.Fatalf("Parse s1 past the byte cap: %q", got)
		}
	}
}

// emfileListener fails its next Accept with EMFILE when told to.
type emfileListener struct {
	net.Listener
	fail chan struct{}
}

func (l emfileListener) Accept() (net.Conn, error) {
	select {
	case <-l.fail:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	default:
	}
	return l.Listener.Accept()
}

// Out of descriptors, the server gives up a connection still in the
// handshake and goes on accepting.
func TestAcceptEMFILEShedsPending(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fail := make(chan struct{}, 1)
	ts := serveOn(t, emfileListener{l, fail}, fakeHandler{}, Options{})
	idle, err := net.Dial("tcp", ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waitFor(t, "admission", func() bool { p, _ := ts.srv.counts(); return p == 1 })
	fail <- struct{}{}
	// The Accept blocked on the idle connection's successor returns only
	// when one arrives; the next one fails with EMFILE.
	c1 := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	_ = c1
	waitFor(t, "the silent connection to be shed", func() bool { return ts.srv.evicted.Load() == 1 })
	if !isClosed(idle) {
		t.Error("the silent connection is still open")
	}
	conn := connect(t, ts, pgx.QueryExecModeSimpleProtocol, nil)
	if _, err := conn.Exec(context.Background(), "cmd"); err != nil {
		t.Fatalf("after EMFILE: %v", err)
	}
}
