package pgwire

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// receiveStartup reads startup packets until the real StartupMessage. It
// answers an SSLRequest with 'S' and a TLS handshake when the server has a
// certificate (TCP only), and refuses it, and GSS encryption, with 'N', which
// every client treats as "go on in plaintext" unless told to require
// encryption. A CancelRequest is handled
// here and ends the connection: it never carries a session. It returns nil
// when the connection should be closed.
func (c *conn) receiveStartup() *pgproto3.StartupMessage {
	// A client may ask for SSL and then for GSS encryption once each; more
	// negotiation than that is a confused or hostile client.
	for range 3 {
		msg, err := c.be.ReceiveStartupMessage()
		if err != nil {
			if !isDisconnect(err) {
				c.log.Debug("pgwire: bad startup packet", "err", err)
				c.sendFatal(pgerror.New(pgerror.ProtocolViolation, "invalid startup packet: %v", err))
			}
			return nil
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if !c.startTLS() {
				return nil
			}
		case *pgproto3.GSSEncRequest:
			if _, err := c.nc.Write([]byte{'N'}); err != nil {
				return nil
			}
		case *pgproto3.CancelRequest:
			c.handleCancelRequest(m)
			return nil
		case *pgproto3.StartupMessage:
			return m
		default:
			return nil
		}
	}
	c.sendFatal(pgerror.New(pgerror.ProtocolViolation, "too many encryption requests in startup"))
	return nil
}

// startup runs the handshake and reports whether the session is ready for
// queries. On success the session is registered for CancelRequest.
func (c *conn) startup() bool {
	// Deadline errors from a shutdown poke and from StartupTimeout look the
	// same; both end the handshake.
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.StartupTimeout))
	if c.ctx.Err() != nil {
		return false // shutting down; the deadline above undid Serve's poke
	}
	sm := c.receiveStartup()
	if sm == nil {
		return false
	}

	user := sm.Parameters["user"]
	if user == "" {
		c.sendFatal(pgerror.New(pgerror.InvalidAuthorization, "no PostgreSQL user name specified in startup packet"))
		return false
	}
	db := sm.Parameters["database"]
	if db == "" {
		db = user // as libpq and PostgreSQL do
	}
	addr := c.nc.RemoteAddr()
	c.sess = Session{
		User:        user,
		Database:    db,
		Application: sm.Parameters["application_name"],
		RemoteAddr:  addr.String(),
		TLS:         c.tls,
		Params:      make(map[string]string, len(sm.Parameters)),
		Deallocate:  c.deallocate,
	}
	if !c.authenticate(user, db) {
		return false
	}
	c.sess.Superuser = c.superuser
	for k, v := range sm.Parameters {
		c.sess.Params[k] = v
	}
	if _, err := rand.Read(c.secret[:]); err != nil {
		c.sendFatal(fmt.Errorf("generating cancel key: %w", err))
		return false
	}

	// A 3.2 client, or one sending _pq_ protocol options, is told we speak
	// 3.0 with no extensions, as PostgreSQL 15 would: the client then falls
	// back (pgx, libpq 18) instead of failing.
	var unknownOpts []string
	for k := range sm.Parameters {
		if strings.HasPrefix(k, "_pq_.") {
			unknownOpts = append(unknownOpts, k)
		}
	}
	if sm.ProtocolVersion != pgproto3.ProtocolVersion30 || len(unknownOpts) > 0 {
		slices.Sort(unknownOpts)
		c.be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknownOpts})
	}

	c.be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", c.srv.opts.ServerVersion},
		// We never transcode: every string is UTF-8 whatever the client
		// asked for, and saying so lets libpq and psql notice.
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		// Clients escape literals differently when this is off; it is on
		// in every PostgreSQL since 9.1.
		{"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"},
		{"IntervalStyle", "postgres"},
		{"is_superuser", onOff(c.superuser)},
		{"session_authorization", user},
		{"application_name", c.sess.Application},
	} {
		c.be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	if !c.srv.register(c) {
		c.log.Warn("pgwire: refused a client: the remaining sessions are reserved for superusers", "user", user)
		c.sendFatal(fatal(codeTooManyConnections, "remaining connection slots are reserved for superusers"))
		return false
	}
	c.log = c.log.With("pid", c.sess.ProcessID, "user", user)
	c.be.Send(&pgproto3.BackendKeyData{ProcessID: c.sess.ProcessID, SecretKey: c.secret[:]})
	c.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := c.be.Flush(); err != nil {
		return false
	}
	c.nc.SetReadDeadline(time.Time{})
	// Clearing the deadline may have undone Serve's shutdown poke.
	if c.ctx.Err() != nil {
		c.terminate()
		return false
	}
	c.log.Debug("pgwire: session started", "database", db, "application", c.sess.Application)
	return true
}

// handleCancelRequest cancels the running query of the session the request
// names. PostgreSQL never answers a CancelRequest, so that a wrong key
// reveals nothing; the client learns the outcome on its own connection.
func (c *conn) handleCancelRequest(m *pgproto3.CancelRequest) {
	// The secret key is the credential; with HBA rules any client that can
	// connect may send one, as in PostgreSQL.
	if c.srv.opts.HBA == nil && !c.srv.opts.AllowNonLoopback && !isLoopback(c.nc.RemoteAddr()) {
		return
	}
	found := c.srv.cancel(m.ProcessID, m.SecretKey)
	c.log.Debug("pgwire: cancel request", "pid", m.ProcessID, "matched", found)
}

// isLoopback reports whether addr is a local client that trust
// authentication may let in: a TCP peer on 127.0.0.0/8 or ::1 (IPv4-mapped
// forms included), or a unix socket peer.
func isLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// noHBAEntry is PostgreSQL's own refusal, so DBAs recognise it.
func noHBAEntry(addr net.Addr, user, db string, tls bool) *pgerror.Error {
	return fatal(pgerror.InvalidAuthorization,
		`no pg_hba.conf entry for host "%s", user "%s", database "%s", %s`, hostOf(addr), user, db, encryption(tls))
}

// startTLS answers an SSLRequest: 'S' and a server-side TLS handshake when
// the server has a certificate and the client came over TCP, 'N' otherwise.
// It reports whether the connection may go on.
func (c *conn) startTLS() bool {
	cfg := c.srv.opts.TLS
	if _, isTCP := c.nc.(*net.TCPConn); cfg == nil || c.tls || !isTCP {
		_, err := c.nc.Write([]byte{'N'})
		return err == nil
	}
	if _, err := c.nc.Write([]byte{'S'}); err != nil {
		return false
	}
	// Channel binding (SCRAM-SHA-256-PLUS) hashes the certificate we
	// present, which the server side of crypto/tls does not report: note
	// which one the handshake picks.
	cfg = cfg.Clone()
	pick, certs := cfg.GetCertificate, cfg.Certificates
	// crypto/tls asks GetCertificate only when Certificates is empty.
	cfg.Certificates = nil
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		var cert *tls.Certificate
		if len(certs) > 0 {
			cert = &certs[0]
		}
		if pick != nil {
			var err error
			if cert, err = pick(hello); err != nil {
				return nil, err
			}
		}
		if cert != nil && len(cert.Certificate) > 0 {
			c.tlsCert = cert.Certificate[0]
		}
		return cert, nil
	}
	tc := tls.Server(c.nc, cfg)
	// The read deadline set by startup bounds the handshake too.
	if err := tc.Handshake(); err != nil {
		c.log.Debug("pgwire: TLS handshake failed", "err", err)
		return false
	}
	c.nc = tc
	c.tls = true
	c.be = pgproto3.NewBackend(tc, tc)
	c.be.SetMaxBodyLen(maxMessageLen)
	return true
}

// isDisconnect reports whether err just means the peer went away (or Serve
// poked the read deadline), which is not worth a log line or an answer.
func isDisconnect(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
