package e2e

// Issue 6 item 3, "no path to root": a local user who can reach the
// manager must not get it to run their program as root (the agent) or as
// the nodes' user (PostgreSQL's tools), and agents inherit nothing of the
// manager.

import (
	"bytes"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// attackKit builds, under a root-owned 0755 directory in /tmp, the
// installations the attacks use. Every script would write its marker
// (world-writable markers directory, so that even a script run as nobody
// could) and print `id`: a marker that exists is a program that ran.
type attackKit struct {
	t       *testing.T
	base    string
	markers string
}

func newAttackKit(t *testing.T) *attackKit {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "adbmgr-e2e-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	k := &attackKit{t: t, base: base, markers: filepath.Join(base, "markers")}
	k.must(os.Chmod(base, 0o755))
	k.must(os.Mkdir(k.markers, 0o700))
	k.must(os.Chmod(k.markers, 0o777|fs.ModeSticky))
	return k
}

func (k *attackKit) must(err error) {
	k.t.Helper()
	if err != nil {
		k.t.Fatal(err)
	}
}

// dir makes base/rel with an owner and mode.
func (k *attackKit) dir(rel string, uid int, mode fs.FileMode) string {
	k.t.Helper()
	p := filepath.Join(k.base, rel)
	k.must(os.Mkdir(p, 0o700))
	k.must(os.Chmod(p, mode))
	k.must(os.Chown(p, uid, -1))
	return p
}

// script writes base/rel, a shell script that leaves the marker name.
func (k *attackKit) script(rel, marker string, uid int, mode fs.FileMode) string {
	k.t.Helper()
	p := filepath.Join(k.base, rel)
	k.must(os.WriteFile(p, []byte("#!/bin/sh\nid > "+filepath.Join(k.markers, marker)+"\n"), 0o700))
	k.must(os.Chmod(p, mode))
	k.must(os.Chown(p, uid, -1))
	return p
}

// copyAgent copies the real adbagent build to base/rel (same checksum).
func (k *attackKit) copyAgent(rel string, uid int, mode fs.FileMode) {
	k.t.Helper()
	b, err := os.ReadFile(filepath.Join(binDir, "adbagent"))
	k.must(err)
	p := filepath.Join(k.base, rel)
	k.must(os.WriteFile(p, b, 0o700))
	k.must(os.Chmod(p, mode))
	k.must(os.Chown(p, uid, -1))
}

// ran lists the markers left: the programs that ran.
func (k *attackKit) ran() []string {
	ents, _ := os.ReadDir(k.markers)
	var out []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(k.markers, e.Name()))
		out = append(out, e.Name()+": "+strings.TrimSpace(string(b)))
	}
	return out
}

const nobody = 65534

// wantRefused checks psql's verbose error: the SQLSTATE, and every text.
func wantRefused(t *testing.T, sql, stderr, code string, texts ...string) {
	t.Helper()
	if !strings.Contains(stderr, "ERROR:  "+code+": ") {
		t.Errorf("%s: want SQLSTATE %s, got:\n%s", sql, code, stderr)
	}
	for _, s := range texts {
		if !strings.Contains(stderr, s) {
			t.Errorf("%s: want %q in:\n%s", sql, s, stderr)
		}
	}
}

// TestNoPathToRoot replays the attack and its variants: each is
// refused with a SQLSTATE and its program never runs.
func TestNoPathToRoot(t *testing.T) {
	requireAgent(t)
	k := newAttackKit(t)
	m := StartManager(t, "")

	// The attack, word for word but for the paths: a directory of
	// nobody's with a script of nobody's as bin/adbagent.
	evil := k.dir("evil", nobody, 0o755)
	k.dir("evil/bin", nobody, 0o755)
	k.script("evil/bin/adbagent", "evil", nobody, 0o755)
	port := freePortOn(t, "127.0.0.1")
	sql := "ADD HOST evil (address='127.0.0.20', protocol=local, agentport=" + strconv.Itoa(port) + ", adbhome='" + evil + "');"
	stderr := m.MustFail(t, sql+" START AGENT evil;")
	wantRefused(t, sql, stderr, "55000", `adbhome "`+evil+`" of host "evil" is not safe`,
		evil+" is owned by uid 65534 (nobody), neither root nor uid", "HINT:  Make "+evil)
	// The caret is under the adbhome option's value.
	if lines := strings.Split(stderr, "\n"); !caretUnder(lines, "adbhome=") {
		t.Errorf("caret not under the adbhome value:\n%s", stderr)
	}
	rows := m.Rows(t, "SELECT count(*) FROM host")
	if len(rows) != 1 || rows[0][0] != "0" {
		t.Errorf("hosts after the refused ADD HOST: %q", rows)
	}

	// pghome pointing at an installation of nobody's: refused the same way.
	fakePG := k.dir("fakepg", nobody, 0o755)
	k.dir("fakepg/bin", nobody, 0o755)
	k.script("fakepg/bin/initdb", "fakepg-initdb", nobody, 0o755)
	sql = "ADD HOST fake (address='127.0.0.21', protocol=local, pghome='" + fakePG + "');"
	wantRefused(t, sql, m.MustFail(t, sql), "55000", `pghome "`+fakePG+`" of host "fake" is not safe`)

	// ALTER HOST cannot bring them in either, nor unsafe modes.
	open := k.dir("open", 0, 0o777)
	m.MustExec(t, "ADD HOST h (address='127.0.0.22', protocol=local, agentport="+strconv.Itoa(port)+");")
	for opt, path := range map[string]string{"adbhome": evil, "pghome": open} {
		sql = "ALTER HOST h (" + opt + "='" + path + "');"
		wantRefused(t, sql, m.MustFail(t, sql), "55000", opt+` "`+path+`" of host "h" is not safe`)
	}
	sql = "ALTER HOST h (pghome='/usr/lib/postgresql/15/../../../tmp/x');"
	wantRefused(t, sql, m.MustFail(t, sql), "22023", `invalid value for option "pghome"`, `must not contain ".."`)
	for _, addr := range []string{"0.0.0.0", "::", "224.0.0.1"} {
		sql = "ALTER HOST h (address='" + addr + "');"
		wantRefused(t, sql, m.MustFail(t, sql), "22023", `invalid value for option "address"`)
	}

	// Homes that pass ADD HOST but whose bin/adbagent is not the manager's
	// build, or could be replaced: START AGENT refuses and runs nothing.
	for _, tc := range []struct {
		name  string
		setup func(home string)
		want  []string
	}{
		{"other", func(home string) { k.script("other/bin/adbagent", "other", 0, 0o755) },
			[]string{`adbagent "` + k.base + `/other/bin/adbagent" of host "other" is not this manager's build`, "DETAIL:  Its SHA-256 is "}},
		{"worldw", func(home string) { k.copyAgent("worldw/bin/adbagent", 0, 0o777) },
			[]string{k.base + "/worldw/bin/adbagent is writable by group and others (mode 0777)"}},
		{"nobodys", func(home string) { k.copyAgent("nobodys/bin/adbagent", nobody, 0o755) },
			[]string{k.base + "/nobodys/bin/adbagent is owned by uid 65534 (nobody)"}},
		// Safe at ADD HOST, handed to nobody afterwards: the issue's
		// attack with the directory changed behind the manager's back.
		{"later", func(home string) {
			k.script("later/bin/adbagent", "later", 0, 0o755)
			k.must(os.Chown(home, nobody, -1))
		}, []string{k.base + "/later is owned by uid 65534 (nobody)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := k.dir(tc.name, 0, 0o755)
			k.dir(tc.name+"/bin", 0, 0o755)
			addr := "127.0.0." + strconv.Itoa(30+len(tc.name)) // distinct per case
			if tc.name == "later" {
				addr = "127.0.0.40"
			}
			m.MustExec(t, "ADD HOST "+tc.name+" (address='"+addr+"', protocol=local, agentport="+strconv.Itoa(port)+", adbhome='"+home+"');")
			tc.setup(home)
			sql := "START AGENT " + tc.name + ";"
			stderr := m.MustFail(t, sql)
			wantRefused(t, sql, stderr, "55000", tc.want...)
			if ps := findProcs(func(cl string) bool { return strings.Contains(cl, k.base) }); len(ps) > 0 {
				t.Errorf("processes running from %s: %v", k.base, ps)
			}
			// START AGENT ALL is refused as a whole: no other host's
			// agent starts either.
			stderr = m.MustFail(t, "START AGENT ALL;")
			wantRefused(t, "START AGENT ALL", stderr, "55000")
			m.MustExec(t, "DROP HOST "+tc.name+";")
		})
	}
	if ran := k.ran(); len(ran) > 0 {
		t.Errorf("programs ran: %q", ran)
	}
	if ps := findProcs(func(cl string) bool { return strings.Contains(cl, "adbagent") && strings.Contains(cl, m.Dir+"/") }); len(ps) > 0 {
		t.Errorf("agents started by refused commands: %v", ps)
	}
}

// caretUnder reports whether psql drew the caret right after before (an
// option's "name=") in the LINE 1 it printed, which psql may shorten.
func caretUnder(lines []string, before string) bool {
	for i, l := range lines {
		if strings.HasPrefix(l, "LINE 1: ") && i+1 < len(lines) {
			col := strings.Index(lines[i+1], "^")
			return col > 0 && col <= len(l) && strings.HasSuffix(l[:col], before)
		}
	}
	return false
}

// TestAgentUntrustedTool: the agent itself refuses a PostgreSQL tool that
// became unsafe after ADD HOST (here the whole installation handed to
// nobody), before running it.
func TestAgentUntrustedTool(t *testing.T) {
	k := newAttackKit(t)
	pg := k.dir("pg", 0, 0o755)
	k.dir("pg/bin", 0, 0o755)
	for _, tool := range []string{"initdb", "pg_ctl", "postgres", "pg_controldata", "pg_isready"} {
		k.script("pg/bin/"+tool, "pg-"+tool, 0, 0o755)
	}
	c := newTestCluster(t, 0)
	h := hostSpec{Name: "hp", Addr: "127.0.0.23"}
	h.AgentPort = freePortOn(t, h.Addr)
	c.Hosts = append(c.Hosts, h)
	c.M.MustExec(t, "ADD HOST hp (address='"+h.Addr+"', protocol=local, agentport="+strconv.Itoa(h.AgentPort)+", pghome='"+pg+"');")
	c.mustRows(t, 90*time.Second, "START AGENT hp")
	c.addNode(t, "gtmcoord master", "gc", "", "hp", "")
	filepath.WalkDir(pg, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			err = os.Lchown(p, nobody, -1)
		}
		return err
	})
	rows, stderr, _ := c.psqlRows(2*time.Minute, "INIT ALL")
	all := stderr
	for _, r := range rows {
		all += strings.Join(r, " ") + "\n"
	}
	if !strings.Contains(all, "refusing to run "+pg+"/bin/") || !strings.Contains(all, "is owned by uid 65534 (nobody)") {
		t.Errorf("INIT ALL with a pghome of nobody's: want the agent's refusal, got rows %q\n%s", rows, stderr)
	}
	if ran := k.ran(); len(ran) > 0 {
		t.Errorf("programs ran: %q", ran)
	}
}

// TestAgentDescriptors: START AGENT of the real build works, runs the
// manager's own copy, and the agent holds none of the manager's
// descriptors — not even one the manager inherited without close-on-exec.
func TestAgentDescriptors(t *testing.T) {
	requireAgent(t)
	leak, err := os.CreateTemp("", "adbmgr-e2e-leak-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(leak.Name())
	defer leak.Close()
	m := startManagerWith(t, leak)
	dir, err := os.MkdirTemp("/tmp", "adbmgr-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, M: m, Dir: dir}
	t.Cleanup(c.cleanup)
	h := hostSpec{Name: "h1", Addr: "127.0.0.24"}
	h.AgentPort = freePortOn(t, h.Addr)
	c.Hosts = append(c.Hosts, h)
	m.MustExec(t, "ADD HOST h1 (address='"+h.Addr+"', protocol=local, agentport="+strconv.Itoa(h.AgentPort)+");")
	rows, stderr := c.mustRows(t, 90*time.Second, "START AGENT h1")
	if len(rows) != 1 || strings.Join(rows[0], " ") != "h1 t success" {
		t.Fatalf("START AGENT h1: %q\n%s", rows, stderr)
	}
	pid := c.agentPID(h)
	if pid == 0 {
		t.Fatal("no agent process")
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); exe != filepath.Join(binDir, "adbagent") {
		t.Errorf("the agent runs %s, want the manager's own %s", exe, filepath.Join(binDir, "adbagent"))
	}
	mgrFDs := fds(t, m.cmd.Process.Pid)
	if !containsValue(mgrFDs, leak.Name()) {
		t.Fatalf("the manager did not inherit the test's descriptor (the test proves nothing): %v", mgrFDs)
	}
	agentFDs := fds(t, pid)
	log := filepath.Join(m.Dir, "agents", "h1", "agent.log")
	for fd, want := range map[int]string{0: os.DevNull, 1: log, 2: log} {
		if agentFDs[fd] != want {
			t.Errorf("agent fd %d is %q, want %s", fd, agentFDs[fd], want)
		}
	}
	for fd, target := range agentFDs {
		for mfd, mtarget := range mgrFDs {
			same, err := sameOpenFile(pid, fd, m.cmd.Process.Pid, mfd)
			if err != nil {
				t.Fatalf("kcmp: %v", err)
			}
			if same {
				t.Errorf("agent fd %d (%s) is the manager's fd %d (%s)", fd, target, mfd, mtarget)
			}
		}
		// What the agent opens itself: its log, sockets, the runtime's
		// epoll and eventfd, and the cgroup files Go reads GOMAXPROCS from.
		if fd > 2 && target != log && !strings.HasPrefix(target, "socket:") && !strings.HasPrefix(target, "anon_inode:") &&
			!strings.HasPrefix(target, "/sys/fs/cgroup/") {
			t.Errorf("agent fd %d is %s, which the agent does not open for itself (agent fds: %v)", fd, target, agentFDs)
		}
	}
}

// sameOpenFile reports whether fd1 of pid1 and fd2 of pid2 are one open
// file description (kcmp(2), KCMP_FILE), which is what a descriptor
// inherited across fork and exec is. Two processes that opened the same
// file each for itself are told apart.
func sameOpenFile(pid1, fd1, pid2, fd2 int) (bool, error) {
	const kcmpFile = 0
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpFile, uintptr(fd1), uintptr(fd2), 0)
	if errno != 0 {
		return false, errno
	}
	return r == 0, nil
}

// fds maps a process's descriptors to what they are.
func fds(t *testing.T, pid int) map[int]string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out[n] = target
		}
	}
	return out
}

func containsValue(m map[int]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// startManagerWith is StartManager with extra descriptors handed to the
// manager without close-on-exec (fd 3, …), as a careless parent would.
func startManagerWith(t *testing.T, extra ...*os.File) *Manager {
	t.Helper()
	m := &Manager{t: t, Dir: filepath.Join(t.TempDir(), "mgr"), Port: freePort(t), log: &bytes.Buffer{}}
	m.cmd = exec.Command(filepath.Join(binDir, "adbmgr"), "start", "-D", m.Dir, "--listen", "127.0.0.1:"+strconv.Itoa(m.Port))
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.ExtraFiles = extra
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.Port), time.Second)
		if err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("adbmgr did not start listening: %v\n%s", err, m.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
