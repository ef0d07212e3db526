package pgwire

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgproto3"
)

// rawClient speaks the protocol message by message, for the corners that
// drivers never reach.
type rawClient struct {
	t   *testing.T
	nc  net.Conn
	fe  *pgproto3.Frontend
	pid uint32
	key []byte
}

func dialRaw(t *testing.T, addr net.Addr) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawClient{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
	return rc
}

// startup logs in and returns the startup answer, summarised.
func (rc *rawClient) startup(params map[string]string) []string {
	rc.t.Helper()
	rc.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params})
	return rc.untilReady()
}

// send sends msgs and returns the server's answer up to ReadyForQuery.
func (rc *rawClient) send(msgs ...pgproto3.FrontendMessage) []string {
	rc.t.Helper()
	for _, m := range msgs {
		rc.fe.Send(m)
	}
	return rc.untilReady()
}

func (rc *rawClient) untilReady() []string {
	rc.t.Helper()
	if err := rc.fe.Flush(); err != nil {
		rc.t.Fatalf("flush: %v", err)
	}
	var out []string
	for {
		msg, err := rc.fe.Receive()
		if err != nil {
			rc.t.Fatalf("receive after %q: %v", out, err)
		}
		if k, ok := msg.(*pgproto3.BackendKeyData); ok {
			rc.pid, rc.key = k.ProcessID, append([]byte(nil), k.SecretKey...)
		}
		out = append(out, summarize(msg))
		switch msg.(type) {
		case *pgproto3.ReadyForQuery:
			return out
		case *pgproto3.ErrorResponse:
			if strings.HasPrefix(out[len(out)-1], "E FATAL") {
				return out
			}
		}
	}
}

// summarize renders a backend message compactly for comparison.
func summarize(msg pgproto3.BackendMessage) string {
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("E %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.NoticeResponse:
		return fmt.Sprintf("N %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.RowDescription:
		var f []string
		for _, fd := range m.Fields {
			f = append(f, fmt.Sprintf("%s:%d:%d:%d", fd.Name, fd.DataTypeOID, fd.DataTypeSize, fd.Format))
		}
		return "T " + strings.Join(f, " ")
	case *pgproto3.DataRow:
		var v []string
		for _, b := range m.Values {
			if b == nil {
				v = append(v, "NULL")
			} else {
				v = append(v, hex.EncodeToString(b))
			}
		}
		return "D " + strings.Join(v, " ")
	case *pgproto3.CommandComplete:
		return "C " + string(m.CommandTag)
	case *pgproto3.ParameterStatus:
		return fmt.Sprintf("S %s=%s", m.Name, m.Value)
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("t %v", m.ParameterOIDs)
	case *pgproto3.ReadyForQuery:
		return "Z " + string(m.TxStatus)
	case *pgproto3.BackendKeyData:
		return "K"
	case *pgproto3.NegotiateProtocolVersion:
		return fmt.Sprintf("v %d %v", m.NewestMinorProtocol, m.UnrecognizedOptions)
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3.")
}

func hx(s string) string { return hex.EncodeToString([]byte(s)) }

func TestStartupMessages(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{ServerVersion: "15.7 (test)"})
	rc := dialRaw(t, ts.addr)
	got := rc.startup(map[string]string{"user": "dba", "application_name": "raw", "_pq_.frobnicate": "on"})
	want := []string{
		"v 0 [_pq_.frobnicate]",
		"AuthenticationOk",
		"S server_version=15.7 (test)",
		"S server_encoding=UTF8",
		"S client_encoding=UTF8",
		"S DateStyle=ISO, MDY",
		"S integer_datetimes=on",
		"S standard_conforming_strings=on",
		"S TimeZone=UTC",
		"S IntervalStyle=postgres",
		"S is_superuser=on",
		"S session_authorization=dba",
		"S application_name=raw",
		"K",
		"Z I",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("startup (-want +got):\n%s", diff)
	}
	// The database defaults to the user name.
	got = rc.send(&pgproto3.Query{String: "whoami"})
	if len(got) < 2 || !strings.HasPrefix(got[1], "D "+hx("dba")+" "+hx("dba")+" "+hx("raw")) {
		t.Errorf("whoami = %q", got)
	}

	rc = dialRaw(t, ts.addr)
	got = rc.startup(map[string]string{"database": "postgres"})
	if diff := cmp.Diff([]string{"E FATAL 28000 no PostgreSQL user name specified in startup packet"}, got); diff != "" {
		t.Errorf("startup without user (-want +got):\n%s", diff)
	}
}

// TestSSLRefused checks that SSL and GSS encryption requests are declined
// with 'N' and the plaintext startup that follows is served.
func TestSSLRefused(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	rc := dialRaw(t, ts.addr)
	for _, m := range []pgproto3.FrontendMessage{&pgproto3.SSLRequest{}, &pgproto3.GSSEncRequest{}} {
		rc.fe.Send(m)
		if err := rc.fe.Flush(); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := rc.nc.Read(b); err != nil || b[0] != 'N' {
			t.Fatalf("answer to %T = %q, %v; want N", m, b, err)
		}
	}
	got := rc.startup(map[string]string{"user": "postgres"})
	if got[len(got)-1] != "Z I" {
		t.Errorf("startup after SSLRequest = %q", got)
	}
}

func TestExtendedProtocol(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})

	rowsDesc := func(f int) string {
		return fmt.Sprintf("T name:25:-1:%d n:23:4:%d ok:16:1:%d big:20:8:%d node:19:64:%d", 0, f, f, f, 0)
	}
	textRows := []string{
		"D " + strings.Join([]string{hx("alpha"), hx("1"), hx("t"), hx("10000000000"), hx("dn1")}, " "),
		"D " + strings.Join([]string{"NULL", hx("-2"), hx("f"), hx("-3"), hx("cn1")}, " "),
	}
	binRows := []string{
		"D " + strings.Join([]string{hx("alpha"), "00000001", "01", "00000002540be400", hx("dn1")}, " "),
		"D " + strings.Join([]string{"NULL", "fffffffe", "00", "fffffffffffffffd", hx("cn1")}, " "),
	}

	for _, step := range []struct {
		name string
		send []pgproto3.FrontendMessage
		want []string
	}{{
		name: "describe statement, text results",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: "s1", Query: "rows"},
			&pgproto3.Describe{ObjectType: 'S', Name: "s1"},
			&pgproto3.Bind{PreparedStatement: "s1"},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		},
		want: append(append([]string{"ParseComplete", "t []", "T name:25:-1:0 n:23:4:0 ok:16:1:0 big:20:8:0 node:19:64:0", "BindComplete"},
			textRows...), "C SELECT 2", "Z I"),
	}, {
		name: "binary results as pgx asks for them",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s1", ResultFormatCodes: []int16{0, 1, 1, 1, 0}},
			&pgproto3.Describe{ObjectType: 'P', Name: "p"},
			&pgproto3.Execute{Portal: "p"},
			&pgproto3.Sync{},
		},
		want: append(append([]string{"BindComplete", rowsDesc(1)}, binRows...), "C SELECT 2", "Z I"),
	}, {
		name: "portals end at Sync",
		send: []pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{}},
		want: []string{`E ERROR 34000 portal "p" does not exist`, "Z I"},
	}, {
		name: "no data",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "cmd"},
			&pgproto3.Describe{ObjectType: 'S'},
			&pgproto3.Bind{},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		},
		want: []string{"ParseComplete", "t []", "NoData", "BindComplete", "NoData", "C ADD NODE", "Z I"},
	}, {
		name: "empty statement",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: " "},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		},
		want: []string{"ParseComplete", "BindComplete", "EmptyQueryResponse", "Z I"},
	}, {
		name: "bind parameters refused, rest of batch skipped",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("1")}},
			&pgproto3.Execute{},
			&pgproto3.Query{String: "cmd"},
			&pgproto3.Sync{},
		},
		want: []string{"E ERROR 0A000 bind parameters are not supported by adbmgr", "Z I"},
	}, {
		name: "duplicate statement",
		send: []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s1", Query: "cmd"}, &pgproto3.Sync{}},
		want: []string{`E ERROR 42P05 prepared statement "s1" already exists`, "Z I"},
	}, {
		name: "unknown statement",
		send: []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Sync{}},
		want: []string{`E ERROR 26000 prepared statement "nope" does not exist`, "Z I"},
	}, {
		name: "bad format code",
		send: []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s1", ResultFormatCodes: []int16{2}}, &pgproto3.Sync{}},
		want: []string{"E ERROR 22023 unsupported format code: 2", "Z I"},
	}, {
		name: "wrong number of format codes",
		send: []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "s1", ResultFormatCodes: []int16{0, 1}}, &pgproto3.Sync{}},
		want: []string{"E ERROR 08P01 bind message has 2 result formats but query has 5 columns", "Z I"},
	}, {
		name: "syntax error at Parse",
		send: []pgproto3.FrontendMessage{&pgproto3.Parse{Query: "rows; cmd"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}},
		want: []string{"E ERROR 42601 cannot insert multiple commands into a prepared statement", "Z I"},
	}, {
		name: "portal runs once",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "cmd"},
			&pgproto3.Bind{DestinationPortal: "once"},
			&pgproto3.Execute{Portal: "once"},
			&pgproto3.Execute{Portal: "once"},
			&pgproto3.Sync{},
		},
		want: []string{"ParseComplete", "BindComplete", "C ADD NODE", `E ERROR 55000 portal "once" cannot be run`, "Z I"},
	}, {
		name: "error during Execute",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "fail"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		},
		want: []string{"ParseComplete", "BindComplete", `E ERROR 55000 node "dn9" is not running`, "Z I"},
	}, {
		name: "notices in the extended protocol",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "notice"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		},
		want: []string{"ParseComplete", "BindComplete", "N NOTICE 00000 step 1 of 2", "N WARNING 01000 step 2 of 2 is slow",
			"D " + hx("done"), "C SELECT 1", "Z I"},
	}, {
		name: "close",
		send: []pgproto3.FrontendMessage{
			&pgproto3.Close{ObjectType: 'S', Name: "s1"},
			&pgproto3.Close{ObjectType: 'P', Name: "never-bound"},
			&pgproto3.Bind{PreparedStatement: "s1"},
			&pgproto3.Sync{},
		},
		want: []string{"CloseComplete", "CloseComplete", `E ERROR 26000 prepared statement "s1" does not exist`, "Z I"},
	}, {
		name: "function call",
		send: []pgproto3.FrontendMessage{&pgproto3.FunctionCall{Function: 1}},
		want: []string{"E ERROR 0A000 function call protocol is not supported by adbmgr", "Z I"},
	}, {
		name: "stray copy messages are ignored",
		send: []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("x")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "cmd"}},
		want: []string{"C ADD NODE", "Z I"},
	}, {
		name: "empty simple query",
		send: []pgproto3.FrontendMessage{&pgproto3.Query{String: ";"}},
		want: []string{"EmptyQueryResponse", "Z I"},
	}} {
		got := rc.send(step.send...)
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
		}
	}

	// Flush delivers what is queued without ending the batch.
	rc.fe.Send(&pgproto3.Parse{Query: "cmd"})
	rc.fe.Send(&pgproto3.Flush{})
	if err := rc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := rc.fe.Receive(); err != nil || summarize(msg) != "ParseComplete" {
		t.Errorf("after Flush: %v, %v; want ParseComplete", msg, err)
	}
	if got := rc.send(&pgproto3.Sync{}); !cmp.Equal(got, []string{"Z I"}) {
		t.Errorf("Sync after Flush = %q", got)
	}

	// Terminate ends the session.
	rc.fe.Send(&pgproto3.Terminate{})
	rc.fe.Flush()
	if msg, err := rc.fe.Receive(); err == nil {
		t.Errorf("after Terminate got %s, want EOF", summarize(msg))
	}
}

// TestCancelKey checks that only the right key cancels, and only a running
// query.
func TestCancelKey(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "postgres"})
	if len(rc.key) != 4 {
		t.Fatalf("secret key is %d bytes; protocol 3.0 needs 4", len(rc.key))
	}
	if !ts.srv.cancel(rc.pid, rc.key) {
		t.Errorf("right key was not accepted")
	}
	wrong := append([]byte(nil), rc.key...)
	wrong[0] ^= 0xff
	if ts.srv.cancel(rc.pid, wrong) || ts.srv.cancel(rc.pid+1, rc.key) {
		t.Errorf("wrong key or pid was accepted")
	}
	// The cancel above arrived while the session was idle; it must not
	// cancel the next query.
	if got := rc.send(&pgproto3.Query{String: "cmd"}); !cmp.Equal(got, []string{"C ADD NODE", "Z I"}) {
		t.Errorf("query after idle cancel = %q", got)
	}
}

// TestFatalEndsSession checks that a FATAL error from the Handler closes the
// connection, as in PostgreSQL, in both protocols.
func TestFatalEndsSession(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	for _, send := range [][]pgproto3.FrontendMessage{
		{&pgproto3.Query{String: "fatal"}},
		{&pgproto3.Parse{Query: "fatal"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}},
	} {
		rc := dialRaw(t, ts.addr)
		rc.startup(map[string]string{"user": "postgres"})
		got := rc.send(send...)
		if want := "E FATAL 08006 catalog is gone"; got[len(got)-1] != want {
			t.Errorf("answer = %q, want it to end with %q", got, want)
		}
		if msg, err := rc.fe.Receive(); err == nil {
			t.Errorf("after FATAL got %s, want EOF", summarize(msg))
		}
	}
}
