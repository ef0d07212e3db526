package pgwire

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// msg frames a frontend message with an arbitrary (possibly lying) length.
func msg(typ byte, length int32, body string) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint32(b, uint32(length))
	return append(b, body...)
}

// garbageAfterStartup are byte strings a broken or hostile client might
// send once logged in.
var garbageAfterStartup = [][]byte{
	msg('?', 4, ""),                           // unknown message type
	msg('Q', -1, ""),                          // negative length
	msg('Q', 3, ""),                           // length shorter than itself
	msg('Q', 0x7fffffff, "rows"),              // absurd length
	msg('Q', 100, "rows\x00"),                 // body shorter than announced
	msg('Q', 4, ""),                           // query without terminator
	msg('B', 7, "p\x00s"),                     // Bind cut short
	msg('B', 4+6, "\x00\x00\xff\xff\x00\x00"), // Bind with 65535 format codes and no room
	msg('P', 4+4, "\x00q\x00\xff"),            // Parse with half a parameter count
	msg('D', 4, ""),                           // Describe without a body
	msg('D', 6, "Xs"),                         // Describe of an unknown kind, no terminator
	msg('E', 5, "\x00"),                       // Execute without max rows
	msg('C', 4, ""),                           // Close without a body
	msg('F', 4+2, "\x00\x00"),                 // FunctionCall cut short
	msg('p', 4+3, "pw\x00"),                   // password message outside authentication
	msg('d', 4+2, "xx"),                       // CopyData outside COPY (ignored), then EOF
	append(msg('Q', 4+5, "rows\x00"), 0xde, 0xad, 0xbe, 0xef), // a good query, then junk
	append(msg('S', 4, ""), msg('X', 4, "")...),               // Sync, Terminate
}

// garbageStartup are startup packets that are not one.
var garbageStartup = [][]byte{
	{0, 0, 0, 3},             // too short
	{0, 0, 0x27, 0x12},       // longer than allowed
	{0, 0, 0, 8, 0, 2, 0, 0}, // protocol 2.0
	{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f, 0xff, 0xff},       // SSLRequest, then junk
	{0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1},      // CancelRequest with an unknown pid
	append([]byte{0, 0, 0, 13, 0, 3, 0, 0}, "user\x00"...), // parameter without value
	[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
}

func randomGarbage(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for range n {
		b := make([]byte, 1+r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		// Half of them look like a message of a known type.
		if r.IntN(2) == 0 {
			b[0] = "QPBDECSHXFdcfp"[r.IntN(14)]
		}
		out = append(out, b)
	}
	return out
}

// startupBytes is a valid protocol 3.0 startup packet.
func startupBytes() []byte {
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "postgres"}}).Encode(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// TestGarbage writes garbage to the server and checks that it closes just
// that connection (or keeps serving it), never panics, and still serves new
// clients.
func TestGarbage(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	type tc struct {
		login bool
		data  []byte
	}
	var cases []tc
	for _, g := range append(garbageAfterStartup, randomGarbage(50)...) {
		cases = append(cases, tc{true, g})
	}
	for _, g := range append(garbageStartup, randomGarbage(20)...) {
		cases = append(cases, tc{false, g})
	}
	for i, c := range cases {
		nc, err := net.Dial("tcp", ts.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if c.login {
			rc := &rawClient{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
			rc.startup(map[string]string{"user": "postgres"})
		}
		nc.Write(c.data)
		// EOF after the garbage: a server waiting for the rest of a message
		// must give up too.
		nc.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Errorf("case %d (%q): server did not close the connection: %v", i, c.data, err)
		}
		nc.Close()
	}
	if lines := ts.log.errorLines(); len(lines) > 0 {
		t.Errorf("server logged errors (panics?):\n%q", lines)
	}
	conn := connect(t, ts, pgx.QueryExecModeCacheStatement, nil)
	if diff := cmp.Diff(wantRows, queryRows(t, conn, "rows")); diff != "" {
		t.Errorf("rows after garbage (-want +got):\n%s", diff)
	}
}

// FuzzSession feeds arbitrary bytes to a logged-in session over an
// in-memory pipe; a recovered panic shows up as an ERROR log line.
func FuzzSession(f *testing.F) {
	for _, g := range garbageAfterStartup {
		f.Add(g)
	}
	f.Add(msg('Q', 4+10, "rows; cmd\x00"))
	// F's methods may not be called from the fuzz function, so nothing is
	// forwarded to the test log.
	sink := &logSink{}
	// Pipes have no IP address, so the loopback check must be off.
	srv := New(fakeHandler{}, Options{Logger: sink.logger(), AllowNonLoopback: true})
	startup := startupBytes()
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.serveConn(ctx, server)
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(startup)
		client.Write(data)
		client.Close()
		cancel() // ends a Handler call the data may have started ("sleep")
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session did not end for %q", data)
		}
		<-drained
		if lines := sink.errorLines(); len(lines) > 0 {
			t.Fatalf("session logged errors for %q:\n%q", data, lines)
		}
	})
}
