package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The expansion as the spec runs it, with clients writing all along, and
// cut short at its dangerous steps: the manager killed (the --crash-at
// hook, internal/mgr/crash.go) or the new datanode killed, then taken up
// again with the EXPAND RECOVER commands or EXPAND ACTIVATE. After each
// step the rows are checked slot by slot, through the coordinators and on
// the datanode that owns the slot: no acknowledged row lost, none twice.

// newExpandCluster is gc (h1), cn1 (h2), dn1 (h2), dn2 (h3), and the
// distributed table ev(id, v) holding 1..2000, with a writer through each
// coordinator (ids from 1 000 000 through cn1, 2 000 000 through gc).
func newExpandCluster(t *testing.T) (*testCluster, []*loadWriter) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.mustNodeSQL(t, c.node("cn1"), "CREATE TABLE ev (id int NOT NULL, v text); SELECT adb.create_distributed_table('ev', 'id'); INSERT INTO ev SELECT g, 'x' FROM generate_series(1, 2000) g")
	writers := []*loadWriter{
		startLoadWriter("cn1", c.nodeConnString(c.node("cn1")), "INSERT INTO ev VALUES ($1, 'w')", 1_000_000),
		startLoadWriter("gc", c.nodeConnString(c.node("gc")), "INSERT INTO ev VALUES ($1, 'w')", 2_000_000),
	}
	t.Cleanup(func() {
		for _, w := range writers {
			w.stop()
		}
	})
	return c, writers
}

// slotRows is "count sum" of ev's rows, by slot.
type slotRows map[int]string

// owners reads the slot map of coordinator cn: slot → datanode.
func (c *testCluster) owners(t *testing.T, cn string) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, r := range c.mustNodeSQL(t, c.node(cn), "SELECT slot, node FROM adb.slot") {
		k, _ := strconv.Atoi(r[0])
		out[k] = r[1]
	}
	return out
}

// checkSlots checks ev slot by slot: what each coordinator reads equals
// what the owner of the slot holds in its shard; no id twice; every id a
// writer saw acknowledged is there, as are the first 2000. With cleaned,
// no datanode keeps rows of a slot it does not own. It returns the rows
// by slot.
func (c *testCluster) checkSlots(t *testing.T, step string, cleaned bool, writers ...*loadWriter) slotRows {
	t.Helper()
	// The writers go on meanwhile: only the ids each had done with (up
	// to its last acknowledged one) are compared; no later write can add
	// or remove one of them.
	stable := []string{"id <= 2000"}
	var acked [][]int
	for _, w := range writers {
		ids := w.ids()
		acked = append(acked, ids)
		if len(ids) > 0 {
			stable = append(stable, fmt.Sprintf("id BETWEEN %d AND %d", ids[0]-ids[0]%1_000_000, ids[len(ids)-1]))
		}
	}
	where := " WHERE " + strings.Join(stable, " OR ")
	owners := c.owners(t, "cn1")
	if gc := c.owners(t, "gc"); fmt.Sprint(gc) != fmt.Sprint(owners) {
		t.Errorf("%s: the slot maps of gc and cn1 differ:\n gc  %v\n cn1 %v", step, gc, owners)
	}
	var via slotRows
	for _, cn := range []string{"cn1", "gc"} {
		got := slotRows{}
		for _, r := range c.mustNodeSQL(t, c.node(cn), "SELECT tableoid::regclass::text, count(*), sum(id), count(DISTINCT id) FROM ev"+where+" GROUP BY 1") {
			k, _ := strconv.Atoi(r[0][strings.LastIndexByte(r[0], '_')+1:])
			got[k] = r[1] + " " + r[2]
			if r[1] != r[3] {
				t.Errorf("%s: slot %d through %s: %s rows but %s ids: duplicates", step, k, cn, r[1], r[3])
			}
		}
		if via == nil {
			via = got
		} else if fmt.Sprint(got) != fmt.Sprint(via) {
			t.Errorf("%s: gc and cn1 read different rows:\n cn1 %v\n gc  %v", step, via, got)
		}
	}
	// On the datanodes, each slot's shard on its owner.
	bySlot := map[string][]int{}
	for k, n := range owners {
		bySlot[n] = append(bySlot[n], k)
	}
	direct := slotRows{}
	for n, slots := range bySlot {
		sort.Ints(slots)
		var q []string
		for _, k := range slots {
			q = append(q, fmt.Sprintf("SELECT %d, count(*), sum(id) FROM ev_%d%s", k, k, where))
		}
		for _, r := range c.mustNodeSQL(t, c.node(n), strings.Join(q, " UNION ALL ")) {
			if r[1] == "0" {
				continue
			}
			k, _ := strconv.Atoi(r[0])
			direct[k] = r[1] + " " + r[2]
		}
		if cleaned {
			all := c.nodeValue(t, c.node(n), "SELECT count(*) FROM ("+c.shardsQuery(t, c.node(n), "ev")+") x"+where)
			mine := 0
			for _, k := range slots {
				f := strings.Fields(direct[k] + " 0")
				v, _ := strconv.Atoi(f[0])
				mine += v
			}
			if all != strconv.Itoa(mine) {
				t.Errorf("%s: %s holds %s rows in its shards, %d in the slots it owns: not cleaned", step, n, all, mine)
			}
		}
	}
	if fmt.Sprint(direct) != fmt.Sprint(via) {
		t.Errorf("%s: the owners' shards and the coordinators differ:\n shards %v\n coords %v", step, direct, via)
	}
	have := map[int]bool{}
	for _, r := range c.mustNodeSQL(t, c.node("cn1"), "SELECT id FROM ev"+where) {
		id, _ := strconv.Atoi(r[0])
		have[id] = true
	}
	var lost []int
	for id := 1; id <= 2000; id++ {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	n := 0
	for _, ids := range acked {
		for _, id := range ids {
			n++
			if !have[id] {
				lost = append(lost, id)
			}
		}
	}
	if len(lost) > 0 {
		t.Errorf("%s: %d acknowledged rows lost: %v", step, len(lost), lost)
	}
	t.Logf("%s: %d rows in %d slots over %d datanodes, %d acknowledged writes, none lost", step, len(have), len(via), len(bySlot), n)
	return via
}

// TestExpandTwoThenActivate is the spec's walkthrough — EXPAND dn1 TO
// dn3, EXPAND dn2 TO dn4, one EXPAND ACTIVATE, EXPAND CLEAN — with writes
// through both coordinators during and between the steps.
func TestExpandTwoThenActivate(t *testing.T) {
	c, writers := newExpandCluster(t)
	c.addNode(t, "datanode master", "dn3", "", "h1", "")
	c.addNode(t, "datanode master", "dn4", "", "h1", "")
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn3")
	c.checkSlots(t, "dn3 copied", false, writers...)
	c.mustRows(t, time.Minute, "EXPAND SLEEP 1")
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn2 TO dn4")
	rows, _ := c.mustRows(t, time.Minute, "EXPAND DOCHECK STATUS")
	if fmt.Sprint(rows) != "[[dn3 t streaming from dn1; run EXPAND ACTIVATE] [dn4 t streaming from dn2; run EXPAND ACTIVATE]]" {
		t.Errorf("EXPAND DOCHECK STATUS = %q", rows)
	}
	from := time.Now()
	rows, notices := c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE")
	if len(rows) != 2 || rows[0][0] != "dn3" || rows[1][0] != "dn4" || rows[0][1] != "t" || rows[1][1] != "t" {
		t.Fatalf("EXPAND ACTIVATE rows = %q\n%s", rows, notices)
	}
	for _, w := range writers {
		w.waitWrite(t, from, 30*time.Second)
	}
	if slots := c.mustNodeSQL(t, c.node("cn1"), "SELECT node, count(*) FROM adb.slot GROUP BY node ORDER BY node"); fmt.Sprint(slots) != "[[dn1 16] [dn2 16] [dn3 16] [dn4 16]]" {
		t.Errorf("slot map = %q", slots)
	}
	c.checkSlots(t, "activated", false, writers...)
	if _, stderr, err := c.psqlRows(time.Minute, "EXPAND DOCHECK STATUS"); err == nil || !strings.Contains(stderr, "55000") {
		t.Errorf("EXPAND DOCHECK STATUS before CLEAN: %v %s", err, stderr)
	}
	c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	for _, w := range writers {
		w.stop()
	}
	c.checkSlots(t, "cleaned", true, writers...)
}

// TestExpandRecoverRefusals: each recovery command refuses, with its
// SQLSTATE and nothing changed, a destination not in its state; EXPAND
// SLEEP waits and is cancelled by statement_timeout.
func TestExpandRecoverRefusals(t *testing.T) {
	c := newTestCluster(t, 3)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")
	c.addNode(t, "datanode master", "dn2", "", "h3", "")
	for _, tt := range []struct{ sql, code, msg string }{
		{"EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn2", "55000", "nothing to recover: dn2 holds no copy of dn1"},
		{"EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn2", "55000", "the data directory of dn2 holds no base backup"},
		{"EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn2", "55000", "dn2 is not being expanded"},
		{"EXPAND RECOVER BASEBACKUP FAIL dn1 TO nope", "42704", `datanode master "nope" does not exist`},
		{"EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn1", "55000", "dn1 is in the cluster"},
		{"EXPAND RECOVER BASEBACKUP FAIL gc TO dn2", "55000", "gc is not a datanode master in the cluster"},
	} {
		_, stderr, err := c.psqlRows(time.Minute, tt.sql)
		if err == nil || !strings.Contains(stderr, tt.code) || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%s: %v\n%s\nwant %s %q", tt.sql, err, stderr, tt.code, tt.msg)
		}
	}
	if rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, initialized, incluster) dn2"); fmt.Sprint(rows) != "[[dn2 f f]]" {
		t.Errorf("dn2 after the refusals: %q", rows)
	}
	start := time.Now()
	if rows, _ := c.mustRows(t, time.Minute, "EXPAND SLEEP 2"); len(rows) != 1 || rows[0][1] != "t" {
		t.Errorf("EXPAND SLEEP 2 = %q", rows)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("EXPAND SLEEP 2 took %v", d)
	}
	// A client that gives up sends a CancelRequest: the sleep ends.
	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, c.M.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_, err = conn.Exec(ctx, "EXPAND SLEEP 60")
	if err == nil {
		t.Errorf("EXPAND SLEEP 60 cancelled after 1s: no error")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("a cancelled EXPAND SLEEP took %v", d)
	}
	rows, _ := c.mustRows(t, time.Minute, "HELP EXPAND")
	if strings.Contains(fmt.Sprint(rows), "not implemented") {
		t.Errorf("HELP EXPAND still marks forms unbuilt: %q", rows)
	}
}

// crashDuring runs sql with the manager set to kill itself at point, and
// restarts it without the hook; the last journal entry must say the
// command was interrupted.
func (c *testCluster) crashDuring(t *testing.T, point, sql, step string) {
	t.Helper()
	hooks := strings.Count(c.M.log.String(), "crash test hook")
	c.M.Kill9()
	c.M.Args = []string{"--crash-at", point}
	c.M.Restart()
	if _, stderr, err := c.psqlRows(3*time.Minute, sql); err == nil {
		t.Fatalf("%s ended although the manager was to die at %q:\n%s", sql, point, stderr)
	}
	c.M.Kill9()
	if strings.Count(c.M.log.String(), "crash test hook") == hooks {
		t.Fatalf("the manager did not die by the hook at %q:\n%s", point, tailLines(c.M.log.String(), 30))
	}
	c.M.Args = nil
	c.M.Restart()
	rows, _ := c.mustRows(t, time.Minute, "SELECT command, status, step FROM journal ORDER BY id DESC LIMIT 1")
	if len(rows) != 1 || rows[0][1] != "interrupted" || rows[0][2] != step {
		t.Errorf("last journal entry after the crash at %q = %q, want interrupted at %q", point, rows, step)
	}
	t.Logf("%s: the manager died at %q; journal %q", sql, point, rows)
}

// TestExpandCrashRecover interrupts expansions at their dangerous steps
// and takes each up with the command the spec names for it:
//   - the manager killed once dn3's base backup is made (catalog marked
//     initialised, not started): EXPAND RECOVER BASEBACKUP FAIL rolls it
//     back and EXPAND runs again;
//   - killed after the coordinators prepared the new routing, dn3 still a
//     standby (the writes wait): EXPAND ACTIVATE rolls back and activates;
//   - killed at the same base-backup point for dn4: EXPAND RECOVER
//     BASEBACKUP SUCCESS redoes the rest;
//   - killed just after dn4's promotion, and dn4 killed too: EXPAND
//     ACTIVATE RECOVER DOPROMOTE SUCCESS starts it and commits the
//     prepared routing;
//   - dn5 killed while it waits for its activation: EXPAND RECOVER
//     BASEBACKUP SUCCESS starts it again; then the manager killed after
//     the coordinators committed, before the catalog: EXPAND ACTIVATE
//     finishes.
func TestExpandCrashRecover(t *testing.T) {
	c, writers := newExpandCluster(t)
	for _, n := range []string{"dn3", "dn4", "dn5"} {
		c.addNode(t, "datanode master", n, "", "h1", "")
	}
	check := func(step string, cleaned bool) { c.checkSlots(t, step, cleaned, writers...) }
	writing := func() {
		from := time.Now()
		for _, w := range writers {
			w.waitWrite(t, from, time.Minute)
		}
	}

	// status is EXPAND SHOW STATUS's row of dst, which must hold want;
	// EXPAND DOCHECK STATUS gives the same row.
	status := func(dst, want string) {
		t.Helper()
		for _, q := range []string{"EXPAND SHOW STATUS", "EXPAND DOCHECK STATUS"} {
			rows, _ := c.mustRows(t, time.Minute, q)
			var got []string
			for _, r := range rows {
				if r[0] == dst {
					got = r
				}
			}
			if len(got) != 3 || !strings.Contains(got[2], want) {
				t.Errorf("%s: row of %s = %q, want %q (all: %q)", q, dst, got, want, rows)
			}
		}
	}

	// The slot a base backup cut short by the manager's end leaves on
	// dn1, dn5 still empty: RECOVER FAIL drops it.
	c.mustNodeSQL(t, c.node("dn1"), "SELECT pg_create_physical_replication_slot('dn5')")
	rows, notices := c.mustRows(t, time.Minute, "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn5")
	if len(rows) != 1 || !strings.Contains(notices, `replication slot "dn5" dropped on dn1: no copy is behind it`) {
		t.Errorf("RECOVER FAIL of a slot alone = %q\n%s", rows, notices)
	}
	if n := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dn5'"); n != "0" {
		t.Errorf("dn5's slot is left on dn1 after RECOVER FAIL")
	}
	if _, stderr, err := c.psqlRows(time.Minute, "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn5"); err == nil || !strings.Contains(stderr, "nothing to recover") {
		t.Errorf("RECOVER FAIL again: %v %s", err, stderr)
	}

	// dn1 → dn3.
	c.crashDuring(t, "EXPAND DATANODE:journal initialized dn3", "EXPAND DATANODE MASTER dn1 TO dn3", "initialized dn3")
	status("dn3", `EXPAND DATANODE MASTER dn1 TO dn3 was interrupted (step "initialized dn3"): dn3 holds a base backup of dn1; run EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn3`)
	if _, stderr, err := c.psqlRows(3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn3"); err == nil {
		t.Errorf("EXPAND again over the half-made copy: accepted\n%s", stderr)
	}
	c.mustRows(t, 3*time.Minute, "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3")
	if n := c.nodeValue(t, c.node("dn1"), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dn3'"); n != "0" {
		t.Errorf("dn3's slot is left on dn1")
	}
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn3")
	status("dn3", "streaming from dn1; run EXPAND ACTIVATE")
	// Promoted, then killed: RECOVER FAIL throws the promoted copy away,
	// and says so.
	c.crashDuring(t, "EXPAND ACTIVATE:after promote", "EXPAND ACTIVATE", "promote dn3")
	if err := killPID(postmasterPID(t, c.node("dn3"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dn3 down", func() (bool, string) { return c.recovery(c.node("dn3")) == "", "" })
	status("dn3", "dn3 was promoted, and is not running; run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn3")
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3")
	if len(rows) != 1 || !strings.Contains(notices, "dn3 was promoted by the interrupted activation: its copy is discarded") {
		t.Errorf("RECOVER FAIL of a promoted copy = %q\n%s", rows, notices)
	}
	writing()
	check("dn3's promoted copy rolled back", false)
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn3")
	check("dn3 copied again", false)
	c.crashDuring(t, "EXPAND ACTIVATE:after prepare", "EXPAND ACTIVATE", "prepare dn3")
	if r := c.recovery(c.node("dn3")); r != "t" {
		t.Errorf("dn3 in recovery = %q after a crash before its promotion", r)
	}
	status("dn3", `EXPAND ACTIVATE was interrupted (step "prepare dn3"); streaming from dn1; run EXPAND ACTIVATE`)
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE")
	if len(rows) != 1 || rows[0][1] != "t" || !strings.Contains(notices, "rolled back what the interrupted activation of dn3 prepared") {
		t.Fatalf("EXPAND ACTIVATE after the crash = %q\n%s", rows, notices)
	}
	writing()
	check("dn3 activated", false)
	c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	check("dn3 cleaned", true)

	// dn2 → dn4.
	c.crashDuring(t, "EXPAND DATANODE:journal initialized dn4", "EXPAND DATANODE MASTER dn2 TO dn4", "initialized dn4")
	rows, _ = c.mustRows(t, 3*time.Minute, "EXPAND RECOVER BASEBACKUP SUCCESS dn2 TO dn4")
	if len(rows) != 1 || !strings.Contains(rows[0][2], "run EXPAND ACTIVATE") {
		t.Errorf("EXPAND RECOVER BASEBACKUP SUCCESS = %q", rows)
	}
	c.crashDuring(t, "EXPAND ACTIVATE:after promote", "EXPAND ACTIVATE", "promote dn4")
	if _, stderr, err := c.psqlRows(time.Minute, "EXPAND RECOVER BASEBACKUP SUCCESS dn2 TO dn4"); err == nil || !strings.Contains(stderr, "dn4 was promoted") {
		t.Errorf("RECOVER BASEBACKUP SUCCESS of a promoted copy: %v %s", err, stderr)
	}
	// dn4 dies too before anyone acts: DOPROMOTE SUCCESS starts it.
	if err := killPID(postmasterPID(t, c.node("dn4"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dn4 down", func() (bool, string) { return c.recovery(c.node("dn4")) == "", "" })
	status("dn4", "dn4 was promoted, and is not running; run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn4")
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn4")
	if len(rows) != 1 || !strings.Contains(rows[0][2], "moved from dn2") || !strings.Contains(notices, "committed what the interrupted activation of dn4 prepared") ||
		!strings.Contains(notices, "dn4 was not running: started") {
		t.Errorf("DOPROMOTE SUCCESS = %q\n%s", rows, notices)
	}
	writing()
	check("dn4 activated", false)
	c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	check("dn4 cleaned", true)

	// dn1 → dn5, dn5 killed while it waits.
	c.mustRows(t, 3*time.Minute, "EXPAND DATANODE MASTER dn1 TO dn5")
	pid := postmasterPID(t, c.node("dn5"))
	if err := killPID(pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dn5 down", func() (bool, string) { return c.recovery(c.node("dn5")) == "", "" })
	status("dn5", "dn5 is not running; run EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn5")
	c.mustRows(t, 3*time.Minute, "EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn5")
	if r := c.recovery(c.node("dn5")); r != "t" {
		t.Errorf("dn5 in recovery = %q after RECOVER BASEBACKUP SUCCESS", r)
	}
	c.crashDuring(t, "EXPAND ACTIVATE:after commit", "EXPAND ACTIVATE", "commit dn5")
	status("dn5", "route slots to dn5: its activation went past the commit; run EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn5")
	rows, notices = c.mustRows(t, 3*time.Minute, "EXPAND ACTIVATE")
	if len(rows) != 1 || rows[0][1] != "t" {
		t.Fatalf("EXPAND ACTIVATE after a crash past the commit = %q\n%s", rows, notices)
	}
	writing()
	check("dn5 activated", false)
	c.mustRows(t, 3*time.Minute, "EXPAND CLEAN")
	for _, w := range writers {
		w.stop()
	}
	check("dn5 cleaned", true)
	if rows, _ := c.mustRows(t, time.Minute, "SELECT count(*) FROM expansion"); fmt.Sprint(rows) != "[[0]]" {
		t.Errorf("expansions left: %q", rows)
	}
}

// killPID kills a process as a crash would.
func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
