package pgwire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultServerVersion is reported as server_version when Options leaves it
// empty. psql and drivers parse the leading number to pick SQL dialect
// features, so it must look like a real PostgreSQL version.
const DefaultServerVersion = "15.0 (adbmgr)"

// shutdownGrace is how long Serve waits, after cancelling every session's
// context, for sessions to say goodbye (FATAL 57P01) before it closes their
// sockets from under them. A Handler that ignores its context, or a client
// that stopped reading, must not hold shutdown hostage.
const shutdownGrace = 5 * time.Second

// Defaults of the Options that bound what clients may hold.
const (
	// DefaultStartupTimeout bounds the handshake, like PostgreSQL's
	// authentication_timeout (1 minute there): a client that connects and
	// says nothing must not hold a socket for long.
	DefaultStartupTimeout = 10 * time.Second
	// DefaultMaxStartup caps connections still in the handshake.
	DefaultMaxStartup = 64
	// DefaultMaxSessions caps established sessions, as max_connections.
	DefaultMaxSessions = 100
	// DefaultReservedSessions is PostgreSQL's superuser_reserved_connections.
	DefaultReservedSessions = 3
	// DefaultMaxPrepared caps a session's named prepared statements, and
	// separately its portals.
	DefaultMaxPrepared = 1000
	// DefaultWriteTimeout bounds one write of results or notices to a
	// client that stopped reading.
	DefaultWriteTimeout = time.Minute
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// ServerVersion is sent as the server_version parameter
	// (default DefaultServerVersion).
	ServerVersion string
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// AllowNonLoopback lets clients from non-loopback addresses in with trust
	// authentication when HBA is nil. Off by default: trust is only safe for
	// local users.
	AllowNonLoopback bool
	// HBA are the client authentication rules (see ParseHBA). nil keeps the
	// embedded default: trust for loopback and Unix socket clients only.
	HBA []HBARule
	// Users looks up users for HBA authentication; nil lets any user name
	// in that the method lets in.
	Users Users
	// PeerAllowed says whether the OS user uid of a Unix socket client may
	// log in as any user under peer authentication.
	PeerAllowed func(uid uint32) bool
	// TLS, when set, is offered to TCP clients that ask for it (psql's
	// sslmode=prefer, require, verify-full).
	TLS *tls.Config

	// StartupTimeout bounds the handshake (default DefaultStartupTimeout).
	StartupTimeout time.Duration
	// MaxStartup caps connections still in the handshake (default
	// DefaultMaxStartup). A connection beyond it makes the server close
	// the oldest of them at once: a flood of silent sockets then costs the
	// flood, not the client that just arrived, and never more than
	// MaxStartup descriptors and goroutines.
	MaxStartup int
	// MaxSessions caps sessions, those in the handshake included (default
	// DefaultMaxSessions); a client beyond it gets FATAL 53300 "sorry, too
	// many clients already".
	MaxSessions int
	// ReservedSessions of MaxSessions are kept for superusers (default
	// DefaultReservedSessions), as superuser_reserved_connections.
	ReservedSessions int
	// MaxPrepared caps a session's prepared statements and its portals
	// (default DefaultMaxPrepared); beyond it Parse and Bind fail with 53400.
	MaxPrepared int
	// WriteTimeout bounds one write of results or notices (default
	// DefaultWriteTimeout). A client that accepts nothing for that long
	// loses its session, so that a query never waits on it for ever.
	WriteTimeout time.Duration
}

// Server serves the PostgreSQL protocol to clients and hands their queries to
// a Handler. One Server may Serve several listeners at once; CancelRequests
// are matched across all of them.
type Server struct {
	h    Handler
	opts Options
	log  *slog.Logger

	// lastPID numbers sessions; the number is the "backend PID" clients see
	// and quote in CancelRequest.
	lastPID atomic.Uint32

	mu       sync.Mutex
	sessions map[uint32]*conn // live sessions by ProcessID, for CancelRequest
	// pending holds the connections in the handshake, oldest first, and
	// established counts the sessions past it; together they stay within
	// MaxSessions (refused connections aside), so that a session slot is
	// reserved when its connection arrives.
	pending      []*pendingConn
	established  int
	evicted      atomic.Int64 // connections closed to make room, for the log
	lastEvictLog time.Time
}

// pendingConn is a connection in the handshake.
type pendingConn struct {
	nc net.Conn
	// refuse: the sessions were full when it arrived; its startup packet is
	// answered with 53300.
	refuse  bool
	evicted bool // closed to make room
	session bool // past the handshake: counted in established
}

// New returns a Server that runs queries with h.
func New(h Handler, opts Options) *Server {
	if opts.ServerVersion == "" {
		opts.ServerVersion = DefaultServerVersion
	}
	if opts.StartupTimeout <= 0 {
		opts.StartupTimeout = DefaultStartupTimeout
	}
	if opts.MaxStartup <= 0 {
		opts.MaxStartup = DefaultMaxStartup
	}
	if opts.ReservedSessions <= 0 {
		opts.ReservedSessions = DefaultReservedSessions
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.ReservedSessions >= opts.MaxSessions {
		opts.ReservedSessions = 0
	}
	if opts.MaxPrepared <= 0 {
		opts.MaxPrepared = DefaultMaxPrepared
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, opts: opts, log: log, sessions: make(map[uint32]*conn)}
}

// Serve accepts connections on l and serves each in its own goroutine. It
// returns nil once ctx is cancelled, or the accept error if l fails or is
// closed by someone else. Either way it closes l, cancels running queries,
// ends every session it started and waits for their goroutines before
// returning.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// Sessions get their own context so that Serve ends them on every exit
	// path, not only when the caller's ctx is cancelled.
	sctx, cancelSessions := context.WithCancel(ctx)
	defer cancelSessions()
	stopClose := context.AfterFunc(ctx, func() { l.Close() })
	defer stopClose()

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
	)
	var err error
	var backoff time.Duration
	for {
		nc, aerr := l.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if isTransientAcceptError(aerr) {
				// Out of file descriptors and the like: existing sessions
				// will free some; spinning would only burn CPU. A
				// connection still in the handshake is the cheapest to
				// give up for it.
				if errors.Is(aerr, syscall.EMFILE) || errors.Is(aerr, syscall.ENFILE) {
					s.shed()
				}
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("pgwire: accept failed; retrying", "err", aerr, "delay", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					// l is closed now; the next Accept fails and ends the loop.
				}
				continue
			}
			err = fmt.Errorf("pgwire: accept: %w", aerr)
			break
		}
		backoff = 0
		mu.Lock()
		conns[nc] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, nc)
				mu.Unlock()
			}()
			s.serveConn(sctx, nc)
		}()
	}
	l.Close()

	cancelSessions()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		mu.Lock()
		for nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		<-done
	}
	return err
}

// isTransientAcceptError reports whether Accept may succeed if retried.
func isTransientAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// admit records a new connection as in the handshake, closing the oldest
// ones in the handshake when that would exceed MaxStartup, or MaxSessions
// while some are still in the handshake. It decides whether the connection
// is refused for lack of sessions.
func (s *Server) admit(nc net.Conn) *pendingConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) >= s.opts.MaxStartup {
		s.evictLocked(0, "too many connections in startup")
	}
	for {
		reserved, oldest := 0, -1
		for i, p := range s.pending {
			if !p.refuse {
				reserved++
				if oldest < 0 {
					oldest = i
				}
			}
		}
		if s.established+reserved < s.opts.MaxSessions || oldest < 0 {
			break
		}
		s.evictLocked(oldest, "too many sessions")
	}
	p := &pendingConn{nc: nc, refuse: s.established >= s.opts.MaxSessions}
	s.pending = append(s.pending, p)
	return p
}

// shed closes the oldest connection in the handshake, if any, to free a
// descriptor.
func (s *Server) shed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		s.evictLocked(0, "out of file descriptors")
	}
}

// evictLocked closes the connection pending[i]; its goroutine then fails
// to read and ends.
func (s *Server) evictLocked(i int, why string) {
	p := s.pending[i]
	s.pending = append(s.pending[:i], s.pending[i+1:]...)
	p.evicted = true
	p.nc.Close()
	n := s.evicted.Add(1)
	if now := time.Now(); now.Sub(s.lastEvictLog) >= 10*time.Second {
		s.lastEvictLog = now
		s.log.Warn("pgwire: closing the oldest connection still in startup", "reason", why, "closed_so_far", n,
			"max_startup", s.opts.MaxStartup, "max_sessions", s.opts.MaxSessions)
	}
}

// leave forgets c's connection: from the handshake, or as a session.
func (s *Server) leave(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.pend
	if p.session {
		s.established--
		if s.sessions[c.sess.ProcessID] == c {
			delete(s.sessions, c.sess.ProcessID)
		}
		return
	}
	if !p.evicted {
		for i, q := range s.pending {
			if q == p {
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
	}
}

// register makes c reachable by CancelRequest and assigns its ProcessID.
// The handshake is over: c's connection becomes a session, in the same
// step, so that it is never taken for one still in the handshake (and
// closed to make room) once the client was told it is in. It refuses (false)
// a user who is not a superuser when only the ReservedSessions are left,
// as PostgreSQL's superuser_reserved_connections: logged-in users holding
// every session must not lock the DBA out.
func (s *Server) register(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.superuser && s.established >= s.opts.MaxSessions-s.opts.ReservedSessions {
		return false
	}
	if p := c.pend; p != nil && !p.session {
		if !p.evicted {
			for i, q := range s.pending {
				if q == p {
					s.pending = append(s.pending[:i], s.pending[i+1:]...)
					break
				}
			}
		}
		p.session = true
		s.established++
	}
	for {
		// Skip 0 (clients treat it as "no key") and, after wrap-around, PIDs
		// still in use by long-lived sessions.
		pid := s.lastPID.Add(1)
		if _, busy := s.sessions[pid]; pid != 0 && !busy {
			c.sess.ProcessID = pid
			s.sessions[pid] = c
			return true
		}
	}
}

// cancel cancels the running query of the session with pid if secret
// matches, and reports whether it found such a session.
func (s *Server) cancel(pid uint32, secret []byte) bool {
	s.mu.Lock()
	c := s.sessions[pid]
	s.mu.Unlock()
	if c == nil || !c.secretMatches(secret) {
		return false
	}
	c.cancelQuery()
	return true
}
