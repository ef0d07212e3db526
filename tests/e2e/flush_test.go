package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFlushHost moves a host of a running cluster to another address
// (issue 8 item 5, reference §3.1 and §4.14): ALTER HOST changes the
// catalog with a WARNING, FLUSH HOST moves the agent and the nodes and
// re-points everything that named the old address. h2 holds a coordinator,
// a datanode master whose slave is elsewhere, and a slave whose master is
// elsewhere.
func TestFlushHost(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h3", "")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	c.addNode(t, "datanode slave", "dn2s", "dn2", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE orders (id int NOT NULL, amount numeric); SELECT adb.create_distributed_table('orders', 'id')")
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g")

	const newAddr = "127.0.0.9"
	old := c.host("h2")
	// The socket directories of h2's nodes before the move (other
	// clusters of this test process, a shared one, have their own under
	// the same run directory, some with the same node names).
	oldSockets := map[string]string{}
	for _, n := range c.Nodes {
		if n.Host == "h2" {
			oldSockets[n.Name] = confSocketDir(n.Path)
		}
	}
	_, stderr := c.mustRows(t, 30*time.Second, fmt.Sprintf("ALTER HOST h2 (address='%s')", newAddr))
	if !strings.Contains(stderr, "WARNING") || !strings.Contains(stderr, "FLUSH HOST") {
		t.Errorf("ALTER HOST of the address of a host with initialized nodes: want a WARNING naming FLUSH HOST, got:\n%s", stderr)
	}
	if _, stderr, err := c.psqlRows(30*time.Second, "ALTER HOST h2 (agentport=1)"); err == nil || !strings.Contains(stderr, "55006") {
		t.Errorf("ALTER HOST agentport after init: %v\n%s", err, stderr)
	}
	if _, stderr, err := c.psqlRows(30*time.Second, "INIT ALL"); err == nil || !strings.Contains(stderr, "55000") || !strings.Contains(stderr, "FLUSH HOST") {
		t.Errorf("INIT ALL before FLUSH HOST: %v\n%s", err, stderr)
	}
	// Refused with nothing changed while a master elsewhere is down;
	// START is allowed before FLUSH HOST for that reason.
	c.mustRows(t, time.Minute, "STOP DATANODE MASTER dn2 MODE fast")
	if _, stderr, err := c.psqlRows(time.Minute, "FLUSH HOST"); err == nil || !strings.Contains(stderr, `datanode master "dn2" is not running`) {
		t.Errorf("FLUSH HOST with a master down: %v\n%s", err, stderr)
	}
	if c.agentPID(old) == 0 {
		t.Errorf("a refused FLUSH HOST stopped the agent of h2")
	}
	c.mustRows(t, time.Minute, "START DATANODE MASTER dn2")
	// An agent already at the new address (as a FLUSH HOST that failed
	// after moving it leaves it) is kept; the one at the old address goes.
	c.mustRows(t, time.Minute, "START AGENT h2")

	// A failure midway: dn2s cannot listen at the new address, after the
	// agent, cn1 and dn1 moved. The journal says where it stopped, and the
	// next FLUSH HOST finishes.
	l, err := net.Listen("tcp", net.JoinHostPort(newAddr, strconv.Itoa(c.node("dn2s").Port)))
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := c.psqlRows(5*time.Minute, "FLUSH HOST"); err == nil || !strings.Contains(stderr, "FLUSH HOST failed at restart dn2s") {
		t.Errorf("FLUSH HOST with the port of dn2s taken at the new address: %v\n%s", err, stderr)
	}
	l.Close()
	if rows, _ := c.mustRows(t, 30*time.Second, "SELECT status, step FROM journal WHERE command = 'FLUSH HOST' ORDER BY id DESC LIMIT 1"); fmt.Sprint(rows) != "[[failed restart dn2s]]" {
		t.Errorf("journal of the failed FLUSH HOST: %q", rows)
	}
	if _, stderr, err := c.psqlRows(30*time.Second, "SET DATANODE ALL (work_mem='8MB')"); err == nil || !strings.Contains(stderr, "FLUSH HOST") {
		t.Errorf("SET after a failed FLUSH HOST: %v\n%s", err, stderr)
	}

	rows, stderr := c.mustRows(t, 5*time.Minute, "FLUSH HOST")
	t.Logf("FLUSH HOST: %q\n%s", rows, stderr)
	if rows, _ := c.mustRows(t, 30*time.Second, "SELECT status, step FROM journal WHERE command = 'FLUSH HOST' ORDER BY id DESC LIMIT 1"); fmt.Sprint(rows) != "[[done end]]" {
		t.Errorf("journal of FLUSH HOST: %q", rows)
	}
	for i := range c.Hosts {
		if c.Hosts[i].Name == "h2" {
			c.Hosts[i].Addr = newAddr
		}
	}
	if pid := c.agentPID(old); pid != 0 {
		t.Errorf("the agent of h2 still listens at its old address %s (pid %d)", old.Addr, pid)
	}
	if pid := c.agentPID(c.host("h2")); pid == 0 {
		t.Errorf("no agent of h2 listens at %s", newAddr)
	}
	// Every node answers at its host's address, as a DBA reaches it
	// (DIR/pgpass names the new address, the certificates are for it).
	for _, n := range c.Nodes {
		if v := c.nodeValue(t, n, "SELECT current_setting('listen_addresses')"); v != c.host(n.Host).Addr {
			t.Errorf("%s listens on %s, want %s", n.Name, v, c.host(n.Host).Addr)
		}
	}
	for master, slave := range map[string]string{"dn1": "dn1s", "dn2": "dn2s"} {
		waitFor(t, time.Minute, "pg_stat_replication on "+master, func() (bool, string) {
			rows, err := c.nodeSQL(c.node(master), "SELECT application_name, state FROM pg_stat_replication")
			return err == nil && fmt.Sprint(rows) == fmt.Sprintf("[[%s streaming]]", slave), fmt.Sprint(rows, err)
		})
	}
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO orders SELECT g, g FROM generate_series(101, 200) g")
	for _, cn := range []string{"cn1", "gc"} {
		if v := c.nodeValue(t, c.node(cn), "SELECT count(*) || ' ' || sum(amount) FROM orders"); v != "200 20100" {
			t.Errorf("orders seen from %s after FLUSH HOST: %s", cn, v)
		}
	}
	if got, want := c.monitor(t), c.wantRunning(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MONITOR ALL after FLUSH HOST:\n got %v\nwant %v", got, want)
	}
	rows, _ = c.mustRows(t, 30*time.Second, "MONITOR AGENT ALL")
	for h, st := range hostRows(t, rows) {
		if st != "t running" {
			t.Errorf("MONITOR AGENT %s: %s", h, st)
		}
	}

	// Nothing names the old address any more.
	oldIP := old.Addr
	for _, n := range c.Nodes {
		for _, f := range []string{"pg_hba.conf", "postgresql.conf", "postgresql.auto.conf"} {
			b, err := os.ReadFile(filepath.Join(n.Path, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, oldIP+"/") || strings.Contains(line, "'"+oldIP+"'") {
					t.Errorf("%s of %s still names %s: %s", f, n.Name, oldIP, line)
				}
			}
		}
		if n.Master != "" {
			v := c.nodeValue(t, n, "SELECT current_setting('primary_conninfo')")
			if strings.Contains(v, oldIP) || !strings.Contains(v, c.host(c.node(n.Master).Host).Addr) {
				t.Errorf("primary_conninfo of %s: %s", n.Name, v)
			}
		}
	}
	for _, cn := range []string{"cn1", "gc"} {
		for _, q := range []string{"SELECT string_agg(array_to_string(srvoptions, ','), ' ') FROM pg_foreign_server",
			"SELECT string_agg(host, ' ') FROM adb.node"} {
			if v := c.nodeValue(t, c.node(cn), q); strings.Contains(v, oldIP) || !strings.Contains(v, newAddr) {
				t.Errorf("%s on %s: %s", q, cn, v)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.M.Dir, "pgpass")); err != nil || strings.Contains(string(b), oldIP+":") {
		t.Errorf("DIR/pgpass still names %s (%v)", oldIP, err)
	}
	// The moved nodes' old socket directories (named after the old
	// address) are gone with the secrets in them.
	for _, n := range c.Nodes {
		if n.Host != "h2" {
			continue
		}
		was, now := oldSockets[n.Name], confSocketDir(n.Path)
		if _, err := os.Stat(was); was == "" || now == was || !os.IsNotExist(err) {
			t.Errorf("socket directory of %s before the move %q: %v (now %s), want it gone", n.Name, was, err, now)
		}
		if fi, err := os.Stat(now); err != nil || !fi.IsDir() {
			t.Errorf("socket directory of %s after the move %q: %v", n.Name, now, err)
		}
	}
	// Done: a second FLUSH HOST has nothing to do, and commands work again.
	if _, stderr := c.mustRows(t, time.Minute, "FLUSH HOST"); !strings.Contains(stderr, "nothing to flush") {
		t.Errorf("second FLUSH HOST: %s", stderr)
	}
	c.mustRows(t, time.Minute, "SET DATANODE ALL (work_mem='8MB')")
}
