package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pauseWriter is a client writing one row every period over its own
// connection, reconnecting after an error, which records when each write
// was acknowledged: the longest gap between two acknowledgements around a
// switch is the write pause a client sees.
type pauseWriter struct {
	name, dsn, sql string

	mu   sync.Mutex
	acks []time.Time
	errs []string
}

// run writes until ctx ends.
func (w *pauseWriter) run(ctx context.Context, period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := func() error {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if conn == nil {
				c, err := pgx.Connect(wctx, w.dsn)
				if err != nil {
					return err
				}
				conn = c
			}
			_, err := conn.Exec(wctx, w.sql, n)
			return err
		}()
		w.mu.Lock()
		if err == nil {
			w.acks = append(w.acks, time.Now())
		} else if ctx.Err() == nil {
			w.errs = append(w.errs, err.Error())
		}
		w.mu.Unlock()
		if err != nil && conn != nil {
			conn.Close(context.Background())
			conn = nil
		}
	}
}

// acked is how many writes were acknowledged, and the errors seen.
func (w *pauseWriter) acked() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks), append([]string(nil), w.errs...)
}

// pause is the longest gap between two consecutive acknowledgements that
// overlaps [from, to]; ok is false until a write was acknowledged after to.
func (w *pauseWriter) pause(from, to time.Time) (d time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.acks); i++ {
		a, b := w.acks[i-1], w.acks[i]
		if b.Before(from) || a.After(to) {
			continue
		}
		d = max(d, b.Sub(a))
	}
	return d, len(w.acks) > 0 && w.acks[len(w.acks)-1].After(to)
}

// waitPause waits until w acknowledged a write after to and returns its
// pause over [from, to].
func (w *pauseWriter) waitPause(t testing.TB, from, to time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, ok := w.pause(from, to)
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			_, errs := w.acked()
			t.Fatalf("%s writer: no write acknowledged within 30 s after the switch; errors: %q", w.name, errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// timedNotice is a NOTICE with the time it arrived.
type timedNotice struct {
	at  time.Time
	msg string
}

// noticedRows runs sql on the manager over pgx and returns its rows (as
// text), the NOTICEs with their arrival times, and the error.
func (c *testCluster) noticedRows(timeout time.Duration, sql string) ([][]string, []timedNotice, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, c.M.Port))
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var notices []timedNotice
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, timedNotice{time.Now(), n.Message})
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return out, notices, err
		}
		var r []string
		for _, x := range v {
			r = append(r, fmt.Sprint(x))
		}
		out = append(out, r)
	}
	mu.Lock()
	defer mu.Unlock()
	return out, notices, rows.Err()
}

// noticeLog renders notices relative to start, for a log.
func noticeLog(start time.Time, ns []timedNotice) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "  %6.0f ms  %s\n", float64(n.at.Sub(start).Microseconds())/1000, n.msg)
	}
	return b.String()
}

// idOn is a value of column id of distributed table tbl whose row lands
// on datanode dn (the table holds rows 1..100).
func (c *testCluster) idOn(t testing.TB, coord, tbl, dn string) string {
	t.Helper()
	return c.nodeValue(t, c.node(coord), fmt.Sprintf(`SELECT t.id FROM %[1]s t JOIN pg_foreign_table ft ON ft.ftrelid = t.tableoid
		JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = '%[2]s' ORDER BY t.id LIMIT 1`, tbl, dn))
}

// directDSN is a multi-host connection string over nodes that connects to
// the one accepting writes.
func (c *testCluster) directDSN(nodes ...string) string {
	var hosts, ports []string
	for _, n := range nodes {
		s := c.node(n)
		hosts = append(hosts, c.host(s.Host).Addr)
		ports = append(ports, fmt.Sprint(s.Port))
	}
	n := c.node(nodes[0])
	return strings.Replace(c.nodeConnString(n), fmt.Sprintf("host=%s port=%d", c.host(n.Host).Addr, n.Port),
		fmt.Sprintf("host=%s port=%s target_session_attrs=read-write connect_timeout=2", strings.Join(hosts, ","), strings.Join(ports, ",")), 1)
}

// median is the median of ds (sorted in place).
func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)/2]
}

// TestSwitchoverWaitsForTransactions is AntDB's quiesce (reference §4.12
// step 7): an open transaction through a coordinator makes SWITCHOVER wait
// up to maxTrys seconds and refuse with nothing switched; once it ends
// the switch goes on, and writes through the coordinator meanwhile wait
// and then succeed; with FORCE the open transaction is ended.
func TestSwitchoverWaitsForTransactions(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h3", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.addNode(t, "datanode master", "dn2", "", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE acct (id int NOT NULL, n int); SELECT adb.create_distributed_table('acct', 'id'); INSERT INTO acct SELECT g, 0 FROM generate_series(1, 100) g")
	id := c.idOn(t, "cn1", "acct", "dn1")
	ctx := context.Background()
	// open begins a transaction through cn1 that wrote a row on dn1.
	open := func(t *testing.T) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.nodeConnString(c.node("cn1")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		if _, err := conn.Exec(ctx, "BEGIN; INSERT INTO acct VALUES ("+id+", 1)"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	master := func(t *testing.T) string {
		t.Helper()
		rows, _ := c.mustRows(t, 30*time.Second, "LIST NODE (name, type, mastername) dn1, dn1s")
		sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
		return fmt.Sprint(rows)
	}

	t.Run("Refused", func(t *testing.T) {
		tx := open(t)
		start := time.Now()
		_, stderr, err := c.psqlRows(time.Minute, "SWITCHOVER DATANODE SLAVE dn1s 10")
		if err == nil || !strings.Contains(stderr, "there are some active connections on coordinators or datanode masters") {
			t.Fatalf("SWITCHOVER with an open transaction: %v\n%s", err, stderr)
		}
		if d := time.Since(start); d < 9*time.Second {
			t.Errorf("refused after %v, before maxTrys (10 s)", d)
		}
		for _, w := range []string{"wait max 10 seconds to wait there are no active connections", "cn1 has 1 active connections", "dn1 has 1 active connections"} {
			if !strings.Contains(stderr, w) {
				t.Errorf("NOTICEs lack %q:\n%s", w, stderr)
			}
		}
		if got := master(t); got != "[[dn1 datanode master ] [dn1s datanode slave dn1]]" {
			t.Errorf("LIST NODE after a refused switchover: %s", got)
		}
		if v := c.nodeValue(t, c.node("dn1"), "SELECT pg_is_in_recovery()"); v != "f" {
			t.Errorf("dn1 in recovery after a refused switchover")
		}
		// Nothing was cut short, and the hold is gone: the transaction
		// commits, and other writes through cn1 go on.
		if _, err := tx.Exec(ctx, "COMMIT"); err != nil {
			t.Errorf("the open transaction after a refused switchover: %v", err)
		}
		c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO acct VALUES ("+id+", 2)")
	})

	t.Run("WaitsThenSwitches", func(t *testing.T) {
		tx := open(t)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		w := &pauseWriter{name: "coordinator", dsn: c.nodeConnString(c.node("cn1")), sql: "INSERT INTO acct VALUES (" + id + ", $1)"}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); w.run(wctx, 50*time.Millisecond) }()
		committed := make(chan error, 1)
		go func() {
			defer wg.Done()
			time.Sleep(2 * time.Second)
			_, err := tx.Exec(ctx, "COMMIT")
			committed <- err
		}()
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		rows, notices := c.mustRows(t, 3*time.Minute, "SWITCHOVER DATANODE SLAVE dn1s 30")
		end := time.Now()
		if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1s|t|switchover datanode success" {
			t.Fatalf("SWITCHOVER rows = %q\n%s", rows, notices)
		}
		if err := <-committed; err != nil {
			t.Errorf("the transaction that ended during the wait: %v", err)
		}
		if d := end.Sub(start); d < 1500*time.Millisecond {
			t.Errorf("the switch took %v: it did not wait for the open transaction", d)
		}
		w.waitPause(t, start, end)
		cancel()
		wg.Wait()
		if n, errs := w.acked(); len(errs) > 0 || n < 10 {
			t.Errorf("writes through cn1 during the switchover: %d acknowledged, errors %q", n, errs)
		}
		if got := master(t); got != "[[dn1 datanode slave dn1s] [dn1s datanode master ]]" {
			t.Errorf("LIST NODE after the switchover: %s", got)
		}
		c.mustNodeSQL(t, c.node("cn1"), "INSERT INTO acct VALUES ("+id+", -3)")
		if v := c.nodeValue(t, c.node("dn1s"), "SELECT count(*) FROM acct_"+slotOf(t, c, id)+" WHERE n = -3"); v != "1" {
			t.Errorf("the write through cn1 after the switch is not on dn1s: %s", v)
		}
	})

	t.Run("Force", func(t *testing.T) {
		tx := open(t)
		rows, notices := c.mustRows(t, 3*time.Minute, "SWITCHOVER DATANODE SLAVE dn1 FORCE")
		if len(rows) != 1 || strings.Join(rows[0], "|") != "dn1|t|switchover datanode success" {
			t.Fatalf("SWITCHOVER FORCE rows = %q\n%s", rows, notices)
		}
		if !strings.Contains(notices, "cn1: ended 1 client sessions") {
			t.Errorf("NOTICEs do not say the open transaction was ended:\n%s", notices)
		}
		if _, err := tx.Exec(ctx, "COMMIT"); err == nil {
			t.Error("the open transaction survived SWITCHOVER FORCE")
		}
		if got := master(t); got != "[[dn1 datanode master ] [dn1s datanode slave dn1]]" {
			t.Errorf("LIST NODE after the forced switchover: %s", got)
		}
	})
}

// slotOf is the slot (shard suffix) of id's row in acct, seen on cn1.
func slotOf(t *testing.T, c *testCluster, id string) string {
	t.Helper()
	name := c.nodeValue(t, c.node("cn1"), "SELECT tableoid::regclass::text FROM acct WHERE id = "+id+" LIMIT 1")
	return name[strings.LastIndexByte(name, '_')+1:]
}
