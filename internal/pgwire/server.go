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
}

// New returns a Server that runs queries with h.
func New(h Handler, opts Options) *Server {
	if opts.ServerVersion == "" {
		opts.ServerVersion = DefaultServerVersion
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
				// will free some; spinning would only burn CPU.
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

// register makes c reachable by CancelRequest and assigns its ProcessID.
func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		// Skip 0 (clients treat it as "no key") and, after wrap-around, PIDs
		// still in use by long-lived sessions.
		pid := s.lastPID.Add(1)
		if _, busy := s.sessions[pid]; pid != 0 && !busy {
			c.sess.ProcessID = pid
			s.sessions[pid] = c
			return
		}
	}
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[c.sess.ProcessID] == c {
		delete(s.sessions, c.sess.ProcessID)
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
