// Package access sets up who may connect to the manager: the client
// authentication file (DIR/mgr_hba.conf, pg_hba.conf's format), the first
// superuser, peer authentication's rule (the data directory's owner and
// root), and the TLS certificate offered to psql.
package access

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/pki"
)

// HBAFile is the client authentication file inside the data directory.
const HBAFile = "mgr_hba.conf"

// DefaultSuperuser is the name of the first user when init is not given -U.
const DefaultSuperuser = "postgres"

// InitOptions are adbmgr init's authentication flags.
type InitOptions struct {
	AuthLocal string // peer (default) or trust
	AuthHost  string // scram-sha-256 (default) or trust
	Superuser string // default DefaultSuperuser
	Password  string // the superuser's password ("" for none)
}

// Init writes the authentication file and creates the superuser in a new
// data directory.
func Init(ctx context.Context, dir string, cat catalog.Catalog, o InitOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o.defaults()
	u := catalog.User{Name: o.Superuser, Superuser: true}
	if o.Password != "" {
		v, err := pgwire.NewSCRAMVerifier(o.Password)
		if err != nil {
			return err
		}
		u.Verifier = v
	}
	if err := cat.UpdateUsers(ctx, func(t catalog.UserTx) error { return t.PutUser(u) }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, HBAFile), []byte(pgwire.DefaultHBA(o.AuthLocal, o.AuthHost)))
}

func (o *InitOptions) defaults() {
	if o.AuthLocal == "" {
		o.AuthLocal = pgwire.AuthPeer
	}
	if o.AuthHost == "" {
		o.AuthHost = pgwire.AuthSCRAM
	}
	if o.Superuser == "" {
		o.Superuser = DefaultSuperuser
	}
}

// Validate checks init's flags before anything is written.
func (o InitOptions) Validate() error {
	o.defaults()
	switch o.AuthLocal {
	case pgwire.AuthPeer, pgwire.AuthTrust, pgwire.AuthSCRAM:
	default:
		return fmt.Errorf("invalid --auth-local %q: peer, scram-sha-256 or trust", o.AuthLocal)
	}
	switch o.AuthHost {
	case pgwire.AuthSCRAM, pgwire.AuthTrust:
	default:
		return fmt.Errorf("invalid --auth-host %q: scram-sha-256 or trust", o.AuthHost)
	}
	return ValidUserName(o.Superuser)
}

// ReadPasswordFile reads the first line of a --pwfile, as initdb does.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pw, nil
}

// ValidUserName refuses names that could not be typed back or that
// confuse logs: empty, too long, control characters.
func ValidUserName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("invalid user name %q: 1 to 63 bytes", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == ',' {
			return fmt.Errorf("invalid user name %q: no control characters or commas", name)
		}
	}
	return nil
}

// Config is what the wire server needs to authenticate clients.
type Config struct {
	HBA []pgwire.HBARule
	// Notes are WARNINGs for the log at every start (trust in use).
	Notes []string
}

// Load reads DIR/mgr_hba.conf. A data directory from before
// authentication existed gets the defaults written (peer and
// scram-sha-256) and its first superuser, "postgres" without a password,
// so that what worked over the Unix socket goes on working. listen is the
// TCP address the manager will listen on: trust for clients that are not on
// loopback is refused there.
func Load(ctx context.Context, dir string, cat catalog.Catalog, listen string) (*Config, error) {
	path := filepath.Join(dir, HBAFile)
	data, err := os.ReadFile(path)
	var created bool
	if errors.Is(err, os.ErrNotExist) {
		data = []byte(pgwire.DefaultHBA(pgwire.AuthPeer, pgwire.AuthSCRAM))
		if err := writeFile(path, data); err != nil {
			return nil, err
		}
		created = true
	} else if err != nil {
		return nil, err
	}
	rules, err := pgwire.ParseHBA(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := &Config{HBA: rules}
	if created {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("wrote the default client authentication rules to %s (peer on the Unix socket, scram-sha-256 on TCP)", path))
	}
	users, err := cat.Users(ctx)
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		if err := cat.UpdateUsers(ctx, func(t catalog.UserTx) error {
			return t.PutUser(catalog.User{Name: DefaultSuperuser, Superuser: true})
		}); err != nil {
			return nil, err
		}
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("created the superuser %q without a password: connect over the Unix socket and set one with ALTER USER", DefaultSuperuser))
	}
	for _, r := range pgwire.TrustRules(rules, false) {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("%s line %d trusts %s connections without a password; any user who can reach them is a manager superuser", path, r.Line, r.Type))
	}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			if bad := pgwire.TrustRules(rules, true); len(bad) > 0 {
				return nil, fmt.Errorf("refusing to listen on %s: %s line %d uses trust for TCP clients that are not on loopback; use scram-sha-256", listen, path, bad[0].Line)
			}
		}
	}
	return cfg, nil
}

// PeerAllowed returns peer authentication's rule: root and the OS user that
// owns the data directory may log in as any manager user over the socket.
func PeerAllowed(dir string) (func(uid uint32) bool, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, errors.New("no owner information for " + dir)
	}
	owner := sys.Uid
	return func(uid uint32) bool { return uid == 0 || uid == owner }, nil
}

// ServerTLS returns the certificate offered to psql: the pair the DBA gave
// (certFile, keyFile), or one issued by the manager's CA in pkiDir for the
// listen address, localhost and the machine's host name, renewed at every
// start.
func ServerTLS(pkiDir, listen, certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		ca, err := pki.LoadCA(pkiDir)
		if err != nil {
			return nil, err
		}
		ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		if host, _, err := net.SplitHostPort(listen); err == nil {
			if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
				ips = append(ips, ip)
			}
		}
		dns := []string{"localhost"}
		if h, err := os.Hostname(); err == nil && h != "" {
			dns = append(dns, h)
		}
		c, k, err := ca.Issue("adbmgr server", ips, dns, true, false)
		if err != nil {
			return nil, err
		}
		if err := ca.WritePair(pkiDir, "server", c, k); err != nil {
			return nil, err
		}
		certFile, keyFile = filepath.Join(pkiDir, "server.crt"), filepath.Join(pkiDir, "server.key")
	} else if certFile == "" || keyFile == "" {
		return nil, errors.New("give both --ssl-cert and --ssl-key")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// Users adapts the catalog to pgwire's user lookup.
type Users struct{ Cat catalog.Catalog }

// LookupUser implements pgwire.Users.
func (u Users) LookupUser(ctx context.Context, name string) (pgwire.UserInfo, bool, error) {
	usr, ok, err := u.Cat.User(ctx, name)
	return pgwire.UserInfo{Verifier: usr.Verifier, Superuser: usr.Superuser}, ok, err
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
