package e2e

// Helpers for tests that run a real cluster: loopback "hosts" 127.0.0.2…
// with local agents started by the manager, PostgreSQL 15 nodes whose data
// directories live under a fresh directory in /tmp, and psql straight to the
// nodes to check what the manager claims.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// agentBuildErr is set by TestMain when ./cmd/adbagent does not build.
var agentBuildErr error

// requireAgent fails (not skips) a cluster test without an agent binary: a
// missing agent is a broken build, not an optional feature.
func requireAgent(t testing.TB) {
	t.Helper()
	if agentBuildErr != nil {
		t.Fatalf("cluster tests need bin/adbagent: %v", agentBuildErr)
	}
}

// Ports handed out in this test binary, so that two nodes (or a node and an
// agent) of the package's tests never get the same one even though each was
// free when picked.
var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// freePortOn returns a TCP port free on addr. Binding 127.0.0.1:0 says
// nothing about 127.0.0.3, so it binds the address the port will be used on.
func freePortOn(t testing.TB, addr string) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 100; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatalf("find a free port on %s: %v", addr, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !usedPorts[port] {
			usedPorts[port] = true
			return port
		}
	}
	t.Fatalf("no unused free port on %s", addr)
	return 0
}

type hostSpec struct {
	Name, Addr string
	AgentPort  int
}

// nodeSpec is a node as the test added it: what the manager must report and
// what the running node must show.
type nodeSpec struct {
	Name   string
	Type   string // as LIST NODE prints it: "datanode slave", …
	Master string // "" for masters
	Host   string
	Port   int
	Path   string
	Sync   string // "sync", "potential", "async"; "" for masters
}

func (n nodeSpec) isMaster() bool { return n.Master == "" }

// testCluster is a manager with loopback hosts and the nodes added to it.
type testCluster struct {
	t     testing.TB
	M     *Manager
	Dir   string // node data directories live here
	Hosts []hostSpec
	Nodes []nodeSpec
	// socketDirs are the nodes' unix socket directories as the nodes
	// reported them (outside Dir), removed with it.
	socketDirs []string
	// ssh: the hosts are namespace hosts over SSH (newSSHCluster); each
	// node's data lives under its host's own directory, Dir/<host>/data.
	ssh *sshHosts
}

// newTestCluster starts a manager and adds nHosts local hosts on 127.0.0.2…
// (agents not started). Everything it and the manager start is stopped and
// removed when the test ends, whether it passed or not.
func newTestCluster(t testing.TB, nHosts int) *testCluster {
	t.Helper()
	requireAgent(t)
	// Not t.TempDir(): that is 0700 root, and the nodes run as postgres.
	// Short, so that <path>/.s.PGSQL.<port>.lock stays under 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "adbmgr-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := StartManager(t, "")
	c := &testCluster{t: t, M: m, Dir: dir}
	// Registered after StartManager, so it runs before the manager stops.
	t.Cleanup(c.cleanup)
	var sql strings.Builder
	for i := 1; i <= nHosts; i++ {
		h := hostSpec{Name: fmt.Sprintf("h%d", i), Addr: fmt.Sprintf("127.0.0.%d", i+1)}
		h.AgentPort = freePortOn(t, h.Addr)
		c.Hosts = append(c.Hosts, h)
		fmt.Fprintf(&sql, "ADD HOST %s (protocol=local, address='%s', agentport=%d);\n", h.Name, h.Addr, h.AgentPort)
	}
	m.MustExec(t, sql.String())
	return c
}

func (c *testCluster) host(name string) hostSpec {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	c.t.Fatalf("no host %q in the test cluster", name)
	return hostSpec{}
}

func (c *testCluster) node(name string) nodeSpec {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q in the test cluster", name)
	return nodeSpec{}
}

// slavesOf lists the direct slaves of master, in the order they were added.
func (c *testCluster) slavesOf(master string) []nodeSpec {
	var out []nodeSpec
	for _, n := range c.Nodes {
		if n.Master == master {
			out = append(out, n)
		}
	}
	return out
}

// addNode adds a node on host with a fresh port and the path <Dir>/<name>.
// sync is the SYNC_STATE option of a slave; "" leaves the default, which
// is sync.
func (c *testCluster) addNode(t testing.TB, typ, name, master, host, sync string) nodeSpec {
	t.Helper()
	n := nodeSpec{Name: name, Type: typ, Master: master, Host: host, Sync: sync}
	if c.ssh != nil {
		// Every namespace host has its own network stack: any port is
		// free there; distinct ones keep the nodes apart in the logs.
		n.Port, n.Path = 6001+len(c.Nodes), filepath.Join(c.ssh.dataDir(host), name)
	} else {
		n.Port, n.Path = freePortOn(t, c.host(host).Addr), filepath.Join(c.Dir, name)
	}
	stmt := "ADD " + strings.ToUpper(typ) + " " + name
	if master != "" {
		stmt += " FOR " + master
	}
	stmt += fmt.Sprintf(" (HOST=%s, PORT=%d, PATH='%s'", host, n.Port, n.Path)
	if sync != "" {
		stmt += ", SYNC_STATE=" + sync
	} else if master != "" {
		n.Sync = "sync"
	}
	c.M.MustExec(t, stmt+");")
	c.Nodes = append(c.Nodes, n)
	return n
}

// addDemo adds DESIGN §7's demo cluster over hosts h1..h3, every slave on
// another host than its master: gtmcoord gc + slave gcs, coordinators cn1
// and cn2, datanodes dn1 and dn2 each with a (default, sync) slave. With
// extra, dn1 also gets a potential slave dn1p and an async one dn1a.
func (c *testCluster) addDemo(t testing.TB, extra bool) {
	t.Helper()
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "gtmcoord slave", "gcs", "gc", "h2", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "coordinator master", "cn2", "", "h3", "")
	c.addNode(t, "datanode master", "dn1", "", "h3", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	if extra {
		c.addNode(t, "datanode slave", "dn1p", "dn1", "h2", "potential")
		c.addNode(t, "datanode slave", "dn1a", "dn1", "h1", "async")
	}
	c.addNode(t, "datanode master", "dn2", "", "h1", "")
	c.addNode(t, "datanode slave", "dn2s", "dn2", "h3", "")
}

// psqlRows runs sql on the manager with psql (unaligned, tuples only,
// ON_ERROR_STOP, verbose errors) and returns the rows, stderr (NOTICEs and
// errors) and psql's error.
func (c *testCluster) psqlRows(timeout time.Duration, sql string) (rows [][]string, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, errOut, err := c.M.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-A", "-t", "-F", "\t", "-c", sql)
	return splitRows(out), errOut, err
}

// mustRows is psqlRows failing the test on error, with psql's output and
// the logs that explain it.
func (c *testCluster) mustRows(t testing.TB, timeout time.Duration, sql string) ([][]string, string) {
	t.Helper()
	rows, stderr, err := c.psqlRows(timeout, sql)
	if err != nil {
		t.Fatalf("%s: %v\nrows: %q\nstderr:\n%s", sql, err, rows, stderr)
	}
	return rows, stderr
}

func splitRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// nodeSQL runs sql on a node itself, as a DBA would: psql -h <its host's
// address> -p <its port> -U postgres, with the password file the manager
// keeps for DBAs and the node's certificate checked against the manager's
// CA (README: "Connecting to the nodes").
func (c *testCluster) nodeSQL(n nodeSpec, sql string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-h", c.host(n.Host).Addr, "-p", strconv.Itoa(n.Port), "-U", c.dbUser(),
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", "-c", sql)
	cmd.Env = append(os.Environ(), c.nodeEnv()...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("psql on %s (%s:%d): %v: %s", n.Name, c.host(n.Host).Addr, n.Port, err, strings.TrimSpace(e.String()))
	}
	return splitRows(o.String()), nil
}

// dbUser is the nodes' superuser: the hosts' OS user (initdb names it so).
func (c *testCluster) dbUser() string {
	if c.ssh != nil {
		return sshUser
	}
	return "postgres"
}

// nodeEnv is the environment a DBA's psql needs to reach the nodes:
// the manager's DBA password file and its CA.
func (c *testCluster) nodeEnv() []string {
	return []string{"PGCONNECT_TIMEOUT=5", "PGAPPNAME=adbmgr-e2e", "PGPASSWORD=",
		"PGPASSFILE=" + filepath.Join(c.M.Dir, "pgpass"),
		"PGSSLMODE=verify-full", "PGSSLROOTCERT=" + filepath.Join(c.M.Dir, "pki", "ca.crt")}
}

// nodeConnString is nodeEnv for a Go client (pgx reads passfile too).
func (c *testCluster) nodeConnString(n nodeSpec) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres passfile=%s sslmode=verify-full sslrootcert=%s",
		c.host(n.Host).Addr, n.Port, c.dbUser(), filepath.Join(c.M.Dir, "pgpass"), filepath.Join(c.M.Dir, "pki", "ca.crt"))
}

func (c *testCluster) mustNodeSQL(t testing.TB, n nodeSpec, sql string) [][]string {
	t.Helper()
	rows, err := c.nodeSQL(n, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return rows
}

// nodeValue runs a one-value query on a node.
func (c *testCluster) nodeValue(t testing.TB, n nodeSpec, sql string) string {
	t.Helper()
	rows := c.mustNodeSQL(t, n, sql)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s on %s: want one value, got %q", sql, n.Name, rows)
	}
	return rows[0][0]
}

// waitFor polls cond until it holds or timeout passes; cond returns what it
// saw, for the failure message.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v; last seen: %s", what, timeout, saw)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// opRow is one row of an "operation type | nodename | status | description"
// result.
type opRow struct{ Op, Node, Status, Desc string }

func opRows(t testing.TB, rows [][]string) []opRow {
	t.Helper()
	out := make([]opRow, 0, len(rows))
	for _, r := range rows {
		if len(r) != 4 {
			t.Fatalf("want rows of operation type | nodename | status | description, got %q", r)
		}
		out = append(out, opRow{r[0], r[1], r[2], r[3]})
	}
	return out
}

// checkOpOrder checks that every row's operation is one of order and that
// the rows follow it (several nodes of one operation may come in any order).
func checkOpOrder(t testing.TB, rows []opRow, order []string) {
	t.Helper()
	last := -1
	for _, r := range rows {
		i := indexOf(order, r.Op)
		if i < 0 {
			t.Errorf("unexpected operation type %q (row %v); want one of %q", r.Op, r, order)
			continue
		}
		if i < last {
			t.Errorf("operation %q for %s comes after %q: want the order %q", r.Op, r.Node, order[last], order)
		}
		last = max(last, i)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// failedRows lists the rows whose status is not t.
func failedRows(rows []opRow) []opRow {
	var bad []opRow
	for _, r := range rows {
		if r.Status != "t" {
			bad = append(bad, r)
		}
	}
	return bad
}

// monRow is what MONITOR ALL says of one node.
type monRow struct{ Type, Status, Desc, Host, Port, Recovery string }

// monitor runs MONITOR ALL and maps node name → row.
func (c *testCluster) monitor(t testing.TB) map[string]monRow {
	t.Helper()
	rows, _ := c.mustRows(t, 60*time.Second, "MONITOR ALL")
	out := map[string]monRow{}
	for _, r := range rows {
		if len(r) != 9 {
			t.Fatalf("MONITOR ALL: want nodename | nodetype | status | description | host | port | recovery | boot time | nodezone, got %q", r)
		}
		out[r[0]] = monRow{Type: r[1], Status: r[2], Desc: r[3], Host: r[4], Port: r[5], Recovery: r[6]}
		if r[2] == "t" && r[7] == "" {
			t.Errorf("MONITOR ALL: running node %s has no boot time: %q", r[0], r)
		}
	}
	return out
}

// wantRunning is MONITOR ALL's expected view of every node running:
// masters read-write, slaves in recovery.
func (c *testCluster) wantRunning() map[string]monRow {
	out := map[string]monRow{}
	for _, n := range c.Nodes {
		out[n.Name] = monRow{Type: n.Type, Status: "t", Desc: "running", Host: c.host(n.Host).Addr,
			Port: strconv.Itoa(n.Port), Recovery: strconv.FormatBool(!n.isMaster())}
	}
	return out
}

// listNode maps node name → the LIST NODE columns the cluster commands
// change.
func (c *testCluster) listNode(t testing.TB) map[string][4]string {
	t.Helper()
	rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, sync_state, initialized, incluster, mastername)")
	out := map[string][4]string{}
	for _, r := range rows {
		if len(r) != 5 {
			t.Fatalf("LIST NODE: unexpected row %q", r)
		}
		out[r[0]] = [4]string{r[1], r[2], r[3], r[4]}
	}
	return out
}

// wantListNode is LIST NODE for every node with the given initialized and
// incluster flags.
func (c *testCluster) wantListNode(initialized, incluster string) map[string][4]string {
	out := map[string][4]string{}
	for _, n := range c.Nodes {
		out[n.Name] = [4]string{n.Sync, initialized, incluster, n.Master}
	}
	return out
}

// agentPID finds the agent serving host h by its command line (the manager
// starts it with --listen <address>:<agentport>).
func (c *testCluster) agentPID(h hostSpec) int {
	want := "--listen " + net.JoinHostPort(h.Addr, strconv.Itoa(h.AgentPort))
	pids := findProcs(func(cmdline string) bool {
		return strings.Contains(cmdline, "adbagent") && strings.Contains(cmdline, want)
	})
	if len(pids) != 1 {
		return 0
	}
	return pids[0]
}

// procCmdlines reads every process's command line (arguments joined by
// spaces) and parent pid from /proc.
func procCmdlines() (cmdline map[int]string, ppid map[int]int) {
	cmdline, ppid = map[int]string{}, map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline[pid] = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// pid (comm) state ppid …: comm may hold spaces, so cut at
			// the last ')'.
			if i := strings.LastIndexByte(string(st), ')'); i > 0 {
				if f := strings.Fields(string(st[i+1:])); len(f) > 1 {
					ppid[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	return cmdline, ppid
}

// findProcs lists the pids whose command line matches.
func findProcs(match func(cmdline string) bool) []int {
	cmdline, _ := procCmdlines()
	var out []int
	for pid, cl := range cmdline {
		if cl != "" && match(cl) {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// killTrees kills, by pid, every process whose command line contains one of
// substrs, and their descendants (PostgreSQL backends retitle themselves, so
// only the postmaster's command line names its data directory). It returns
// what it killed.
func killTrees(substrs ...string) []string {
	cmdline, ppid := procCmdlines()
	victims := map[int]bool{}
	for pid, cl := range cmdline {
		for _, s := range substrs {
			if cl != "" && strings.Contains(cl, s) {
				victims[pid] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, parent := range ppid {
			if victims[parent] && !victims[pid] {
				victims[pid], changed = true, true
			}
		}
	}
	var killed []string
	for pid := range victims {
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed = append(killed, fmt.Sprintf("%d %s", pid, cmdline[pid]))
		}
	}
	sort.Strings(killed)
	return killed
}

// processesUnder lists the live (non-zombie) processes whose command line
// names a path under dir.
func processesUnder(dir string) []string {
	cmdline, _ := procCmdlines()
	var out []string
	for pid, cl := range cmdline {
		if strings.Contains(cl, dir+"/") {
			out = append(out, fmt.Sprintf("%d %s", pid, cl))
		}
	}
	sort.Strings(out)
	return out
}

// cleanup stops the cluster through the manager, then kills whatever is
// left of it by pid (a failed test must not leave processes for the next
// one), then removes the data directories.
func (c *testCluster) cleanup() {
	if c.t.Failed() {
		c.dumpLogs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	agents := filepath.Join(c.M.Dir, "agents")
	// What the cluster runs from: node data directories and agents.
	roots := []string{c.Dir + "/", agents + "/"}
	if c.ssh != nil {
		// Not Dir itself: the test hosts' sshds run from there too.
		roots = nil
		for _, h := range c.Hosts {
			roots = append(roots, c.ssh.dataDir(h.Name)+"/", filepath.Join(c.ssh.hostDir(h.Name), "adbhome")+"/")
		}
	}
	if !c.M.stopped {
		// Without ON_ERROR_STOP: the agents must be stopped even if
		// stopping a node fails.
		out, errOut, err := c.M.Psql(ctx, "-c", "STOP ALL MODE immediate;", "-c", "STOP AGENT ALL;")
		if err != nil || strings.Contains(errOut, "ERROR") {
			c.t.Logf("cleanup: STOP ALL MODE immediate; STOP AGENT ALL: %v\n%s\n%s", err, out, errOut)
		} else if !c.t.Failed() {
			// Both succeeded: nothing of the cluster may be left running
			// (a process may take a moment to exit).
			var left []string
			for try := 0; try < 40; try++ {
				left = nil
				for _, r := range roots {
					left = append(left, processesUnder(strings.TrimSuffix(r, "/"))...)
				}
				if len(left) == 0 {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if len(left) > 0 {
				c.t.Errorf("processes still running 10s after STOP ALL MODE immediate and STOP AGENT ALL succeeded:\n%s\n%s",
					strings.Join(left, "\n"), out)
			}
		}
	}
	for try := 0; try < 20; try++ {
		killed := killTrees(roots...)
		if len(killed) == 0 {
			break
		}
		c.t.Logf("cleanup: killed leftovers:\n%s", strings.Join(killed, "\n"))
		time.Sleep(250 * time.Millisecond)
	}
	// The nodes' socket directories lie outside Dir, and neither STOP nor
	// CLEAN removes them: read them from the nodes' configuration too.
	for _, n := range c.Nodes {
		if d := confSocketDir(n.Path); d != "" {
			c.socketDirs = append(c.socketDirs, d)
		}
	}
	dirs := append([]string{c.Dir}, c.socketDirs...)
	if c.ssh != nil {
		// The test hosts' own directory (their sshd's files, the list
		// testhosts.sh down works from) goes after the hosts are down.
		dirs = nil
	}
	for _, d := range dirs {
		// A socket directory is whatever a node said: remove only one
		// of its own in the test's adbhome, never a shared one.
		if filepath.Dir(d) != filepath.Join(filepath.Dir(binDir), "run") && d != c.Dir {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			c.t.Logf("cleanup: %v", err)
		}
	}
}

// dumpLogs logs the tails of the manager's, the agents' and the nodes' logs,
// to explain a failure.
func (c *testCluster) dumpLogs() {
	c.t.Logf("manager log (tail):\n%s", tailLines(c.M.log.String(), 60))
	for _, h := range c.Hosts {
		file := filepath.Join(c.M.Dir, "agents", h.Name, "agent.log")
		if c.ssh != nil {
			file = filepath.Join(c.ssh.hostDir(h.Name), "adbhome", "adbagent.log")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		c.t.Logf("%s (tail):\n%s", file, tailLines(string(b), 40))
	}
	for _, n := range c.Nodes {
		// The server log the node wrote last (logging_collector starts a
		// file per start), and pg_ctl's own log for failed starts.
		logs, _ := filepath.Glob(filepath.Join(n.Path, "log", "*"))
		sort.Slice(logs, func(i, j int) bool { return modTime(logs[i]).Before(modTime(logs[j])) })
		var files []string
		if len(logs) > 0 {
			files = append(files, logs[len(logs)-1])
		}
		files = append(files, filepath.Join(n.Path, "logfile"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
				c.t.Logf("%s (tail):\n%s", f, tailLines(string(b), 15))
			}
		}
	}
}

var socketDirRe = regexp.MustCompile(`(?m)^\s*unix_socket_directories\s*=\s*'([^',]+)'`)

// confSocketDir returns the last unix_socket_directories set in a data
// directory's postgresql.conf or postgresql.auto.conf, or "".
func confSocketDir(path string) string {
	dir := ""
	for _, f := range []string{"postgresql.conf", "postgresql.auto.conf"} {
		b, _ := os.ReadFile(filepath.Join(path, f))
		for _, m := range socketDirRe.FindAllStringSubmatch(string(b), -1) {
			dir = m[1]
		}
	}
	return dir
}

func modTime(file string) time.Time {
	fi, err := os.Stat(file)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dirEmpty reports whether dir is absent or has no entries.
func dirEmpty(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(ents) == 0, nil
}

// hostRows parses "hostname | status | description" rows into name →
// "status description".
func hostRows(t testing.TB, rows [][]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range rows {
		// MONITOR AGENT adds cert_expires (checked by the certificate
		// tests) and version.
		if len(r) != 3 && len(r) != 5 {
			t.Fatalf("want rows of hostname | status | description [| cert_expires | version], got %q", r)
		}
		out[r[0]] = r[1] + " " + r[2]
	}
	return out
}

// newShardedCluster is the data-plane tests' cluster, initialised:
// gtmcoord master gc on h1, coordinators cn1 (h2) and, when coordinators is
// 2, cn2 (h3), and datanode masters dn1 (h2) and dn2 (h3), 32 slots each.
func newShardedCluster(t testing.TB, coordinators int) *testCluster {
	t.Helper()
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	if coordinators > 1 {
		c.addNode(t, "coordinator master", "cn2", "", "h3", "")
	}
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	return c
}
