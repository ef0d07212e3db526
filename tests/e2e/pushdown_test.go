package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestPushdown, from a user's psql on a coordinator: aggregates grouped by
// the distribution column, joins of two distributed tables on it (both
// hashed over the same 64 slots) and both together run on the datanodes,
// one remote query per slot (EXPLAIN VERBOSE: Foreign Scans of "Aggregate
// on" and joined shards, the GROUP BY in the remote SQL, nothing joined or
// aggregated on the coordinator); scans of the slots run at once (Async
// Foreign Scan); the datanode servers carry the tuning options. Every
// query, pushed down or not (aggregates without GROUP BY or grouped by
// another column: TestAggregatePushdown), answers what it answers on
// plain tables holding the same rows.
func TestPushdown(t *testing.T) {
	c, cn := newPushdownCluster(t)

	for _, n := range []string{"cn1", "gc"} {
		for _, r := range c.mustNodeSQL(t, c.node(n), "SELECT srvname, array_to_string(srvoptions, ' ') FROM pg_foreign_server ORDER BY 1") {
			for _, o := range []string{"fetch_size=10000", "batch_size=100", "async_capable=true"} {
				if !strings.Contains(" "+r[1]+" ", " "+o+" ") {
					t.Errorf("server %s on %s lacks %s: %s", r[0], n, o, r[1])
				}
			}
		}
	}

	// 1,000 customers of 8 orders each (some amounts NULL), and the
	// customers, distributed by customer; the same rows in plain tables.
	const orders = "SELECT n % 1000, CASE WHEN n % 13 = 0 THEN NULL ELSE n % 101 END, n % 7 FROM generate_series(1, 8000) n"
	const custs = "SELECT n, n % 5 FROM generate_series(0, 999) n"
	c.mustNodeSQL(t, cn, `CREATE TABLE pd_orders (cust int NOT NULL, amount int, g int);
CREATE TABLE pd_custs (cust int NOT NULL, region int);
SELECT adb.create_distributed_table('pd_orders', 'cust');
SELECT adb.create_distributed_table('pd_custs', 'cust');
INSERT INTO pd_orders `+orders+`;
INSERT INTO pd_custs `+custs+`;
ANALYZE pd_orders; ANALYZE pd_custs;
CREATE TABLE plain_orders (cust int NOT NULL, amount int, g int);
CREATE TABLE plain_custs (cust int NOT NULL, region int);
INSERT INTO plain_orders `+orders+`;
INSERT INTO plain_custs `+custs+`;
ANALYZE plain_orders; ANALYZE plain_custs;`)

	explain := func(q string) string { return explainVerbose(t, c, cn, q) }
	count := func(plan, re string) int { return len(regexp.MustCompile(re).FindAllString(plan, -1)) }
	local := regexp.MustCompile(`(?m)^\s*(->\s+)?(Partial |Finalize )?(Hash Join|Merge Join|Nested Loop|HashAggregate|GroupAggregate|Aggregate|Sort)\b`)

	pushed := []struct {
		name, query string
		want        string // once per slot
	}{
		{"aggregates grouped by the distribution column",
			"SELECT cust, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM pd_orders GROUP BY cust",
			`Relations: Aggregate on \(public\.pd_orders_\d+( \w+)?\)\n\s*Remote SQL: SELECT cust, count\(\*\), sum\(amount\), avg\(amount\), min\(amount\), max\(amount\) FROM public\.pd_orders_\d+ GROUP BY 1\n`},
		{"a join on the distribution column",
			"SELECT o.cust, c.region, o.amount FROM pd_orders o JOIN pd_custs c ON o.cust = c.cust",
			`Relations: \(public\.pd_orders_\d+ \w+\) INNER JOIN \(public\.pd_custs_\d+ \w+\)\n\s*Remote SQL: SELECT .* FROM \(public\.pd_orders_\d+ r\d+ INNER JOIN public\.pd_custs_\d+ r\d+ ON \(\(\(r\d+\.cust = r\d+\.cust\)\)\)\)\n`},
		{"an outer join with a filter",
			"SELECT o.cust, o.amount, c.region FROM pd_orders o LEFT JOIN pd_custs c ON o.cust = c.cust WHERE o.amount > 50",
			`Relations: \(public\.pd_orders_\d+ \w+\) LEFT JOIN \(public\.pd_custs_\d+ \w+\)\n\s*Remote SQL: SELECT .* WHERE \(\(r\d+\.amount > 50\)\)\n`},
		{"a join aggregated by the distribution column",
			"SELECT o.cust, c.region, count(*), sum(o.amount) FROM pd_orders o JOIN pd_custs c ON o.cust = c.cust GROUP BY o.cust, c.region",
			`Relations: Aggregate on \(\(public\.pd_orders_\d+ \w+\) INNER JOIN \(public\.pd_custs_\d+ \w+\)\)\n\s*Remote SQL: SELECT .* GROUP BY 1, 2\n`},
	}
	for _, p := range pushed {
		plan := explain(p.query)
		if n := count(plan, p.want); n != 64 {
			t.Errorf("%s: %d of 64 slots pushed down, want all\n%s", p.name, n, plan)
		}
		if m := local.FindString(plan); m != "" {
			t.Errorf("%s: the coordinator runs %q itself\n%s", p.name, strings.TrimSpace(m), plan)
		}
	}
	if plan := explain("SELECT * FROM pd_orders"); count(plan, `Async Foreign Scan on public\.pd_orders_\d+`) != 64 {
		t.Errorf("the scans of the 64 slots do not run at once (async_capable):\n%s", plan)
	}

	// The answers, pushed down or finished on the coordinator, are those
	// of the plain tables.
	for _, q := range []string{
		"SELECT count(*), count(amount), sum(amount), avg(amount), min(amount), max(amount) FROM %[1]s",
		"SELECT cust, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM %[1]s GROUP BY cust ORDER BY cust",
		"SELECT cust, count(*) FROM %[1]s GROUP BY cust HAVING sum(amount) > 500 ORDER BY cust",
		"SELECT g, count(*), sum(amount), avg(amount), min(amount), max(amount) FROM %[1]s GROUP BY g ORDER BY g",
		"SELECT count(DISTINCT g), sum(DISTINCT amount) FROM %[1]s",
		"SELECT o.cust, c.region, o.amount FROM %[1]s o JOIN %[2]s c ON o.cust = c.cust ORDER BY 1, 2, 3",
		"SELECT o.cust, o.amount, c.region FROM %[1]s o LEFT JOIN %[2]s c ON o.cust = c.cust WHERE o.amount > 50 ORDER BY 1, 2, 3",
		"SELECT o.cust, c.region, count(*), sum(o.amount) FROM %[1]s o JOIN %[2]s c ON o.cust = c.cust GROUP BY o.cust, c.region ORDER BY 1, 2",
		"SELECT c.region, count(*), sum(o.amount), avg(o.amount) FROM %[1]s o JOIN %[2]s c ON o.cust = c.cust GROUP BY c.region ORDER BY 1",
	} {
		sameAsPlain(t, c, cn, q, []any{"pd_orders", "pd_custs"}, []any{"plain_orders", "plain_custs"}, false)
	}
}
