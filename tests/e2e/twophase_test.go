package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// psqlSession is one psql session on a node, fed statement by statement as
// a client typing them would, so that a test can act between a transaction's
// writes and its COMMIT. Its stdout and stderr are one stream.
type psqlSession struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    syncBuffer
	cancel context.CancelFunc
	seq    int
	seen   int // how much of out earlier calls returned
}

// openSession starts psql on node n as the DBA, with application_name
// app (so that a test can find its backend).
func (c *testCluster) openSession(t testing.TB, n nodeSpec, app string) *psqlSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &psqlSession{cancel: cancel}
	s.cmd = exec.CommandContext(ctx, "psql", "-X", "-h", c.host(n.Host).Addr, "-p", strconv.Itoa(n.Port), "-U", c.dbUser(),
		"-d", "postgres", "-A", "-t", "-F", "\t")
	s.cmd.Env = append(append(os.Environ(), c.nodeEnv()...), "PGAPPNAME="+app)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func (s *psqlSession) close() {
	s.stdin.Close()
	s.cancel()
	s.cmd.Wait()
}

// send writes sql without waiting for its answer.
func (s *psqlSession) send(t testing.TB, sql string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, sql+"\n"); err != nil {
		t.Fatalf("psql session: %v", err)
	}
}

// wait returns what the session printed since the last call, once a marker
// echoed after everything sent so far has come back.
func (s *psqlSession) wait(t testing.TB, timeout time.Duration) string {
	t.Helper()
	s.seq++
	marker := fmt.Sprintf("@@mark%d@@", s.seq)
	s.send(t, `\echo `+marker)
	var got string
	waitFor(t, timeout, "psql session answers", func() (bool, string) {
		all := s.out.String()
		i := strings.Index(all[s.seen:], marker)
		if i < 0 {
			return false, all[s.seen:]
		}
		got = all[s.seen : s.seen+i]
		s.seen += i + len(marker)
		return true, ""
	})
	return got
}

// run sends sql and returns its output.
func (s *psqlSession) run(t testing.TB, sql string) string {
	t.Helper()
	s.send(t, sql)
	return s.wait(t, time.Minute)
}

// accountsState is the accounts table as each datanode holds it, read on
// the datanodes themselves (not through a coordinator): rows and total
// balance per datanode.
type accountsState map[string][2]int

func (c *testCluster) accountsState(t testing.TB) accountsState {
	t.Helper()
	st := accountsState{}
	for _, dn := range []string{"dn1", "dn2"} {
		var parts []string
		for _, r := range c.mustNodeSQL(t, c.node(dn), `SELECT relname FROM pg_class WHERE relname ~ '^accounts_[0-9]+$' AND relkind = 'r' ORDER BY 1`) {
			parts = append(parts, "SELECT balance FROM "+r[0])
		}
		if len(parts) == 0 {
			t.Fatalf("no shard of accounts on %s", dn)
		}
		v := c.mustNodeSQL(t, c.node(dn), "SELECT count(*), coalesce(sum(balance), 0) FROM ("+strings.Join(parts, " UNION ALL ")+") s")
		n, _ := strconv.Atoi(v[0][0])
		sum, _ := strconv.Atoi(v[0][1])
		st[dn] = [2]int{n, sum}
	}
	return st
}

// checkInvariant: every datanode holds the rows it started with and the
// balances add up to the total — no transfer is half-applied.
func (c *testCluster) checkInvariant(t testing.TB, what string, start accountsState, total int) {
	t.Helper()
	st := c.accountsState(t)
	if st["dn1"][0] != start["dn1"][0] || st["dn2"][0] != start["dn2"][0] || st["dn1"][1]+st["dn2"][1] != total {
		t.Fatalf("%s: shards hold %v (rows, balance), want rows %v and a total balance of %d", what, st, start, total)
	}
}

// preparedOn counts the prepared transactions of the coordinators on a
// datanode.
func (c *testCluster) preparedOn(t testing.TB, dn string) int {
	t.Helper()
	n, _ := strconv.Atoi(c.nodeValue(t, c.node(dn), "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'adb\\_%'"))
	return n
}

// TestTwoPhaseCommit: a transaction through a coordinator that writes on
// two datanodes commits on both or on neither — with concurrent clients on
// two coordinators, with a datanode stopped before COMMIT, with the
// coordinator killed after PREPARE, and with a datanode killed after the
// commit decision; adb.resolve_prepared finishes what a crash left
// prepared. A transaction that writes on one datanode does not PREPARE.
func TestTwoPhaseCommit(t *testing.T) {
	c := sharedShardedCluster(t, 2)
	cn1 := c.node("cn1")

	const nRows, start = 200, 1000
	const total = nRows * start
	c.mustNodeSQL(t, cn1, "CREATE TABLE accounts (id int NOT NULL, balance bigint NOT NULL); SELECT adb.create_distributed_table('accounts', 'id')")
	c.mustNodeSQL(t, cn1, fmt.Sprintf("INSERT INTO accounts SELECT g, %d FROM generate_series(1, %d) g", start, nRows))
	// Where each row lives: its datanode and shard.
	dnOf := map[int]string{}
	shardOf := map[int]string{}
	var onDN1, onDN2 []int
	for _, r := range c.mustNodeSQL(t, cn1, `SELECT a.id, s.srvname, c.relname FROM accounts a JOIN pg_class c ON c.oid = a.tableoid
		JOIN pg_foreign_table ft ON ft.ftrelid = a.tableoid JOIN pg_foreign_server s ON s.oid = ft.ftserver ORDER BY a.id`) {
		id, _ := strconv.Atoi(r[0])
		dnOf[id], shardOf[id] = r[1], r[2]
		if r[1] == "dn1" {
			onDN1 = append(onDN1, id)
		} else {
			onDN2 = append(onDN2, id)
		}
	}
	if len(onDN1) < 2 || len(onDN2) < 2 {
		t.Fatalf("rows not spread over dn1 and dn2: %d and %d", len(onDN1), len(onDN2))
	}
	begin := c.accountsState(t)
	c.checkInvariant(t, "after loading", begin, total)
	balance := func(id int) string {
		return c.nodeValue(t, c.node(dnOf[id]), fmt.Sprintf("SELECT balance FROM %s WHERE id = %d", shardOf[id], id))
	}
	transfer := func(from, to, amount int) string {
		return fmt.Sprintf("BEGIN; UPDATE accounts SET balance = balance - %d WHERE id = %d; UPDATE accounts SET balance = balance + %d WHERE id = %d; COMMIT;",
			amount, from, amount, to)
	}
	a1, a2, b1 := onDN1[0], onDN1[1], onDN2[0]

	t.Run("one writer does not prepare", func(t *testing.T) {
		s := c.openSession(t, cn1, "adbmgr-e2e-2pc")
		stats := "SELECT checks || ' ' || prepared FROM adb.twophase_stats();"
		if got := strings.TrimSpace(s.run(t, stats)); got != "0 0" {
			t.Fatalf("twophase_stats of a new session = %q", got)
		}
		// A transfer inside dn1, a single-row write, a read of both
		// datanodes: one writer each time, no question asked.
		s.run(t, transfer(a1, a2, 1))
		s.run(t, fmt.Sprintf("UPDATE accounts SET balance = balance WHERE id = %d;", b1))
		s.run(t, fmt.Sprintf("INSERT INTO accounts VALUES (%d, 0); DELETE FROM accounts WHERE id = %d;", nRows+1, nRows+1))
		s.run(t, "BEGIN; SELECT count(*) FROM accounts; "+fmt.Sprintf("UPDATE accounts SET balance = balance WHERE id = %d;", b1)+" COMMIT;")
		if got := strings.TrimSpace(s.run(t, stats)); got != "0 0" {
			t.Errorf("twophase_stats after single-writer transactions = %q, want 0 0: a single writer costs a round trip", got)
		}
		// Across datanodes: two-phase, and postgres_fdw's COMMIT after our
		// PREPARE says nothing to the client.
		out := s.run(t, transfer(a1, b1, 1))
		if strings.Contains(out, "WARNING") || strings.Contains(out, "ERROR") {
			t.Errorf("a transfer across datanodes printed:\n%s", out)
		}
		if got := strings.TrimSpace(s.run(t, stats)); got != "1 1" {
			t.Errorf("twophase_stats after a transfer across datanodes = %q, want 1 1", got)
		}
		// COPY into the distributed table reaches both datanodes: two
		// phases too (and so does the DELETE of those rows).
		var copyIn strings.Builder
		copyIn.WriteString("\\copy accounts FROM stdin\n")
		for id := nRows + 1; id <= nRows+20; id++ {
			fmt.Fprintf(&copyIn, "%d\t0\n", id)
		}
		copyIn.WriteString("\\.")
		s.run(t, copyIn.String())
		s.run(t, fmt.Sprintf("DELETE FROM accounts WHERE id > %d;", nRows))
		if got := strings.TrimSpace(s.run(t, stats)); got != "3 3" {
			t.Errorf("twophase_stats after a COPY and a DELETE across datanodes = %q, want 3 3", got)
		}
		c.checkInvariant(t, "after the single-writer transactions", begin, total)
	})

	t.Run("remote_exec", func(t *testing.T) {
		s := c.openSession(t, cn1, "adbmgr-e2e-2pc")
		s.run(t, `\set VERBOSITY verbose`)
		exists := func(dn, rel string) string {
			return c.nodeValue(t, c.node(dn), fmt.Sprintf("SELECT count(*) FROM pg_class WHERE relname = '%s'", rel))
		}
		// Rolled back with the local transaction.
		s.run(t, "BEGIN; SELECT adb.remote_exec('dn1', 'CREATE TABLE rx (a int); INSERT INTO rx VALUES (1)'); ROLLBACK;")
		if exists("dn1", "rx") != "0" {
			t.Errorf("adb.remote_exec's table is on dn1 after ROLLBACK")
		}
		// At the local isolation level, named for this backend, and
		// rolled back to a savepoint with it.
		out := s.run(t, `BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT adb.remote_exec('dn1', 'CREATE TABLE rx (a int, iso text, app text)');
SELECT adb.remote_exec('dn1', 'INSERT INTO rx SELECT 1, current_setting(''transaction_isolation''), application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()');
SAVEPOINT s;
SELECT adb.remote_exec('dn1', 'INSERT INTO rx VALUES (2)');
ROLLBACK TO s;
SELECT adb.remote_exec('dn2', 'CREATE TABLE rx (a int)');
COMMIT;
SELECT prepared FROM adb.twophase_stats();`)
		if !strings.HasSuffix(strings.TrimSpace(out), "\n1") {
			t.Errorf("adb.remote_exec on dn1 and dn2 did not commit in two phases:\n%s", out)
		}
		rows := c.mustNodeSQL(t, c.node("dn1"), "SELECT a, iso, app FROM rx ORDER BY a")
		if len(rows) != 1 || rows[0][0] != "1" || rows[0][1] != "repeatable read" || !strings.HasPrefix(rows[0][2], "adb:cn1:") {
			t.Errorf("rows adb.remote_exec wrote on dn1: %q, want one, at repeatable read, from application adb:cn1:<pid>", rows)
		}
		if exists("dn2", "rx") != "1" {
			t.Errorf("adb.remote_exec's table is not on dn2 after COMMIT")
		}
		// The remote error is this statement's, with its SQLSTATE.
		if out := s.run(t, "SELECT adb.remote_exec('dn2', 'SELECT 1/0');"); !strings.Contains(out, "ERROR:  22012: division by zero") {
			t.Errorf("remote division by zero answered:\n%s", out)
		}
		if out := s.run(t, "SELECT adb.remote_exec('nosuch', 'SELECT 1');"); !strings.Contains(out, `ERROR:  42704: node "nosuch" does not exist`) {
			t.Errorf("adb.remote_exec on an unknown node answered:\n%s", out)
		}
		if out := s.run(t, "SELECT adb.remote_exec('dn2', 'COMMIT');"); !strings.Contains(out, "ERROR:  25000") {
			t.Errorf("adb.remote_exec ending its remote transaction answered:\n%s", out)
		}
		s.run(t, "SELECT adb.remote_exec('dn1', 'DROP TABLE rx'); SELECT adb.remote_exec('dn2', 'DROP TABLE rx');")
		if exists("dn1", "rx")+exists("dn2", "rx") != "00" {
			t.Errorf("rx left on the datanodes")
		}
	})

	t.Run("concurrent transfers on two coordinators", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := 0
		for i := 0; i < 8; i++ {
			cn := []string{"cn1", "cn2"}[i%2]
			s := c.openSession(t, c.node(cn), "adbmgr-e2e-2pc")
			rnd := rand.New(rand.NewSource(int64(i)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 15; k++ {
					x, y := onDN1[rnd.Intn(len(onDN1))], onDN2[rnd.Intn(len(onDN2))]
					amount := rnd.Intn(50) + 1
					if rnd.Intn(2) == 0 {
						amount = -amount
					}
					// Rows locked in id order: no deadlock between clients.
					from, to := x, y
					if from > to {
						from, to, amount = to, from, -amount
					}
					s.send(t, "SET lock_timeout = '20s';")
					out := s.run(t, transfer(from, to, amount))
					if strings.Contains(out, "ERROR") {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		t.Logf("%d of 120 transfers failed (serialization or lock errors); none may be half-applied", failed)
		c.checkInvariant(t, "after concurrent transfers", begin, total)
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.preparedOn(t, dn); n != 0 {
				t.Errorf("%d prepared transactions left on %s", n, dn)
			}
		}
	})

	t.Run("datanode stopped before COMMIT", func(t *testing.T) {
		wantA, wantB := balance(a1), balance(b1)
		s := c.openSession(t, cn1, "adbmgr-e2e-2pc")
		s.run(t, fmt.Sprintf("BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = %d; UPDATE accounts SET balance = balance + 5 WHERE id = %d;", a1, b1))
		c.mustRows(t, time.Minute, "STOP DATANODE MASTER dn2 MODE immediate")
		out := s.run(t, "COMMIT;")
		if !strings.Contains(out, "ERROR") {
			t.Errorf("COMMIT with dn2 stopped answered:\n%s", out)
		}
		if got := balance(a1); got != wantA {
			t.Errorf("dn1 committed its half: balance of %d is %s, was %s", a1, got, wantA)
		}
		if n := c.preparedOn(t, "dn1"); n != 0 {
			t.Errorf("%d prepared transactions left on dn1", n)
		}
		c.mustRows(t, time.Minute, "START DATANODE MASTER dn2")
		if got := balance(b1); got != wantB {
			t.Errorf("dn2 committed its half: balance of %d is %s, was %s", b1, got, wantB)
		}
		c.checkInvariant(t, "after a COMMIT that failed", begin, total)
	})

	// backendOf is the pid of the session's backend on cn1, waiting in
	// adb's test pause (after our local commit when committed).
	backendOf := func(t *testing.T, committed bool) int {
		var pid int
		// In the pause, not in a round trip (both wait as "Extension").
		cond := "clock_timestamp() - state_change > interval '1 s' AND backend_xid IS NOT NULL"
		if committed {
			cond = "clock_timestamp() - state_change > interval '1 s' AND backend_xid IS NULL"
		}
		waitFor(t, 30*time.Second, "the COMMIT pauses", func() (bool, string) {
			rows, err := c.nodeSQL(cn1, "SELECT pid FROM pg_stat_activity WHERE application_name = 'adbmgr-e2e-pause' AND wait_event_type = 'Extension' AND "+cond)
			if err != nil || len(rows) != 1 {
				return false, fmt.Sprint(rows, err)
			}
			pid, _ = strconv.Atoi(rows[0][0])
			return true, ""
		})
		return pid
	}

	// pausedTransfer moves amount from a1 to b1 in a session on cn1 that
	// pauses in its COMMIT (setting: one of adb's test pauses); the COMMIT
	// is sent, not waited for.
	pausedTransfer := func(t *testing.T, setting string, amount int) *psqlSession {
		s := c.openSession(t, cn1, "adbmgr-e2e-pause")
		s.run(t, "SET "+setting+";")
		s.run(t, fmt.Sprintf("BEGIN; UPDATE accounts SET balance = balance - %d WHERE id = %d; UPDATE accounts SET balance = balance + %d WHERE id = %d;", amount, a1, amount, b1))
		s.send(t, "COMMIT;")
		return s
	}

	t.Run("coordinator killed after PREPARE", func(t *testing.T) {
		wantA, wantB := balance(a1), balance(b1)
		pausedTransfer(t, "adb.test_pause_after_prepare = '60s'", 7)
		pid := backendOf(t, false)
		// Prepared on both, committed on neither: our PREPARE ran before
		// postgres_fdw's COMMIT.
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.preparedOn(t, dn); n != 1 {
				t.Errorf("%d prepared transactions on %s during the pause, want 1", n, dn)
			}
		}
		if got := balance(a1); got != wantA {
			t.Errorf("dn1 shows the transfer before the commit: %s, was %s", got, wantA)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "cn1 back after its crash", func() (bool, string) {
			_, err := c.nodeSQL(cn1, "SELECT 1")
			return err == nil, fmt.Sprint(err)
		})
		c.checkInvariant(t, "with the transfer in doubt", begin, total)
		if got := c.nodeValue(t, cn1, "SELECT adb.resolve_prepared('0 s')"); got != "2" {
			t.Errorf("adb.resolve_prepared finished %s, want 2", got)
		}
		for _, dn := range []string{"dn1", "dn2"} {
			if n := c.preparedOn(t, dn); n != 0 {
				t.Errorf("%d prepared transactions left on %s", n, dn)
			}
		}
		if a, b := balance(a1), balance(b1); a != wantA || b != wantB {
			t.Errorf("after the coordinator's crash before commit: balances %s, %s, want %s, %s (rolled back)", a, b, wantA, wantB)
		}
		c.checkInvariant(t, "after resolution", begin, total)
		// The resolver could tell the fate of the xid (it was in WAL before
		// PREPARE, so the restart did not hand it out again), and cn1 writes.
		c.mustNodeSQL(t, cn1, transfer(a1, b1, 0))
	})

	t.Run("datanode killed after the commit decision", func(t *testing.T) {
		wantA, wantB := balance(a1), balance(b1)
		s := pausedTransfer(t, "adb.test_pause_after_commit = '10s'", 9)
		backendOf(t, true)
		if err := syscall.Kill(postmasterPID(t, c.node("dn2")), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		out := s.wait(t, time.Minute)
		if !strings.Contains(out, "COMMIT") || !strings.Contains(out, "adb.resolve_prepared finishes it") {
			t.Errorf("COMMIT with dn2 killed after the decision answered:\n%s", out)
		}
		c.mustRows(t, time.Minute, "START DATANODE MASTER dn2")
		if got := balance(a1); got != strconv.Itoa(mustAtoi(t, wantA)-9) {
			t.Errorf("dn1: balance of %d is %s, want %s - 9 (committed)", a1, got, wantA)
		}
		if n := c.preparedOn(t, "dn2"); n != 1 {
			t.Errorf("%d prepared transactions on dn2 after its restart, want 1", n)
		}
		if got := c.nodeValue(t, cn1, "SELECT adb.resolve_prepared('0 s')"); got != "1" {
			t.Errorf("adb.resolve_prepared finished %s, want 1", got)
		}
		if got := balance(b1); got != strconv.Itoa(mustAtoi(t, wantB)+9) {
			t.Errorf("dn2: balance of %d is %s, want %s + 9 (committed by the resolver)", b1, got, wantB)
		}
		if got := c.nodeValue(t, cn1, "SELECT adb.resolve_prepared('0 s')"); got != "0" {
			t.Errorf("adb.resolve_prepared with nothing in doubt finished %s", got)
		}
		c.checkInvariant(t, "after resolution", begin, total)
	})

	t.Run("resolved when the coordinator reconnects", func(t *testing.T) {
		wantB := balance(b1)
		s := pausedTransfer(t, "adb.test_pause_after_commit = '6s'", 11)
		backendOf(t, true)
		if err := syscall.Kill(postmasterPID(t, c.node("dn2")), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.wait(t, time.Minute)
		c.mustRows(t, time.Minute, "START DATANODE MASTER dn2")
		if n := c.preparedOn(t, "dn2"); n != 1 {
			t.Fatalf("%d prepared transactions on dn2 after its restart, want 1", n)
		}
		// The next transaction across datanodes, in a new session, connects
		// to dn2 anew: it finishes what is in doubt there (older than 5 s:
		// the pause saw to that) before its own PREPARE.
		c.mustNodeSQL(t, cn1, transfer(a2, onDN2[1], 1))
		if n := c.preparedOn(t, "dn2"); n != 0 {
			t.Errorf("%d prepared transactions on dn2 after a coordinator reconnected, want 0", n)
		}
		if got := balance(b1); got != strconv.Itoa(mustAtoi(t, wantB)+11) {
			t.Errorf("dn2: balance of %d is %s, want %s + 11 (committed on reconnect)", b1, got, wantB)
		}
		c.checkInvariant(t, "after resolution on reconnect", begin, total)
	})
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
