// Package e2e drives the real adbmgr binary with the real psql, as a DBA
// would: build, start, type commands, read what psql prints.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden transcripts")

// binDir holds the adbmgr binary built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	// A name of fixed length: the default adbhome (this directory) is shown
	// by LIST HOST, and psql sizes the column before the transcript
	// replaces the path, so a varying length would change the golden file.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("adbmgr-e2e-%010d", os.Getpid()))
	err := os.MkdirAll(dir, 0o755)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = filepath.Join(dir, "bin")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "adbmgr"), "./cmd/adbmgr")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build adbmgr:", err)
		os.Exit(1)
	}
	// The manager starts a local host's agent from <adbhome>/bin/adbagent,
	// and a host's default adbhome is the manager's install directory (the
	// parent of binDir): the agent is built next to adbmgr. A broken agent
	// build fails the cluster tests only (requireAgent), not the catalog ones.
	agent := exec.Command("go", "build", "-o", filepath.Join(binDir, "adbagent"), "./cmd/adbagent")
	agent.Dir = root
	if out, err := agent.CombinedOutput(); err != nil {
		agentBuildErr = fmt.Errorf("go build ./cmd/adbagent: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("psql"); err != nil {
		// Real psql is the point of these tests: missing psql is a failure
		// of the environment, not something to skip (.ci/run installs it).
		fmt.Fprintln(os.Stderr, "psql not found: install postgresql-client-15")
		os.Exit(1)
	}
	code := m.Run()
	if !closeSharedClusters() && code == 0 {
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// Manager is a running adbmgr process.
type Manager struct {
	t       testing.TB
	Dir     string
	Port    int
	cmd     *exec.Cmd
	log     *bytes.Buffer
	stopped bool
	// Args are extra flags of the next start (crash_test.go's --crash-at).
	Args []string
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartManager starts adbmgr on a fresh data directory (or dir, if given).
func StartManager(t testing.TB, dir string) *Manager {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "mgr")
	}
	m := &Manager{t: t, Dir: dir, Port: freePort(t), log: &bytes.Buffer{}}
	m.start()
	t.Cleanup(m.Stop)
	return m
}

// Password is the e2e managers' superuser (postgres) password, for tests
// that log in over TCP; the rest connect over the Unix socket in the data
// directory with peer authentication (they run as root), the documented
// default.
const Password = "e2e-Secret-pw"

func (m *Manager) start() {
	m.t.Helper()
	if _, err := os.Stat(filepath.Join(m.Dir, "catalog.db")); err != nil {
		pwfile := filepath.Join(m.t.TempDir(), "pw")
		if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o600); err != nil {
			m.t.Fatal(err)
		}
		out, err := exec.Command(filepath.Join(binDir, "adbmgr"), "init", "-D", m.Dir, "-U", "postgres", "--pwfile", pwfile).CombinedOutput()
		if err != nil {
			m.t.Fatalf("adbmgr init: %v\n%s", err, out)
		}
	}
	m.cmd = exec.Command(filepath.Join(binDir, "adbmgr"), append([]string{"start", "-D", m.Dir, "--listen", "127.0.0.1:" + strconv.Itoa(m.Port)}, m.Args...)...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.stopped = false
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The Unix socket opens after the TCP one: wait for it.
		c, err := net.DialTimeout("unix", filepath.Join(m.Dir, ".s.PGSQL."+strconv.Itoa(m.Port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("adbmgr did not start listening: %v\n%s", err, m.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (m *Manager) Stop() {
	if m.stopped {
		return
	}
	m.stopped = true
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			m.t.Errorf("adbmgr exited with %v after SIGTERM\n%s", err, m.log.String())
		}
	case <-time.After(15 * time.Second):
		m.cmd.Process.Kill()
		<-done
		m.t.Errorf("adbmgr did not stop within 15s of SIGTERM\n%s", m.log.String())
	}
}

// Kill9 kills the manager without warning, as a crash would.
func (m *Manager) Kill9() {
	m.stopped = true
	m.cmd.Process.Kill()
	m.cmd.Wait()
}

// Restart starts the manager again on the same directory and port.
func (m *Manager) Restart() {
	m.t.Helper()
	m.start()
}

// Psql runs psql with the given arguments against the manager and returns
// stdout and stderr. It never fails the test by itself.
func (m *Manager) Psql(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	base := []string{"-X", "-h", m.Dir, "-p", strconv.Itoa(m.Port), "-U", "postgres", "-d", "postgres", "-P", "pager=off"}
	cmd := exec.CommandContext(ctx, "psql", append(base, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGAPPNAME=adbmgr-e2e", "PGPASSWORD=", "PGSSLMODE=prefer")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// MustExec runs sql (one or more statements) with ON_ERROR_STOP and fails the
// test on any error; it returns psql's stdout.
func (m *Manager) MustExec(t testing.TB, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-c", sql)
	if err != nil {
		t.Fatalf("psql -c %q: %v\nstdout:\n%s\nstderr:\n%s", sql, err, out, errOut)
	}
	return out
}

// MustFail runs sql, expects psql to report an error, and returns stderr
// (psql's ERROR/HINT/LINE/caret lines). verbosity "verbose" adds the SQLSTATE.
func (m *Manager) MustFail(t testing.TB, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-c", sql)
	if err == nil {
		t.Fatalf("psql -c %q succeeded, want an error\nstdout:\n%s", sql, out)
	}
	return errOut
}

// Transcript runs a script file with psql echoing every statement (-a) and
// continuing past errors, stdout and stderr in one stream, as a DBA would see
// it in the terminal.
func (m *Manager) Transcript(t testing.TB, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	base := []string{"-X", "-a", "-h", m.Dir, "-p", strconv.Itoa(m.Port), "-U", "postgres", "-d", "postgres",
		"-P", "pager=off", "-v", "VERBOSITY=verbose", "-f", file}
	cmd := exec.CommandContext(ctx, "psql", base...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("psql -f %s: %v\n%s", file, err, buf.String())
	}
	// psql names the script in error locations; keep goldens independent of
	// where the checkout lives.
	out := strings.ReplaceAll(buf.String(), file, filepath.Base(file))
	// The default adbhome is the manager's install directory, a temporary
	// one here.
	return strings.ReplaceAll(out, filepath.Dir(binDir), "/install/dir")
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (-update rewrites it):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff is a small line-by-line diff, enough to read a transcript change.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// Rows runs one query and returns psql's unaligned, tuples-only output split
// into rows and tab-separated fields.
func (m *Manager) Rows(t testing.TB, sql string) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := m.Psql(ctx, "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", "-c", sql)
	if err != nil {
		t.Fatalf("psql -c %q: %v\n%s", sql, err, errOut)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// execOut runs a command and returns its combined output.
func execOut(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
