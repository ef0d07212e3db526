package pki

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
)

// An agent with a CA-signed certificate accepts a manager with one, and
// refuses a client without a certificate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	sc, sk, err := ca.Issue("agent", []net.IP{net.ParseIP("127.0.0.1")}, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck, err := ca.Issue("manager", nil, nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(dir, "agent", sc, sk); err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(dir, "manager", cc, ck); err != nil {
		t.Fatal(err)
	}
	srv, err := ServerTLS(filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key"), filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Write([]byte("x")); c.Close() }()
		}
	}()
	cli, err := ClientTLS(filepath.Join(dir, "manager.crt"), filepath.Join(dir, "manager.key"), filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	cli.ServerName = "127.0.0.1"
	c, err := tls.Dial("tcp", l.Addr().String(), cli)
	if err != nil {
		t.Fatalf("manager with certificate refused: %v", err)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	c.Close()
	anon := &tls.Config{RootCAs: cli.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	c, err = tls.Dial("tcp", l.Addr().String(), anon)
	if err == nil {
		// TLS 1.3 reports the missing client certificate on first read.
		_, err = c.Read(buf)
		c.Close()
	}
	if err == nil {
		t.Fatal("client without a certificate accepted")
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
