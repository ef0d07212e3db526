package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adbmgr/adbmgr/internal/pgctl"
	"github.com/adbmgr/adbmgr/internal/pki"
)

// BenchmarkDistributed measures distributed tables through a coordinator of
// the demo topology (cn1; two datanode masters, each with a sync slave)
// against the same work on one plain PostgreSQL 15 that the benchmark
// starts on this machine, in the same run: pgbench scripts of
// testdata/bench, each case run on the plain server then on the
// coordinator, ADBMGR_BENCH_TRIALS times (3), and the median of the
// trials' ratios (coordinator's throughput / plain server's) reported
// against issue 10's targets. Both servers are reached over TCP with TLS
// checked against the manager's CA (verify-full), pgbench in simple query
// mode, connection time left out. Each pgbench run is one session: its
// first statement through the coordinator also connects to the datanodes
// (TLS, and the two-phase commit's own connections at the first write),
// so the statements that take a run of few transactions (the 1 M-row
// reads, the bulk loads) run 10 of them, which makes that a tenth of one
// at most: the figures are a session's steady state. Run with
// -benchtime 1x.
//
// Cases, targets in brackets: single-row INSERT and SELECT by key at 1 and
// 8 clients, ADBMGR_BENCH_SECONDS (10) each [≥ 0.5]; count/sum/avg/min/max,
// GROUP BY the distribution column and GROUP BY another column over 1 M
// rows [≥ 1.0]; bulk load of 100,000 rows with INSERT … SELECT and with
// COPY [≥ 0.5]; create_distributed_table of a 64-slot table [< 500 ms]. For
// reading the INSERT figures it also runs the INSERT straight on datanode
// dn1 (a shard table): the plain server has no sync slave to wait for at
// each commit, the datanodes do. So the writes (INSERT by key, INSERT …
// SELECT, COPY) also run on a second plain server that has a sync standby
// of its own, as each datanode master has, and their ratio to it is the
// like-for-like one checked against the target; the ratio to the server
// without a standby is printed beside it. The datanodes run without
// parallel workers, as the demo sets them (the two masters share the
// machine's cores). With ADBMGR_BENCH_UNTUNED set, the
// coordinator's datanode servers lose their tuning options (fetch_size,
// batch_size, async_capable) once the tables are loaded; with
// ADBMGR_BENCH_NOROUTER set, cn1 runs without adb.router (every
// statement through postgres_fdw). ADBMGR_BENCH_CASES, a regular
// expression, picks the cases run by name (e.g. "by key": the single-row
// ones; the 1 M-row table is loaded only for the cases that read it).
// With ADBMGR_BENCH_HOLD naming a file, the benchmark writes the servers'
// connection strings there once the tables are loaded and waits until the
// file is removed, for profiling by hand.
func BenchmarkDistributed(b *testing.B) {
	trials := envInt("ADBMGR_BENCH_TRIALS", 3)
	secs := strconv.Itoa(envInt("ADBMGR_BENCH_SECONDS", 10))
	c := newTestCluster(b, 3)
	c.addDemo(b, false)
	c.mustRows(b, time.Minute, "START AGENT ALL")
	c.mustRows(b, 5*time.Minute, "INIT ALL")
	plain := startPlainPG(b, c, "plain", false)
	plainSync := startPlainPG(b, c, "plain-sync", true)
	cn := c.nodeConnString(c.node("cn1"))

	cdt := createDistributedTimes(b, c, trials)

	const setup = `CREATE TABLE bench_ins (id bigint PRIMARY KEY, v text);
CREATE TABLE bench_kv (id bigint PRIMARY KEY, v text);
CREATE TABLE bench_big (id bigint NOT NULL, g int, v int);
CREATE TABLE bench_load (id bigint NOT NULL, g int, v int);`
	only := regexp.MustCompile(os.Getenv("ADBMGR_BENCH_CASES"))
	// bench_big in 4 statements: each psql on a node has 30 s.
	load := []string{"INSERT INTO bench_kv SELECT n, md5(n::text) FROM generate_series(1, 100000) n"}
	if only.MatchString("count/sum/avg/min/max, 1 M rows") || only.MatchString("GROUP BY") {
		for n := 0; n < 1000000; n += 250000 {
			load = append(load, fmt.Sprintf("INSERT INTO bench_big SELECT n, n %% 100, n %% 1000 FROM generate_series(%d, %d) n", n+1, n+250000))
		}
	}
	plain.mustSQL(b, setup)
	plain.mustSQL(b, strings.Join(load, ";\n"))
	plain.mustSQL(b, "VACUUM ANALYZE")
	plainSync.mustSQL(b, setup)
	c.mustNodeSQL(b, c.node("cn1"), setup+`
SELECT adb.create_distributed_table('bench_ins', 'id');
SELECT adb.create_distributed_table('bench_kv', 'id');
SELECT adb.create_distributed_table('bench_big', 'id');
SELECT adb.create_distributed_table('bench_load', 'id');`)
	// create_distributed_table gives the shards the table's primary key,
	// so that lookups by key use an index as on the plain server.
	for _, dn := range []string{"dn1", "dn2"} {
		if n := c.nodeValue(b, c.node(dn), `SELECT count(*) FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ '^bench_(ins|kv)_[0-9]+$'
	AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)`); n != "0" {
			b.Fatalf("%s shards on %s have no primary key", n, dn)
		}
	}
	for _, l := range load {
		c.mustNodeSQL(b, c.node("cn1"), l)
	}
	for _, dn := range []string{"dn1", "dn2"} {
		// As on the plain server, every page all-visible (scans skip the
		// per-row visibility check): a datanode's VACUUM sets that only
		// once its sync slave's hot_standby_feedback has moved past the
		// load's transactions, which can take a few seconds.
		waitFor(b, time.Minute, dn+"'s bench tables all-visible", func() (bool, string) {
			c.mustNodeSQL(b, c.node(dn), "VACUUM ANALYZE")
			v := c.nodeValue(b, c.node(dn), `SELECT count(*) FROM pg_class WHERE relname ~ '^bench_(kv|big)_[0-9]+$' AND relkind = 'r' AND relallvisible < relpages`)
			return v == "0", v + " shards not all-visible"
		})
	}
	c.mustNodeSQL(b, c.node("cn1"), "ANALYZE bench_kv; ANALYZE bench_big")
	if os.Getenv("ADBMGR_BENCH_NOROUTER") != "" {
		// The figures without the router (ext/adb router.c): every
		// statement through postgres_fdw, as before it.
		c.mustNodeSQL(b, c.node("cn1"), "ALTER DATABASE postgres SET adb.router = off")
	}
	// As the demo (scripts/demo.sh) sets it: the datanodes start no
	// parallel workers, their masters already share the machine's two
	// cores (the plain server keeps PostgreSQL's default of 2).
	c.mustRows(b, time.Minute, "SET DATANODE ALL (max_parallel_workers_per_gather = 0)")
	if os.Getenv("ADBMGR_BENCH_UNTUNED") != "" {
		// The figures without the servers' tuning (coord.EnsureServer),
		// for comparison: postgres_fdw's defaults.
		c.mustNodeSQL(b, c.node("cn1"), `DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT srvname FROM pg_foreign_server LOOP
		EXECUTE format('ALTER SERVER %I OPTIONS (DROP fetch_size, DROP batch_size, DROP async_capable)', r.srvname);
	END LOOP;
END $$`)
	}

	// COPY reads a file on the server's side: both servers run here as
	// the same OS user, so one file serves both.
	csv := filepath.Join(c.Dir, "bench_load.csv")
	var rows strings.Builder
	for n := 1; n <= 100000; n++ {
		fmt.Fprintf(&rows, "%d,%d,%d\n", n, n%100, n)
	}
	if err := os.WriteFile(csv, []byte(rows.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if hold := os.Getenv("ADBMGR_BENCH_HOLD"); hold != "" {
		// For profiling by hand: the servers' connection strings go to
		// the file named, and the cluster stays up until it is removed.
		info := fmt.Sprintf("plain\t%s\nplain-sync\t%s\ncn1\t%s\ndn1\t%s\ndn2\t%s\n", plain.conn, plainSync.conn, cn,
			c.nodeConnString(c.node("dn1")), c.nodeConnString(c.node("dn2")))
		if err := os.WriteFile(hold, []byte(info), 0o644); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := os.Stat(hold); err != nil {
				break
			}
			time.Sleep(time.Second)
		}
	}
	// The INSERT straight to a datanode goes to a shard dn1 holds.
	shard := "bench_ins_" + c.nodeValue(b, c.node("cn1"), "SELECT min(slot) FROM adb.slot WHERE node = 'dn1'")

	type benchCase struct {
		name   string
		target float64
		args   []string
		// stmt: the measure is that statement's latency (pgbench -r),
		// not the transactions per second.
		stmt string
		// write: the ratio that counts is to the plain server with a
		// sync standby.
		write bool
	}
	single := func(script string, clients int, extra ...string) []string {
		return append([]string{"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)), "-T", secs, "-f", benchScript(b, script)}, extra...)
	}
	cases := []benchCase{
		{name: "INSERT by key, 1 client", target: 0.5, write: true, args: single("insert.sql", 1, "-D", "tbl=bench_ins")},
		{name: "INSERT by key, 8 clients", target: 0.5, write: true, args: single("insert.sql", 8, "-D", "tbl=bench_ins")},
		{name: "SELECT by key, 1 client", target: 0.5, args: single("select.sql", 1, "-D", "rows=100000")},
		{name: "SELECT by key, 8 clients", target: 0.5, args: single("select.sql", 8, "-D", "rows=100000")},
		{name: "count/sum/avg/min/max, 1 M rows", target: 1, args: []string{"-t", "10", "-f", benchScript(b, "agg.sql")}},
		{name: "GROUP BY distribution column, 1 M rows", target: 1, args: []string{"-t", "10", "-f", benchScript(b, "groupby_dist.sql")}},
		{name: "GROUP BY other column, 1 M rows", target: 1, args: []string{"-t", "10", "-f", benchScript(b, "groupby.sql")}},
		{name: "INSERT … SELECT 100,000 rows", target: 0.5, write: true, stmt: "INSERT", args: []string{"-t", "10", "-r", "-D", "rows=100000", "-f", benchScript(b, "insert_select.sql")}},
		{name: "COPY 100,000 rows", target: 0.5, write: true, stmt: "COPY", args: []string{"-t", "10", "-r", "-D", "file='" + csv + "'", "-f", benchScript(b, "copy.sql")}},
	}
	var picked []benchCase
	for _, k := range cases {
		if only.MatchString(k.name) {
			picked = append(picked, k)
		}
	}
	cases = picked
	ratios, standalone := make([][]float64, len(cases)), make([][]float64, len(cases))
	plainRate, syncRate, cnRate := make([][]float64, len(cases)), make([][]float64, len(cases)), make([][]float64, len(cases))
	var direct []float64
	b.ResetTimer()
	for trial := 0; trial < trials; trial++ {
		for i, k := range cases {
			p := pgbenchRate(b, plain.conn, k.stmt, k.args)
			like := p
			if k.write {
				like = pgbenchRate(b, plainSync.conn, k.stmt, k.args)
				syncRate[i] = append(syncRate[i], like)
			}
			q := pgbenchRate(b, cn, k.stmt, k.args)
			plainRate[i], cnRate[i] = append(plainRate[i], p), append(cnRate[i], q)
			ratios[i], standalone[i] = append(ratios[i], q/like), append(standalone[i], q/p)
		}
		direct = append(direct, pgbenchRate(b, c.nodeConnString(c.node("dn1")), "", single("insert.sql", 1, "-D", "tbl="+shard)))
	}
	b.StopTimer()

	var out strings.Builder
	fmt.Fprintf(&out, "\n%-42s %10s %10s %12s %8s %8s %8s  (median of %d trials; rate = transactions or statements per second;\n"+
		"%-42s %10s %10s %12s %8s %8s  ratio: to plain+sync for writes, to plain for reads)\n",
		"case", "plain", "plain+sync", "coordinator", "ratio", "target", "to plain", trials, "", "", "standby", "", "", "")
	for i, k := range cases {
		r := medianOf(ratios[i])
		miss := ""
		if r < k.target {
			miss = "  MISSED"
		}
		sync, toPlain := "", ""
		if k.write {
			sync, toPlain = fmt.Sprintf("%.1f", medianOf(syncRate[i])), fmt.Sprintf("%.2f×", medianOf(standalone[i]))
			b.ReportMetric(medianOf(standalone[i]), metricName(k.name+" to plain"))
		}
		fmt.Fprintf(&out, "%-42s %10.1f %10s %12.1f %7.2f× %7.1f× %8s%s\n", k.name, medianOf(plainRate[i]), sync, medianOf(cnRate[i]), r, k.target, toPlain, miss)
		b.ReportMetric(r, metricName(k.name))
	}
	fmt.Fprintf(&out, "%-42s %12s %12.1f   (a datanode master with its sync slave, no coordinator)\n", "INSERT by key, 1 client, on dn1", "", medianOf(direct))
	miss := ""
	if medianOf(cdt) >= 500 {
		miss = "  MISSED"
	}
	fmt.Fprintf(&out, "%-42s %12s %9.0f ms %8s %8s%s\n", "create_distributed_table, 64 slots", "", medianOf(cdt), "", "< 500 ms", miss)
	b.ReportMetric(medianOf(cdt), "create_dist_ms")
	b.ReportMetric(0, "ns/op")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&out, "load average at the end: %s", load)
	}
	// Printed, not logged: the testing package cuts a benchmark's log
	// to its first lines.
	fmt.Print(out.String())
}

// createDistributedTimes times create_distributed_table of an empty
// two-column table on cn1, trials times, as a client sees the call (the
// connection is open already), in milliseconds; each table is dropped
// again.
func createDistributedTimes(b *testing.B, c *testCluster, trials int) []float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.nodeConnString(c.node("cn1")))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ms []float64
	for i := 0; i < trials; i++ {
		t := fmt.Sprintf("bench_cdt_%d", i)
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, v text)", t)); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := conn.Exec(ctx, fmt.Sprintf("SELECT adb.create_distributed_table('%s', 'id')", t)); err != nil {
			b.Fatal(err)
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		if _, err := conn.Exec(ctx, fmt.Sprintf("SELECT adb.drop_distributed_table('%s')", t)); err != nil {
			b.Fatal(err)
		}
	}
	return ms
}

// plainPG is one of the benchmark's plain PostgreSQL 15 servers: initdb'd
// as the cluster's OS user under the test cluster's directory (in name),
// on 127.0.0.1 with TLS (a server certificate from the manager's CA, so
// clients check it as they check the nodes'), its settings PostgreSQL's
// defaults; with syncStandby, a standby made by pg_basebackup streams
// from it and is its synchronous standby, as a datanode's sync slave is.
type plainPG struct {
	conn string
}

func startPlainPG(b *testing.B, c *testCluster, name string, syncStandby bool) *plainPG {
	b.Helper()
	bindir, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		b.Fatalf("pg_config --bindir: %v", err)
	}
	r, err := pgctl.New(filepath.Dir(strings.TrimSpace(string(bindir))), "postgres")
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(c.Dir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	uid, gid := r.Owner()
	if err := os.Chown(dir, uid, gid); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := filepath.Join(dir, "data")
	if _, err := r.Run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth-local=peer", "--auth-host=trust"); err != nil {
		b.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(c.M.Dir, "pki"))
	if err != nil {
		b.Fatal(err)
	}
	cert, key, err := ca.Issue("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, nil, true, false)
	if err != nil {
		b.Fatal(err)
	}
	port := freePortOn(b, "127.0.0.1")
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nssl = on\n", port, dir)
	for name, body := range map[string][]byte{"server.crt": cert, "server.key": key} {
		if err := os.WriteFile(filepath.Join(data, name), body, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Chown(filepath.Join(data, name), uid, gid); err != nil {
			b.Fatal(err)
		}
	}
	appendConf(b, data, conf)
	start := func(data, log string) {
		if _, err := r.Run(ctx, "pg_ctl", "-D", data, "-l", log, "-w", "start"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := r.Run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "stop"); err != nil {
				b.Logf("stop %s: %v", data, err)
			}
		})
	}
	start(data, filepath.Join(dir, "log"))
	p := &plainPG{
		conn: fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=verify-full sslrootcert=%s",
			port, filepath.Join(c.M.Dir, "pki", "ca.crt")),
	}
	if !syncStandby {
		return p
	}
	// The standby: a copy over the server's socket (initdb's pg_hba lets
	// the OS user replicate there), on a port and socket of its own.
	standby := filepath.Join(dir, "standby")
	if _, err := r.Run(ctx, "pg_basebackup", "-h", dir, "-p", strconv.Itoa(port), "-U", "postgres", "-D", standby, "-R", "-X", "stream"); err != nil {
		b.Fatal(err)
	}
	sockets := filepath.Join(dir, "standby-sockets")
	if err := os.Mkdir(sockets, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.Chown(sockets, uid, gid); err != nil {
		b.Fatal(err)
	}
	appendConf(b, standby, fmt.Sprintf("listen_addresses = ''\nport = %d\nunix_socket_directories = '%s'\n", freePortOn(b, "127.0.0.1"), sockets))
	start(standby, filepath.Join(dir, "standby.log"))
	p.mustSQL(b, "ALTER SYSTEM SET synchronous_standby_names = '*'")
	p.mustSQL(b, "SELECT pg_reload_conf()")
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := exec.Command("psql", "-X", "-A", "-t", "-c", "SELECT sync_state FROM pg_stat_replication", p.conn).Output()
		if err == nil && strings.TrimSpace(string(out)) == "sync" {
			return p
		}
		if time.Now().After(deadline) {
			b.Fatalf("the plain server's standby is not its sync standby after a minute: %s %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// appendConf appends settings to the postgresql.conf of data directory data.
func appendConf(b *testing.B, data, conf string) {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
}

// mustSQL runs sql on the plain server with psql.
func (p *plainPG) mustSQL(b *testing.B, sql string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql, p.conn).CombinedOutput()
	if err != nil {
		b.Fatalf("%s on the plain server: %v\n%s", sql, err, out)
	}
}

// benchScript is the path of a pgbench script of testdata/bench.
func benchScript(b *testing.B, name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", "bench", name))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

var (
	tpsRE     = regexp.MustCompile(`tps = ([0-9.]+)`)
	stmtLatRE = regexp.MustCompile(`(?m)^\s+([0-9.]+)\s+(?:[0-9]+\s+)?(\S+)`)
)

// pgbenchRate runs pgbench with args on conn (simple query mode, no
// vacuum) and returns transactions per second, or with stmt (and -r in
// args) the statements per second of the script's statement that starts
// with stmt: 1000 / its average latency in ms.
func pgbenchRate(b *testing.B, conn, stmt string, args []string) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pgbench", append(append([]string{"-n"}, args...), conn)...).CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench %s on %s: %v\n%s", strings.Join(args, " "), conn, err, out)
	}
	if stmt == "" {
		m := tpsRE.FindSubmatch(out)
		if m == nil {
			b.Fatalf("no tps in pgbench's output:\n%s", out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	for _, m := range stmtLatRE.FindAllSubmatch(out, -1) {
		if string(m[2]) == stmt {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			return 1000 / v
		}
	}
	b.Fatalf("no latency of %s in pgbench's output:\n%s", stmt, out)
	return 0
}

func medianOf(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// metricName makes a benchmark metric's unit of a case's name (no spaces).
func metricName(s string) string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
	return strings.Join(f, "-") + "-ratio"
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
