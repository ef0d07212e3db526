package e2e

// End-to-end tests of the cluster commands (START/STOP/MONITOR AGENT, INIT
// ALL, START/STOP, MONITOR, MONITOR HA, CLEAN ALL) against real agents and
// real PostgreSQL 15 nodes on loopback hosts 127.0.0.2–4. What the manager
// says is checked against what the nodes themselves say over psql.
//
// The tests run one after the other (no t.Parallel): each runs up to ten
// PostgreSQL servers on a two-core machine.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// initOrder is AntDB's INIT ALL order of operation types (reference §4.5).
// The "start … slave" rows are optional: a slave may be started within its
// "init … slave" step.
var initOrder = []string{
	"init gtmcoord master", "start gtmcoord master", "init gtmcoord slave", "start gtmcoord slave",
	"init coordinator master", "start coordinator master", "init coordinator slave", "start coordinator slave",
	"init datanode master", "start datanode master", "init datanode slave", "start datanode slave",
	"config gtmcoord and coordinator",
}

// startOrder and stopOrder are AntDB's START ALL / STOP ALL orders: masters
// before their slaves on start, slaves before their masters on stop.
var (
	startOrder = []string{
		"start gtmcoord master", "start gtmcoord slave", "start coordinator master", "start coordinator slave",
		"start datanode master", "start datanode slave",
	}
	stopOrder = []string{
		"stop datanode slave", "stop datanode master", "stop coordinator master", "stop coordinator slave",
		"stop gtmcoord slave", "stop gtmcoord master",
	}
)

// Long commands: INIT ALL of ten nodes takes tens of seconds on two cores.
const (
	initTimeout = 5 * time.Minute
	opTimeout   = 3 * time.Minute
)

// TestCluster runs the demo topology (plus a potential and an async
// datanode slave) through its life: agents, INIT ALL, replication checked on
// the nodes, STOP/START, CLEAN and INIT again, an agent killed, the manager
// killed. Subtests share the cluster and run in order.
func TestCluster(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addDemo(t, true)
	steps := []struct {
		name     string
		f        func(t *testing.T)
		required bool // later steps make no sense without it
	}{
		{"StartAgent", c.testStartAgent, true},
		{"InitAll", c.testInitAll, true},
		{"MonitorAll", c.testMonitorRunning, false},
		{"Replication", c.testReplication, false},
		{"ListenAndSockets", c.testListenAndSockets, false},
		{"CoordinatorCatalog", c.testCoordinatorCatalog, false},
		{"MonitorHA", c.testMonitorHA, false},
		{"StopStartAll", c.testStopStartAll, false},
		{"StopStartOneNode", c.testStopStartOneNode, false},
		{"CleanAll", c.testCleanAll, false},
		{"AgentKilled", c.testAgentKilled, false},
		{"ManagerRestart", c.testManagerRestart, false},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) && s.required {
			t.Fatalf("%s failed; the later steps need it", s.name)
		}
	}
}

func (c *testCluster) testStartAgent(t *testing.T) {
	want := map[string]string{}
	wantNot := map[string]string{}
	for _, h := range c.Hosts {
		want[h.Name] = "t running"
		wantNot[h.Name] = "f not running"
	}
	rows, _ := c.mustRows(t, 30*time.Second, "MONITOR AGENT")
	if diff := cmp.Diff(wantNot, hostRows(t, rows)); diff != "" {
		t.Errorf("MONITOR AGENT before START AGENT (-want +got):\n%s", diff)
	}
	rows, stderr := c.mustRows(t, 90*time.Second, "START AGENT ALL")
	got := hostRows(t, rows)
	for _, h := range c.Hosts {
		if got[h.Name] != "t success" {
			t.Errorf("START AGENT ALL: host %s: %q, want status t, success\nrows: %q\nstderr:\n%s", h.Name, got[h.Name], rows, stderr)
		}
	}
	rows, _ = c.mustRows(t, 30*time.Second, "MONITOR AGENT ALL")
	if diff := cmp.Diff(want, hostRows(t, rows)); diff != "" {
		t.Fatalf("MONITOR AGENT ALL after START AGENT ALL (-want +got):\n%s", diff)
	}
	// Each agent listens on its host's address and agent port.
	for _, h := range c.Hosts {
		if c.agentPID(h) == 0 {
			t.Errorf("no adbagent process with --listen %s:%d", h.Addr, h.AgentPort)
		}
	}
	// Starting a running agent is a success, not a second agent.
	rows, _ = c.mustRows(t, 90*time.Second, "START AGENT h1")
	if diff := cmp.Diff(map[string]string{"h1": "t success"}, hostRows(t, rows)); diff != "" {
		t.Errorf("START AGENT of a running agent (-want +got):\n%s", diff)
	}
}

// initAll runs INIT ALL and checks its rows: all status t, in AntDB's
// order, every node initialised, every coordinator configured; then LIST
// NODE shows every node initialized and in the cluster.
func (c *testCluster) initAll(t testing.TB) {
	t.Helper()
	start := time.Now()
	rows, stderr := c.mustRows(t, initTimeout, "INIT ALL")
	t.Logf("INIT ALL of %d nodes took %v", len(c.Nodes), time.Since(start).Round(time.Millisecond))
	ops := opRows(t, rows)
	if bad := failedRows(ops); len(bad) > 0 {
		t.Fatalf("INIT ALL: rows with status f: %q\nall rows: %q\nstderr:\n%s", bad, ops, stderr)
	}
	checkOpOrder(t, ops, initOrder)
	have := map[[2]string]int{}
	for _, r := range ops {
		have[[2]string{r.Op, r.Node}]++
	}
	var want [][2]string
	for _, n := range c.Nodes {
		want = append(want, [2]string{"init " + n.Type, n.Name})
		if n.isMaster() {
			want = append(want, [2]string{"start " + n.Type, n.Name})
		}
		if n.Type == "gtmcoord master" || n.Type == "coordinator master" {
			want = append(want, [2]string{"config gtmcoord and coordinator", n.Name})
		}
	}
	for _, w := range want {
		if have[w] != 1 {
			t.Errorf("INIT ALL: %d rows %q for %s, want 1\nrows: %q", have[w], w[0], w[1], ops)
		}
	}
	// Progress is reported as it happens, one NOTICE per step.
	for _, n := range c.Nodes {
		if !regexp.MustCompile(`(?m)^NOTICE:.*\b` + n.Name + `\b`).MatchString(stderr) {
			t.Errorf("INIT ALL: no NOTICE names %s; stderr:\n%s", n.Name, stderr)
		}
	}
	if diff := cmp.Diff(c.wantListNode("t", "t"), c.listNode(t)); diff != "" {
		t.Errorf("LIST NODE after INIT ALL (name → sync_state, initialized, incluster, mastername; -want +got):\n%s", diff)
	}
}

func (c *testCluster) testInitAll(t *testing.T) {
	if diff := cmp.Diff(c.wantListNode("f", "f"), c.listNode(t)); diff != "" {
		t.Errorf("LIST NODE before INIT ALL (-want +got):\n%s", diff)
	}
	c.initAll(t)
}

func (c *testCluster) testMonitorRunning(t *testing.T) {
	if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
		t.Errorf("MONITOR ALL (-want +got):\n%s", diff)
	}
	// MONITOR without ALL is the same command.
	rows, _ := c.mustRows(t, 60*time.Second, "MONITOR")
	if len(rows) != len(c.Nodes) {
		t.Errorf("MONITOR: %d rows, want %d: %q", len(rows), len(c.Nodes), rows)
	}
}

// writeAndReplicate writes value into table on every master that has
// slaves and waits until each of its slaves (async ones included) has
// replayed it: real streaming replication, not just processes that run.
func (c *testCluster) writeAndReplicate(t testing.TB, table string, value int) {
	t.Helper()
	for _, m := range c.Nodes {
		slaves := c.slavesOf(m.Name)
		if !m.isMaster() || len(slaves) == 0 {
			continue
		}
		c.mustNodeSQL(t, m, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s(a int); INSERT INTO %[1]s VALUES (%d);", table, value))
		for _, s := range slaves {
			want := strconv.Itoa(value)
			waitFor(t, 20*time.Second, fmt.Sprintf("slave %s replays %s's row %d", s.Name, m.Name, value), func() (bool, string) {
				rows, err := c.nodeSQL(s, fmt.Sprintf("SELECT a FROM %s WHERE a = %d", table, value))
				if err != nil {
					return false, err.Error()
				}
				return len(rows) == 1 && rows[0][0] == want, fmt.Sprintf("%q", rows)
			})
		}
	}
}

// replication reads application_name → sync_state of the streaming rows of
// a node's pg_stat_replication.
func (c *testCluster) replication(n nodeSpec) (map[string]string, error) {
	rows, err := c.nodeSQL(n, "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out, nil
}

// checkSyncStates waits until, on every master, pg_stat_replication's
// sync_state of each slave equals LIST NODE's sync_state for it (slaves
// reconnect a few seconds after a restart).
func (c *testCluster) checkSyncStates(t testing.TB) {
	t.Helper()
	listed := c.listNode(t)
	for _, m := range c.Nodes {
		slaves := c.slavesOf(m.Name)
		if !m.isMaster() || len(slaves) == 0 {
			continue
		}
		want := map[string]string{}
		for _, s := range slaves {
			want[s.Name] = listed[s.Name][0]
			if want[s.Name] != s.Sync {
				t.Errorf("LIST NODE: %s has sync_state %q, the test added it as %q", s.Name, want[s.Name], s.Sync)
			}
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("pg_stat_replication on %s matches LIST NODE %v", m.Name, want), func() (bool, string) {
			got, err := c.replication(m)
			if err != nil {
				return false, err.Error()
			}
			return cmp.Equal(want, got), fmt.Sprintf("%v", got)
		})
	}
}

func (c *testCluster) testReplication(t *testing.T) {
	c.writeAndReplicate(t, "e2e_t", 42)
	c.checkSyncStates(t)
	// How the slaves stream: a slot named after the slave and
	// application_name = the slave's name.
	syncNames := regexp.MustCompile(`^FIRST (\d+) \((.*)\)$`)
	for _, m := range c.Nodes {
		slaves := c.slavesOf(m.Name)
		if !m.isMaster() || len(slaves) == 0 {
			continue
		}
		var wantSlots []string
		for _, s := range slaves {
			wantSlots = append(wantSlots, s.Name+" t")
		}
		sort.Strings(wantSlots)
		var gotSlots []string
		for _, r := range c.mustNodeSQL(t, m, "SELECT slot_name, active FROM pg_replication_slots ORDER BY 1") {
			gotSlots = append(gotSlots, r[0]+" "+r[1])
		}
		if diff := cmp.Diff(wantSlots, gotSlots); diff != "" {
			t.Errorf("replication slots on %s (name active; -want +got):\n%s", m.Name, diff)
		}
		// FIRST n (sync…, potential…); async slaves are not listed.
		ssn := c.nodeValue(t, m, "SHOW synchronous_standby_names")
		sm := syncNames.FindStringSubmatch(ssn)
		if sm == nil {
			t.Errorf("synchronous_standby_names on %s = %q, want FIRST n (…)", m.Name, ssn)
			continue
		}
		var syncs, pots []string
		for _, s := range slaves {
			switch s.Sync {
			case "sync":
				syncs = append(syncs, s.Name)
			case "potential":
				pots = append(pots, s.Name)
			}
		}
		var listedNames []string
		for _, f := range strings.Split(sm[2], ",") {
			listedNames = append(listedNames, strings.Trim(strings.TrimSpace(f), `"`))
		}
		if sm[1] != strconv.Itoa(max(len(syncs), 1)) || !cmp.Equal(listedNames, append(syncs, pots...)) {
			t.Errorf("synchronous_standby_names on %s = %q, want FIRST %d (%s)", m.Name, ssn, max(len(syncs), 1), strings.Join(append(syncs, pots...), ", "))
		}
		for _, s := range slaves {
			if got := c.nodeValue(t, s, "SHOW primary_slot_name"); got != s.Name {
				t.Errorf("primary_slot_name on %s = %q, want %q", s.Name, got, s.Name)
			}
			if got := c.nodeValue(t, s, "SHOW primary_conninfo"); !regexp.MustCompile(`(^|\s)application_name='?` + s.Name + `'?(\s|$)`).MatchString(got) {
				t.Errorf("primary_conninfo on %s = %q, want application_name=%s", s.Name, got, s.Name)
			}
		}
	}
	// Synchronous means a commit waits for the sync slave: with it stopped,
	// a write on dn1 does not return. Checked cheaply: the potential slave
	// takes over as sync when the sync one goes (FIRST 1 (dn1s, dn1p)).
	// That is failover territory; here the states above are the contract.
}

// Each node listens on its host's address only and has a unix socket
// directory of its own, so that nodes of different loopback hosts can share
// a port number. The directory lies outside the data directory: pg_rewind
// copies every file of its source and fails on a socket (a departure from
// AntDB, where the socket lives in the data directory).
func (c *testCluster) testListenAndSockets(t *testing.T) {
	seen := map[string]string{}
	for _, n := range c.Nodes {
		addr := c.host(n.Host).Addr
		if got := c.nodeValue(t, n, "SHOW listen_addresses"); got != addr {
			t.Errorf("%s: listen_addresses = %q, want %q (its host's address only)", n.Name, got, addr)
		}
		dir := c.nodeValue(t, n, "SHOW unix_socket_directories")
		c.socketDirs = append(c.socketDirs, dir)
		if strings.Contains(dir, ",") || !filepath.IsAbs(dir) {
			t.Errorf("%s: unix_socket_directories = %q, want one absolute directory", n.Name, dir)
		}
		if dir == n.Path || strings.HasPrefix(dir, n.Path+"/") {
			t.Errorf("%s: unix_socket_directories = %q is inside its data directory (pg_rewind would fail on the socket)", n.Name, dir)
		}
		if other, ok := seen[dir]; ok {
			t.Errorf("%s and %s share the socket directory %s", n.Name, other, dir)
		}
		seen[dir] = n.Name
		sock := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(n.Port))
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("%s: no unix socket %s (%v)", n.Name, sock, err)
		}
		// Nothing answers on the node's port on the other loopback
		// addresses: it does not listen on 0.0.0.0.
		for _, h := range c.Hosts {
			if h.Addr == addr {
				continue
			}
			if cn, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, strconv.Itoa(n.Port)), time.Second); err == nil {
				cn.Close()
				t.Errorf("%s (host %s) also answers on %s:%d", n.Name, addr, h.Addr, n.Port)
			}
		}
	}
}

func (c *testCluster) testCoordinatorCatalog(t *testing.T) {
	var wantNodes [][]string
	for _, n := range c.Nodes {
		wantNodes = append(wantNodes, []string{n.Name, n.Type, c.host(n.Host).Addr, strconv.Itoa(n.Port), n.Master})
	}
	sort.Slice(wantNodes, func(i, j int) bool { return wantNodes[i][0] < wantNodes[j][0] })
	var wantServers [][]string
	for _, n := range c.Nodes {
		if n.Type == "datanode master" {
			wantServers = append(wantServers, []string{n.Name})
		}
	}
	for _, n := range c.Nodes {
		if n.Type != "coordinator master" && n.Type != "gtmcoord master" {
			continue
		}
		got := c.mustNodeSQL(t, n, "SELECT name, type, host, port, master FROM adb.node ORDER BY name")
		if diff := cmp.Diff(wantNodes, got); diff != "" {
			t.Errorf("adb.node on %s (-want +got):\n%s", n.Name, diff)
		}
		got = c.mustNodeSQL(t, n, "SELECT srvname FROM pg_foreign_server ORDER BY 1")
		if diff := cmp.Diff(wantServers, got); diff != "" {
			t.Errorf("foreign servers on %s (-want +got):\n%s", n.Name, diff)
		}
	}
	// The foreign servers work: cn1 reads dn1's table through dn1's server.
	cn1 := c.node("cn1")
	c.mustNodeSQL(t, cn1, "CREATE FOREIGN TABLE e2e_ft_dn1 (a int) SERVER dn1 OPTIONS (table_name 'e2e_t')")
	if got := c.nodeValue(t, cn1, "SELECT a FROM e2e_ft_dn1"); got != "42" {
		t.Errorf("cn1 reading dn1's e2e_t through foreign server dn1: %q, want 42", got)
	}
}

// monitorHA maps slave → "type application_name state sync_state".
func (c *testCluster) monitorHA(t testing.TB) map[string]string {
	t.Helper()
	rows, _ := c.mustRows(t, 60*time.Second, "MONITOR HA")
	out := map[string]string{}
	for _, r := range rows {
		if len(r) != 12 {
			t.Fatalf("MONITOR HA: want 12 columns (type … zone), got %q", r)
		}
		out[r[1]] = strings.Join([]string{r[0], r[2], r[4], r[7]}, " ")
		if r[4] == "streaming" && (r[5] == "" || r[6] == "" || r[8] == "") {
			t.Errorf("MONITOR HA: streaming slave %s lacks sent_lsn/replay_lsn/master_lsn: %q", r[1], r)
		}
	}
	return out
}

func (c *testCluster) wantHA() map[string]string {
	want := map[string]string{}
	for _, n := range c.Nodes {
		if !n.isMaster() {
			want[n.Name] = strings.Join([]string{n.Type, n.Name, "streaming", n.Sync}, " ")
		}
	}
	return want
}

func (c *testCluster) testMonitorHA(t *testing.T) {
	want := c.wantHA()
	waitFor(t, 20*time.Second, "MONITOR HA shows every slave streaming with its sync_state", func() (bool, string) {
		got := c.monitorHA(t)
		return cmp.Equal(want, got), cmp.Diff(want, got)
	})
}

// opPairs maps "op node" → "status description" of a START/STOP result.
func opPairs(rows []opRow) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		out[r.Op+" "+r.Node] = r.Status + " " + r.Desc
	}
	return out
}

// startStop runs a START/STOP command and checks that it reports every
// node once, in AntDB's order, with status t and a description for which
// desc holds.
func (c *testCluster) startStop(t testing.TB, sql, verb string, order []string, desc func(string) bool) {
	t.Helper()
	rows, stderr := c.mustRows(t, opTimeout, sql)
	ops := opRows(t, rows)
	checkOpOrder(t, ops, order)
	if len(ops) != len(c.Nodes) {
		t.Errorf("%s: %d rows, want one per node (%d): %q", sql, len(ops), len(c.Nodes), ops)
	}
	got := opPairs(ops)
	for _, n := range c.Nodes {
		key := verb + " " + n.Type + " " + n.Name
		st, ok := got[key]
		if !ok {
			t.Errorf("%s: no row %q; rows: %q", sql, key, ops)
			continue
		}
		if !strings.HasPrefix(st, "t ") || !desc(strings.TrimPrefix(st, "t ")) {
			t.Errorf("%s: row %q is %q\nstderr:\n%s", sql, key, st, stderr)
		}
	}
}

func isSuccess(d string) bool { return d == "success" }

func isAlready(state string) func(string) bool {
	return func(d string) bool { return strings.Contains(d, "already "+state) }
}

// waitRunning waits until MONITOR ALL shows every node running (a slave
// may take a moment to accept connections after pg_ctl returns).
func (c *testCluster) waitRunning(t testing.TB) {
	t.Helper()
	want := c.wantRunning()
	waitFor(t, 30*time.Second, "MONITOR ALL shows every node running", func() (bool, string) {
		got := c.monitor(t)
		return cmp.Equal(want, got), cmp.Diff(want, got)
	})
}

func (c *testCluster) testStopStartAll(t *testing.T) {
	c.startStop(t, "STOP ALL", "stop", stopOrder, isSuccess)
	mon := c.monitor(t)
	for _, n := range c.Nodes {
		if r := mon[n.Name]; r.Status != "f" || r.Desc != "not running" {
			t.Errorf("MONITOR ALL after STOP ALL: %s is %+v, want status f, not running", n.Name, r)
		}
		if pids := processesUnder(n.Path); len(pids) > 0 {
			t.Errorf("after STOP ALL, processes of %s remain: %q", n.Name, pids)
		}
	}
	c.startStop(t, "STOP ALL", "stop", stopOrder, isAlready("stopped"))
	c.startStop(t, "START ALL", "start", startOrder, isSuccess)
	c.waitRunning(t)
	// The data survived, and replication resumed with the same states.
	c.writeAndReplicate(t, "e2e_t", 43)
	if got := c.mustNodeSQL(t, c.node("dn1"), "SELECT a FROM e2e_t ORDER BY a"); !cmp.Equal(got, [][]string{{"42"}, {"43"}}) {
		t.Errorf("dn1's e2e_t after STOP ALL / START ALL: %q, want 42, 43", got)
	}
	c.checkSyncStates(t)
	c.startStop(t, "START ALL", "start", startOrder, isAlready("running"))
}

func (c *testCluster) testStopStartOneNode(t *testing.T) {
	rows, stderr := c.mustRows(t, opTimeout, "STOP DATANODE MASTER dn1 MODE fast")
	want := []opRow{{"stop datanode master", "dn1", "t", "success"}}
	if diff := cmp.Diff(want, opRows(t, rows)); diff != "" {
		t.Errorf("STOP DATANODE MASTER dn1 MODE fast (-want +got):\n%s\nstderr:\n%s", diff, stderr)
	}
	mon := c.monitor(t)
	for _, n := range c.Nodes {
		wantSt := "t"
		if n.Name == "dn1" {
			wantSt = "f"
		}
		if mon[n.Name].Status != wantSt {
			t.Errorf("MONITOR ALL with dn1 stopped: %s is %+v, want status %s", n.Name, mon[n.Name], wantSt)
		}
	}
	if _, err := c.nodeSQL(c.node("dn1"), "SELECT 1"); err == nil {
		t.Errorf("dn1 still answers SQL after STOP DATANODE MASTER dn1")
	}
	// Slaves stay up (in recovery) while their master is down.
	if got := c.nodeValue(t, c.node("dn1s"), "SELECT pg_is_in_recovery()"); got != "t" {
		t.Errorf("dn1s: pg_is_in_recovery() = %q while dn1 is stopped", got)
	}
	rows, stderr = c.mustRows(t, opTimeout, "START DATANODE MASTER dn1")
	want = []opRow{{"start datanode master", "dn1", "t", "success"}}
	if diff := cmp.Diff(want, opRows(t, rows)); diff != "" {
		t.Errorf("START DATANODE MASTER dn1 (-want +got):\n%s\nstderr:\n%s", diff, stderr)
	}
	c.waitRunning(t)
	c.checkSyncStates(t)
	// A node type that does not match is refused.
	if e := c.M.MustFail(t, "STOP DATANODE SLAVE dn1"); !strings.Contains(e, "dn1") {
		t.Errorf("STOP DATANODE SLAVE dn1 (a master): %s", e)
	}
}

func (c *testCluster) testCleanAll(t *testing.T) {
	// Refused while nodes run, naming one, and nothing is cleaned.
	e := c.M.MustFail(t, "CLEAN ALL")
	named := false
	for _, n := range c.Nodes {
		named = named || strings.Contains(e, `"`+n.Name+`"`)
	}
	if !strings.Contains(e, "55006") || !named {
		t.Errorf("CLEAN ALL while running: want SQLSTATE 55006 naming a running node, got:\n%s", e)
	}
	if diff := cmp.Diff(c.wantListNode("t", "t"), c.listNode(t)); diff != "" {
		t.Errorf("LIST NODE after a refused CLEAN ALL (-want +got):\n%s", diff)
	}
	c.waitRunning(t)

	c.startStop(t, "STOP ALL MODE fast", "stop", stopOrder, isSuccess)
	rows, stderr := c.mustRows(t, opTimeout, "CLEAN ALL")
	got := map[string]string{}
	for _, r := range rows {
		if len(r) != 4 {
			t.Fatalf("CLEAN ALL: want nodename | nodetype | status | description, got %q", r)
		}
		got[r[0]] = strings.Join(r[1:3], " ")
	}
	want := map[string]string{}
	for _, n := range c.Nodes {
		want[n.Name] = n.Type + " t"
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CLEAN ALL (node → type status; -want +got):\n%s\nrows: %q\nstderr:\n%s", diff, rows, stderr)
	}
	if diff := cmp.Diff(c.wantListNode("f", "f"), c.listNode(t)); diff != "" {
		t.Errorf("LIST NODE after CLEAN ALL (-want +got):\n%s", diff)
	}
	for _, n := range c.Nodes {
		if empty, err := dirEmpty(n.Path); err != nil || !empty {
			ents, _ := os.ReadDir(n.Path)
			t.Errorf("after CLEAN ALL, %s is not empty (%v): %d entries", n.Path, err, len(ents))
		}
	}

	// INIT ALL works again, on fresh nodes.
	c.initAll(t)
	c.waitRunning(t)
	if got := c.nodeValue(t, c.node("dn1"), "SELECT coalesce(to_regclass('e2e_t')::text, 'gone')"); got != "gone" {
		t.Errorf("after CLEAN ALL and INIT ALL, dn1 still has e2e_t")
	}
	c.writeAndReplicate(t, "e2e_t", 44)
	c.checkSyncStates(t)
}

func (c *testCluster) testAgentKilled(t *testing.T) {
	h2 := c.host("h2")
	pid := c.agentPID(h2)
	if pid == 0 {
		t.Fatalf("no adbagent process found for h2 (--listen %s:%d)", h2.Addr, h2.AgentPort)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the killed agent is gone", func() (bool, string) {
		return c.agentPID(h2) == 0, "still there"
	})
	want := map[string]string{"h1": "t running", "h2": "f not running", "h3": "t running"}
	rows, _ := c.mustRows(t, 30*time.Second, "MONITOR AGENT")
	if diff := cmp.Diff(want, hostRows(t, rows)); diff != "" {
		t.Errorf("MONITOR AGENT after kill -9 of h2's agent (-want +got):\n%s", diff)
	}
	// The nodes do not depend on their agent.
	for _, n := range c.Nodes {
		if n.Host == "h2" {
			if got := c.nodeValue(t, n, "SELECT 1"); got != "1" {
				t.Errorf("%s on h2: SELECT 1 = %q", n.Name, got)
			}
		}
	}
	if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
		t.Errorf("MONITOR ALL with h2's agent down (the nodes still run; -want +got):\n%s", diff)
	}
	rows, stderr := c.mustRows(t, 90*time.Second, "START AGENT h2")
	if diff := cmp.Diff(map[string]string{"h2": "t success"}, hostRows(t, rows)); diff != "" {
		t.Fatalf("START AGENT h2 after its agent was killed (-want +got):\n%s\nstderr:\n%s", diff, stderr)
	}
	rows, _ = c.mustRows(t, 30*time.Second, "MONITOR AGENT")
	want["h2"] = "t running"
	if diff := cmp.Diff(want, hostRows(t, rows)); diff != "" {
		t.Errorf("MONITOR AGENT after START AGENT h2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
		t.Errorf("MONITOR ALL after START AGENT h2 (-want +got):\n%s", diff)
	}
	// The new agent works: stop and start a node on h2 through it.
	c.mustRows(t, opTimeout, "STOP DATANODE SLAVE dn1p MODE fast")
	c.mustRows(t, opTimeout, "START DATANODE SLAVE dn1p")
	c.waitRunning(t)
}

func (c *testCluster) testManagerRestart(t *testing.T) {
	pids := map[string]int{}
	for _, h := range c.Hosts {
		pids[h.Name] = c.agentPID(h)
	}
	before := c.M.MustExec(t, "LIST NODE")
	wantAgents := map[string]string{}
	for _, h := range c.Hosts {
		wantAgents[h.Name] = "t running"
	}
	check := func(how string) {
		t.Helper()
		if after := c.M.MustExec(t, "LIST NODE"); after != before {
			t.Errorf("LIST NODE changed across %s:\n%s", how, lineDiff(before, after))
		}
		if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
			t.Errorf("MONITOR ALL after %s (-want +got):\n%s", how, diff)
		}
		rows, _ := c.mustRows(t, 30*time.Second, "MONITOR AGENT")
		if diff := cmp.Diff(wantAgents, hostRows(t, rows)); diff != "" {
			t.Errorf("MONITOR AGENT after %s (-want +got):\n%s", how, diff)
		}
		// The same agents, not new ones: they outlived the manager.
		for _, h := range c.Hosts {
			if got := c.agentPID(h); got != pids[h.Name] {
				t.Errorf("after %s, %s's agent pid is %d, was %d", how, h.Name, got, pids[h.Name])
			}
		}
		if diff := cmp.Diff(c.wantHA(), c.monitorHA(t)); diff != "" {
			t.Errorf("MONITOR HA after %s (-want +got):\n%s", how, diff)
		}
	}
	c.M.Kill9()
	c.M.Restart()
	check("kill -9 and restart of the manager")
	c.M.Stop()
	c.M.Restart()
	check("SIGTERM and restart of the manager")
}

// TestClusterRefusals: INIT ALL and START AGENT refuse before touching
// anything, and a refused INIT ALL leaves no node initialised, no process
// started and no directory created — so that INIT ALL works once the cause
// is gone.
func TestClusterRefusals(t *testing.T) {
	c := newTestCluster(t, 2)
	// The node that trips each check is dn1, initialised last: a refusal
	// that came from the step itself rather than a pre-check would have
	// initialised gc first.
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	dn1 := c.addNode(t, "datanode master", "dn1", "", "h2", "")
	unchanged := func(t *testing.T, what string, keep ...string) {
		t.Helper()
		if diff := cmp.Diff(c.wantListNode("f", "f"), c.listNode(t)); diff != "" {
			t.Errorf("LIST NODE after %s (-want +got):\n%s", what, diff)
		}
		if ps := processesUnder(c.Dir); len(ps) > 0 {
			t.Errorf("processes started by %s: %q", what, ps)
		}
		ents, _ := os.ReadDir(c.Dir)
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		if diff := cmp.Diff(keep, got); diff != "" {
			t.Errorf("%s changed %s (-want +got):\n%s", what, c.Dir, diff)
		}
	}

	t.Run("AgentNotStarted", func(t *testing.T) {
		rows, stderr := c.mustRows(t, 90*time.Second, "START AGENT h1")
		if diff := cmp.Diff(map[string]string{"h1": "t success"}, hostRows(t, rows)); diff != "" {
			t.Fatalf("START AGENT h1 (-want +got):\n%s\n%s", diff, stderr)
		}
		e := c.M.MustFail(t, "INIT ALL")
		if !strings.Contains(e, "55000") || !strings.Contains(e, `"h2"`) {
			t.Errorf("INIT ALL with h2's agent not started: want SQLSTATE 55000 naming host h2, got:\n%s", e)
		}
		unchanged(t, "INIT ALL refused for a missing agent")
	})

	t.Run("PathNotEmpty", func(t *testing.T) {
		c.mustRows(t, 90*time.Second, "START AGENT h2")
		if err := os.MkdirAll(dn1.Path, 0o755); err != nil {
			t.Fatal(err)
		}
		junk := filepath.Join(dn1.Path, "junk")
		if err := os.WriteFile(junk, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		e := c.M.MustFail(t, "INIT ALL")
		if !strings.Contains(e, "dn1") || !strings.Contains(e, dn1.Path) {
			t.Errorf("INIT ALL with dn1's path not empty: want an error naming dn1 and %s, got:\n%s", dn1.Path, e)
		}
		unchanged(t, "INIT ALL refused for a non-empty path", "dn1")
		if b, err := os.ReadFile(junk); err != nil || string(b) != "keep me" {
			t.Errorf("the file in dn1's path was touched: %q, %v", b, err)
		}
		if err := os.RemoveAll(dn1.Path); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PortInUse", func(t *testing.T) {
		addr := net.JoinHostPort(c.host("h2").Addr, strconv.Itoa(dn1.Port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// Accept and drop connections, as a foreign server would.
		go func() {
			for {
				cn, err := l.Accept()
				if err != nil {
					return
				}
				cn.Close()
			}
		}()
		e := c.M.MustFail(t, "INIT ALL")
		l.Close()
		if !strings.Contains(e, strconv.Itoa(dn1.Port)) || !strings.Contains(e, "dn1") {
			t.Errorf("INIT ALL with dn1's port %d in use: want an error naming the port and dn1, got:\n%s", dn1.Port, e)
		}
		unchanged(t, "INIT ALL refused for a port in use")
	})

	t.Run("SSHHost", func(t *testing.T) {
		port := freePortOn(t, "127.0.0.4")
		// No sshd listens on port 1: START AGENT logs in to every ssh
		// host before it starts any agent, so nothing starts.
		c.M.MustExec(t, fmt.Sprintf("ADD HOST hs (protocol=ssh, address='127.0.0.4', port=1, agentport=%d)", port))
		t.Cleanup(func() { c.M.Psql(context.Background(), "-c", "DROP HOST hs") })
		for _, sql := range []string{"START AGENT hs", "START AGENT ALL"} {
			if e := c.M.MustFail(t, sql); !strings.Contains(e, "08006") || !strings.Contains(e, `"hs"`) {
				t.Errorf("%s with hs's sshd unreachable: want SQLSTATE 08006 naming hs, got:\n%s", sql, e)
			}
		}
		if ps := findProcs(func(cl string) bool { return strings.Contains(cl, fmt.Sprintf("--listen 127.0.0.4:%d", port)) }); len(ps) > 0 {
			t.Errorf("an agent was started for the ssh host: pids %v", ps)
		}
	})

	// Once the causes are gone, the same catalog initialises.
	t.Run("InitAfterRefusals", func(t *testing.T) {
		c.initAll(t)
		if diff := cmp.Diff(c.wantRunning(), c.monitor(t)); diff != "" {
			t.Errorf("MONITOR ALL (-want +got):\n%s", diff)
		}
	})
}

// BenchmarkInitAll measures INIT ALL of the demo topology (8 nodes on 3
// loopback hosts) once per run — a fresh cluster per iteration would spend
// most of its time outside INIT ALL, so run it with -benchtime=1x.
//
// Metrics:
//   - init_ms: wall time of INIT ALL as psql would see it, from the query to
//     the result.
//   - sum_steps_ms: the sum over INIT ALL's per-node steps (one NOTICE each)
//     of how long each step took, measured from the client: a step's
//     duration is taken as the time from the previous stage's last NOTICE
//     (or the query) to its own NOTICE — an upper bound, exact for steps
//     run one at a time. It is what a manager doing one node at a time
//     would take at best if every node took as long as its stage. The final
//     synchronous_standby_names phase sends no NOTICE and is only in
//     init_ms. init_ms well below sum_steps_ms shows that nodes of a stage
//     run in parallel.
//   - nodes: the number of nodes.
func BenchmarkInitAll(b *testing.B) {
	c := newTestCluster(b, 3)
	c.addDemo(b, false)
	rows, stderr := c.mustRows(b, 90*time.Second, "START AGENT ALL")
	for _, r := range rows {
		if len(r) != 3 || r[1] != "t" {
			b.Fatalf("START AGENT ALL: %q\n%s", rows, stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, c.M.Port))
	if err != nil {
		b.Fatal(err)
	}
	type notice struct {
		at  time.Time
		msg string
	}
	var (
		mu      sync.Mutex
		notices []notice
	)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, notice{time.Now(), n.Message})
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())

	b.ResetTimer()
	start := time.Now()
	res, err := conn.Query(ctx, "INIT ALL", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		b.Fatal(err)
	}
	var ops []opRow
	for res.Next() {
		v, err := res.Values()
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, opRow{fmt.Sprint(v[0]), fmt.Sprint(v[1]), fmt.Sprint(v[2]), fmt.Sprint(v[3])})
	}
	if err := res.Err(); err != nil {
		b.Fatalf("INIT ALL: %v", err)
	}
	initDur := time.Since(start)
	b.StopTimer()
	for _, r := range ops {
		if r.Status != "true" {
			b.Fatalf("INIT ALL: row %v failed; rows %v", r, ops)
		}
	}

	// One NOTICE per step: "<operation type> <node>: <description>";
	// other NOTICEs (e.g. base backup progress) are not steps.
	step := regexp.MustCompile(`^(` + strings.Join(initOrder, "|") + `) \S+: `)
	const burstGap = 20 * time.Millisecond
	var sum time.Duration
	stageStart, prev, steps := start, start, 0
	mu.Lock()
	for _, n := range notices {
		if !step.MatchString(n.msg) {
			continue
		}
		if n.at.Sub(prev) > burstGap {
			stageStart = prev
		}
		sum += n.at.Sub(stageStart)
		prev = n.at
		steps++
	}
	mu.Unlock()
	if steps < len(c.Nodes) {
		b.Errorf("only %d step NOTICEs for %d nodes: %v", steps, len(c.Nodes), notices)
	}
	b.ReportMetric(float64(initDur.Milliseconds()), "init_ms")
	b.ReportMetric(float64(sum.Milliseconds()), "sum_steps_ms")
	b.ReportMetric(float64(len(c.Nodes)), "nodes")
	// The per-op metric is meaningless for a one-shot measurement.
	b.ReportMetric(0, "ns/op")
}
