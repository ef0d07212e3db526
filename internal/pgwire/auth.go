package pgwire

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Users looks manager users up for authentication.
type Users interface {
	// LookupUser reports whether the user exists, and what authentication
	// needs to know of it.
	LookupUser(ctx context.Context, name string) (u UserInfo, exists bool, err error)
}

// UserInfo is what pgwire knows of a user.
type UserInfo struct {
	// Verifier is the SCRAM verifier ("" when the user has no password: it
	// can then log in only where no password is asked for).
	Verifier string
	// Superuser is reported to the client as is_superuser (psql's prompt
	// shows # for a superuser, > otherwise).
	Superuser bool
}

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// NewSCRAMVerifier returns the SCRAM-SHA-256 verifier of password in
// PostgreSQL's format, "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
// (base64): what the catalog stores instead of the password.
func NewSCRAMVerifier(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	// PostgreSQL's clients send the password SASLprep-ed when they can and
	// as-is otherwise; NewClient does the former and fails on the
	// prohibited characters, which we then take unprepared, as libpq does.
	client, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		client, err = scram.SHA256.NewClientUnprepped("", password, "")
		if err != nil {
			return "", err
		}
	}
	cred, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, enc(salt), enc(cred.StoredKey), enc(cred.ServerKey)), nil
}

// parseVerifier reads a verifier written by NewSCRAMVerifier (or by
// PostgreSQL itself: pg_authid.rolpassword has the same format).
func parseVerifier(v string) (scram.StoredCredentials, error) {
	var c scram.StoredCredentials
	rest, ok := strings.CutPrefix(v, "SCRAM-SHA-256$")
	if !ok {
		return c, errors.New("not a SCRAM-SHA-256 verifier")
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return c, errors.New("malformed verifier")
	}
	iters, salt, ok1 := strings.Cut(factors, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return c, errors.New("malformed verifier")
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 || n > 1<<24 {
		return c, errors.New("malformed verifier iteration count")
	}
	dec := base64.StdEncoding.DecodeString
	s, err1 := dec(salt)
	sk, err2 := dec(stored)
	vk, err3 := dec(server)
	if err := errors.Join(err1, err2, err3); err != nil || len(sk) != sha256.Size || len(vk) != sha256.Size || len(s) == 0 {
		return c, errors.New("malformed verifier keys")
	}
	c.Salt, c.Iters, c.StoredKey, c.ServerKey = string(s), n, sk, vk
	return c, nil
}

// VerifierValid reports whether v is a verifier parseVerifier accepts.
func VerifierValid(v string) bool {
	_, err := parseVerifier(v)
	return err == nil
}

// mockKey makes the mock credentials of a user that does not exist (or
// has no password) look the same on every attempt, as PostgreSQL does, so
// that the exchange does not tell a prober which users exist.
var mockKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

func mockCredentials(user string) scram.StoredCredentials {
	mac := hmac.New(sha256.New, mockKey)
	mac.Write([]byte(user))
	salt := mac.Sum(nil)[:16]
	key := make([]byte, sha256.Size) // never matches a proof
	rand.Read(key)
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: scramIterations}, StoredKey: key, ServerKey: key}
}

// authenticate decides how the startup user logs in (the first HBA rule
// that matches) and runs that method. It sends the FATAL and returns false
// when the client may not in.
func (c *conn) authenticate(user, db string) bool {
	addr := c.nc.RemoteAddr()
	opts := &c.srv.opts
	if opts.HBA == nil {
		// No rules configured (unit tests, embedded use): the old
		// behaviour, trust for local clients only.
		if !opts.AllowNonLoopback && !isLoopback(addr) {
			c.log.Warn("pgwire: refused non-loopback client", "user", user, "database", db)
			c.sendFatal(noHBAEntry(addr, user, db, c.tls))
			return false
		}
		c.sess.AuthMethod = AuthTrust
		c.superuser = true
		return true
	}
	_, local := addr.(*net.UnixAddr)
	var ip net.IP
	if a, ok := addr.(*net.TCPAddr); ok {
		ip = a.IP
	}
	var rule *HBARule
	for i := range opts.HBA {
		if opts.HBA[i].matches(local, c.tls, ip, user, db) {
			rule = &opts.HBA[i]
			break
		}
	}
	if rule == nil {
		c.log.Warn("pgwire: no HBA rule for client", "user", user, "database", db)
		c.sendFatal(noHBAEntry(addr, user, db, c.tls))
		return false
	}
	c.sess.AuthMethod = rule.Method
	if rule.Method == AuthReject {
		c.sendFatal(fatal(pgerror.InvalidAuthorization, `pg_hba.conf rejects connection for host "%s", user "%s", database "%s", %s`,
			hostOf(addr), user, db, encryption(c.tls)))
		return false
	}
	info, exists := UserInfo{Superuser: true}, true
	if opts.Users != nil {
		var err error
		info, exists, err = opts.Users.LookupUser(c.ctx, user)
		if err != nil {
			c.log.Error("pgwire: user lookup failed", "user", user, "err", err)
			c.sendFatal(fatal(pgerror.Internal, "could not look up user %q", user))
			return false
		}
	}
	noRole := fatal(pgerror.InvalidAuthorization, `role "%s" does not exist`, user)
	switch rule.Method {
	case AuthTrust:
		if !exists {
			c.sendFatal(noRole)
			return false
		}
	case AuthPeer:
		uid, err := peerUID(c.nc)
		if err != nil || opts.PeerAllowed == nil || !opts.PeerAllowed(uid) {
			c.log.Warn("pgwire: peer authentication failed", "user", user, "uid", uid, "err", err)
			c.sendFatal(fatal(pgerror.InvalidAuthorization, `Peer authentication failed for user "%s"`, user))
			return false
		}
		if !exists {
			c.sendFatal(noRole)
			return false
		}
	case AuthSCRAM:
		if err := c.scramExchange(user, info.Verifier, exists); err != nil {
			if !isDisconnect(err) {
				c.log.Warn("pgwire: password authentication failed", "user", user, "err", err)
				c.sendFatal(fatal(pgerror.InvalidPassword, `password authentication failed for user "%s"`, user))
			}
			return false
		}
	}
	c.superuser = info.Superuser
	return true
}

// scramExchange runs SCRAM-SHA-256 (and its -PLUS variant over TLS, with
// tls-server-end-point channel binding, as PostgreSQL offers). A user that
// does not exist or has no password goes through the same exchange with
// mock credentials and fails at the end.
func (c *conn) scramExchange(user, verifier string, exists bool) error {
	cred, perr := parseVerifier(verifier)
	ok := exists && perr == nil
	if !ok {
		cred = mockCredentials(user)
	}
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return cred, nil })
	if err != nil {
		return err
	}
	mechs := []string{"SCRAM-SHA-256"}
	var cb scram.ChannelBinding
	if c.tls && c.tlsCert != nil {
		if b, err := serverEndpointBinding(c.tlsCert); err == nil {
			cb = b
			mechs = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}
		}
	}
	c.be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: mechs})
	if err := c.be.Flush(); err != nil {
		return err
	}
	c.be.SetAuthType(pgproto3.AuthTypeSASL)
	defer c.be.SetAuthType(pgproto3.AuthTypeOk)
	msg, err := c.be.Receive()
	if err != nil {
		return err
	}
	first, isFirst := msg.(*pgproto3.SASLInitialResponse)
	if !isFirst {
		return fmt.Errorf("expected SASL initial response, got %T", msg)
	}
	var conv *scram.ServerConversation
	switch first.AuthMechanism {
	case "SCRAM-SHA-256-PLUS":
		if !cb.IsSupported() {
			return errors.New("client selected SCRAM-SHA-256-PLUS without TLS")
		}
		conv = srv.NewConversationWithChannelBinding(cb)
	case "SCRAM-SHA-256":
		// With cb advertised, a client that says it could bind but thought
		// we could not ("y") is refused: a downgrade.
		conv = srv.NewConversationWithChannelBinding(cb)
	default:
		return fmt.Errorf("client selected an invalid SASL authentication mechanism %q", first.AuthMechanism)
	}
	out, err := conv.Step(string(first.Data))
	if err != nil {
		return err
	}
	c.be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(out)})
	if err := c.be.Flush(); err != nil {
		return err
	}
	c.be.SetAuthType(pgproto3.AuthTypeSASLContinue)
	msg, err = c.be.Receive()
	if err != nil {
		return err
	}
	final, isFinal := msg.(*pgproto3.SASLResponse)
	if !isFinal {
		return fmt.Errorf("expected SASL response, got %T", msg)
	}
	out, err = conv.Step(string(final.Data))
	if err != nil {
		return err
	}
	if !ok || !conv.Valid() {
		return errors.New("no such user or no password set")
	}
	c.be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(out)})
	return nil
}

// peerUID returns the OS user id of a Unix socket's peer (SO_PEERCRED).
func peerUID(nc net.Conn) (uint32, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return 0, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return cred.Uid, nil
}

func hostOf(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case *net.UnixAddr:
		return "[local]"
	}
	return addr.String()
}

func encryption(tls bool) string {
	if tls {
		return "SSL encryption"
	}
	return "no encryption"
}

// serverEndpointBinding is RFC 5929's tls-server-end-point channel binding
// of our own certificate: its hash with the certificate's signature hash,
// SHA-256 when that is MD5 or SHA-1 — what libpq computes from the peer
// certificate.
func serverEndpointBinding(der []byte) (scram.ChannelBinding, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return scram.ChannelBinding{}, err
	}
	var h hash.Hash
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = sha512.New()
	case x509.PureEd25519:
		return scram.ChannelBinding{}, errors.New("no channel binding hash for Ed25519 certificates")
	default:
		h = sha256.New()
	}
	h.Write(der)
	return scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: h.Sum(nil)}, nil
}

// VerifyPassword reports whether password is the one verifier was made
// from (SCRAM-SHA-256: SaltedPassword by PBKDF2, ClientKey, StoredKey,
// compared in constant time): for callers that receive a password rather
// than run the exchange (the HTTP side's Basic credentials). A user that
// does not exist or has no password (verifier "") goes through the same
// work with mock credentials and fails.
func VerifyPassword(user, verifier, password string) bool {
	cred, err := parseVerifier(verifier)
	valid := err == nil
	if !valid {
		cred = mockCredentials(user)
	}
	client, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		if client, err = scram.SHA256.NewClientUnprepped("", password, ""); err != nil {
			return false
		}
	}
	got, err := client.GetStoredCredentialsWithError(cred.KeyFactors)
	if err != nil {
		return false
	}
	return hmac.Equal(got.StoredKey, cred.StoredKey) && valid
}

// MatchHBA returns the first rule for a TCP client at ip (tls: over TLS)
// that is user asking for database db, or nil when none matches: how the
// wire side picks a TCP client's method, for the HTTP side.
func MatchHBA(rules []HBARule, tls bool, ip net.IP, user, db string) *HBARule {
	for i := range rules {
		if rules[i].matches(false, tls, ip, user, db) {
			return &rules[i]
		}
	}
	return nil
}
