package e2e

// A cluster on namespace hosts over SSH (issue 8): nodes on three machines
// with their own network stacks, agents and PostgreSQL running as an
// ordinary user there, replication between the machines, and a machine cut
// off the network.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newSSHCluster brings up n namespace hosts (scripts/testhosts.sh), starts
// a manager and adds th1…thn as ssh hosts run by sshUser, deployed with
// the user's password and their agents started. Nodes added with addNode
// keep their data under their host's own directory. Everything is stopped
// and removed when the test ends: the cluster first, then the hosts.
func newSSHCluster(t testing.TB, n int) (*testCluster, *sshHosts) {
	return newSSHClusterOf(t, n, n)
}

// newSSHClusterOf is newSSHCluster with up namespace hosts of which the
// first n are added to the manager.
func newSSHClusterOf(t testing.TB, up, n int) (*testCluster, *sshHosts) {
	t.Helper()
	requireAgent(t)
	s := upSSHHosts(t, up)
	m := StartManager(t, "")
	c := &testCluster{t: t, M: m, Dir: s.dir, ssh: s}
	// Registered after upSSHHosts and StartManager: it runs before the
	// manager stops and the hosts go down.
	t.Cleanup(c.cleanup)
	for i := 1; i <= n; i++ {
		c.Hosts = append(c.Hosts, hostSpec{Name: s.name(i), Addr: s.addr(i), AgentPort: 5430})
	}
	s.addHosts(t, m, n)
	c.mustRows(t, 2*time.Minute, "DEPLOY ALL PASSWORD '"+s.pw+"'")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	return c, s
}

// linkDown cuts host i off the network until the returned function (also
// run at cleanup) brings its link back.
func linkDown(t *testing.T, i int) (up func()) {
	t.Helper()
	link := "adbtv" + strconv.Itoa(i)
	if out, err := exec.Command("ip", "link", "set", link, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s down: %v\n%s", link, err, out)
	}
	done := false
	up = func() {
		if done {
			return
		}
		done = true
		if out, err := exec.Command("ip", "link", "set", link, "up").CombinedOutput(); err != nil {
			t.Errorf("ip link set %s up: %v\n%s", link, err, out)
		}
	}
	t.Cleanup(up)
	return up
}

// timedRows is mustRows that also says how long the command took.
func (c *testCluster) timedRows(t *testing.T, timeout time.Duration, sql string) ([][]string, time.Duration) {
	t.Helper()
	start := time.Now()
	rows, _ := c.mustRows(t, timeout, sql)
	return rows, time.Since(start)
}

// TestClusterOnSSHHosts: INIT ALL across three namespace hosts over SSH,
// whose agents and nodes run as an ordinary user; replication between the
// hosts (each slave seen from its own address); a distributed table written
// and read through a coordinator; a host whose link is cut is reported
// unreachable within seconds and serves again when the link is back; a
// datanode failover across hosts.
func TestClusterOnSSHHosts(t *testing.T) {
	c, s := newSSHCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "th1", "")
	c.addNode(t, "coordinator master", "cn1", "", "th2", "")
	c.addNode(t, "datanode master", "dn1", "", "th3", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "th1", "")
	c.addNode(t, "datanode master", "dn2", "", "th2", "")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	if got := c.monitor(t); fmt.Sprint(got) != fmt.Sprint(c.wantRunning()) {
		t.Fatalf("MONITOR ALL after INIT ALL:\n got %v\nwant %v", got, c.wantRunning())
	}
	// The nodes and their files are the host user's, not root's.
	for _, n := range c.Nodes {
		fi, err := os.Stat(n.Path)
		if err != nil {
			t.Fatal(err)
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != s.uid {
			t.Errorf("%s is owned by uid %d, want %s (%d)", n.Path, uid, sshUser, s.uid)
		}
		b, err := os.ReadFile(filepath.Join(n.Path, "postmaster.pid"))
		if err != nil {
			t.Fatal(err)
		}
		if pid, _, _ := strings.Cut(string(b), "\n"); procUID(t, pid) != s.uid {
			t.Errorf("%s's postmaster (pid %s) runs as uid %d, want %s (%d)", n.Name, pid, procUID(t, pid), sshUser, s.uid)
		}
	}

	// MONITOR HA: the slave streams from its own host's address.
	rows, _ := c.mustRows(t, 30*time.Second, "MONITOR HA")
	if len(rows) != 1 || len(rows[0]) < 8 || rows[0][1] != "dn1s" || rows[0][3] != s.addr(1) || rows[0][4] != "streaming" || rows[0][7] != "sync" {
		t.Errorf("MONITOR HA: want dn1s streaming, sync, from %s; got %q", s.addr(1), rows)
	}
	// The master sees it connected over TLS, from th1.
	repl := c.nodeValue(t, c.node("dn1"), "SELECT r.application_name || ' ' || host(r.client_addr) || ' ' || r.sync_state || ' ' || s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
	if want := "dn1s " + s.addr(1) + " sync true"; repl != want {
		t.Errorf("pg_stat_replication on dn1: %q, want %q", repl, want)
	}

	// A distributed table, written and read through the coordinator.
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE orders (id int NOT NULL, amount numeric); SELECT adb.create_distributed_table('orders', 'id')")
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g")
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) || ' ' || sum(amount) FROM orders"); v != "1000 750750.0" {
		t.Errorf("orders through cn1: %s", v)
	}
	for _, dn := range []string{"dn1", "dn2"} {
		if v := c.nodeValue(t, c.node(dn), "SELECT count(*) FROM pg_class WHERE relname LIKE 'orders\\_%' AND relkind = 'r'"); v == "0" {
			t.Errorf("no shard of orders on %s", dn)
		}
	}
	// The rows reached the slave on another host.
	waitFor(t, 30*time.Second, "dn1s replays dn1's shards", func() (bool, string) {
		a := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM pg_class WHERE relname LIKE 'orders\\_%'")
		b := c.nodeValue(t, c.node("dn1s"), "SELECT count(*) FROM pg_class WHERE relname LIKE 'orders\\_%'")
		return a == b, a + " on dn1, " + b + " on dn1s"
	})

	// th3 (dn1's host) loses its link: MONITOR AGENT and MONITOR ALL say
	// so within seconds instead of hanging.
	up := linkDown(t, 3)
	rows, took := c.timedRows(t, 30*time.Second, "MONITOR AGENT")
	agents := hostRows(t, rows)
	t.Logf("MONITOR AGENT with th3 cut off (%v): %q", took, rows)
	if !strings.HasPrefix(agents["th3"], "f unreachable") || agents["th1"] != "t running" || took > 10*time.Second {
		t.Errorf("MONITOR AGENT with th3 cut off took %v: %q", took, agents)
	}
	rows, took = c.timedRows(t, 30*time.Second, "MONITOR ALL")
	t.Logf("MONITOR ALL with th3 cut off (%v): %q", took, rows)
	mon := c.monitor(t)
	if r := mon["dn1"]; r.Status != "f" || !strings.Contains(r.Desc, "unreachable") || !strings.Contains(r.Desc, "th3") || took > 10*time.Second {
		t.Errorf("MONITOR ALL with th3 cut off took %v; dn1: %+v", took, r)
	}
	if r := mon["cn1"]; r.Status != "t" {
		t.Errorf("MONITOR ALL with th3 cut off: cn1 on th2 %+v", r)
	}
	// The link is back: the node never stopped and serves again.
	up()
	waitFor(t, time.Minute, "dn1 serves again", func() (bool, string) {
		r := c.monitor(t)["dn1"]
		return r.Status == "t", fmt.Sprintf("%+v", r)
	})
	waitFor(t, 30*time.Second, "th3's agent answers again", func() (bool, string) {
		rows, _ := c.mustRows(t, 30*time.Second, "MONITOR AGENT th3")
		a := hostRows(t, rows)
		return a["th3"] == "t running", fmt.Sprint(a)
	})
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM orders"); v != "1000" {
		t.Errorf("orders after th3 came back: %s", v)
	}

	// A failover across hosts: dn1s on th1 takes over from dn1 on th3.
	c.mustRows(t, 3*time.Minute, "FAILOVER DATANODE dn1")
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO orders SELECT g, 0 FROM generate_series(1001, 1100) g")
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM orders"); v != "1100" {
		t.Errorf("orders after the failover of dn1: %s", v)
	}
	if v := c.nodeValue(t, c.node("dn1s"), "SELECT pg_is_in_recovery()"); v != "f" {
		t.Errorf("dn1s after FAILOVER: in recovery = %s", v)
	}

	// STOP ALL and CLEAN ALL: the agents, as the hosts' user, empty the
	// data directories and remove the socket directories (with the
	// nodes' secrets) from their adbhome/run.
	c.mustRows(t, 2*time.Minute, "STOP ALL MODE fast")
	c.mustRows(t, 2*time.Minute, "CLEAN ALL")
	for i := 1; i <= 3; i++ {
		run := filepath.Join(s.adbhome(i), "run")
		if ents, _ := os.ReadDir(run); len(ents) > 0 {
			t.Errorf("%s after CLEAN ALL: %d entries left", run, len(ents))
		}
	}
	for _, n := range c.Nodes {
		if empty, err := dirEmpty(n.Path); err == nil && !empty {
			t.Errorf("%s not emptied by CLEAN ALL", n.Path)
		}
	}
}

// procUID is the real uid of process pid.
func procUID(t *testing.T, pid string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%s/status", pid)
	return -1
}

// TestSpecWalkthroughSSH: the spec's scale-out walkthrough (issue 8, item
// 6), statement by statement as a DBA types it in psql, with the test
// hosts' address and user: a running cluster on th1 and th2 gains a third
// machine over SSH, a datanode on it, and half of dn1_1's slots.
func TestSpecWalkthroughSSH(t *testing.T) {
	c, s := newSSHClusterOf(t, 3, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "th1", "")
	c.addNode(t, "coordinator master", "cn1", "", "th2", "")
	c.addNode(t, "datanode master", "dn1_1", "", "th2", "")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE ev (id int NOT NULL, v text); SELECT adb.create_distributed_table('ev', 'id'); INSERT INTO ev SELECT g, 'x' FROM generate_series(1, 2000) g")

	s.aliases = map[string]string{"adb03": s.name(3)}
	c.Hosts = append(c.Hosts, hostSpec{Name: "adb03", Addr: s.addr(3), AgentPort: 8432})
	c.mustRows(t, 30*time.Second, fmt.Sprintf(`add host adb03(port=22, protocol='ssh', adbhome='%s', address="%s", agentport=8432, user='%s');`,
		s.adbhome(3), s.addr(3), sshUser))
	// The manager's key is not on adb03 yet (newSSHCluster installed it
	// for the user on th1 and th2, whose home the hosts share: take it
	// away, as on a fresh machine).
	if err := os.Remove(s.authorizedKeys()); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := c.psqlRows(time.Minute, "deploy adb03;"); err == nil || !strings.Contains(errOut, "28000") || !strings.Contains(errOut, "PASSWORD") {
		t.Fatalf("deploy adb03 without the manager's key: %v\n%s", err, errOut)
	}
	rows, _ := c.mustRows(t, time.Minute, "DEPLOY adb03 password '"+s.pw+"';")
	if len(rows) != 1 || rows[0][0] != "adb03" || rows[0][1] != "t" {
		t.Fatalf("DEPLOY adb03 password: %q", rows)
	}
	c.mustRows(t, time.Minute, "start agent adb03;")
	dn3 := nodeSpec{Name: "dn3_1", Type: "datanode master", Host: "adb03", Port: 6101, Path: filepath.Join(s.dataDir("adb03"), "dn3_1")}
	c.mustRows(t, 30*time.Second, fmt.Sprintf("ADD DATANODE MASTER dn3_1(host='adb03', port=%d, path='%s');", dn3.Port, dn3.Path))
	c.Nodes = append(c.Nodes, dn3)
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1_1 TO dn3_1;")
	if v := c.nodeValue(t, dn3, "SELECT pg_is_in_recovery()"); v != "t" {
		t.Errorf("dn3_1 does not stream from dn1_1 before EXPAND ACTIVATE")
	}
	c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE;")
	c.mustRows(t, 3*time.Minute, "EXPAND CLEAN;")

	if slots := c.mustNodeSQL(t, c.node("cn1"), "SELECT node, count(*) FROM adb.slot GROUP BY node ORDER BY node"); fmt.Sprint(slots) != "[[dn1_1 32] [dn3_1 32]]" {
		t.Errorf("slot map after the expansion = %q", slots)
	}
	c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO ev SELECT g, 'y' FROM generate_series(2001, 2100) g")
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM ev"); v != "2100" {
		t.Errorf("ev after the expansion: %s rows, want 2100", v)
	}
	total := 0
	for _, dn := range []nodeSpec{c.node("dn1_1"), dn3} {
		n := 0
		for _, r := range c.mustNodeSQL(t, dn, "SELECT relname FROM pg_class WHERE relname LIKE 'ev\\_%' AND relkind = 'r'") {
			v, _ := strconv.Atoi(c.nodeValue(t, dn, "SELECT count(*) FROM "+r[0]))
			n += v
		}
		if n == 0 {
			t.Errorf("no row of ev on %s after the expansion", dn.Name)
		}
		total += n
	}
	if total != 2100 {
		t.Errorf("the shards hold %d rows, want 2100", total)
	}
	if got := c.monitor(t); fmt.Sprint(got) != fmt.Sprint(c.wantRunning()) {
		t.Errorf("MONITOR ALL after the walkthrough:\n got %v\nwant %v", got, c.wantRunning())
	}
}

// TestFlushHostSSH: a namespace host gets a new address; ALTER HOST and
// FLUSH HOST move its agent (restarted over SSH at the new address) and
// its nodes, and replication follows; the old address can then go.
func TestFlushHostSSH(t *testing.T) {
	c, s := newSSHCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "th1", "")
	c.addNode(t, "datanode master", "dn1", "", "th2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "th1", "")
	// dn1's fast shutdown waits for its walsender to reach dn1s, whose
	// connection went with the old address: up to wal_sender_timeout.
	c.mustRows(t, time.Minute, "SET DATANODE ALL (wal_sender_timeout = '5s')")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	const newAddr = "198.18.0.22"
	if out, err := exec.Command("ip", "-n", "adbth2", "addr", "add", newAddr+"/24", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v\n%s", err, out)
	}
	_, notices := c.mustRows(t, time.Minute, "ALTER HOST th2 (address='"+newAddr+"')")
	if !strings.Contains(notices, "FLUSH HOST") {
		t.Errorf("ALTER HOST of an initialised host gave no WARNING about FLUSH HOST:\n%s", notices)
	}
	for i := range c.Hosts {
		if c.Hosts[i].Name == "th2" {
			c.Hosts[i].Addr = newAddr
		}
	}
	// The machine loses its old address before the flush, as a
	// re-addressed machine does. (Linux drops an interface's secondary
	// addresses with its primary unless told to promote one.)
	if out, err := exec.Command("ip", "netns", "exec", "adbth2", "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl promote_secondaries: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "-n", "adbth2", "addr", "del", s.addr(2)+"/24", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr del: %v\n%s", err, out)
	}
	c.mustRows(t, 3*time.Minute, "FLUSH HOST")
	// The agent bound to the vanished address is gone too, not left
	// running where no command can reach it.
	if pids := listeningOn(s.addr(2) + ":5430"); len(pids) > 0 {
		t.Errorf("agents still bound to the old address: %v", pids)
	}
	rows, _ := c.mustRows(t, 30*time.Second, "MONITOR AGENT th2")
	if len(rows) != 1 || rows[0][1] != "t" {
		t.Errorf("MONITOR AGENT th2 after FLUSH HOST: %q", rows)
	}
	if got := c.monitor(t); fmt.Sprint(got) != fmt.Sprint(c.wantRunning()) {
		t.Errorf("MONITOR ALL after FLUSH HOST:\n got %v\nwant %v", got, c.wantRunning())
	}
	waitFor(t, 30*time.Second, "dn1s streams from dn1 at its new address", func() (bool, string) {
		v := c.nodeValue(t, c.node("dn1"), "SELECT string_agg(application_name || ' ' || state, ',') FROM pg_stat_replication")
		return v == "dn1s streaming", v
	})
	if v := c.nodeValue(t, c.node("dn1s"), "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'"); !strings.Contains(v, "host='"+newAddr+"'") {
		t.Errorf("dn1s's primary_conninfo: %s", v)
	}
}

// listeningOn lists the processes whose command line has "--listen addr".
func listeningOn(addr string) []string {
	var out []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "--listen\x00"+addr+"\x00") {
			out = append(out, d.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
