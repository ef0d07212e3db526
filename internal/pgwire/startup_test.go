package pgwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5432}, true},
		{&net.TCPAddr{IP: net.ParseIP("127.1.2.3"), Port: 5432}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 5432}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 5432}, true},
		{&net.UnixAddr{Name: "/tmp/.s.PGSQL.6432", Net: "unix"}, true},
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.7"), Port: 5432}, false},
		{&net.TCPAddr{IP: net.ParseIP("192.168.1.20"), Port: 5432}, false},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.7"), Port: 5432}, false},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5432}, false},
		{&net.TCPAddr{IP: net.ParseIP("0.0.0.0"), Port: 5432}, false},
		{&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5432}, false},
	} {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%s %s) = %v, want %v", tc.addr.Network(), tc.addr, got, tc.want)
		}
	}
}

func TestNoHBAEntryMessage(t *testing.T) {
	e := noHBAEntry(&net.TCPAddr{IP: net.ParseIP("10.0.0.7"), Port: 40000}, "dba", "postgres", false)
	want := `no pg_hba.conf entry for host "10.0.0.7", user "dba", database "postgres", no encryption`
	if e.Message != want || e.Code != "28000" || e.Severity != "FATAL" {
		t.Errorf("noHBAEntry = %s %s %q, want FATAL 28000 %q", e.Severity, e.Code, e.Message, want)
	}
}

// remoteListener makes every accepted connection look as if it came from
// addr, to exercise the address check end to end.
type remoteListener struct {
	net.Listener
	addr net.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, l.addr}, nil
}

type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

func TestNonLoopbackClient(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("10.0.0.7"), Port: 40000}
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowNonLoopback=%v", allow), func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ts := serveOn(t, remoteListener{l, remote}, fakeHandler{}, Options{AllowNonLoopback: allow})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://dba@127.0.0.1:%d/postgres?sslmode=disable", ts.addr.Port))
			if allow {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				conn.Close(ctx)
				return
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				t.Fatalf("connect error = %v, want a PgError", err)
			}
			want := `no pg_hba.conf entry for host "10.0.0.7", user "dba", database "postgres", no encryption`
			if pe.Severity != "FATAL" || pe.Code != "28000" || pe.Message != want {
				t.Errorf("refusal = %s %s %q, want FATAL 28000 %q", pe.Severity, pe.Code, pe.Message, want)
			}
		})
	}
}

// TestProtocol32Client checks that a client asking for protocol 3.2 is
// talked down to 3.0, as PostgreSQL 15 does, and works.
func TestProtocol32Client(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&max_protocol_version=3.2", ts.addr.Port))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "cmd"); err != nil {
		t.Errorf("Exec: %v", err)
	}
}
