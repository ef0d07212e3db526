package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

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
