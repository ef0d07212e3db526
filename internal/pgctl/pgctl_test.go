package pgctl

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const realPGHome = "/usr/lib/postgresql/15"

// testUser is the account tests run tools as: postgres when the tests run
// as root (PostgreSQL refuses root), the current user otherwise.
func testUser(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		return u.Username
	}
	if _, err := user.Lookup("postgres"); err != nil {
		t.Skip("running as root without an OS user postgres")
	}
	return "postgres"
}

// sharedDir makes a directory the test user can traverse: t.TempDir() is
// 0700 and owned by root, which a node's user cannot enter.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgctl-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeHome builds a pghome whose bin holds the given shell scripts. They are
// test fixtures, written by the test itself.
func fakeHome(t *testing.T, scripts map[string]string) string {
	t.Helper()
	home := sharedDir(t)
	if err := os.Mkdir(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(home, "bin", name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func TestDecideUser(t *testing.T) {
	tests := []struct {
		euid               int
		current, requested string
		switchUser         bool
		err                error
	}{
		{0, "root", "postgres", true, nil},
		{0, "root", "", false, ErrInvalid},
		{101, "postgres", "postgres", false, nil},
		{101, "postgres", "", false, nil},
		{101, "postgres", "antdb", false, ErrNotPermitted},
	}
	for _, tt := range tests {
		sw, err := decideUser(tt.euid, tt.current, tt.requested)
		if sw != tt.switchUser || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("decideUser(%d, %q, %q) = %v, %v", tt.euid, tt.current, tt.requested, sw, err)
		}
	}
}

func TestNewRefusals(t *testing.T) {
	home := fakeHome(t, nil)
	for _, h := range []string{"", "relative", home + "/", "/", "/nonexistent/pg", home + "/bin"} {
		if _, err := New(h, testUser(t)); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%q) = %v", h, err)
		}
	}
	if _, err := New(home, "no-such-user-xyz"); err == nil {
		t.Error("unknown user accepted")
	}
	if os.Geteuid() == 0 {
		if _, err := New(home, "root"); !errors.Is(err, ErrInvalid) {
			t.Errorf("root accepted: %v", err)
		}
	}
}

func TestTailWriter(t *testing.T) {
	var lines []string
	w := newTailWriter(16, func(l string) { lines = append(lines, l) })
	w.Write([]byte("a\nbb\r  1/2 kB (50%)\rpart"))
	w.Write([]byte("ial\n0123456789abcdefXYZ"))
	w.close()
	if diff := cmp.Diff([]string{"a", "bb", "  1/2 kB (50%)", "partial", "0123456789abcdefXYZ"}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	// The kept tail has no newline to cut at: all of it stays.
	if got := w.String(); got != "[output truncated]\n3456789abcdefXYZ" {
		t.Errorf("String() = %q", got)
	}
	w2 := newTailWriter(100, nil)
	w2.Write([]byte("  hello \n"))
	if w2.String() != "hello" {
		t.Errorf("String() = %q", w2.String())
	}
}

func TestParseProgress(t *testing.T) {
	tests := []struct {
		line        string
		done, total int64
		ok          bool
	}{
		{"    0/22480 kB (0%), 0/1 tablespace", 0, 22480, true},
		{"22489/22489 kB (100%), 1/1 tablespace", 22489, 22489, true},
		{"12345/67890 kB (18%), 0/1 tablespace (/var/lib/x/base/1/1234)", 12345, 67890, true},
		{"pg_basebackup: checkpoint completed", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		d, tot, ok := ParseProgress(tt.line)
		if d != tt.done || tot != tt.total || ok != tt.ok {
			t.Errorf("ParseProgress(%q) = %d, %d, %v", tt.line, d, tot, ok)
		}
	}
}

func TestConnInfo(t *testing.T) {
	s := Source{Host: "10.0.0.1", Port: 5432, User: "o'neil", ApplicationName: `a b\c`}
	want := `host='10.0.0.1' port='5432' user='o\'neil' application_name='a b\\c'`
	if got := s.ConnInfo(); got != want {
		t.Errorf("ConnInfo() = %s, want %s", got, want)
	}
	// The password comes from a file, and the server must show a
	// certificate of the CA for the host: no password in the string.
	s.PassFile, s.SSLRootCert = "/opt/adb/run/dn1-1/pgpass", "/opt/adb/run/dn1-1/root.crt"
	want += ` passfile='/opt/adb/run/dn1-1/pgpass' sslmode='verify-full' sslrootcert='/opt/adb/run/dn1-1/root.crt'`
	if got := s.ConnInfo(); got != want {
		t.Errorf("ConnInfo() = %s, want %s", got, want)
	}
	for _, bad := range []Source{{Port: 1}, {Host: "h"}, {Host: "h", Port: 70000}, {Host: "h\x00", Port: 1}, {Host: "h", Port: 1, ApplicationName: strings.Repeat("x", 64)},
		{Host: "h", Port: 1, PassFile: "/x\x00"}} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := ValidSlot("dn1_slave"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "Dn1", "a-b", strings.Repeat("x", 64)} {
		if ValidSlot(bad) == nil {
			t.Errorf("slot %q accepted", bad)
		}
	}
}

func TestParseControlData(t *testing.T) {
	out := `pg_control version number:            1300
Database cluster state:               in production
pg_control last modified:             Mon 01 Jan 2024 10:00:00 AM UTC
Latest checkpoint's TimeLineID:       1
garbage line
`
	want := map[string]string{
		"pg_control version number":      "1300",
		"Database cluster state":         "in production",
		"pg_control last modified":       "Mon 01 Jan 2024 10:00:00 AM UTC",
		"Latest checkpoint's TimeLineID": "1",
	}
	if diff := cmp.Diff(want, ParseControlData(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseDescribeConfig(t *testing.T) {
	out := "archive_mode\tpostmaster\tWrite-Ahead Log / Archiving\tENUM\toff\t\t\tAllows archiving of WAL files using archive_command.\t\n" +
		"autovacuum\tsighup\tAutovacuum\tBOOLEAN\tFALSE\t\t\tStarts the autovacuum subprocess.\t\n" +
		"port\tpostmaster\tConnections\tINTEGER\t0\t1\t65535\tSets the TCP port.\t\n" +
		"seq_page_cost\tuser\tQuery Tuning\tREAL\t0\t0\t1.79769e+308\tSets the cost.\tlong\n" +
		"DateStyle\tuser\tClient\tSTRING\tISO, MDY\t\t\tSets the display format.\tAlso.\n"
	got, err := ParseDescribeConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Parameter{
		{Name: "archive_mode", Context: "postmaster", Group: "Write-Ahead Log / Archiving", VarType: "enum", Default: "off", Short: "Allows archiving of WAL files using archive_command."},
		{Name: "autovacuum", Context: "sighup", Group: "Autovacuum", VarType: "bool", Short: "Starts the autovacuum subprocess."},
		{Name: "port", Context: "postmaster", Group: "Connections", VarType: "integer", Min: "1", Max: "65535", Short: "Sets the TCP port."},
		{Name: "seq_page_cost", Context: "user", Group: "Query Tuning", VarType: "real", Min: "0", Max: "1.79769e+308", Short: "Sets the cost.", Long: "long"},
		{Name: "DateStyle", Context: "user", Group: "Client", VarType: "string", Default: "ISO, MDY", Short: "Sets the display format.", Long: "Also."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := ParseDescribeConfig("a\tb\n"); err == nil {
		t.Error("short line accepted")
	}
}

func TestRun(t *testing.T) {
	name := testUser(t)
	home := fakeHome(t, map[string]string{
		// Fields 5 and 6 of /proc/self/stat are the process group and the
		// session.
		"probe": `echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; echo "pwd=$(pwd)"; echo "home=$HOME user=$USER lc=$LC_ALL pgdata=$PGDATA"; echo "pid=$$ sess=$(cut -d' ' -f6 /proc/$$/stat)"`,
		"fail":  `echo starting; echo "FATAL: it broke" >&2; exit 3`,
		"slow":  `echo started; sleep 30 & wait`,
		"loud":  `head -c 200000 /dev/zero | tr '\0' x; echo; echo the end`,
	})
	r, err := New(home, name)
	if err != nil {
		t.Fatal(err)
	}
	u := r.User()
	t.Setenv("PGDATA", "/must/not/leak")
	ctx := context.Background()

	res, err := r.Run(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	f := map[string]string{}
	for _, field := range strings.Fields(res.Output) {
		if k, v, ok := strings.Cut(field, "="); ok {
			f[k] = v
		}
	}
	if f["uid"] != strconv.Itoa(int(u.UID)) || f["gid"] != strconv.Itoa(int(u.GID)) {
		t.Errorf("ran as %s/%s, want %d/%d", f["uid"], f["gid"], u.UID, u.GID)
	}
	if f["pwd"] != "/" || f["home"] != u.Home || f["user"] != u.Name || f["lc"] != "C" || f["pgdata"] != "" {
		t.Errorf("environment: %q", res.Output)
	}
	if f["pid"] == "" || f["pid"] != f["sess"] {
		t.Errorf("not in its own session: %q", res.Output)
	}
	if os.Geteuid() == 0 {
		// Supplementary groups are the user's, not root's.
		for _, g := range strings.Fields(strings.TrimPrefix(strings.SplitN(res.Output, "\n", 2)[0], "uid="+f["uid"]+" gid="+f["gid"]+" groups=")) {
			if g == "0" {
				t.Errorf("root group kept: %q", res.Output)
			}
		}
	}

	res, err = r.Run(ctx, "fail")
	var te *ToolError
	if !errors.As(err, &te) || te.ExitCode != 3 || res.ExitCode != 3 {
		t.Fatalf("fail: %v %+v", err, res)
	}
	if !strings.Contains(err.Error(), "FATAL: it broke") || te.LastLines(1) != "FATAL: it broke" {
		t.Errorf("error %q", err)
	}

	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = r.Run(dctx, "slow")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &te) || !strings.Contains(te.Output, "started") {
		t.Errorf("slow: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("deadline took %v (the sleeping child kept the pipe?)", d)
	}

	res, err = r.Run(ctx, "loud")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) > MaxOutput+100 || !strings.HasPrefix(res.Output, "[output truncated]") || !strings.HasSuffix(res.Output, "the end") {
		t.Errorf("loud: %d bytes, %q…%q", len(res.Output), res.Output[:30], res.Output[len(res.Output)-10:])
	}

	if _, err := r.Run(ctx, "missing"); !errors.Is(err, ErrInvalid) {
		t.Errorf("missing tool: %v", err)
	}
	if _, err := r.Run(ctx, "../probe"); !errors.Is(err, ErrInvalid) {
		t.Errorf("tool with a slash: %v", err)
	}
}

func TestMakeDataDir(t *testing.T) {
	name := testUser(t)
	r, err := New(fakeHome(t, nil), name)
	if err != nil {
		t.Fatal(err)
	}
	base := sharedDir(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	path := filepath.Join(base, "a", "b", "data")
	created, err := r.MakeDataDir(path)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	for dir, mode := range map[string]os.FileMode{filepath.Join(base, "a"): 0o755, filepath.Join(base, "a", "b"): 0o755, path: 0o700} {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", dir, fi.Mode(), err, mode)
		}
	}
	fi, _ := os.Stat(path)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != r.User().UID {
		t.Errorf("owner %d", st.Uid)
	}
	if created, err := r.MakeDataDir(path); err != nil || created {
		t.Errorf("again: %v %v", created, err)
	}
	if err := r.CheckTraversable(path); err != nil {
		t.Error(err)
	}
	if os.Geteuid() == 0 {
		// A root-owned empty directory is handed over to the user.
		own := filepath.Join(base, "own")
		os.Mkdir(own, 0o755)
		if _, err := r.MakeDataDir(own); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(own)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != r.User().UID || fi.Mode().Perm() != 0o700 {
			t.Errorf("own: %d %v", st.Uid, fi.Mode())
		}
		// A directory the user cannot traverse is named.
		closed := filepath.Join(base, "closed")
		os.Mkdir(closed, 0o700)
		err := r.CheckTraversable(filepath.Join(closed, "x", "data"))
		if !errors.Is(err, ErrNotPermitted) || !strings.Contains(err.Error(), closed+" is mode 0700") {
			t.Errorf("closed: %v", err)
		}
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := r.MakeDataDir(file); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("file: %v", err)
	}
}

func TestDataDirFiles(t *testing.T) {
	dir := t.TempDir()
	if v, err := PGVersion(dir); v != "" || err != nil {
		t.Errorf("PGVersion(empty) = %q, %v", v, err)
	}
	if pid, alive, err := PostmasterPID(dir); pid != 0 || alive || err != nil {
		t.Errorf("no pid file: %d %v %v", pid, alive, err)
	}
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
	if v, _ := PGVersion(dir); v != "15" {
		t.Errorf("PGVersion = %q", v)
	}
	for content, wantPID := range map[string]int{"": 0, "garbage\n": 0, "2147483000\n/x\n": 2147483000} {
		os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(content), 0o600)
		pid, alive, err := PostmasterPID(dir)
		if pid != wantPID || alive || err != nil {
			t.Errorf("%q: %d %v %v", content, pid, alive, err)
		}
	}
	// Our own pid is alive but is not a postmaster: a recycled pid.
	os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	if _, alive, _ := PostmasterPID(dir); alive {
		t.Error("the test binary taken for a postmaster")
	}
	if empty, err := IsEmpty(t.TempDir()); !empty || err != nil {
		t.Errorf("IsEmpty = %v %v", empty, err)
	}
}

// TestRealTools runs the installed PostgreSQL 15's tools.
func TestRealTools(t *testing.T) {
	if _, err := os.Stat(filepath.Join(realPGHome, "bin", "initdb")); err != nil {
		t.Skip("PostgreSQL 15 is not installed")
	}
	r, err := New(realPGHome, testUser(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	params, err := r.DescribeConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range params {
		if p.Name == "wal_level" {
			found = p.VarType == "enum" && p.Context == "postmaster" && p.Default == "replica"
		}
	}
	if !found || len(params) < 200 {
		t.Errorf("describe-config: %d parameters, wal_level found=%v", len(params), found)
	}

	path := filepath.Join(sharedDir(t), "data")
	if _, err := r.MakeDataDir(path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.InitDB(ctx, path, InitDBOptions{DataChecksums: true, WALSegSizeMB: 32}); err != nil {
		t.Fatal(err)
	}
	if v, _ := PGVersion(path); v != "15" {
		t.Errorf("PG_VERSION %q", v)
	}
	cd, err := r.ControlData(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if cd["Database cluster state"] != "shut down" || cd["Data page checksum version"] != "1" || cd["Bytes per WAL segment"] != "33554432" {
		t.Errorf("controldata: %v", cd)
	}
	if running, err := r.Running(ctx, path); running || err != nil {
		t.Errorf("Running = %v, %v", running, err)
	}
	if _, err := r.Running(ctx, filepath.Join(path, "nope")); err == nil {
		t.Error("Running of a missing directory")
	}
	if _, err := r.InitDB(ctx, path, InitDBOptions{}); err == nil {
		t.Error("initdb into a non-empty directory")
	}
	if _, err := r.InitDB(ctx, path, InitDBOptions{WALSegSizeMB: 3}); !errors.Is(err, ErrInvalid) {
		t.Errorf("wal segsize 3: %v", err)
	}
	if _, err := r.InitDB(ctx, path, InitDBOptions{Locale: "C; rm -rf /"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("locale: %v", err)
	}
	ready, err := r.IsReady(ctx, "127.0.0.1", 1)
	if ready != NoResponse || err != nil {
		t.Errorf("IsReady(closed port) = %q, %v", ready, err)
	}
}

// The agent refuses to run a tool, or a tool that runs postgres, that
// someone other than root and the node's user could have written: the
// script is never executed.
func TestRunRefusesUntrustedPrograms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files other owners")
	}
	u, err := LookupUser(testUser(t))
	if err != nil {
		t.Fatal(err)
	}
	markerDir := sharedDir(t)
	if err := os.Chown(markerDir, int(u.UID), -1); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(markerDir, "ran")
	body := "touch " + marker
	for _, tc := range []struct {
		name  string
		tool  string
		setup func(home string) error
		want  string
	}{
		{"tool owned by nobody", "initdb", func(home string) error { return os.Chown(filepath.Join(home, "bin", "initdb"), 65534, -1) },
			"is owned by uid 65534 (nobody)"},
		{"bin owned by nobody", "pg_ctl", func(home string) error { return os.Chown(filepath.Join(home, "bin"), 65534, -1) },
			"is owned by uid 65534 (nobody)"},
		{"world-writable tool", "pg_rewind", func(home string) error { return os.Chmod(filepath.Join(home, "bin", "pg_rewind"), 0o757) },
			"is writable by others (mode 0757)"},
		{"group-writable pghome", "pg_basebackup", func(home string) error { return os.Chmod(home, 0o775) },
			"is writable by group (mode 0775)"},
		{"postgres owned by nobody", "initdb", func(home string) error { return os.Chown(filepath.Join(home, "bin", "postgres"), 65534, -1) },
			"postgres is owned by uid 65534 (nobody)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := fakeHome(t, map[string]string{tc.tool: body, "postgres": body})
			if err := tc.setup(home); err != nil {
				t.Fatal(err)
			}
			r, err := New(home, testUser(t))
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Run(context.Background(), tc.tool)
			if !errors.Is(err, ErrNotPermitted) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run(%s) = %v, want ErrNotPermitted saying %q", tc.tool, err, tc.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the untrusted program ran")
			}
		})
	}
	// The same installation, trusted, runs: the marker proves the test
	// would have seen an execution.
	home := fakeHome(t, map[string]string{"pg_ctl": body, "postgres": body})
	r, err := New(home, testUser(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), "pg_ctl"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("a trusted tool did not run: %v", err)
	}
}
