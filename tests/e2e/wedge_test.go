package e2e

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runaway never ends by itself: a recursive CTE over the catalog views.
const runaway = `WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM r) SELECT count(*) FROM r, node`

// timed runs sql with psql and returns how long it took; the query must
// succeed.
func timed(t *testing.T, m *Manager, sql string) time.Duration {
	t.Helper()
	start := time.Now()
	m.MustExec(t, sql)
	return time.Since(start)
}

// Four clients that send a runaway SELECT over the catalog views and are
// killed do not wedge the manager (issue 6): commands run on connections
// of their own, and the runaway statements stop when their clients leave,
// so user SQL answers again at once too.
func TestRunawaySelectsDoNotWedge(t *testing.T) {
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2');
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');`)
	var procs []*exec.Cmd
	for range 4 {
		cmd := exec.Command("psql", "-X", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-U", "postgres", "-d", "postgres", "-c", runaway)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGSSLMODE=prefer")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	// While they run, commands answer.
	time.Sleep(time.Second)
	if d := timed(t, m, "LIST HOST"); d > 3*time.Second {
		t.Errorf("LIST HOST took %v while four runaway SELECTs ran", d)
	}
	for _, p := range procs {
		p.Process.Kill()
		p.Wait()
	}
	if d := timed(t, m, "LIST HOST"); d > 3*time.Second {
		t.Errorf("LIST HOST took %v after the runaway clients were killed", d)
	}
	// The four connections for user SQL are free again: the runaways were
	// cancelled when their clients left, not at their 30 s timeout.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d := timed(t, m, "SELECT count(*) FROM host"); d > 3*time.Second {
				t.Errorf("SELECT took %v after the runaway clients were killed", d)
			}
		}()
	}
	wg.Wait()

	// A runaway in a live session ends at statement_timeout with 57014.
	start := time.Now()
	errOut := m.MustFail(t, "SET statement_timeout = '1s'; "+runaway)
	if !strings.Contains(errOut, "57014") || !strings.Contains(errOut, "canceling statement due to statement timeout") {
		t.Errorf("runaway with statement_timeout 1s: %s", errOut)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a 1s statement timeout took %v", d)
	}
}

// holderSrc is a program that opens n sockets to addr, says how many it
// opened, and holds them until its stdin closes: a process of its own has
// a descriptor limit of its own, so the test reaches 22,000 sockets where
// one process may not hold that many.
const holderSrc = `package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 10 * time.Second}
			for range jobs {
				if c, err := d.Dial("tcp", os.Args[1]); err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	fmt.Println(len(conns))
	os.Stdin.Read(make([]byte, 1))
}
`

// holdSockets opens n silent sockets to addr in this process and returns
// how many connected and the last error.
func holdSockets(t *testing.T, addr string, n int) (int, error) {
	var (
		mu      sync.Mutex
		conns   []net.Conn
		lastErr error
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// Dial in parallel: the accept queue is short, and SYNs beyond it are
	// retried by the kernel after a second.
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 10 * time.Second}
			for range jobs {
				c, err := d.Dial("tcp", addr)
				mu.Lock()
				if err != nil {
					lastErr = err
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return len(conns), lastErr
}

// startHolder builds and starts holderSrc to open n sockets to addr, and
// returns how many it opened; they stay open until the test ends.
func startHolder(t *testing.T, addr string, n int) int {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/main.go", []byte(holderSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", dir+"/holder", dir+"/main.go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the socket holder: %v\n%s", err, out)
	}
	cmd := exec.Command(dir+"/holder", addr, strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	buf := make([]byte, 64)
	for !strings.Contains(out.String(), "\n") {
		k, err := r.Read(buf)
		out.Write(buf[:k])
		if err != nil {
			t.Fatalf("socket holder: %v (%q)", err, out.String())
		}
	}
	got, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("socket holder said %q", out.String())
	}
	return got
}

func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(ents), err
}

// 22,000 sockets that never send a startup packet do not exhaust the
// manager's descriptors (issue 6): connections in the handshake are capped
// (the oldest closed to make room) and time out within seconds, so psql
// still gets in at once. The sockets are held by this process and a helper
// process, half each, so that neither needs more than its descriptor limit.
func TestSilentSocketsDoNotWedge(t *testing.T) {
	total := 22000
	// Go raises the soft limit to the hard one at start; both processes
	// are this test's children or itself, so they share it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(total/2+500) {
		total = 2 * (int(lim.Cur) - 500)
		t.Logf("descriptor limit %d: opening %d sockets instead of 22,000", lim.Cur, total)
	}
	m := StartManager(t, "")
	m.MustExec(t, `ADD HOST h1 (protocol=local, address='127.0.0.2');`)
	pid := m.cmd.Process.Pid
	if lim, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits"); err == nil {
		for _, l := range strings.Split(string(lim), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				t.Logf("manager: %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(m.Port)
	start := time.Now()
	held := startHolder(t, addr, total/2)
	mine, lastErr := holdSockets(t, addr, total-total/2)
	t.Logf("opened %d + %d silent sockets in %v (last dial error: %v)", held, mine, time.Since(start), lastErr)
	if held+mine < total*9/10 {
		t.Fatalf("only %d of %d sockets connected; last error %v", held+mine, total, lastErr)
	}
	fds, err := openFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("manager holds %d descriptors", fds)
	if fds > 1000 {
		t.Errorf("manager holds %d descriptors with silent sockets pending", fds)
	}
	// Every socket is still open on the clients' side; psql gets in at once.
	if d := timed(t, m, "LIST HOST"); d > 3*time.Second {
		t.Errorf("LIST HOST took %v with %d silent sockets open", d, held+mine)
	}
	// Those the manager kept (the newest) time out within seconds.
	time.Sleep(12 * time.Second)
	if fds, _ := openFDs(pid); fds > 200 {
		t.Errorf("manager holds %d descriptors 12s after the flood", fds)
	}
}
