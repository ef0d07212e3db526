package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pki"
)

// With --http-tls the HTTP side takes only the monitor's and the manager's
// client certificates: not an agent's, a node's, or none. The certificate
// is enough: no password is asked for.
func TestTLSClients(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := pki.SetupManager(dir); err != nil {
		t.Fatal(err)
	}
	l, err := Listen("127.0.0.1:0", &TLSConfig{PKIDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := New(&fake{st: demo()}, Options{Auth: &Auth{Users: users{}}})
	go (&http.Server{Handler: s.Handler()}).Serve(l)
	defer l.Close()
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	read := func(name string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	issued := func(c, k []byte, err error) tls.Certificate {
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	if st, err := os.Stat(filepath.Join(dir, MonitorCert+".key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("monitor key: %v %v", st, err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"monitor", []tls.Certificate{read(MonitorCert)}, true},
		{"manager", []tls.Certificate{read("manager")}, true},
		{"none", nil, false},
		{"agent", []tls.Certificate{issued(ca.IssueAgent("h1", []net.IP{net.IPv4(127, 0, 0, 1)}))}, false},
		{"node", []tls.Certificate{issued(ca.Issue("adbmgr node dn1", []net.IP{net.IPv4(127, 0, 0, 1)}, nil, true, false))}, false},
		{"other client", []tls.Certificate{issued(ca.Issue("someone", nil, nil, false, true))}, false},
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs, ServerName: "127.0.0.1"}}}
		res, err := c.Get("https://" + l.Addr().String() + "/cluster")
		if err == nil {
			res.Body.Close()
		}
		if (err == nil && res.StatusCode == 200) != tc.ok {
			t.Errorf("%s: %v (want ok %v)", tc.name, err, tc.ok)
		}
	}
}
