// Package pki is the manager's small certificate authority: `adbmgr init`
// creates it, the manager signs its own client certificate and each agent's
// server certificate with it, and both sides trust only it (mutual TLS).
//
// Trusting the CA is not enough on either side: the CA may sign other
// certificates (PostgreSQL's, for replication), so an agent accepts only a
// client certificate carrying the manager's identity (ManagerURI, client
// usage), and the manager accepts only an agent's (AgentURI, server usage,
// the dialled address). Both sides re-read their certificate files when
// they change, so ROTATE CERTIFICATES needs no restart.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File names inside a PKI directory.
const (
	CACert      = "ca.crt"
	CAKey       = "ca.key"
	ManagerCert = "manager.crt"
	ManagerKey  = "manager.key"
)

// Identities, as URI subject alternative names: what a certificate is for,
// checked by the other side on top of the chain.
const (
	ManagerURI = "adbmgr:manager"
	AgentURI   = "adbmgr:agent"
)

// Lifetimes. Leaf certificates are short-lived and renewed with ROTATE
// CERTIFICATES (the manager's also at start when a third of its life is
// left); the CA lives long because replacing it means touching every agent.
const (
	LeafLifetime = 90 * 24 * time.Hour
	CALifetime   = 10 * 365 * 24 * time.Hour
	// RenewBefore: the manager renews its own certificate at start when it
	// expires within this time.
	RenewBefore = LeafLifetime / 3
)

// CA is a loaded certificate authority.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// CreateCA writes a new CA into dir unless one is already there.
func CreateCA(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, CACert)); err == nil {
		return nil
	}
	if err := privateDir(dir); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "adbmgr CA", Organization: []string{"adbmgr"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	// Key first: a crash between the two writes leaves no certificate, so
	// the next CreateCA starts over instead of trusting a CA without a key.
	if err := writeFile(filepath.Join(dir, CAKey), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CACert), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

// LoadCA reads the CA from dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKey))
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("CA key is not ECDSA")
	}
	return &CA{cert: cert, key: key, certPEM: certPEM}, nil
}

// CertPEM returns the CA certificate.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Issue signs a new key pair, valid for LeafLifetime. A server certificate
// is valid for the given IP addresses and DNS names; a client certificate
// identifies commonName. It carries neither the manager's nor an agent's
// identity (IssueManager, IssueAgent), so agents never accept it.
func (ca *CA) Issue(commonName string, ips []net.IP, dnsNames []string, server, client bool) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: []string{"adbmgr"}},
		IPAddresses: ips,
		DNSNames:    dnsNames,
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	return ca.sign(tmpl)
}

// IssueManager signs the manager's client certificate: the manager's
// identity and client usage only, so it can never pose as an agent.
func (ca *CA) IssueManager() (certPEM, keyPEM []byte, err error) {
	return ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "adbmgr manager", Organization: []string{"adbmgr"}},
		URIs:        []*url.URL{mustURL(ManagerURI)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// IssueAgent signs host's agent a server certificate for its addresses:
// an agent's identity and server usage only, so an agent's key (readable by
// whoever controls that host) never opens another agent.
func (ca *CA) IssueAgent(host string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	return ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "adbagent " + host, Organization: []string{"adbmgr"}},
		URIs:        []*url.URL{mustURL(AgentURI)},
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// sign completes tmpl (serial, validity, key usage), signs a fresh key with
// the CA and returns both, PEM-encoded.
func (ca *CA) sign(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial()
	// An hour back: a host whose clock is a little behind still accepts it.
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(LeafLifetime)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		// A leaf outliving its CA would fail verification anyway.
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// WritePair writes a certificate and key issued by Issue into dir as
// name.crt and name.key (0600), plus the CA certificate as ca.crt.
func (ca *CA) WritePair(dir, name string, certPEM, keyPEM []byte) error {
	if err := privateDir(dir); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, name+".crt"), certPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CACert), ca.certPEM, 0o600)
}

// ServerTLS is the agent's configuration: its own pair, and client
// certificates required, verified against the CA and accepted only when
// they carry the manager's identity (VerifyManager). The three files are
// re-read on the next handshake after they change, so a rotated
// certificate or CA is picked up without a restart; a half-written change
// (new key, old certificate) keeps the previous pair until it is complete.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	r := &reloader{cert: certFile, key: keyFile, ca: caFile, build: serverConfig}
	base, err := r.get()
	if err != nil {
		return nil, err
	}
	base = base.Clone()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.get() }
	return base, nil
}

func serverConfig(pair *tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{*pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
		// Called after the chain was verified for client usage.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("adbagent: no client certificate")
			}
			return VerifyManager(cs.PeerCertificates[0])
		},
	}
}

// ClientTLS is the manager's configuration: its client pair (re-read when
// the files change, so ROTATE CERTIFICATES takes effect on the next
// connection), and servers verified against the CA, for the agent's address
// (ServerName, set per agent), with server usage and an agent's identity
// (VerifyAgent).
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	r := &reloader{cert: certFile, key: keyFile, build: func(pair *tls.Certificate, _ *x509.CertPool) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{*pair}}
	}}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := r.get()
			if err != nil {
				return nil, err
			}
			return &c.Certificates[0], nil
		},
		RootCAs:    pool,
		MinVersion: tls.VersionTLS13,
		// Called after the standard checks: chain to the CA, server usage,
		// ServerName among the certificate's addresses.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("agent sent no certificate")
			}
			return VerifyAgent(cs.PeerCertificates[0])
		},
	}, nil
}

// VerifyManager accepts a (chain-verified) client certificate only when it
// is the manager's: the manager's identity and client usage, and not a
// server certificate besides.
func VerifyManager(c *x509.Certificate) error {
	if !hasURI(c, ManagerURI) {
		return fmt.Errorf("client certificate %q is not the manager's (no %s identity)", c.Subject.CommonName, ManagerURI)
	}
	if !hasUsage(c, x509.ExtKeyUsageClientAuth) || hasUsage(c, x509.ExtKeyUsageServerAuth) || hasURI(c, AgentURI) {
		return fmt.Errorf("client certificate %q has the wrong usage for the manager", c.Subject.CommonName)
	}
	return nil
}

// VerifyAgent accepts a (chain- and name-verified) server certificate only
// when it is an agent's. Agents started by adbmgr before identities existed
// present "adbagent <host>" without AgentURI; they are accepted so that the
// manager can still stop them (STOP AGENT; START AGENT gives them a new
// certificate).
func VerifyAgent(c *x509.Certificate) error {
	legacy := len(c.URIs) == 0 && strings.HasPrefix(c.Subject.CommonName, "adbagent ")
	if !hasURI(c, AgentURI) && !legacy {
		return fmt.Errorf("server certificate %q is not an agent's (no %s identity)", c.Subject.CommonName, AgentURI)
	}
	if !hasUsage(c, x509.ExtKeyUsageServerAuth) || hasUsage(c, x509.ExtKeyUsageClientAuth) || hasURI(c, ManagerURI) {
		return fmt.Errorf("server certificate %q has the wrong usage for an agent", c.Subject.CommonName)
	}
	return nil
}

func hasURI(c *x509.Certificate, want string) bool {
	for _, u := range c.URIs {
		if u.String() == want {
			return true
		}
	}
	return false
}

func hasUsage(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// reloader re-reads a key pair (and a CA file) when one of the files
// changed since the last good load, and keeps serving the last good
// configuration while a change is incomplete or broken.
type reloader struct {
	cert, key, ca string
	build         func(pair *tls.Certificate, pool *x509.CertPool) *tls.Config

	mu   sync.Mutex
	sig  string
	conf *tls.Config
}

func (r *reloader) get() (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sig := fileSig(r.cert) + fileSig(r.key) + fileSig(r.ca)
	if r.conf != nil && sig == r.sig {
		return r.conf, nil
	}
	conf, err := r.load()
	if err != nil {
		if r.conf != nil {
			return r.conf, nil
		}
		return nil, err
	}
	r.sig, r.conf = sig, conf
	return conf, nil
}

func (r *reloader) load() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	var pool *x509.CertPool
	if r.ca != "" {
		if pool, err = loadPool(r.ca); err != nil {
			return nil, err
		}
	}
	return r.build(&pair, pool), nil
}

// fileSig identifies a file's version: writeFile replaces files by rename,
// so the inode changes with every write.
func fileSig(path string) string {
	if path == "" {
		return "-"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d;", ino, fi.Size(), fi.ModTime().UnixNano())
}

func loadPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return pool, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// privateDir creates dir 0700, or makes an existing one 0700: it holds
// private keys.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// writeFile writes atomically: temporary file, fsync, rename.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SetupManager makes sure dir holds the CA and the manager's client pair,
// creating or renewing what is needed (EnsureManager), and returns the
// manager's client configuration.
func SetupManager(dir string) (*tls.Config, error) {
	if _, err := EnsureManager(dir); err != nil {
		return nil, err
	}
	return ClientTLS(filepath.Join(dir, ManagerCert), filepath.Join(dir, ManagerKey), filepath.Join(dir, CACert))
}

// EnsureManager creates the CA and the manager's client pair in dir when
// missing, and renews the pair when it lacks the manager's identity (made
// by an adbmgr before identities existed), expires within RenewBefore, or
// was not signed by the current CA. renewed says why it renewed, "" if it
// did not.
func EnsureManager(dir string) (renewed string, err error) {
	if err := CreateCA(dir); err != nil {
		return "", fmt.Errorf("create CA: %w", err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return "", err
	}
	why := ca.managerNeedsRenewal(filepath.Join(dir, ManagerCert))
	if why == "" {
		return "", nil
	}
	if err := ca.RenewManager(dir); err != nil {
		return "", err
	}
	return why, nil
}

// RenewManager issues the manager a new client pair and writes it into
// the PKI directory dir.
func (ca *CA) RenewManager(dir string) error {
	c, k, err := ca.IssueManager()
	if err != nil {
		return err
	}
	return ca.WritePair(dir, "manager", c, k)
}

func (ca *CA) managerNeedsRenewal(file string) string {
	c, err := ReadCert(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no manager certificate"
	case err != nil:
		return err.Error()
	case VerifyManager(c) != nil:
		return "the manager certificate lacks the manager's identity (made by an earlier adbmgr)"
	case c.CheckSignatureFrom(ca.cert) != nil:
		return "the manager certificate was not signed by the current CA"
	case time.Until(c.NotAfter) < RenewBefore:
		return "the manager certificate expires on " + c.NotAfter.UTC().Format(time.RFC3339)
	}
	return ""
}

// ReadCert reads the first certificate of a PEM file.
func ReadCert(file string) (*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return x509.ParseCertificate(blk.Bytes)
}
