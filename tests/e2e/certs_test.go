package e2e

// End-to-end tests of the certificates between the manager and its agents:
// ROTATE CERTIFICATES with running agents, MONITOR AGENT's cert_expires,
// and a data directory that stays private to its owner.

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/pki"
	"github.com/google/go-cmp/cmp"
)

// agentCerts runs MONITOR AGENT and returns each host's status,
// description and cert_expires.
func (c *testCluster) agentCerts(t *testing.T) map[string][3]string {
	t.Helper()
	rows, _ := c.mustRows(t, 30*time.Second, "MONITOR AGENT")
	out := map[string][3]string{}
	for _, r := range rows {
		if len(r) != 5 {
			t.Fatalf("MONITOR AGENT: want hostname | status | description | cert_expires | version, got %q", r)
		}
		out[r[0]] = [3]string{r[1], r[2], r[3]}
	}
	return out
}

func certExpiry(t *testing.T, s string) time.Time {
	t.Helper()
	e, err := time.Parse("2006-01-02 15:04:05-07", s)
	if err != nil {
		t.Fatalf("cert_expires %q: %v", s, err)
	}
	return e
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	c, err := pki.ReadCert(file)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRotateCertificates: running agents take new certificates without a
// restart and keep working; MONITOR AGENT shows the new expiry; a stopped
// agent gets its new certificate at START AGENT; a restarted manager keeps
// its rotated certificate and still reaches the agents.
func TestRotateCertificates(t *testing.T) {
	c := newTestCluster(t, 2)
	rows, stderr := c.mustRows(t, 90*time.Second, "START AGENT ALL")
	if diff := cmp.Diff(map[string]string{"h1": "t success", "h2": "t success"}, hostRows(t, rows)); diff != "" {
		t.Fatalf("START AGENT ALL (-want +got):\n%s\n%s", diff, stderr)
	}
	before := c.agentCerts(t)
	pids := map[string]int{}
	for _, h := range c.Hosts {
		pids[h.Name] = c.agentPID(h)
		st := before[h.Name]
		if st[0] != "t" || st[1] != "running" {
			t.Fatalf("MONITOR AGENT %s = %q", h.Name, st)
		}
		// 90-day certificates, not the 5 years of earlier versions.
		if d := time.Until(certExpiry(t, st[2])); d < 89*24*time.Hour || d > 91*24*time.Hour {
			t.Errorf("%s's certificate expires in %v, want about 90 days", h.Name, d)
		}
	}
	mgrBefore := readCert(t, filepath.Join(c.M.Dir, "pki", pki.ManagerCert))
	// cert_expires has a resolution of a second.
	time.Sleep(1100 * time.Millisecond)

	rows, stderr = c.mustRows(t, 60*time.Second, "ROTATE CERTIFICATES")
	got := hostRows(t, rows)
	after := c.agentCerts(t)
	for _, h := range c.Hosts {
		a := after[h.Name]
		if want := "t success; expires at " + a[2]; got[h.Name] != want {
			t.Errorf("ROTATE CERTIFICATES %s: %q, want %q", h.Name, got[h.Name], want)
		}
		if a[0] != "t" || !certExpiry(t, a[2]).After(certExpiry(t, before[h.Name][2])) {
			t.Errorf("MONITOR AGENT %s after ROTATE = %q, before %q: want running with a later expiry", h.Name, a, before[h.Name])
		}
		// What the agent presents is what the manager wrote for it.
		onDisk := readCert(t, filepath.Join(c.M.Dir, "agents", h.Name, "agent.crt"))
		if e := onDisk.NotAfter.UTC().Format("2006-01-02 15:04:05+00"); e != a[2] {
			t.Errorf("%s presents a certificate expiring %s, its file %s", h.Name, a[2], e)
		}
		if p := c.agentPID(h); p != pids[h.Name] {
			t.Errorf("%s's agent was restarted (pid %d -> %d)", h.Name, pids[h.Name], p)
		}
	}
	if !strings.Contains(stderr, "the manager's client certificate was renewed") {
		t.Errorf("ROTATE CERTIFICATES: no NOTICE about the manager's certificate:\n%s", stderr)
	}
	mgrAfter := readCert(t, filepath.Join(c.M.Dir, "pki", pki.ManagerCert))
	if mgrAfter.SerialNumber.Cmp(mgrBefore.SerialNumber) == 0 || pki.VerifyManager(mgrAfter) != nil {
		t.Errorf("the manager's certificate was not renewed with its identity")
	}

	// The agents keep working with the new certificates: STOP AGENT is an
	// RPC on a new connection.
	rows, _ = c.mustRows(t, 60*time.Second, "STOP AGENT h2")
	if diff := cmp.Diff(map[string]string{"h2": "t success"}, hostRows(t, rows)); diff != "" {
		t.Errorf("STOP AGENT h2 after ROTATE (-want +got):\n%s", diff)
	}
	if st := c.agentCerts(t)["h2"]; st != [3]string{"f", "not running", ""} {
		t.Errorf("MONITOR AGENT h2 stopped = %q", st)
	}
	rows, _ = c.mustRows(t, 60*time.Second, "ROTATE CERTIFICATES")
	if got := hostRows(t, rows); got["h2"] != "t agent not running; START AGENT issues it a new certificate" || !strings.HasPrefix(got["h1"], "t success") {
		t.Errorf("ROTATE CERTIFICATES with h2's agent stopped: %q", got)
	}
	rows, _ = c.mustRows(t, 90*time.Second, "START AGENT h2")
	if diff := cmp.Diff(map[string]string{"h2": "t success"}, hostRows(t, rows)); diff != "" {
		t.Errorf("START AGENT h2 (-want +got):\n%s", diff)
	}

	// A restarted manager keeps its rotated certificate (nothing to renew)
	// and reaches the running agents with it.
	mgrCert := readCert(t, filepath.Join(c.M.Dir, "pki", pki.ManagerCert))
	c.M.Stop()
	c.M.Restart()
	for h, st := range c.agentCerts(t) {
		if st[0] != "t" || st[2] == "" {
			t.Errorf("MONITOR AGENT %s after the manager restarted = %q", h, st)
		}
	}
	if now := readCert(t, filepath.Join(c.M.Dir, "pki", pki.ManagerCert)); now.SerialNumber.Cmp(mgrCert.SerialNumber) != 0 {
		t.Error("the manager renewed a good certificate at start")
	}
}

// TestDataDirPrivate: a new data directory is private to its owner, and a
// start fixes one of an earlier version (catalog.db 0644, a manager
// certificate without the manager's identity) and says so in its log.
func TestDataDirPrivate(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, "ADD HOST h1 (protocol=local, address='127.0.0.2', agentport=5430)")
	modes := func() map[string]os.FileMode {
		out := map[string]os.FileMode{}
		for _, f := range []string{".", "catalog.db", "catalog.db-wal", "catalog.db-shm", "adbmgr.pid", "pki", "pki/ca.key", "pki/manager.key"} {
			fi, err := os.Stat(filepath.Join(m.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			out[f] = fi.Mode().Perm()
		}
		return out
	}
	want := map[string]os.FileMode{".": 0o700, "catalog.db": 0o600, "catalog.db-wal": 0o600, "catalog.db-shm": 0o600,
		"adbmgr.pid": 0o600, "pki": 0o700, "pki/ca.key": 0o600, "pki/manager.key": 0o600}
	if diff := cmp.Diff(want, modes()); diff != "" {
		t.Errorf("new data directory (-want +got):\n%s", diff)
	}
	m.Stop()

	// As an earlier adbmgr left it.
	os.Chmod(filepath.Join(m.Dir, "catalog.db"), 0o644)
	os.Chmod(filepath.Join(m.Dir, "pki"), 0o755)
	ca, err := pki.LoadCA(filepath.Join(m.Dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("adbmgr", nil, nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WritePair(filepath.Join(m.Dir, "pki"), "manager", cert, key); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(m.Dir, "pki"), 0o755)
	m.Restart()
	m.MustExec(t, "LIST HOST")
	if diff := cmp.Diff(want, modes()); diff != "" {
		t.Errorf("data directory of an earlier version after start (-want +got):\n%s", diff)
	}
	log := m.log.String()
	for _, s := range []string{"made a file of the data directory private", "catalog.db: 0644 -> 0600", "issued the manager a new client certificate"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
	if c := readCert(t, filepath.Join(m.Dir, "pki", pki.ManagerCert)); pki.VerifyManager(c) != nil {
		t.Errorf("the manager's certificate was not renewed: %v", pki.VerifyManager(c))
	}
}
