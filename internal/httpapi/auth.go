package httpapi

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Users is where the HTTP side looks manager users up: the catalog.
type Users interface {
	User(ctx context.Context, name string) (catalog.User, bool, error)
}

// Auth is how the HTTP side lets clients in, by the wire side's rules: a
// client certificate of --http-tls is enough; otherwise the first
// DIR/mgr_hba.conf rule for the client's address decides (trust: in
// without credentials; reject: 403), and HTTP Basic credentials of a
// manager user are checked against its SCRAM-SHA-256 verifier. The user
// must hold the privilege MONITOR ALL needs (monitor) or be a superuser.
// /healthz is open to all (a load balancer's liveness probe).
type Auth struct {
	HBA   []pgwire.HBARule // nil: every client gives credentials
	Users Users
}

// Privilege is what a user needs for the HTTP side: MONITOR ALL's.
const Privilege = "monitor"

// VerifiedFor is how long a verified user and password is remembered, so
// that a scrape every few seconds does not cost a PBKDF2 each time.
const VerifiedFor = 60 * time.Second

// hbaDatabase is the database name rules are matched with: the HTTP side
// has none, so only rules for all databases apply.
const hbaDatabase = ""

type authenticator struct {
	Auth
	mu       sync.Mutex
	verified map[[sha256.Size]byte]time.Time // user+password hash → expiry
}

func (a *authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, msg := a.check(r); code != http.StatusOK {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="adbmgr"`)
			}
			http.Error(w, msg, code)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns 200, or the status and message refusing r.
func (a *authenticator) check(r *http.Request) (int, string) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		// Verified by the listener (verifyClient): the monitor's or the
		// manager's certificate.
		return http.StatusOK, ""
	}
	user, password, ok := r.BasicAuth()
	if a.HBA != nil {
		var ip net.IP
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			ip = net.ParseIP(host)
		}
		rule := pgwire.MatchHBA(a.HBA, r.TLS != nil, ip, user, hbaDatabase)
		switch {
		case rule == nil:
			return http.StatusForbidden, "no mgr_hba.conf rule for this client"
		case rule.Method == pgwire.AuthReject:
			return http.StatusForbidden, "mgr_hba.conf rejects this client"
		case rule.Method == pgwire.AuthTrust:
			return http.StatusOK, ""
		}
	}
	if !ok || user == "" {
		return http.StatusUnauthorized, "give the user and password of a manager user (HTTP Basic)"
	}
	u, exists, err := a.Users.User(r.Context(), user)
	if err != nil {
		return http.StatusInternalServerError, "cannot look the user up"
	}
	if !a.verify(user, u.Verifier, password) || !exists {
		return http.StatusUnauthorized, "password authentication failed"
	}
	// Read afresh at every request: REVOKE and DROP USER act at once.
	if !u.Superuser && !slices.Contains(u.Privs, Privilege) {
		return http.StatusForbidden, `user lacks the monitor privilege (GRANT monitor TO ` + user + `)`
	}
	return http.StatusOK, ""
}

// verify checks password against verifier, remembering a success for
// VerifiedFor (keyed by a hash of the user, the verifier and the password:
// ALTER USER … PASSWORD ends it).
func (a *authenticator) verify(user, verifier, password string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + verifier + "\x00" + password))
	now := time.Now()
	a.mu.Lock()
	exp, hit := a.verified[key]
	a.mu.Unlock()
	if hit && now.Before(exp) {
		return true
	}
	if !pgwire.VerifyPassword(user, verifier, password) {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verified == nil {
		a.verified = map[[sha256.Size]byte]time.Time{}
	}
	for k, e := range a.verified {
		if now.After(e) {
			delete(a.verified, k)
		}
	}
	a.verified[key] = now.Add(VerifiedFor)
	return true
}
