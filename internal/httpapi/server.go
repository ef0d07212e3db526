// Package httpapi is the manager's HTTP side (adbmgr start --http): read-only
// status for tools that do not speak psql. /metrics for Prometheus,
// /healthz, /cluster (the topology as JSON, like Patroni's), /primary/NODE
// and /replica/NODE for load balancers' health checks, and / a live
// topology page. It never changes anything: every answer comes from the
// manager's Status (the probes of MONITOR ALL and MONITOR HA), cached
// briefly so that a scrape storm cannot hammer the nodes.
package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/mgr"
	"github.com/adbmgr/adbmgr/internal/pki"
)

// Source is what the HTTP side reads: *mgr.Manager, or a fake in tests.
type Source interface {
	Status(ctx context.Context) (mgr.Status, error)
	CatalogWritable(ctx context.Context) error
}

// Defaults of Options.
const (
	// CacheFor is how long one Status answers every request.
	CacheFor = 2 * time.Second
	// ProbeTimeout bounds one Status: the nodes' probes run in
	// parallel, and a node that does not answer is down by then.
	ProbeTimeout = 5 * time.Second
)

// Options configures a Server.
type Options struct {
	CacheFor, ProbeTimeout time.Duration
	Logger                 *slog.Logger
	// Auth lets clients in (see Auth); nil lets every client in (tests,
	// embedded use).
	Auth *Auth
}

// Server answers the HTTP side's requests. It is also the manager's
// Observer (command counts and durations).
type Server struct {
	src  Source
	opts Options
	log  *slog.Logger
	m    *metrics

	auth *authenticator // nil: no authentication

	mu      sync.Mutex // held while a Status is taken: one at a time
	cached  mgr.Status
	err     error
	expires time.Time
}

var (
	_ mgr.Observer       = (*Server)(nil)
	_ mgr.DoctorObserver = (*Server)(nil)
)

// New returns a Server reading src.
func New(src Source, opts Options) *Server {
	if opts.CacheFor == 0 {
		opts.CacheFor = CacheFor
	}
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = ProbeTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{src: src, opts: opts, log: log}
	if opts.Auth != nil {
		s.auth = &authenticator{Auth: *opts.Auth}
	}
	s.m = newMetrics(s)
	return s
}

// SetSource sets the source after New (the manager takes the Server as
// its Observer before it exists).
func (s *Server) SetSource(src Source) { s.src = src }

// status returns the cached Status, taking a new one when it is older than
// CacheFor. Concurrent callers wait for the one being taken rather than
// probe the nodes again; the probe is bounded by ProbeTimeout and does not
// end with the request that started it.
func (s *Server) status() (mgr.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Before(s.expires) {
		return s.cached, s.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ProbeTimeout)
	defer cancel()
	s.cached, s.err = s.src.Status(ctx)
	s.expires = time.Now().Add(s.opts.CacheFor)
	if s.err != nil {
		s.log.Warn("http: cannot read the cluster's status", "error", s.err)
	}
	return s.cached, s.err
}

// Handler serves every endpoint: /healthz to all, the others to the
// clients Options.Auth lets in.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.m.handler())
	mux.HandleFunc("GET /cluster", s.clusterJSON)
	mux.HandleFunc("GET /primary/{node}", s.primary)
	mux.HandleFunc("GET /replica/{node}", s.replica)
	mux.HandleFunc("GET /{$}", s.page)
	var guarded http.Handler = mux
	if s.auth != nil {
		guarded = s.auth.wrap(mux)
	}
	top := http.NewServeMux()
	top.HandleFunc("GET /healthz", s.healthz)
	top.Handle("/", guarded)
	return top
}

// TLSConfig is how a non-loopback --http listens (--http-tls): a server
// certificate from the manager's CA for the listen address, and client
// certificates required, issued by the same CA to the monitor (MonitorCert)
// or the manager.
type TLSConfig struct {
	PKIDir string
}

// MonitorName is the common name of the client certificate the HTTP side
// accepts besides the manager's: DIR/pki/monitor.crt, made at the first
// start with --http-tls. It opens nothing else: agents want the manager's
// identity.
const MonitorName = "adbmgr monitor"

// MonitorCert is the monitor's pair in DIR/pki (monitor.crt, monitor.key).
const MonitorCert = "monitor"

// Listen opens addr. Without TLS only a loopback address is allowed: the
// status names every host, port and node, and is for the machine's own
// users (and a Prometheus there) unless clients prove who they are.
func Listen(addr string, tc *TLSConfig) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", addr, err)
	}
	if tc == nil {
		if !loopback(host) {
			return nil, fmt.Errorf("--http %s is not a loopback address: give --http-tls (client certificates of the manager's CA), or listen on 127.0.0.1", addr)
		}
		return net.Listen("tcp", addr)
	}
	cfg, err := serverTLS(tc.PKIDir, host)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(l, cfg), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serverTLS issues the HTTP side a server certificate (kept in memory) and
// writes the monitor's client pair when it is missing.
func serverTLS(pkiDir, host string) (*tls.Config, error) {
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" {
		dns = append(dns, h)
	}
	if ip := net.ParseIP(host); ip == nil && host != "" {
		dns = append(dns, host)
	}
	c, k, err := ca.Issue("adbmgr http", ips, dns, true, false)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(pkiDir, MonitorCert+".crt")); errors.Is(err, os.ErrNotExist) {
		mc, mk, err := ca.Issue(MonitorName, nil, nil, false, true)
		if err != nil {
			return nil, err
		}
		if err := ca.WritePair(pkiDir, MonitorCert, mc, mk); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	return &tls.Config{
		Certificates:     []tls.Certificate{pair},
		ClientCAs:        pool,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		MinVersion:       tls.VersionTLS13,
		VerifyConnection: verifyClient,
	}, nil
}

// verifyClient accepts the monitor's certificate or the manager's (the
// chain was verified, for client usage): not a node's, an agent's or the
// wire server's, which the same CA signs.
func verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("adbmgr http: no client certificate")
	}
	c := cs.PeerCertificates[0]
	if pki.VerifyManager(c) == nil {
		return nil
	}
	server := false
	for _, u := range c.ExtKeyUsage {
		server = server || u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny
	}
	if c.Subject.CommonName != MonitorName || server || len(c.URIs) > 0 {
		return fmt.Errorf("client certificate %q is neither the monitor's nor the manager's", c.Subject.CommonName)
	}
	return nil
}

// Serve serves l until ctx ends, and returns when the requests in flight
// have ended (at most 5 s later).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		// Requests in flight end before the manager closes its catalog.
		<-stopped
		return nil
	}
	return err
}
