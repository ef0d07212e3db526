package pgwire

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

type mapUsers map[string]string // name → verifier

func (m mapUsers) LookupUser(_ context.Context, name string) (UserInfo, bool, error) {
	v, ok := m[name]
	return UserInfo{Verifier: v}, ok, nil
}

func mustVerifier(t testing.TB, pw string) string {
	t.Helper()
	v, err := NewSCRAMVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustHBA(t testing.TB, s string) []HBARule {
	t.Helper()
	r, err := ParseHBA([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// connErr connects with pgconn and returns the server's error, if any.
func connErr(t *testing.T, connString string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "cmd").ReadAll(); err != nil {
		return err
	}
	return nil
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want SQLSTATE %s", err, code)
	}
	if pe.Code != code || !strings.Contains(pe.Message, msgPart) {
		t.Fatalf("got %s %q, want %s containing %q", pe.Code, pe.Message, code, msgPart)
	}
}

func TestParseHBA(t *testing.T) {
	good := `# comment
local all all peer
host all alice,bob 10.0.0.0/8 scram-sha-256   # trailing
hostssl postgres all 192.0.2.7 scram-sha-256
hostnossl all all all reject
host all all ::1 trust
`
	rules, err := ParseHBA([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 5 || rules[1].Line != 3 || rules[1].Users[1] != "bob" || rules[2].Net.String() != "192.0.2.7/32" ||
		rules[3].Net != nil || rules[4].Net.String() != "::1/128" {
		t.Fatalf("parsed %+v", rules)
	}
	for _, bad := range []string{
		"hosts all all all trust",
		"local all all",
		"host all all 10.0.0.0/8",
		"host all all 10.0.0.0/99 trust",
		"host all all nowhere trust",
		"host all all all md5",
		"host all all all peer",
		"local all all 127.0.0.1/32 peer",
	} {
		if _, err := ParseHBA([]byte(bad)); err == nil {
			t.Errorf("ParseHBA(%q) accepted", bad)
		} else if !strings.HasPrefix(err.Error(), "line 1:") {
			t.Errorf("ParseHBA(%q) error %q does not name the line", bad, err)
		}
	}
}

func TestHBAMatch(t *testing.T) {
	rules := mustHBA(t, DefaultHBA(AuthPeer, AuthSCRAM)+"hostssl all ops 192.0.2.0/24 scram-sha-256\n")
	for _, tc := range []struct {
		local, tls bool
		ip         string
		user       string
		want       string // method, "" for no rule
	}{
		{true, false, "", "x", AuthPeer},
		{false, false, "127.0.0.1", "x", AuthSCRAM},
		{false, true, "::1", "x", AuthSCRAM},
		{false, false, "192.0.2.9", "ops", ""},
		{false, true, "192.0.2.9", "ops", AuthSCRAM},
		{false, true, "192.0.2.9", "dba", ""},
		{false, true, "198.51.100.1", "ops", ""},
	} {
		got := ""
		for _, r := range rules {
			if r.matches(tc.local, tc.tls, net.ParseIP(tc.ip), tc.user, "postgres") {
				got = r.Method
				break
			}
		}
		if got != tc.want {
			t.Errorf("%+v: method %q, want %q", tc, got, tc.want)
		}
	}
	if n := len(TrustRules(rules, false)); n != 0 {
		t.Errorf("default rules have %d trust lines", n)
	}
	trust := mustHBA(t, DefaultHBA(AuthTrust, AuthTrust))
	if len(TrustRules(trust, false)) != 3 || len(TrustRules(trust, true)) != 0 {
		t.Errorf("TrustRules of the trust defaults: all %d, remote %d", len(TrustRules(trust, false)), len(TrustRules(trust, true)))
	}
	if len(TrustRules(mustHBA(t, "host all all all trust"), true)) != 1 {
		t.Error("host all all all trust is not remote trust")
	}
}

func TestVerifier(t *testing.T) {
	v := mustVerifier(t, "s3cret")
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Contains(v, "s3cret") || !VerifierValid(v) {
		t.Fatalf("verifier %q", v)
	}
	if v2 := mustVerifier(t, "s3cret"); v2 == v {
		t.Error("two verifiers of one password share a salt")
	}
	// A verifier made by PostgreSQL 15 itself (password "postgres").
	pg := "SCRAM-SHA-256$4096:LV1Hn5kuxClYrqDmXFdTlg==$3ih+xBQw9cGXwQqlLKV4T7sPeqJfm5+uyqGBgGHHqLI=:Mw9YPmsAnRxRm2sd7AX4Hw5R4Hta3VodgRzMjj5DgZM="
	if !VerifierValid(pg) {
		t.Error("PostgreSQL's verifier format refused")
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$x:y$z:w", "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA", "SCRAM-SHA-256$0:LV1Hn5kuxClYrqDmXFdTlg==$3ih+xBQw9cGXwQqlLKV4T7sPeqJfm5+uyqGBgGHHqLI=:Mw9YPmsAnRxRm2sd7AX4Hw5R4Hta3VodgRzMjj5DgZM="} {
		if VerifierValid(bad) {
			t.Errorf("VerifierValid(%q)", bad)
		}
	}
}

func TestSCRAM(t *testing.T) {
	users := mapUsers{"alice": mustVerifier(t, "right pw"), "nopw": ""}
	var logBuf syncBuffer
	ts := startServer(t, fakeHandler{}, Options{HBA: mustHBA(t, "host all all 127.0.0.1/32 scram-sha-256"), Users: users,
		Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	url := func(user, pw string) string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", user, pw, ts.addr.Port)
	}
	if err := connErr(t, url("alice", "right%20pw")); err != nil {
		t.Fatalf("right password: %v", err)
	}
	wantCode(t, connErr(t, url("alice", "wrong")), "28P01", `password authentication failed for user "alice"`)
	wantCode(t, connErr(t, url("nobody", "x")), "28P01", `password authentication failed for user "nobody"`)
	wantCode(t, connErr(t, url("nopw", "x")), "28P01", `password authentication failed for user "nopw"`)
	if l := logBuf.String(); strings.Contains(l, "right pw") || strings.Contains(l, "wrong") || !strings.Contains(l, "password authentication failed") {
		t.Errorf("the log shows a password, or not the failure:\n%s", l)
	}
}

func TestSCRAMOverTLS(t *testing.T) {
	cfg := selfSignedTLS(t)
	users := mapUsers{"alice": mustVerifier(t, "pw")}
	ts := startServer(t, fakeHandler{}, Options{TLS: cfg, Users: users,
		HBA: mustHBA(t, "hostssl all all 127.0.0.1/32 scram-sha-256\nhost all all all reject")})
	base := fmt.Sprintf("postgres://alice:%%s@127.0.0.1:%d/postgres?sslmode=%%s", ts.addr.Port)
	if err := connErr(t, fmt.Sprintf(base, "pw", "require")); err != nil {
		t.Fatalf("sslmode=require: %v", err)
	}
	if err := connErr(t, fmt.Sprintf(base, "pw", "require")+"&channel_binding=require"); err != nil {
		t.Fatalf("channel_binding=require: %v", err)
	}
	wantCode(t, connErr(t, fmt.Sprintf(base, "bad", "require")), "28P01", "password authentication failed")
	wantCode(t, connErr(t, fmt.Sprintf(base, "pw", "disable")), "28000", `pg_hba.conf rejects connection for host "127.0.0.1", user "alice", database "postgres", no encryption`)
}

func TestNoHBARule(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{HBA: mustHBA(t, "host all alice 127.0.0.1/32 trust"), Users: mapUsers{"alice": "", "bob": ""}})
	if err := connErr(t, fmt.Sprintf("postgres://alice@127.0.0.1:%d/postgres?sslmode=disable", ts.addr.Port)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, connErr(t, fmt.Sprintf("postgres://bob@127.0.0.1:%d/postgres?sslmode=disable", ts.addr.Port)), "28000",
		`no pg_hba.conf entry for host "127.0.0.1", user "bob", database "postgres", no encryption`)
	wantCode(t, connErr(t, fmt.Sprintf("postgres://carol@127.0.0.1:%d/postgres?sslmode=disable", ts.addr.Port)), "28000", "no pg_hba.conf entry")
}

func TestPeer(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		allowed bool
		user    string
		code    string
		msg     string
	}{
		{"owner", true, "alice", "", ""},
		{"other OS user", false, "alice", "28000", `Peer authentication failed for user "alice"`},
		{"unknown role", true, "zed", "28000", `role "zed" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", len(tc.name)))
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			me := uint32(os.Getuid())
			srv := New(fakeHandler{}, Options{HBA: mustHBA(t, "local all all peer"), Users: mapUsers{"alice": ""},
				PeerAllowed: func(uid uint32) bool { return tc.allowed && uid == me }})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { srv.Serve(ctx, l); close(done) }()
			defer func() { cancel(); <-done }()
			err = connErr(t, fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", dir, len(tc.name), tc.user))
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.code, tc.msg)
		})
	}
}

func selfSignedTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// FuzzAuthExchange feeds arbitrary bytes to the server after a valid
// StartupMessage, where it expects a SCRAM exchange: whatever arrives, the
// server must answer or close, never panic or hang past the startup timeout.
func FuzzAuthExchange(f *testing.F) {
	f.Add([]byte("p\x00\x00\x00\x36SCRAM-SHA-256\x00\x00\x00\x00\x20n,,n=,r=abcdefghijklmnopqrstuvwx"))
	f.Add([]byte("p\x00\x00\x00\x04"))
	f.Add([]byte("p\x00\x00\x00\x18SCRAM-SHA-256-PLUS\x00\xff\xff\xff\xff"))
	f.Add([]byte("X\x00\x00\x00\x04"))
	users := mapUsers{"alice": mustVerifier(f, "pw")}
	srv := New(fakeHandler{}, Options{HBA: mustHBA(f, "host all all all scram-sha-256"), Users: users})
	var sm []byte
	sm, _ = (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "alice", "database": "postgres"}}).Encode(sm)
	f.Fuzz(func(t *testing.T, data []byte) {
		feed(t, srv, append(sm[:len(sm):len(sm)], data...))
	})
}

// feed sends data to a new session of srv over a pipe that looks like TCP
// from loopback, then closes it; the session must end soon after.
func feed(t *testing.T, srv *Server, data []byte) {
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.serveConn(context.Background(), &tcpPipe{server})
	}()
	// Drain what the server says so that its writes never block.
	go io.Copy(io.Discard, client)
	client.SetWriteDeadline(time.Now().Add(2 * time.Second))
	client.Write(data)
	client.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("server still serving a closed connection")
	}
}

// tcpPipe makes a net.Pipe end look like a TCP connection from 127.0.0.1,
// so HBA host rules apply to it.
type tcpPipe struct{ net.Conn }

func (tcpPipe) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5} }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FuzzStartup feeds arbitrary bytes as the first packets of a connection
// (startup, SSLRequest with TLS on offer, cancel requests): the server must
// end the connection without panicking.
func FuzzStartup(f *testing.F) {
	var sm []byte
	sm, _ = (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "alice", "database": "postgres"}}).Encode(sm)
	f.Add(sm)
	f.Add([]byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"))     // SSLRequest
	f.Add([]byte("\x00\x00\x00\x08\x04\xd2\x16\x30"))     // GSSEncRequest
	f.Add([]byte("\x00\x00\x00\x10\x04\xd2\x16\x2e\x00")) // short CancelRequest
	f.Add(append([]byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"), sm...))
	sink := &logSink{}
	srv := New(fakeHandler{}, Options{Logger: sink.logger(), TLS: selfSignedTLS(f), Users: mapUsers{"alice": mustVerifier(f, "pw")},
		HBA: mustHBA(f, "hostssl all all all scram-sha-256\nhost all all all trust")})
	f.Fuzz(func(t *testing.T, data []byte) {
		feed(t, srv, data)
		if lines := sink.errorLines(); len(lines) > 0 {
			t.Fatalf("errors logged for %q:\n%q", data, lines)
		}
	})
}

func TestIsSuperuserReported(t *testing.T) {
	users := superUsers{"boss": true, "ops": false}
	ts := startServer(t, fakeHandler{}, Options{HBA: mustHBA(t, "host all all all trust"), Users: users})
	for name, want := range map[string]string{"boss": "on", "ops": "off"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", name, ts.addr.Port))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ParameterStatus("is_superuser"); got != want {
			t.Errorf("%s: is_superuser = %q, want %q", name, got, want)
		}
		c.Close(ctx)
		cancel()
	}
}

type superUsers map[string]bool

func (m superUsers) LookupUser(_ context.Context, name string) (UserInfo, bool, error) {
	s, ok := m[name]
	return UserInfo{Superuser: s}, ok, nil
}

// Users who are not superusers cannot take the last ReservedSessions: the
// DBA still gets in when they hold every other session.
func TestReservedSessions(t *testing.T) {
	users := superUsers{"boss": true, "ops": false}
	ts := startServer(t, fakeHandler{}, Options{HBA: mustHBA(t, "host all all all trust"), Users: users, MaxSessions: 4, ReservedSessions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := func(u string) string {
		return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", u, ts.addr.Port)
	}
	for range 2 {
		c, err := pgconn.Connect(ctx, url("ops"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
	}
	wantCode(t, connErr(t, url("ops")), "53300", "reserved for superusers")
	for range 2 {
		c, err := pgconn.Connect(ctx, url("boss"))
		if err != nil {
			t.Fatalf("superuser in a reserved session: %v", err)
		}
		defer c.Close(ctx)
	}
	wantCode(t, connErr(t, url("boss")), "53300", "too many clients")
}
