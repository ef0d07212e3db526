// Package agentclient is the manager's side of the agent contract: it dials
// each host's adbagent over gRPC with mutual TLS, keeps one connection per
// agent address, and puts a deadline on every call.
package agentclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Pool hands out clients for hosts' agents.
type Pool struct {
	tls *tls.Config

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address:port
}

// New returns a Pool that authenticates with the manager's client TLS
// configuration (pki.ClientTLS).
func New(cfg *tls.Config) *Pool {
	return &Pool{tls: cfg, conns: map[string]*grpc.ClientConn{}}
}

// Target is where a host's agent listens.
func Target(h cluster.Host) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(h.AgentPort))
}

// Client returns a client for h's agent. Connecting is lazy: errors show up
// on the first call.
func (p *Pool) Client(h cluster.Host) (agentpb.AgentClient, error) {
	target := Target(h)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[target]; ok {
		return agentpb.NewAgentClient(c), nil
	}
	cfg := p.tls.Clone()
	// The agent's certificate is issued for its host's address.
	cfg.ServerName = h.Address
	c, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
		// gRPC's default backoff grows to two minutes between attempts:
		// after a host's link was cut for half a minute, calls would keep
		// failing fast long after it is back. Agents are on the cluster's
		// network; retrying every few seconds at most costs nothing.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("agent on host %q: %w", h.Name, err)
	}
	p.conns[target] = c
	return agentpb.NewAgentClient(c), nil
}

// Forget closes the connection to h's agent, so that the next call dials
// afresh (after START AGENT, or when the agent's certificate changed).
func (p *Pool) Forget(h cluster.Host) {
	target := Target(h)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[target]; ok {
		c.Close()
		delete(p.conns, target)
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.conns {
		c.Close()
		delete(p.conns, k)
	}
}

// Ping asks h's agent who it is, within timeout. It fails fast when nothing
// listens (no retry until the deadline), so MONITOR AGENT stays quick.
func (p *Pool) Ping(ctx context.Context, h cluster.Host, timeout time.Duration) (*agentpb.PingResponse, error) {
	resp, _, err := p.PingCert(ctx, h, timeout)
	return resp, err
}

// PingCert is Ping that also returns the certificate the agent presented
// on the connection the call used (MONITOR AGENT shows its expiry, ROTATE
// CERTIFICATES checks the agent took its new one).
//
// A connection whose last attempt failed (a cut link, an agent restarted)
// waits out gRPC's backoff before it dials again, and fails calls fast
// meanwhile: when the agent's port accepts a TCP connection now, the old
// connection is dropped and the ping tried once more on a fresh one, so an
// agent whose link just came back is not reported down for seconds.
func (p *Pool) PingCert(ctx context.Context, h cluster.Host, timeout time.Duration) (*agentpb.PingResponse, *x509.Certificate, error) {
	resp, cert, err := p.pingCert(ctx, h, timeout)
	if err == nil || !Unreachable(err) || ctx.Err() != nil {
		return resp, cert, err
	}
	c, derr := net.DialTimeout("tcp", Target(h), time.Second)
	if derr != nil {
		return nil, nil, err
	}
	c.Close()
	p.Forget(h)
	return p.pingCert(ctx, h, timeout)
}

func (p *Pool) pingCert(ctx context.Context, h cluster.Host, timeout time.Duration) (*agentpb.PingResponse, *x509.Certificate, error) {
	c, err := p.Client(h)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pr peer.Peer
	resp, err := c.Ping(ctx, &agentpb.PingRequest{}, grpc.Peer(&pr))
	if err != nil {
		return nil, nil, err
	}
	var cert *x509.Certificate
	if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		cert = ti.State.PeerCertificates[0]
	}
	return resp, cert, nil
}

// Message returns a gRPC error's message without the "rpc error: code = …"
// prefix, for rows and NOTICEs.
func Message(err error) string {
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded {
			return "agent not reachable: " + s.Message()
		}
		return s.Message()
	}
	return err.Error()
}

// Unreachable reports whether err means the agent could not be reached (as
// opposed to the agent refusing or failing the operation).
func Unreachable(err error) bool {
	s, ok := status.FromError(err)
	return ok && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded)
}
