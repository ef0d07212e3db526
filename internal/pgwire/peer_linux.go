package pgwire

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

// watchPeer watches, while a query runs, for the client closing its
// connection, and cancels the query with errClientGone when it does: a
// client that went away must not leave its statement running (PostgreSQL's
// client_connection_check_interval). It peeks (MSG_PEEK) and never
// consumes, so bytes the client sent meanwhile stay for the message loop.
// If the client did send more (pipelining), the watch ends: a peek cannot
// see past pending data, and spinning on it would burn a core. The
// returned function stops the watch and must be called before the next
// read.
func (c *conn) watchPeer(cancel context.CancelCauseFunc) (stop func()) {
	nc := c.nc
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn() // *tls.Conn: watch the socket beneath
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return func() {}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		gone := false
		// The callback returning false makes the runtime wait until the
		// socket is readable (or the read deadline passes) and call again.
		rerr := rc.Read(func(fd uintptr) bool {
			for {
				n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
				switch {
				case errors.Is(err, syscall.EINTR):
					continue
				case errors.Is(err, syscall.EAGAIN):
					return false
				case err != nil, n == 0:
					gone = true // reset, or EOF: the client closed
				}
				return true
			}
		})
		if gone && rerr == nil {
			cancel(errClientGone)
		}
	}()
	return func() {
		// Wake the watcher and wait for it, then undo the deadline; a
		// shutdown poke that came meanwhile is repeated.
		nc.SetReadDeadline(time.Now())
		<-done
		nc.SetReadDeadline(time.Time{})
		if c.ctx.Err() != nil {
			nc.SetReadDeadline(time.Now())
		}
	}
}
