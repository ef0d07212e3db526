package mgr

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pki"
)

// The nodes' credentials. Nodes trust nobody (cluster.HBALines): the
// cluster's hosts, the manager and the slaves authenticate with the
// password of the nodes' superusers, which the manager generates once per
// cluster and keeps in its data directory, and the nodes prove who they are
// with certificates its CA issues for their hosts' addresses.
//
//   - DIR/node.password (0600): the password, 43 random URL-safe base64
//     characters. Never logged, never in LIST output or in an error.
//   - DIR/nodes/<node>/server.crt, server.key (0600): the node's server
//     certificate, reissued when missing, for another address, or within
//     30 days of expiry.
//   - DIR/pgpass (0600): a libpq password file with one line per cluster
//     host, for DBAs (PGPASSFILE=DIR/pgpass psql -h <host address> -p
//     <port> -U postgres), rewritten by INIT ALL, APPEND and EXPAND.
//
// The agent gets password, certificate and key with every operation that
// may start a node or make it connect to another (agentpb.NodeSecrets) and
// keeps them in the node's socket directory, readable by the node's OS user
// only.
const (
	nodePasswordFile = "node.password"
	dbaPassFile      = "pgpass"
	nodeCertDir      = "nodes"
	// certRenewal: a node certificate this close to expiry is reissued at
	// the node's next start.
	certRenewal = 30 * 24 * time.Hour
)

// nodeCreds caches the password and the CA; the node certificates are read
// from disk each time (they are small, and a start is rare).
type nodeCreds struct {
	mu       sync.Mutex
	password string
	ca       *pki.CA
	pool     *x509.CertPool
}

// nodePassword returns the nodes' superuser password, generating and
// storing it the first time. Without a data directory (unit tests) it lives
// in memory only.
func (m *Manager) nodePassword() (string, error) {
	m.creds.mu.Lock()
	defer m.creds.mu.Unlock()
	if m.creds.password != "" {
		return m.creds.password, nil
	}
	var file string
	if m.opts.DataDir != "" {
		file = filepath.Join(m.opts.DataDir, nodePasswordFile)
		pw, err := readSecretFile(file)
		if err == nil {
			m.creds.password = pw
			return pw, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	if file != "" {
		if err := writeSecretFile(file, []byte(pw+"\n"), true); err != nil {
			return "", fmt.Errorf("store the nodes' password: %w", err)
		}
	}
	m.creds.password = pw
	return pw, nil
}

// readSecretFile reads a one-line secret the manager wrote, refusing one
// that others could read or that is not a plain file (a link could point
// anywhere).
func readSecretFile(file string) (string, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s must be a plain file of mode 0600 (it is %v): fix it, or restore it from a backup: the nodes only know this password", file, fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return pw, nil
}

// writeSecretFile writes a file readable by the manager's user only:
// exclusive creates a new one (never replacing a password), otherwise it
// is replaced atomically.
func writeSecretFile(file string, data []byte, exclusive bool) error {
	if exclusive {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(file)
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(file)
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// loadCA loads the manager's CA once.
func (m *Manager) loadCA() (*pki.CA, *x509.CertPool, error) {
	m.creds.mu.Lock()
	defer m.creds.mu.Unlock()
	if m.creds.ca != nil {
		return m.creds.ca, m.creds.pool, nil
	}
	if m.opts.DataDir == "" {
		return nil, nil, errors.New("the manager has no data directory, hence no CA")
	}
	ca, err := pki.LoadCA(filepath.Join(m.opts.DataDir, "pki"))
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM()) {
		return nil, nil, errors.New("the CA certificate does not parse")
	}
	m.creds.ca, m.creds.pool = ca, pool
	return ca, pool, nil
}

// nodeSecrets are what the agent writes beside node n: the password, the
// node's server certificate and key, the CA certificate.
func (m *Manager) nodeSecrets(n cluster.Node, h cluster.Host) (*agentpb.NodeSecrets, error) {
	pw, err := m.nodePassword()
	if err != nil {
		return nil, err
	}
	ca, _, err := m.loadCA()
	if err != nil {
		return nil, fmt.Errorf("load the CA for node %s's certificate: %w", n.Name, err)
	}
	cert, key, err := m.nodeCert(ca, n, h)
	if err != nil {
		return nil, fmt.Errorf("certificate of node %s: %w", n.Name, err)
	}
	return &agentpb.NodeSecrets{Password: pw, ServerCert: cert, ServerKey: key, CaCert: ca.CertPEM()}, nil
}

// nodeCert returns node n's server certificate and key, issuing a new pair
// when there is none, when it names another address than its host's, or
// when it expires within certRenewal.
func (m *Manager) nodeCert(ca *pki.CA, n cluster.Node, h cluster.Host) (certPEM, keyPEM []byte, err error) {
	ip := net.ParseIP(h.Address)
	if ip == nil {
		return nil, nil, fmt.Errorf("host %s's address %q is not an IP address", h.Name, h.Address)
	}
	if strings.ContainsAny(n.Name, "/\x00") || n.Name == "." || n.Name == ".." {
		return nil, nil, fmt.Errorf("node name %q cannot name a directory", n.Name)
	}
	dir := filepath.Join(m.opts.DataDir, nodeCertDir, n.Name)
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if c, k, ok := usableCert(certFile, keyFile, ip); ok {
		return c, k, nil
	}
	certPEM, keyPEM, err = ca.Issue("adbmgr node "+n.Name, []net.IP{ip}, nil, true, false)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := writeSecretFile(keyFile, keyPEM, false); err != nil {
		return nil, nil, err
	}
	if err := writeSecretFile(certFile, certPEM, false); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func usableCert(certFile, keyFile string, ip net.IP) (certPEM, keyPEM []byte, ok bool) {
	c, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, false
	}
	k, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, false
	}
	block, _ := pem.Decode(c)
	if block == nil {
		return nil, nil, false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || time.Until(cert.NotAfter) < certRenewal || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(ip) {
		return nil, nil, false
	}
	return c, k, true
}

// nodeAuth is how the manager's own connections to nodes authenticate: the
// password, and TLS verified against the CA for the host's address.
func (m *Manager) nodeAuth() (pgclient.Auth, error) {
	pw, err := m.nodePassword()
	if err != nil {
		return pgclient.Auth{}, err
	}
	a := pgclient.Auth{Password: pw}
	if m.opts.DataDir != "" {
		_, pool, err := m.loadCA()
		if err != nil {
			return pgclient.Auth{}, err
		}
		a.RootCAs = pool
	}
	return a, nil
}

// writeDBAPassFile writes DIR/pgpass for DBAs: the nodes' password for the
// superuser of every host of the cluster, bound to the host's address so
// that psql never offers it to another server.
func (m *Manager) writeDBAPassFile(s *cluster.State) error {
	if m.opts.DataDir == "" {
		return nil
	}
	pw, err := m.nodePassword()
	if err != nil {
		return err
	}
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	seen := map[string]bool{}
	var lines []string
	for _, h := range s.Hosts {
		l := esc.Replace(h.Address) + ":*:*:" + esc.Replace(h.User) + ":" + pw
		if !seen[l] {
			seen[l] = true
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	var b bytes.Buffer
	b.WriteString("# The nodes' superuser password (adbmgr writes this file; PGPASSFILE=<it> psql -h <host address> …)\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return writeSecretFile(filepath.Join(m.opts.DataDir, dbaPassFile), b.Bytes(), false)
}

// refreshDBAPassFile is writeDBAPassFile for a command: a failure is a
// WARNING, not a reason to stop (the file is for people).
func (m *Manager) refreshDBAPassFile(e *req, s *cluster.State) {
	if err := m.writeDBAPassFile(s); err != nil {
		e.w.Notice("WARNING", fmt.Sprintf("could not write %s: %s", filepath.Join(m.opts.DataDir, dbaPassFile), err))
	}
}
