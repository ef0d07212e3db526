package e2e

import (
	"context"
	"fmt"
	"strings"
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
// (target ≤ 1.5).
func BenchmarkDeploy(b *testing.B) {
	s := upSSHHosts(b, 4)
	m := StartManager(b, "")
	s.addHosts(b, m, 4)
	// The first DEPLOY installs the manager's key; the rest log in with it.
	m.MustExec(b, "DEPLOY ALL PASSWORD '"+s.pw+"'")
	var one, all time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if rows := m.Rows(b, "DEPLOY th1"); len(rows) != 1 || rows[0][1] != "t" {
			b.Fatalf("DEPLOY th1: %v", rows)
		}
		one += time.Since(start)
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
