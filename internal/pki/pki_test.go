package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newCA creates a CA in a temporary directory.
func newCA(t *testing.T) (string, *CA) {
	t.Helper()
	dir := t.TempDir()
	if err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ca
}

// write issues with f and writes the pair as dir/name.{crt,key}.
func write(t *testing.T, ca *CA, dir, name string, f func() ([]byte, []byte, error)) {
	t.Helper()
	c, k, err := f()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(dir, name, c, k); err != nil {
		t.Fatal(err)
	}
}

func localhost() []net.IP { return []net.IP{net.ParseIP("127.0.0.1")} }

func parse(t *testing.T, f func() ([]byte, []byte, error)) *x509.Certificate {
	t.Helper()
	c, _, err := f()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.crt"), c, 0o600)
	cert, err := ReadCert(filepath.Join(dir, "c.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// The manager's and the agents' certificates carry their identity and one
// usage each, and live LeafLifetime; the CA lives CALifetime.
func TestIdentitiesAndLifetimes(t *testing.T) {
	dir, ca := newCA(t)
	near := func(what string, got time.Time, want time.Duration) {
		t.Helper()
		if d := time.Until(got) - want; d < -time.Minute || d > time.Minute {
			t.Errorf("%s expires %v, want in %v", what, got, want)
		}
	}
	caCert, err := ReadCert(filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	near("CA", caCert.NotAfter, CALifetime)

	mgr := parse(t, ca.IssueManager)
	near("manager", mgr.NotAfter, LeafLifetime)
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, mgr.ExtKeyUsage); diff != "" {
		t.Errorf("manager usages (-want +got):\n%s", diff)
	}
	if len(mgr.URIs) != 1 || mgr.URIs[0].String() != ManagerURI {
		t.Errorf("manager URIs = %v", mgr.URIs)
	}
	agent := parse(t, func() ([]byte, []byte, error) { return ca.IssueAgent("h1", localhost()) })
	near("agent", agent.NotAfter, LeafLifetime)
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, agent.ExtKeyUsage); diff != "" {
		t.Errorf("agent usages (-want +got):\n%s", diff)
	}
	if len(agent.URIs) != 1 || agent.URIs[0].String() != AgentURI || agent.Subject.CommonName != "adbagent h1" || !agent.IPAddresses[0].Equal(localhost()[0]) {
		t.Errorf("agent certificate: URIs %v, CN %q, IPs %v", agent.URIs, agent.Subject.CommonName, agent.IPAddresses)
	}
	generic := parse(t, func() ([]byte, []byte, error) { return ca.Issue("adbmgr", nil, nil, true, true) })
	near("generic", generic.NotAfter, LeafLifetime)
	legacyAgent := parse(t, func() ([]byte, []byte, error) { return ca.Issue("adbagent h1", localhost(), nil, true, false) })
	replClient := parse(t, func() ([]byte, []byte, error) { return ca.Issue("replicator", nil, nil, false, true) })

	for _, c := range []struct {
		name         string
		cert         *x509.Certificate
		manager, agt bool
	}{
		{"manager", mgr, true, false},
		{"agent", agent, false, true},
		{"client and server, no identity", generic, false, false},
		{"agent of an earlier adbmgr", legacyAgent, false, true},
		{"another client of the CA", replClient, false, false},
	} {
		if err := VerifyManager(c.cert); (err == nil) != c.manager {
			t.Errorf("VerifyManager(%s) = %v, want accepted %v", c.name, err, c.manager)
		}
		if err := VerifyAgent(c.cert); (err == nil) != c.agt {
			t.Errorf("VerifyAgent(%s) = %v, want accepted %v", c.name, err, c.agt)
		}
	}
}

// serve runs a TLS echo server with cfg and returns its address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("x"))
				}
				c.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// exchange dials addr with cfg and reads one byte: TLS 1.3 reports a
// refused client certificate only on the first read.
func exchange(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

func clientTLS(t *testing.T, dir, name string) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "127.0.0.1"
	return cfg
}

// An agent accepts the manager's certificate and nothing else of its CA:
// not an agent's, not another client's, not another CA's, not none.
func TestAgentAcceptsOnlyTheManager(t *testing.T) {
	dir, ca := newCA(t)
	write(t, ca, dir, "agent", func() ([]byte, []byte, error) { return ca.IssueAgent("h1", localhost()) })
	write(t, ca, dir, "manager", ca.IssueManager)
	write(t, ca, dir, "other", func() ([]byte, []byte, error) { return ca.Issue("adbmgr", nil, nil, false, true) })
	srv, err := ServerTLS(filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key"), filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	mgr := clientTLS(t, dir, "manager")
	if err := exchange(addr, mgr); err != nil {
		t.Fatalf("manager refused: %v", err)
	}

	foreignDir, foreign := newCA(t)
	write(t, foreign, foreignDir, "manager", foreign.IssueManager)
	withCert := func(name, d string) *tls.Config {
		pair, err := tls.LoadX509KeyPair(filepath.Join(d, name+".crt"), filepath.Join(d, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: mgr.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	}
	for name, cfg := range map[string]*tls.Config{
		"no certificate":           {RootCAs: mgr.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13},
		"an agent's certificate":   withCert("agent", dir),
		"another client of the CA": withCert("other", dir),
		"another CA's manager":     withCert("manager", foreignDir),
	} {
		if err := exchange(addr, cfg); err == nil {
			t.Errorf("agent accepted a client with %s", name)
		}
	}
}

// The manager accepts an agent's certificate for the address it dialled,
// and not one for another address, nor another certificate of the CA.
func TestManagerAcceptsOnlyTheAgent(t *testing.T) {
	dir, ca := newCA(t)
	write(t, ca, dir, "manager", ca.IssueManager)
	for _, c := range []struct {
		name string
		f    func() ([]byte, []byte, error)
		ok   bool
	}{
		{"agent", func() ([]byte, []byte, error) { return ca.IssueAgent("h1", localhost()) }, true},
		{"agent of an earlier adbmgr", func() ([]byte, []byte, error) { return ca.Issue("adbagent h1", localhost(), nil, true, false) }, true},
		{"agent of another address", func() ([]byte, []byte, error) {
			return ca.IssueAgent("h2", []net.IP{net.ParseIP("127.0.0.2")})
		}, false},
		{"another server of the CA", func() ([]byte, []byte, error) { return ca.Issue("postgres", localhost(), nil, true, false) }, false},
	} {
		write(t, ca, dir, "srv", c.f)
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"))
		if err != nil {
			t.Fatal(err)
		}
		addr := serve(t, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13})
		if err := exchange(addr, clientTLS(t, dir, "manager")); (err == nil) != c.ok {
			t.Errorf("manager with server %s: %v, want accepted %v", c.name, err, c.ok)
		}
	}
}

// Rewritten certificate files are used from the next handshake on, on both
// sides; a half-written pair keeps the previous one.
func TestReload(t *testing.T) {
	dir, ca := newCA(t)
	write(t, ca, dir, "agent", func() ([]byte, []byte, error) { return ca.IssueAgent("h1", localhost()) })
	write(t, ca, dir, "manager", ca.IssueManager)
	srv, err := ServerTLS(filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key"), filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	cli := clientTLS(t, dir, "manager")
	serverSerial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, cli)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	fileSerial := func(name string) string {
		c, err := ReadCert(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return c.SerialNumber.String()
	}
	if got, want := serverSerial(), fileSerial("agent.crt"); got != want {
		t.Fatalf("agent presents %s, want %s", got, want)
	}
	write(t, ca, dir, "agent", func() ([]byte, []byte, error) { return ca.IssueAgent("h1", localhost()) })
	write(t, ca, dir, "manager", ca.IssueManager)
	if got, want := serverSerial(), fileSerial("agent.crt"); got != want {
		t.Errorf("after rewrite the agent presents %s, want the new %s", got, want)
	}
	// The manager presented its new certificate (the agent accepted it;
	// the certificate the client sent is the one on disk).
	got, err := cli.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(got.Certificate[0])
	if leaf.SerialNumber.String() != fileSerial("manager.crt") {
		t.Error("the manager still presents its previous certificate")
	}
	// A new key with the old certificate (a writer between its renames):
	// the last good pair is kept.
	before := serverSerial()
	_, k, _ := ca.IssueAgent("h1", localhost())
	if err := writeFile(filepath.Join(dir, "agent.key"), k, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serverSerial(); got != before {
		t.Errorf("half-written pair: agent presents %s, want the previous %s", got, before)
	}
}

// EnsureManager renews a manager certificate of an earlier adbmgr (no
// identity), keeps a good one, and leaves keys 0600.
func TestEnsureManager(t *testing.T) {
	dir, ca := newCA(t)
	why, err := EnsureManager(dir)
	if err != nil || why != "no manager certificate" {
		t.Fatalf("EnsureManager on a new CA = %q, %v", why, err)
	}
	if why, err := EnsureManager(dir); err != nil || why != "" {
		t.Errorf("EnsureManager again = %q, %v; want nothing renewed", why, err)
	}
	write(t, ca, dir, "manager", func() ([]byte, []byte, error) { return ca.Issue("adbmgr", nil, nil, false, true) })
	why, err = EnsureManager(dir)
	if err != nil || !strings.Contains(why, "identity") {
		t.Errorf("EnsureManager on an old certificate = %q, %v", why, err)
	}
	c, err := ReadCert(filepath.Join(dir, ManagerCert))
	if err != nil || VerifyManager(c) != nil {
		t.Errorf("renewed certificate: %v, %v", err, VerifyManager(c))
	}
	for _, f := range []string{CAKey, ManagerKey} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", f, fi.Mode(), err)
		}
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("PKI directory %v, want 0700", fi.Mode())
	}
	// CreateCA on an existing CA keeps it.
	if err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	again, _ := LoadCA(dir)
	if string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Error("CreateCA replaced an existing CA")
	}
}
