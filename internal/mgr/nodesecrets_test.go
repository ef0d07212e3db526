package mgr

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pki"
)

func secretsManager(t *testing.T, dir string) *Manager {
	t.Helper()
	if err := pki.CreateCA(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	return &Manager{opts: Options{DataDir: dir}}
}

// The password is generated once per cluster, kept 0600, and the same for
// a restarted manager; one that others could read is refused.
func TestNodePassword(t *testing.T) {
	dir := t.TempDir()
	pw, err := secretsManager(t, dir).nodePassword()
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 40 || strings.ContainsAny(pw, ":\\ \n") {
		t.Errorf("password %d bytes, or with a character a password file cannot hold", len(pw))
	}
	file := filepath.Join(dir, nodePasswordFile)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", file, fi.Mode(), err)
	}
	again, err := secretsManager(t, dir).nodePassword()
	if err != nil || again != pw {
		t.Errorf("a restarted manager has another password (%v)", err)
	}
	os.Chmod(file, 0o644)
	if _, err := secretsManager(t, dir).nodePassword(); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("a readable password file accepted, or shown: %v", err)
	}
}

// A node certificate names its host's address, is kept, and is reissued
// when the address changes.
func TestNodeCertificate(t *testing.T) {
	m := secretsManager(t, t.TempDir())
	h := cluster.Host{Name: "h1", Address: "10.0.0.7", User: "postgres"}
	n := cluster.Node{Name: "dn1", Host: "h1", Port: 5432, Path: "/d/dn1"}
	sec, err := m.nodeSecrets(n, h)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, sec.ServerCert)
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
		t.Errorf("certificate for %v", cert.IPAddresses)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("certificate usage %v, want server only", cert.ExtKeyUsage)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sec.CaCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}
	if err := cert.VerifyHostname("10.0.0.7"); err != nil {
		t.Error(err)
	}
	if sec.Password == "" {
		t.Error("no password")
	}
	same, err := m.nodeSecrets(n, h)
	if err != nil || !bytes.Equal(same.ServerCert, sec.ServerCert) || !bytes.Equal(same.ServerKey, sec.ServerKey) {
		t.Errorf("certificate not kept (%v)", err)
	}
	if fi, err := os.Stat(filepath.Join(m.opts.DataDir, nodeCertDir, "dn1", "server.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("server.key: %v %v", fi.Mode(), err)
	}
	h.Address = "10.0.0.8"
	moved, err := m.nodeSecrets(n, h)
	if err != nil || !parseCert(t, moved.ServerCert).IPAddresses[0].Equal(net.ParseIP("10.0.0.8")) {
		t.Errorf("not reissued for the new address (%v)", err)
	}
	if _, err := m.nodeSecrets(cluster.Node{Name: "../x"}, h); err == nil {
		t.Error("a node name with a slash made a path")
	}
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The DBAs' password file: one line per host address and user, IPv6
// colons escaped, mode 0600.
func TestDBAPassFile(t *testing.T) {
	m := secretsManager(t, t.TempDir())
	s := &cluster.State{Hosts: []cluster.Host{
		{Name: "h1", Address: "10.0.0.1", User: "postgres"},
		{Name: "h2", Address: "fd00::2", User: "adb"},
		{Name: "h3", Address: "10.0.0.1", User: "postgres"},
	}}
	if err := m.writeDBAPassFile(s); err != nil {
		t.Fatal(err)
	}
	pw, _ := m.nodePassword()
	file := filepath.Join(m.opts.DataDir, dbaPassFile)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.0.1:*:*:postgres:" + pw + "\nfd00\\:\\:2:*:*:adb:" + pw + "\n"
	if got := string(b); !strings.HasSuffix(got, want) || strings.Count(got, "\n") != 3 {
		t.Errorf("%s:\n%s\nwant the comment and\n%s", file, got, want)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s is %v", file, fi.Mode())
	}
}
