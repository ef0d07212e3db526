package e2e

import (
	"bytes"
	"context"
	"fmt"
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

	"github.com/jackc/pgx/v5"
)

// BenchmarkListNode1000 measures LIST NODE over a catalog of 1,000 nodes as
// a client sees it: query sent, every row received. Target: under 20 ms.
func BenchmarkListNode1000(b *testing.B) {
	m := StartManager(b, "")
	var sql strings.Builder
	for h := 0; h < 10; h++ {
		fmt.Fprintf(&sql, "ADD HOST h%d (protocol=local, address='127.0.1.%d');\n", h, h+1)
	}
	for i := 0; i < 1000; i++ {
		if i%4 == 0 {
			fmt.Fprintf(&sql, "ADD DATANODE MASTER d%d (HOST=h%d, PORT=%d, PATH='/data/d%d');\n", i, i%10, 20000+i, i)
		} else {
			fmt.Fprintf(&sql, "ADD DATANODE SLAVE d%d FOR d%d (HOST=h%d, PORT=%d, PATH='/data/d%d');\n", i, i-i%4, i%10, 20000+i, i)
		}
	}
	m.MustExec(b, sql.String())
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, m.Port))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows, err := conn.Query(ctx, "LIST NODE", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 1000 {
			b.Fatalf("rows = %d, err %v", n, rows.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/list")
}

// BenchmarkDeploy measures DEPLOY to four namespace hosts over SSH against
// DEPLOY to one: hosts deploy in parallel, so the ratio should stay near 1
// (target ≤ 1.5). It also reports the CPU one host's DEPLOY costs, on the
// manager's side (the adbmgr process) and on the host's (its sshd and
// everything under it: the SFTP server, the checksum): here all four hosts
// and the manager share this machine's cores, so four DEPLOYs cost four
// times that CPU however parallel they are.
func BenchmarkDeploy(b *testing.B) {
	s := upSSHHosts(b, 4)
	m := StartManager(b, "")
	s.addHosts(b, m, 4)
	// The first DEPLOY installs the manager's key; the rest log in with it.
	m.MustExec(b, "DEPLOY ALL PASSWORD '"+s.pw+"'")
	sshd := make([]int, 4)
	for i := range sshd {
		pid, err := os.ReadFile(filepath.Join(s.dir, s.name(i+1), "sshd.pid"))
		if err != nil {
			b.Fatal(err)
		}
		sshd[i], _ = strconv.Atoi(strings.TrimSpace(string(pid)))
	}
	var one, all, mgrCPU, hostCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mgr0, host0 := procCPU(b, m.cmd.Process.Pid), procCPU(b, sshd[0])
		start := time.Now()
		if rows := m.Rows(b, "DEPLOY th1"); len(rows) != 1 || rows[0][1] != "t" {
			b.Fatalf("DEPLOY th1: %v", rows)
		}
		one += time.Since(start)
		mgrCPU += procCPU(b, m.cmd.Process.Pid) - mgr0
		hostCPU += procCPU(b, sshd[0]) - host0
		start = time.Now()
		rows := m.Rows(b, "DEPLOY ALL")
		if len(rows) != 4 {
			b.Fatalf("DEPLOY ALL: %v", rows)
		}
		for _, r := range rows {
			if r[1] != "t" {
				b.Fatalf("DEPLOY ALL: %v", rows)
			}
		}
		all += time.Since(start)
	}
	b.ReportMetric(float64(one.Milliseconds())/float64(b.N), "ms/deploy-1")
	b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "ms/deploy-4")
	b.ReportMetric(float64(all)/float64(one), "4/1")
	b.ReportMetric(float64(mgrCPU.Milliseconds())/float64(b.N), "mgr-cpu-ms/host")
	b.ReportMetric(float64(hostCPU.Milliseconds())/float64(b.N), "host-cpu-ms/host")
}

// procCPU is the CPU time process pid used, with that of its children
// that ended (sshd waits for each connection's processes).
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command (in parentheses, which may hold
	// spaces): state is field 3, utime 14 … cstime 17.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var ticks int64
	for _, i := range []int{14, 15, 16, 17} {
		v, _ := strconv.ParseInt(f[i-3], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// BenchmarkInitAllSSH is INIT ALL of the demo topology (BenchmarkInitAll's,
// on loopback hosts) on three namespace hosts reached over SSH, where the
// agents run as the hosts' user and every node connection crosses the
// bridge: ms/init to compare with BenchmarkInitAll's init_ms.
func BenchmarkInitAllSSH(b *testing.B) {
	c, _ := newSSHClusterOf(b, 3, 3)
	c.addNode(b, "gtmcoord master", "gc", "", "th1", "")
	c.addNode(b, "gtmcoord slave", "gcs", "gc", "th2", "")
	c.addNode(b, "coordinator master", "cn1", "", "th2", "")
	c.addNode(b, "coordinator master", "cn2", "", "th3", "")
	c.addNode(b, "datanode master", "dn1", "", "th3", "")
	c.addNode(b, "datanode slave", "dn1s", "dn1", "th1", "")
	c.addNode(b, "datanode master", "dn2", "", "th1", "")
	c.addNode(b, "datanode slave", "dn2s", "dn2", "th3", "")
	b.ResetTimer()
	start := time.Now()
	rows, stderr := c.mustRows(b, 5*time.Minute, "INIT ALL")
	d := time.Since(start)
	b.StopTimer()
	for _, r := range rows {
		if len(r) < 3 || r[2] != "t" {
			b.Fatalf("INIT ALL: %q\n%s", rows, stderr)
		}
	}
	b.ReportMetric(float64(d.Milliseconds())/float64(b.N), "ms/init")
}

// BenchmarkSwitchoverPause measures SWITCHOVER DATANODE's write pause on
// the demo topology as two clients see it, each writing one row every
// 50 ms: one directly on the datanode master through a multi-host
// connection string (target_session_attrs=read-write), one through a
// coordinator into a distributed table, on a row that lands on that
// datanode. The pause is the longest gap between two acknowledged writes
// around the command. Each iteration switches dn1's group over to its other
// node; the metrics are the median and min–max of the iterations (run with
// -benchtime 5x), and the command's own duration. Target: ≤ 500 ms on both
// paths (Patroni 1.36 s, pg_auto_failover 1.26 s on this machine).
func BenchmarkSwitchoverPause(b *testing.B) {
	c, direct, viaCoord := demoWriters(b, "sw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range []*pauseWriter{direct, viaCoord} {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, 50*time.Millisecond) }()
	}
	defer wg.Wait()
	defer cancel()
	var pd, pc, cmd []time.Duration
	to := []string{"dn1s", "dn1"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Second) // both writers steady before the switch
		start := time.Now()
		rows, notices, err := c.noticedRows(3*time.Minute, "SWITCHOVER DATANODE SLAVE "+to[i%2])
		end := time.Now()
		if err != nil || len(rows) != 1 {
			b.Fatalf("SWITCHOVER: %v %q\n%s", err, rows, noticeLog(start, notices))
		}
		cmd = append(cmd, end.Sub(start))
		d, v := direct.waitPause(b, start, end), viaCoord.waitPause(b, start, end)
		pd, pc = append(pd, d), append(pc, v)
		fmt.Printf("trial %d → %s: command %v, pause direct %v, through a coordinator %v\n%s", i+1, to[i%2],
			end.Sub(start).Round(time.Millisecond), d.Round(time.Millisecond), v.Round(time.Millisecond), noticeLog(start, notices))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"direct", pd}, {"coord", pc}, {"command", cmd}} {
		med := median(m.ds)
		b.ReportMetric(ms(med), m.name+"-median-ms")
		b.ReportMetric(ms(m.ds[0]), m.name+"-min-ms")
		b.ReportMetric(ms(m.ds[len(m.ds)-1]), m.name+"-max-ms")
	}
	for _, w := range []*pauseWriter{direct, viaCoord} {
		n, errs := w.acked()
		b.Logf("%s writer: %d writes acknowledged, %d errors %q", w.name, n, len(errs), errs)
	}
}

// haTrials is how many deaths or crashes one iteration of the doctor's
// benchmarks measures, on one cluster (a benchmark run with -benchtime 3x
// would set a cluster up twice: testing runs it with b.N = 1 first).
const haTrials = 3

// firstWriteAfter waits until w's writes resume after an outage that began
// at from, and returns how long after from: the first acknowledgement
// after from that follows a gap longer than three periods (a write
// acknowledged just as the node died does not end the outage).
func (w *pauseWriter) firstWriteAfter(t testing.TB, from time.Time, period time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		w.mu.Lock()
		var first time.Time
		for i := 1; i < len(w.acks); i++ {
			if w.acks[i].After(from) && w.acks[i].Sub(w.acks[i-1]) > 3*period {
				first = w.acks[i]
				break
			}
		}
		w.mu.Unlock()
		if !first.IsZero() {
			return first.Sub(from)
		}
		if time.Now().After(deadline) {
			_, errs := w.acked()
			t.Fatalf("%s writer: writes did not resume within 60 s; errors: %q", w.name, errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// haBench is the demo topology with the doctor on at its defaults and two
// clients writing one row every 50 ms into dn1's group: one directly
// through a multi-host connection string over dn1 and dn1s
// (target_session_attrs=read-write), one through coordinator cn1.
type haBench struct {
	c             *testCluster
	direct, coord *pauseWriter
	wg            sync.WaitGroup
	master, slave string // dn1's group: its master and slave now
	period        time.Duration
}

// demoWriters sets up the demo topology and two writers (not started yet)
// of one row each into dn1's group: directly, through a multi-host
// connection string over dn1 and dn1s (target_session_attrs=read-write),
// into table <prefix>_direct; and through coordinator cn1 into distributed
// table <prefix>_coord, on a row that lands on dn1.
func demoWriters(b *testing.B, prefix string) (c *testCluster, direct, coord *pauseWriter) {
	c = newTestCluster(b, 3)
	c.addDemo(b, false)
	c.mustRows(b, time.Minute, "START AGENT ALL")
	c.mustRows(b, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(b, c.node("dn1"), "CREATE TABLE "+prefix+"_direct (n int)")
	c.mustNodeSQL(b, c.node("cn1"), fmt.Sprintf("CREATE TABLE %[1]s (id int NOT NULL, n int); SELECT adb.create_distributed_table('%[1]s', 'id'); INSERT INTO %[1]s SELECT g, 0 FROM generate_series(1, 100) g", prefix+"_coord"))
	id := c.idOn(b, "cn1", prefix+"_coord", "dn1")
	return c, &pauseWriter{name: "direct", dsn: c.directDSN("dn1", "dn1s"), sql: "INSERT INTO " + prefix + "_direct VALUES ($1)"},
		&pauseWriter{name: "coordinator", dsn: c.nodeConnString(c.node("cn1")), sql: "INSERT INTO " + prefix + "_coord VALUES (" + id + ", $1)"}
}

func newHABench(b *testing.B) *haBench {
	c, direct, coord := demoWriters(b, "ha")
	c.mustRows(b, time.Minute, "START DOCTOR")
	h := &haBench{c: c, direct: direct, coord: coord, master: "dn1", slave: "dn1s", period: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	for _, w := range []*pauseWriter{h.direct, h.coord} {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); w.run(ctx, h.period) }()
	}
	b.Cleanup(func() { cancel(); h.wg.Wait() })
	return h
}

// firstWrites is how long after from each client's writes resumed.
func (h *haBench) firstWrites(b *testing.B, from time.Time) (direct, coord time.Duration) {
	return h.direct.firstWriteAfter(b, from, h.period), h.coord.firstWriteAfter(b, from, h.period)
}

// logWriters logs what the writers saw over the whole benchmark.
func (h *haBench) logWriters(b *testing.B) {
	for _, w := range []*pauseWriter{h.direct, h.coord} {
		n, errs := w.acked()
		all := len(errs)
		if all > 3 {
			errs = errs[:3]
		}
		b.Logf("%s writer: %d writes acknowledged, %d errors, the first %q", w.name, n, all, errs)
	}
}

// reportSpread reports the median and min–max of ds, in ms, as name-*.
func reportSpread(b *testing.B, name string, ds []time.Duration) {
	ds = append([]time.Duration(nil), ds...)
	med := median(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(med), name+"-median-ms")
	b.ReportMetric(ms(ds[0]), name+"-min-ms")
	b.ReportMetric(ms(ds[len(ds)-1]), name+"-max-ms")
	fmt.Printf("%s: median %v (%v–%v) over %d trials\n", name, med.Round(time.Millisecond),
		ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
}

// BenchmarkDoctorNodeDeath measures, at the doctor's defaults, how long
// after the death of dn1's group's master — its postmaster and its host's
// agent killed, as the host's death would — each client writes again
// (target ≤ 1.5 s on both paths; Patroni 20.5–24.7 s, pg_auto_failover
// 8.4–51 s on this machine), and the doctor's full repair: once the
// catalog shows the failover, the agent is started again and the time
// until the old master streams as a sync or potential slave of the new one
// (target ≤ 10 s). Each iteration kills the group's master of the moment
// (haTrials of them; run with -benchtime 1x).
func BenchmarkDoctorNodeDeath(b *testing.B) {
	h := newHABench(b)
	c := h.c
	var pd, pc, repair []time.Duration
	b.ResetTimer()
	for i := 0; i < haTrials*b.N; i++ {
		time.Sleep(2 * time.Second) // both writers steady before the death
		old, host := h.master, c.node(h.master).Host
		c.killNodeAndAgent(b, old, host)
		killed := time.Now()
		waitFor(b, 60*time.Second, h.slave+" made master by the doctor", func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, type) "+h.slave)
			return err == nil && fmt.Sprint(rows) == "[["+h.slave+" datanode master]]", fmt.Sprint(rows, err)
		})
		failedOver := time.Now()
		h.master, h.slave = h.slave, old
		c.mustRows(b, time.Minute, "START AGENT "+host)
		waitFor(b, 90*time.Second, old+" back as a streaming slave of "+h.master, func() (bool, string) {
			rows, _, err := c.psqlRows(10*time.Second, "LIST NODE (name, mastername, sync_state, incluster) "+old)
			if err != nil || len(rows) != 1 || rows[0][1] != h.master || rows[0][3] != "t" || (rows[0][2] != "sync" && rows[0][2] != "potential") {
				return false, fmt.Sprint(rows, err)
			}
			got, err := c.replication(c.node(h.master))
			return err == nil && (got[old] == "sync" || got[old] == "potential"), fmt.Sprint(got, err)
		})
		r := time.Since(failedOver)
		d, v := h.firstWrites(b, killed)
		pd, pc, repair = append(pd, d), append(pc, v), append(repair, r)
		fmt.Printf("trial %d, %s died: first write direct %v, through a coordinator %v; catalog failed over after %v; repaired %v after that\n",
			i+1, old, d.Round(time.Millisecond), v.Round(time.Millisecond), failedOver.Sub(killed).Round(time.Millisecond), r.Round(time.Millisecond))
		h.traceTrial(b, killed, old, h.master)
	}
	b.StopTimer()
	reportSpread(b, "direct", pd)
	reportSpread(b, "coord", pc)
	reportSpread(b, "repair", repair)
	h.logWriters(b)
}

// BenchmarkDoctorCrashInPlace measures, at the doctor's defaults, how long
// after a crash of dn1's postmaster (kill -9; its host and agent alive, so
// the doctor restarts it in place) each client writes again. Target:
// ≤ 1.0 s (Patroni 3.1–4.8 s, pg_auto_failover ≈ 5 s on this machine).
// Each iteration is haTrials crashes; run with -benchtime 1x.
func BenchmarkDoctorCrashInPlace(b *testing.B) {
	h := newHABench(b)
	c := h.c
	var pd, pc []time.Duration
	b.ResetTimer()
	for i := 0; i < haTrials*b.N; i++ {
		time.Sleep(2 * time.Second) // both writers steady, the slave streaming
		waitFor(b, 30*time.Second, h.slave+" streams", func() (bool, string) {
			got, err := c.replication(c.node(h.master))
			return err == nil && got[h.slave] == "sync", fmt.Sprint(got, err)
		})
		syscall.Kill(postmasterPID(b, c.node(h.master)), syscall.SIGKILL)
		killed := time.Now()
		d, v := h.firstWrites(b, killed)
		pd, pc = append(pd, d), append(pc, v)
		rows, _ := c.mustRows(b, time.Minute, "LIST NODE (name, type) "+h.master)
		if fmt.Sprint(rows) != "[["+h.master+" datanode master]]" {
			b.Fatalf("%s after its crash: %q (restarted in place expected)", h.master, rows)
		}
		fmt.Printf("trial %d, %s crashed: first write direct %v, through a coordinator %v\n",
			i+1, h.master, d.Round(time.Millisecond), v.Round(time.Millisecond))
		h.traceTrial(b, killed, h.master, h.slave)
	}
	b.StopTimer()
	reportSpread(b, "direct", pd)
	reportSpread(b, "coord", pc)
	h.logWriters(b)
}

// traceTrial prints, when ADBMGR_BENCH_TRACE is set, what happened after
// from: the manager's doctor lines and the server logs of nodes, each line
// with its offset from from, to see where an outage's time goes.
func (h *haBench) traceTrial(b *testing.B, from time.Time, nodes ...string) {
	if os.Getenv("ADBMGR_BENCH_TRACE") == "" {
		return
	}
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	add := func(who, text string, at time.Time) {
		if !at.Before(from.Add(-100*time.Millisecond)) && at.Before(from.Add(10*time.Second)) {
			lines = append(lines, line{at, who + ": " + text})
		}
	}
	for _, l := range strings.Split(h.c.M.log.String(), "\n") {
		if !strings.HasPrefix(l, "time=") || !strings.Contains(l, "doctor") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			add("mgr", l[len("time=")+len(ts)+1:], at)
		}
	}
	for _, n := range nodes {
		logs, _ := filepath.Glob(filepath.Join(h.c.node(n).Path, "log", "*"))
		for _, f := range logs {
			data, _ := os.ReadFile(f)
			for _, l := range strings.Split(string(data), "\n") {
				// "2026-11-30 17:00:00.123 UTC [pid] ..."
				if len(l) < 27 {
					continue
				}
				if at, err := time.Parse("2006-01-02 15:04:05.000 MST", l[:27]); err == nil {
					add(n, l[28:], at)
				}
			}
		}
	}
	for _, w := range []*pauseWriter{h.direct, h.coord} {
		w.mu.Lock()
		for i := 1; i < len(w.acks); i++ {
			if w.acks[i].After(from) && w.acks[i].Sub(w.acks[i-1]) > 3*h.period {
				add(w.name+" writer", "first write", w.acks[i])
				break
			}
		}
		w.mu.Unlock()
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	dup := map[string]bool{}
	for _, l := range lines {
		// pg_rewind copies the source's log directory: its lines twice.
		_, text, _ := strings.Cut(l.text, ": ")
		if k := l.at.String() + text; dup[k] {
			continue
		} else {
			dup[k] = true
		}
		fmt.Printf("  %+6dms %s\n", l.at.Sub(from).Milliseconds(), l.text)
	}
}

// BenchmarkDoctorNoFalseFailover loads a healthy demo cluster for
// falseFailoverLoad with the doctor on at its defaults (loadHealthy) and
// reports what the doctor did meanwhile: doctor-actions (the journal's
// DOCTOR entries; the benchmark fails unless it is 0: no restart,
// failover, isolation, fence or refresh of a healthy node) and
// doctor-warnings (its log's warnings, such as a look that failed), with
// the load's throughput.
func BenchmarkDoctorNoFalseFailover(b *testing.B) {
	c := newTestCluster(b, 3)
	b.ResetTimer()
	warnings, tps := loadHealthy(b, c, falseFailoverLoad, b.N)
	b.StopTimer()
	b.ReportMetric(0, "doctor-actions") // loadHealthy fails otherwise
	b.ReportMetric(float64(warnings)/float64(b.N), "doctor-warnings")
	b.ReportMetric(tps/float64(b.N), "tps")
}

// falseFailoverLoad is how long BenchmarkDoctorNoFalseFailover loads the
// cluster in each iteration.
const falseFailoverLoad = 40 * time.Second

// loadHealthy sets up the demo topology on c with the doctor on at its
// defaults and loads it trials times for load — pgbench's TPC-B-like
// writes on both datanode masters (each commit waits for its sync slave),
// inserts into a distributed table through coordinator cn1 and read-only
// pgbench on the slaves, more clients than the machine has cores — then
// fails t if the doctor took any action (a journal DOCTOR entry) or a
// master changed. It returns the doctor's warnings (a look that failed…)
// and the summed throughput of all trials.
func loadHealthy(t testing.TB, c *testCluster, load time.Duration, trials int) (warnings int, tps float64) {
	t.Helper()
	c.addDemo(t, false)
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	bindir, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Fatalf("pg_config --bindir: %v", err)
	}
	pgbench := filepath.Join(strings.TrimSpace(string(bindir)), "pgbench")
	run := func(ctx context.Context, n string, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, pgbench, append(args, c.nodeConnString(c.node(n)))...).CombinedOutput()
		return string(out), err
	}
	for _, n := range []string{"dn1", "dn2"} {
		if out, err := run(context.Background(), n, "-i", "-q", "-s", "2"); err != nil {
			t.Fatalf("pgbench -i on %s: %v\n%s", n, err, out)
		}
	}
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE ff_coord (id int NOT NULL, n int); SELECT adb.create_distributed_table('ff_coord', 'id')")
	script := filepath.Join(t.TempDir(), "coord.sql")
	if err := os.WriteFile(script, []byte("\\set id random(1, 1000)\nINSERT INTO ff_coord VALUES (:id, 1);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustRows(t, time.Minute, "START DOCTOR")
	secs := strconv.Itoa(int(load / time.Second))
	loads := []struct {
		node string
		args []string
	}{
		{"dn1", []string{"-n", "-c", "6", "-j", "2", "-T", secs}},
		{"dn2", []string{"-n", "-c", "6", "-j", "2", "-T", secs}},
		{"cn1", []string{"-n", "-c", "4", "-j", "2", "-T", secs, "-f", script}},
		{"dn1s", []string{"-n", "-S", "-c", "2", "-T", secs}},
		{"dn2s", []string{"-n", "-S", "-c", "2", "-T", secs}},
	}
	tpsLine := regexp.MustCompile(`tps = ([0-9.]+)`)
	for i := 0; i < trials; i++ {
		before := strings.Count(c.M.log.String(), "level=WARN msg=\"doctor:")
		outs, errs := make([]string, len(loads)), make([]error, len(loads))
		var wg sync.WaitGroup
		for j, l := range loads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), load+time.Minute)
				defer cancel()
				outs[j], errs[j] = run(ctx, l.node, l.args...)
			}()
		}
		wg.Wait()
		for j, l := range loads {
			m := tpsLine.FindStringSubmatch(outs[j])
			if errs[j] != nil || m == nil {
				t.Fatalf("pgbench on %s: %v\n%s", l.node, errs[j], outs[j])
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			tps += v
			t.Logf("trial %d: pgbench on %s: %s tps", i+1, l.node, m[1])
		}
		warnings += strings.Count(c.M.log.String(), "level=WARN msg=\"doctor:") - before
	}
	if rows, _ := c.mustRows(t, time.Minute, "SELECT command, status, detail FROM journal WHERE command LIKE 'DOCTOR%'"); len(rows) > 0 {
		t.Fatalf("the doctor acted on a healthy cluster under load: %q\n%s", rows, tailLines(c.M.log.String(), 40))
	}
	if rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type) dn1, dn2"); fmt.Sprint(rows) != "[[dn1 datanode master] [dn2 datanode master]]" {
		t.Fatalf("masters after the load: %q", rows)
	}
	return warnings, tps
}
