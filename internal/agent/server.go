package agent

import (
	"context"
	"crypto/tls"
	"errors"
	buildversion "github.com/adbmgr/adbmgr/internal/version"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Options configure a Server.
type Options struct {
	// Version is what Ping reports; empty means the build's
	// (internal/version).
	Version string
	// Logger receives one line per RPC; nil discards.
	Logger *slog.Logger
	// ShutdownGrace bounds how long a stop waits for running RPCs (a base
	// backup can take hours) before cancelling them; 0 means 30 s.
	ShutdownGrace time.Duration
}

// Server implements agentpb.AgentServer.
type Server struct {
	agentpb.UnimplementedAgentServer

	version string
	log     *slog.Logger
	started time.Time
	grace   time.Duration
	locks   pathLocks

	shutdownOnce sync.Once
	shutdown     chan struct{}
}

// NewServer returns the agent's service. Register it on a gRPC server that
// requires client certificates, or use Serve, which does.
func NewServer(o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	grace := o.ShutdownGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	version := o.Version
	if version == "" {
		version = buildversion.Version
	}
	return &Server{
		version:  version,
		log:      log,
		started:  time.Now(),
		grace:    grace,
		shutdown: make(chan struct{}),
	}
}

// ShutdownRequested is closed when a Shutdown RPC arrived.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Serve answers the agent contract on lis until ctx is cancelled or a
// Shutdown RPC arrives, then stops gracefully: running RPCs get
// ShutdownGrace to finish, after which they are cancelled (their tools
// killed). It refuses a TLS configuration that does not require and verify
// client certificates: the agent runs tools as any node user, so it must
// never answer an unauthenticated client.
func Serve(ctx context.Context, lis net.Listener, tlsConf *tls.Config, o Options) error {
	if tlsConf == nil || tlsConf.ClientAuth != tls.RequireAndVerifyClientCert || tlsConf.ClientCAs == nil {
		return errors.New("agent: refusing to serve without mutual TLS (client certificates required and verified)")
	}
	// Any certificate of the CA is not enough (it may sign PostgreSQL's):
	// the configuration must check the client is the manager
	// (pki.ServerTLS).
	if tlsConf.VerifyConnection == nil && tlsConf.VerifyPeerCertificate == nil {
		return errors.New("agent: refusing to serve without a check of the client's identity")
	}
	s := NewServer(o)
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.ChainUnaryInterceptor(s.logUnary),
		grpc.ChainStreamInterceptor(s.logStream),
		// The manager may keep connections open and ping them; do not
		// answer its keepalives with GOAWAY "too many pings". Our own pings
		// notice a manager that vanished during a long base backup, which
		// then cancels it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	)
	agentpb.RegisterAgentServer(gs, s)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	s.log.Info("agent listening", "address", lis.Addr().String(), "version", s.version, "pid", os.Getpid(), "uid", os.Getuid())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		s.log.Info("agent stopping", "reason", context.Cause(ctx))
	case <-s.shutdown:
		s.log.Info("agent stopping", "reason", "Shutdown RPC")
	}
	stopped := make(chan struct{})
	go func() {
		// GracefulStop waits for running RPCs, including the Shutdown RPC
		// that got us here, so its reply is sent before the listener goes.
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.grace):
		s.log.Warn("agent: RPCs still running after the grace period; cancelling them", "grace", s.grace)
		gs.Stop()
		<-stopped
	}
	<-served
	return nil
}

// Ping answers who and what the agent is.
func (s *Server) Ping(context.Context, *agentpb.PingRequest) (*agentpb.PingResponse, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, toStatus(err)
	}
	return &agentpb.PingResponse{
		Version:  s.version,
		Hostname: host,
		Uid:      int32(os.Getuid()),
		Pid:      int64(os.Getpid()),
		Started:  s.started.Unix(),
	}, nil
}

// Shutdown asks Serve to stop after this reply. Nodes keep running.
func (s *Server) Shutdown(context.Context, *agentpb.ShutdownRequest) (*agentpb.ShutdownResponse, error) {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
	return &agentpb.ShutdownResponse{}, nil
}

// quiet methods are called every few seconds by the manager's monitors;
// logging them at Info would drown the log.
func quiet(method string) bool {
	return strings.HasSuffix(method, "/Ping") || strings.HasSuffix(method, "/Status") ||
		strings.HasSuffix(method, "/CheckDir") || strings.HasSuffix(method, "/ReadHBA")
}

func (s *Server) logCall(ctx context.Context, method string, req any, start time.Time, err error) {
	attrs := []any{"method", method, "duration", time.Since(start).Round(time.Millisecond)}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			attrs = append(attrs, "client", ti.State.PeerCertificates[0].Subject.CommonName)
		}
		attrs = append(attrs, "from", p.Addr.String())
	}
	if r, ok := req.(interface{ GetNode() *agentpb.NodeRef }); ok && r.GetNode() != nil {
		attrs = append(attrs, "path", r.GetNode().GetPath())
	} else if r, ok := req.(*agentpb.NodeRef); ok {
		attrs = append(attrs, "path", r.GetPath())
	}
	level := slog.LevelInfo
	if quiet(method) {
		level = slog.LevelDebug
	}
	if err != nil {
		st := status.Convert(err)
		attrs = append(attrs, "code", st.Code().String(), "error", st.Message())
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "rpc", attrs...)
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logCall(ctx, info.FullMethod, req, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	w := &recvRecorder{ServerStream: ss}
	err := handler(srv, w)
	s.logCall(ss.Context(), info.FullMethod, w.req, start, err)
	return err
}

// recvRecorder remembers a server-streaming call's request for the log.
type recvRecorder struct {
	grpc.ServerStream
	req any
}

func (r *recvRecorder) RecvMsg(m any) error {
	err := r.ServerStream.RecvMsg(m)
	if err == nil && r.req == nil {
		r.req = m
	}
	return err
}

// pathLocks serialises operations on one data directory: a manager that
// retries after a lost reply must not run a second initdb or pg_ctl next
// to the first. Readers (Status, CheckDir, ControlData, ReadHBA) do not
// take it, so monitoring answers while a long base backup runs.
type pathLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// lock waits for path's lock, or for ctx to end.
func (l *pathLocks) lock(ctx context.Context, path string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]chan struct{}{}
	}
	ch, ok := l.m[path]
	if !ok {
		ch = make(chan struct{}, 1)
		l.m[path] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, preconditionf("another operation on %s is still running: %v", path, ctx.Err())
	}
}
