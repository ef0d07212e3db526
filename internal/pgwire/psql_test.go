package pgwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// psql runs the real psql against ts with the flags DBAs use in scripts and
// returns its stdout, stderr and exit code.
func psql(t *testing.T, ts *testServer, command string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Skipf("psql is not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-X", "-v", "ON_ERROR_STOP=1", "-w",
		"-h", "127.0.0.1", "-p", fmt.Sprint(ts.addr.Port), "-U", "postgres", "-d", "postgres",
		"-c", command)
	// The caller's PG* variables (sslmode, service files…) must not leak in;
	// the locale is pinned so that messages are not translated.
	env := []string{"LC_ALL=C", "PGAPPNAME=psql-test"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("psql: %v", err)
	}
	return out.String(), errb.String(), code
}

type psqlResult struct {
	Stdout, Stderr string
	Code           int
}

func TestPsql(t *testing.T) {
	ts := startServer(t, fakeHandler{}, Options{})
	for _, tc := range []struct {
		name, command string
		want          psqlResult
	}{{
		name:    "rows",
		command: "rows",
		want: psqlResult{Stdout: "" +
			" name  | n  | ok |     big     | node \n" +
			"-------+----+----+-------------+------\n" +
			" alpha |  1 | t  | 10000000000 | dn1\n" +
			"       | -2 | f  |          -3 | cn1\n" +
			"(2 rows)\n\n"},
	}, {
		name:    "positioned error",
		command: "rows; bogus",
		want: psqlResult{
			Stdout: "" +
				" name  | n  | ok |     big     | node \n" +
				"-------+----+----+-------------+------\n" +
				" alpha |  1 | t  | 10000000000 | dn1\n" +
				"       | -2 | f  |          -3 | cn1\n" +
				"(2 rows)\n\n",
			Stderr: "" +
				"ERROR:  syntax error at or near \"bogus\"\n" +
				"LINE 1: rows; bogus\n" +
				"              ^\n",
			Code: 1,
		},
	}, {
		name:    "error with detail and hint",
		command: "fail",
		want: psqlResult{
			Stderr: "" +
				"ERROR:  node \"dn9\" is not running\n" +
				"LINE 1: fail\n" +
				"        ^\n" +
				"DETAIL:  Its agent reports no postmaster.\n" +
				"HINT:  Start it with START DATANODE dn9.\n",
			Code: 1,
		},
	}, {
		name:    "multiple statements",
		command: "cmd; notice; cmd",
		want: psqlResult{
			Stdout: "ADD NODE\n" +
				" result \n" +
				"--------\n" +
				" done\n" +
				"(1 row)\n\n" +
				"ADD NODE\n",
			Stderr: "NOTICE:  step 1 of 2\n" +
				"WARNING:  step 2 of 2 is slow\n",
		},
	}, {
		name:    "session",
		command: "whoami",
		want: psqlResult{Stdout: "" +
			"   user   | database | application | pid |             params              \n" +
			"----------+----------+-------------+-----+---------------------------------\n" +
			" postgres | postgres | psql-test   |   1 | user=postgres database=postgres\n" +
			"(1 row)\n\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := psql(t, ts, tc.command)
			got := psqlResult{stdout, stderr, code}
			if tc.name == "session" {
				// pid depends on how many sessions came before.
				got.Stdout = pidRE(got.Stdout)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("psql -c %q (-want +got):\n%s", tc.command, diff)
			}
		})
	}
}

// pidRE replaces the pid column of the whoami row with 1.
func pidRE(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 2 {
		f := strings.Split(lines[2], "|")
		if len(f) == 5 {
			f[3] = fmt.Sprintf("%*d ", len(f[3])-1, 1)
			lines[2] = strings.Join(f, "|")
		}
	}
	return strings.Join(lines, "\n")
}

// TestPsqlCancel presses Ctrl-C in psql during a long command: psql sends a
// CancelRequest on a new connection, and the query must end with 57014.
func TestPsqlCancel(t *testing.T) {
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Skipf("psql is not installed: %v", err)
	}
	ts := startServer(t, fakeHandler{}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-X", "-v", "ON_ERROR_STOP=1", "-w",
		"-h", "127.0.0.1", "-p", fmt.Sprint(ts.addr.Port), "-U", "postgres", "-d", "postgres",
		"-c", "sleep")
	cmd.Env = []string{"LC_ALL=C", "PATH=" + os.Getenv("PATH")}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the query is running; until psql has connected,
	// SIGINT would simply kill it.
	deadline := time.Now().Add(10 * time.Second)
	for !ts.srv.hasRunningQuery() {
		if time.Now().After(deadline) {
			t.Fatal("psql's query never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("psql exit: %v, want exit status 1", err)
	}
	if want := "Cancel request sent\nERROR:  canceling statement due to user request\n"; errb.String() != want {
		t.Errorf("psql stderr = %q, want %q", errb.String(), want)
	}
}
