package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshUser is the OS user the ssh test hosts' agents run as: not root, as
// on a real machine.
const sshUser = "adbtest"

// sshHosts are namespace hosts th1…thN (scripts/testhosts.sh) with an
// adbhome each, owned by sshUser.
type sshHosts struct {
	dir  string
	uid  int
	gid  int
	home string // sshUser's home directory
	pw   string // sshUser's password, random per test
	// aliases: other names a test gave a host in the manager (adb03 for
	// th3), so that its directories can be found by either.
	aliases map[string]string
}

func (s *sshHosts) name(i int) string    { return "th" + strconv.Itoa(i) }
func (s *sshHosts) addr(i int) string    { return "198.18.0." + strconv.Itoa(10+i) }
func (s *sshHosts) adbhome(i int) string { return filepath.Join(s.dir, s.name(i), "adbhome") }

// dataDir is where host's nodes keep their data: its own directory, owned
// by sshUser (testhosts.sh makes it root's).
func (s *sshHosts) dataDir(host string) string { return filepath.Join(s.hostDir(host), "data") }

// hostDir is the directory of the namespace host the manager knows as host.
func (s *sshHosts) hostDir(host string) string {
	if th, ok := s.aliases[host]; ok {
		host = th
	}
	return filepath.Join(s.dir, host)
}
func (s *sshHosts) authorizedKeys() string {
	return filepath.Join(s.home, ".ssh", "authorized_keys")
}

// upSSHHosts brings up n namespace hosts and the test user (made with
// useradd when missing, with a fresh random password); everything is taken
// down again in t.Cleanup, the test user's authorized_keys included.
func upSSHHosts(t testing.TB, n int) *sshHosts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the ssh host tests need root (network namespaces, useradd)")
	}
	if _, err := exec.Command("ip", "link", "show", "adbtbr0").CombinedOutput(); err == nil {
		t.Fatal("bridge adbtbr0 exists: test hosts are up already (scripts/testhosts.sh down)")
	}
	if _, err := user.Lookup(sshUser); err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/bash", sshUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", sshUser, err, out)
		}
	}
	u, err := user.Lookup(sshUser)
	if err != nil {
		t.Fatal(err)
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	s := &sshHosts{home: u.HomeDir, pw: "pw-" + hex.EncodeToString(rnd[:])}
	s.uid, _ = strconv.Atoi(u.Uid)
	s.gid, _ = strconv.Atoi(u.Gid)
	chpasswd := exec.Command("chpasswd")
	chpasswd.Stdin = strings.NewReader(sshUser + ":" + s.pw + "\n")
	if out, err := chpasswd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v\n%s", err, out)
	}
	os.Remove(s.authorizedKeys())
	t.Cleanup(func() { os.Remove(s.authorizedKeys()) })
	// Not t.TempDir: its parents are root's 0700, and the hosts' user
	// must reach its adbhome.
	s.dir, err = os.MkdirTemp("", "adbssh-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(s.dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(s.dir) })
	t.Cleanup(func() {
		// Agents the test left running, then the hosts.
		for _, k := range killTrees(s.dir + "/th") {
			if !strings.Contains(k, "sshd") {
				t.Logf("cleanup killed %s", k)
			}
		}
		if out, err := testhosts(t, s.dir, "down"); err != nil {
			t.Errorf("testhosts down: %v\n%s", err, out)
		}
	})
	if out, err := testhosts(t, s.dir, "up", strconv.Itoa(n)); err != nil {
		t.Fatalf("testhosts up %d: %v\n%s", n, err, out)
	}
	for i := 1; i <= n; i++ {
		if err := os.MkdirAll(s.adbhome(i), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chown(s.adbhome(i), s.uid, s.gid)
		os.Chown(s.dataDir(s.name(i)), s.uid, s.gid)
	}
	return s
}

// addHosts registers th1…thn as ssh hosts of m.
func (s *sshHosts) addHosts(t testing.TB, m *Manager, n int) {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "ADD HOST %s (protocol=ssh, address='%s', port=22, user='%s', adbhome='%s', agentport=5430);\n",
			s.name(i), s.addr(i), sshUser, s.adbhome(i))
	}
	m.MustExec(t, b.String())
}

// regenHostKey gives host i's sshd a new host key, as a reinstalled
// machine (or a man in the middle) would present, and returns its
// fingerprint.
func (s *sshHosts) regenHostKey(t *testing.T, i int) string {
	t.Helper()
	h := filepath.Join(s.dir, s.name(i))
	pid, err := os.ReadFile(filepath.Join(h, "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	syscall.Kill(p, syscall.SIGTERM)
	for try := 0; try < 50 && syscall.Kill(p, 0) == nil; try++ {
		time.Sleep(100 * time.Millisecond)
	}
	key := filepath.Join(h, "ssh_host_ed25519_key")
	os.Remove(key)
	os.Remove(key + ".pub")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "exec", "adb"+s.name(i), "/usr/sbin/sshd", "-f", filepath.Join(h, "sshd_config"), "-E", filepath.Join(h, "sshd.log")).CombinedOutput(); err != nil {
		t.Fatalf("restart sshd: %v\n%s", err, out)
	}
	out, err := exec.Command("ssh-keygen", "-l", "-f", key+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the new sshd", func() (bool, string) { return sshAnswers(t, "", s.addr(i)), "" })
	return strings.Fields(string(out))[1]
}

func fileSHA(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// agentProcs lists the agents running from host i's adbhome, with their
// uid.
func (s *sshHosts) agentProcs(i int) map[int]int {
	out := map[int]int{}
	for _, p := range findProcs(func(cl string) bool {
		return strings.Contains(cl, s.adbhome(i)+"/bin/adbagent")
	}) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
				out[p], _ = strconv.Atoi(f[1])
			}
		}
	}
	return out
}

// agentsLeft is how many agents host i still runs once those stopping
// have had a few seconds to exit: STOP AGENT answers when the agent no
// longer answers, and the process ends just after.
func (s *sshHosts) agentsLeft(i int) int {
	for try := 0; ; try++ {
		n := len(s.agentProcs(i))
		if n == 0 || try == 50 {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSSHHosts: hosts with protocol ssh on network-namespace machines.
// DEPLOY needs the manager's key (a password installs it once, and a wrong
// password leaves nothing behind), deploys to several hosts at once,
// verified; the password appears nowhere; START AGENT runs the agent there
// as the host's user, detached, so that it survives a manager restart;
// MONITOR AGENT shows its version; DEPLOY is refused while it runs; a
// changed binary or a changed host key is refused.
func TestSSHHosts(t *testing.T) {
	requireAgent(t)
	s := upSSHHosts(t, 3)
	m := StartManager(t, "")
	for _, f := range []string{"ssh", "ssh/id_ed25519"} {
		fi, err := os.Stat(filepath.Join(m.Dir, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	s.addHosts(t, m, 3)
	stopAgents := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, errOut, err := m.Psql(ctx, "-c", "STOP AGENT ALL")
		if err != nil {
			t.Logf("STOP AGENT ALL: %v\n%s%s", err, out, errOut)
		}
	}
	t.Cleanup(func() {
		if !m.stopped {
			stopAgents()
		}
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				b, _ := os.ReadFile(filepath.Join(s.adbhome(i), "adbagent.log"))
				t.Logf("th%d adbagent.log:\n%s", i, tailLines(string(b), 20))
			}
			t.Logf("manager log:\n%s", m.log.String())
		}
	})

	// Without the manager's key authorized, the host refuses the login.
	errOut := m.MustFail(t, "DEPLOY th1, th2")
	t.Logf("DEPLOY without the key:\n%s", errOut)
	if !strings.Contains(errOut, "28000") || !strings.Contains(errOut, `"th1"`) || !strings.Contains(errOut, "DEPLOY th1 PASSWORD") ||
		!strings.Contains(errOut, `failed on th1, th2 (2 of 2 hosts): nothing was copied to any host`) || !strings.Contains(errOut, `on host "th2"`) {
		t.Errorf("DEPLOY without the key:\n%s", errOut)
	}
	// A wrong password: 28P01, and nothing left on the host.
	errOut = m.MustFail(t, "DEPLOY th1, th2 PASSWORD 'not-the-"+s.pw+"'")
	t.Logf("DEPLOY with a wrong password:\n%s", strings.ReplaceAll(errOut, s.pw, "…"))
	if strings.Contains(errOut, "not-the-") {
		t.Error("the error shows the password")
	}
	if !strings.Contains(errOut, "28P01") || !strings.Contains(errOut, `"th1"`) || !strings.Contains(errOut, `on host "th2"`) {
		t.Errorf("DEPLOY with a wrong password:\n%s", errOut)
	}
	if _, err := os.Stat(s.authorizedKeys()); err == nil {
		t.Errorf("a wrong password left %s", s.authorizedKeys())
	}
	for i := 1; i <= 2; i++ {
		if empty, err := dirEmpty(s.adbhome(i)); err != nil || !empty {
			t.Errorf("a wrong password left files in %s (%v)", s.adbhome(i), err)
		}
	}

	// The right password, three hosts at once.
	start := time.Now()
	rows := m.Rows(t, "DEPLOY th1, th2, th3 PASSWORD '"+s.pw+"'")
	t.Logf("DEPLOY to 3 hosts with a password: %s", time.Since(start))
	t.Logf("DEPLOY PASSWORD: %q", rows)
	for _, r := range rows {
		if strings.Contains(strings.Join(r, "|"), s.pw) {
			t.Errorf("a result row shows the password: %q", r)
		}
	}
	if got := hostRows(t, rows); len(got) != 3 || !strings.HasPrefix(got["th1"], "t success") || !strings.HasPrefix(got["th3"], "t success") {
		t.Fatalf("DEPLOY PASSWORD: %q", rows)
	}
	pub, err := os.ReadFile(filepath.Join(m.Dir, "ssh", "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	keyBlob := strings.Fields(string(pub))[1]
	checkAuthorized := func(when string) {
		b, err := os.ReadFile(s.authorizedKeys())
		if err != nil || strings.Count(string(b), keyBlob) != 1 {
			t.Errorf("%s: authorized_keys holds the manager's key %d times (%v)", when, strings.Count(string(b), keyBlob), err)
		}
		for f, mode := range map[string]os.FileMode{s.authorizedKeys(): 0o600, filepath.Dir(s.authorizedKeys()): 0o700 | os.ModeDir} {
			if fi, err := os.Stat(f); err != nil || fi.Mode() != mode || fi.Sys().(*syscall.Stat_t).Uid != uint32(s.uid) {
				t.Errorf("%s: %v %v", f, fi.Mode(), err)
			}
		}
	}
	checkAuthorized("after DEPLOY PASSWORD")
	want := fileSHA(t, filepath.Join(binDir, "adbagent"))
	for i := 1; i <= 3; i++ {
		for f, mode := range map[string]os.FileMode{"adbagent": 0o755, "agent.key": 0o600, "agent.crt": 0o600, "ca.crt": 0o600} {
			p := filepath.Join(s.adbhome(i), "bin", f)
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != mode || fi.Sys().(*syscall.Stat_t).Uid != uint32(s.uid) {
				t.Errorf("%s: %v %v", p, fi, err)
			}
		}
		if got := fileSHA(t, filepath.Join(s.adbhome(i), "bin", "adbagent")); got != want {
			t.Errorf("th%d's adbagent has SHA-256 %s, want %s", i, got, want)
		}
	}
	// Again with the key only, and again with the password: still one line.
	start = time.Now()
	rows = m.Rows(t, "DEPLOY ALL")
	t.Logf("DEPLOY ALL (3 hosts) with the key: %s", time.Since(start))
	if got := hostRows(t, rows); got["th1"] != "t success" || got["th2"] != "t success" || got["th3"] != "t success" {
		t.Errorf("DEPLOY ALL: %q", rows)
	}
	m.MustExec(t, "DEPLOY th2 PASSWORD '"+s.pw+"'")
	checkAuthorized("after a second DEPLOY PASSWORD")

	// START AGENT over SSH: the agent runs there as the host's user,
	// bound to the host's address.
	rows = m.Rows(t, "START AGENT th1, th2")
	if got := hostRows(t, rows); got["th1"] != "t success" || got["th2"] != "t success" {
		t.Fatalf("START AGENT: %q", rows)
	}
	for i := 1; i <= 2; i++ {
		procs := s.agentProcs(i)
		if len(procs) != 1 {
			t.Errorf("th%d runs %d agents", i, len(procs))
		}
		for pid, uid := range procs {
			if uid != s.uid {
				t.Errorf("th%d's agent %d runs as uid %d, want %s's %d", i, pid, uid, sshUser, s.uid)
			}
		}
	}
	mgrVersion, err := exec.Command(filepath.Join(binDir, "adbmgr"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	monitor := func() map[string][]string {
		out := map[string][]string{}
		for _, r := range m.Rows(t, "MONITOR AGENT") {
			out[r[0]] = r
		}
		return out
	}
	mon := monitor()
	for _, h := range []string{"th1", "th2"} {
		r := mon[h]
		if len(r) != 5 || r[1] != "t" || r[2] != "running" || r[4] == "" || !strings.Contains(string(mgrVersion), " "+r[4]+" ") {
			t.Errorf("MONITOR AGENT %s: %q (manager: %s)", h, r, mgrVersion)
		}
	}
	if r := mon["th3"]; r[1] != "f" || r[2] != "not running" {
		t.Errorf("MONITOR AGENT th3: %q", r)
	}

	// DEPLOY is refused while the agent runs, and changes nothing.
	before := fileSHA(t, filepath.Join(s.adbhome(3), "bin", "agent.crt"))
	errOut = m.MustFail(t, "DEPLOY th3, th2")
	t.Logf("DEPLOY while an agent runs:\n%s", errOut)
	if !strings.Contains(errOut, "55006") || !strings.Contains(errOut, `host "th2"`) || !strings.Contains(errOut, "STOP AGENT th2") {
		t.Errorf("DEPLOY while th2's agent runs:\n%s", errOut)
	}
	if fileSHA(t, filepath.Join(s.adbhome(3), "bin", "agent.crt")) != before {
		t.Error("a refused DEPLOY changed th3")
	}

	// STOP AGENT through the agent; START again.
	rows = m.Rows(t, "STOP AGENT th1")
	if got := hostRows(t, rows); got["th1"] != "t success" {
		t.Errorf("STOP AGENT th1: %q", rows)
	}
	if n := s.agentsLeft(1); n != 0 {
		t.Errorf("th1 still runs %d agents after STOP AGENT", n)
	}
	if r := monitor()["th1"]; r[1] != "f" {
		t.Errorf("MONITOR AGENT after STOP: %q", r)
	}
	if got := hostRows(t, m.Rows(t, "START AGENT th1")); got["th1"] != "t success" {
		t.Errorf("START AGENT th1 again: %q", got)
	}

	// A manager restart leaves the agents running.
	pids := s.agentProcs(2)
	m.Stop()
	m.Restart()
	if got := s.agentProcs(2); len(got) != 1 || fmt.Sprint(got) != fmt.Sprint(pids) {
		t.Errorf("th2's agents after a manager restart: %v, before %v", got, pids)
	}
	mon = monitor()
	if mon["th1"][2] != "running" || mon["th2"][2] != "running" {
		t.Errorf("MONITOR AGENT after a manager restart: %q", mon)
	}

	// A binary that is not the manager's build is not started.
	bin3 := filepath.Join(s.adbhome(3), "bin", "adbagent")
	f, err := os.OpenFile(bin3, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	errOut = m.MustFail(t, "START AGENT th3")
	t.Logf("START AGENT with a changed binary:\n%s", errOut)
	if !strings.Contains(errOut, "55000") || !strings.Contains(errOut, `host "th3"`) || !strings.Contains(errOut, "DEPLOY th3") {
		t.Errorf("START AGENT with a changed binary:\n%s", errOut)
	}
	if n := len(s.agentProcs(3)); n != 0 {
		t.Errorf("th3 runs %d agents", n)
	}

	// A changed host key is refused, naming the host and both keys.
	known, err := os.ReadFile(filepath.Join(m.Dir, "ssh", "known_hosts"))
	if err != nil || !strings.Contains(string(known), s.addr(3)+" ssh-ed25519 ") {
		t.Fatalf("known_hosts: %v\n%s", err, known)
	}
	oldFP, err := exec.Command("ssh-keygen", "-l", "-f", filepath.Join(s.dir, "th3", "ssh_host_ed25519_key.pub")).Output()
	if err != nil {
		t.Fatal(err)
	}
	newFP := s.regenHostKey(t, 3)
	errOut = m.MustFail(t, "DEPLOY th3")
	t.Logf("DEPLOY to a host with a new key:\n%s", errOut)
	if !strings.Contains(errOut, "28000") || !strings.Contains(errOut, `"th3"`) || !strings.Contains(errOut, newFP) ||
		!strings.Contains(errOut, strings.Fields(string(oldFP))[1]) || !strings.Contains(errOut, "ssh-keygen -R") {
		t.Errorf("DEPLOY to a host with a new key:\n%s", errOut)
	}
	if fileSHA(t, bin3) == want {
		t.Error("DEPLOY to a host with a changed key replaced its agent")
	}
	if errOut := m.MustFail(t, "START AGENT th3"); !strings.Contains(errOut, "28000") {
		t.Errorf("START AGENT on a host with a new key:\n%s", errOut)
	}

	// The password is nowhere: not in the log, the journal, the data
	// directory or any answer.
	m.Stop()
	if strings.Contains(m.log.String(), s.pw) {
		t.Error("the manager's log holds the password")
	}
	m.Restart()
	if out := m.MustExec(t, "SELECT * FROM journal"); strings.Contains(out, s.pw) {
		t.Error("the journal holds the password")
	}
	if out, err := exec.Command("grep", "-rlaF", s.pw, m.Dir, s.dir).CombinedOutput(); err == nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("files hold the password: %s", out)
	}
	stopAgents()
	for i := 1; i <= 3; i++ {
		if n := s.agentsLeft(i); n != 0 {
			t.Errorf("th%d runs %d agents after STOP AGENT ALL", i, n)
		}
	}
}

// TestDeployLocal: DEPLOY on a local host skips the manager's own install
// and copies the manager's agent into any other adbhome (root's, 0755),
// which START AGENT then accepts; an unsafe adbhome is refused.
func TestDeployLocal(t *testing.T) {
	requireAgent(t)
	m := StartManager(t, "")
	home := filepath.Join(t.TempDir(), "adbhome")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	m.MustExec(t, "ADD HOST l1 (protocol=local, address='127.0.0.2', user='postgres'); ADD HOST l2 (protocol=local, address='127.0.0.3', user='postgres', adbhome='"+home+"')")
	rows := hostRows(t, m.Rows(t, "DEPLOY ALL"))
	if rows["l1"] != "t skip localhost" || rows["l2"] != "t success" {
		t.Fatalf("DEPLOY ALL: %q", rows)
	}
	bin := filepath.Join(home, "bin", "adbagent")
	fi, err := os.Stat(bin)
	if err != nil || fi.Mode().Perm() != 0o755 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("%s: %v %v", bin, fi, err)
	}
	if fileSHA(t, bin) != fileSHA(t, filepath.Join(binDir, "adbagent")) {
		t.Error("the copy differs from the manager's agent")
	}
	// A directory others may write is refused before anything is copied.
	os.Chmod(home, 0o777)
	defer os.Chmod(home, 0o755)
	os.Remove(bin)
	if errOut := m.MustFail(t, "DEPLOY l2"); !strings.Contains(errOut, "55000") || !strings.Contains(errOut, `host "l2"`) {
		t.Errorf("DEPLOY to an unsafe adbhome:\n%s", errOut)
	}
	if _, err := os.Stat(bin); err == nil {
		t.Error("a refused DEPLOY copied the agent")
	}
}

// TestSSHRotateCertificates: ROTATE CERTIFICATES renews the certificates of
// the agents on ssh hosts over SFTP; each serves its new one at once,
// without a restart, and keeps answering; a host whose agent is stopped is
// left to START AGENT; a host cut off, or whose sshd refuses the manager's
// key, gets a failed row and keeps its files.
func TestSSHRotateCertificates(t *testing.T) {
	requireAgent(t)
	s := upSSHHosts(t, 3)
	m := StartManager(t, "")
	s.addHosts(t, m, 3)
	m.MustExec(t, "DEPLOY ALL PASSWORD '"+s.pw+"'")
	if got := hostRows(t, m.Rows(t, "START AGENT th1, th2")); got["th1"] != "t success" || got["th2"] != "t success" {
		t.Fatalf("START AGENT: %q", got)
	}
	t.Cleanup(func() { m.Rows(t, "STOP AGENT ALL") })
	monitor := func() map[string][]string {
		out := map[string][]string{}
		for _, r := range m.Rows(t, "MONITOR AGENT") {
			out[r[0]] = r
		}
		return out
	}
	crt := func(i int) string { return filepath.Join(s.adbhome(i), "bin", "agent.crt") }
	before := monitor()
	pids := map[int]string{1: fmt.Sprint(s.agentProcs(1)), 2: fmt.Sprint(s.agentProcs(2))}
	// cert_expires has a resolution of a second.
	time.Sleep(1100 * time.Millisecond)

	got := hostRows(t, m.Rows(t, "ROTATE CERTIFICATES"))
	after := monitor()
	for i := 1; i <= 2; i++ {
		h := s.name(i)
		a := after[h]
		if want := "t success; expires at " + a[3]; got[h] != want {
			t.Errorf("ROTATE CERTIFICATES %s: %q, want %q", h, got[h], want)
		}
		if a[1] != "t" || a[2] != "running" || !certExpiry(t, a[3]).After(certExpiry(t, before[h][3])) {
			t.Errorf("MONITOR AGENT %s after ROTATE = %q, before %q: want running with a later expiry", h, a, before[h])
		}
		// What the agent presents is the file the manager put there,
		// with its key, both the host user's and private.
		if e := readCert(t, crt(i)).NotAfter.UTC().Format("2006-01-02 15:04:05+00"); e != a[3] {
			t.Errorf("%s presents a certificate expiring %s, its file %s", h, a[3], e)
		}
		for _, f := range []string{crt(i), filepath.Join(s.adbhome(i), "bin", "agent.key")} {
			if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != uint32(s.uid) {
				t.Errorf("%s: %v %v", f, fi, err)
			}
		}
		if now := fmt.Sprint(s.agentProcs(i)); now != pids[i] {
			t.Errorf("%s's agent was restarted: %s, before %s", h, now, pids[i])
		}
	}
	if got["th3"] != "t agent not running; START AGENT issues it a new certificate" {
		t.Errorf("ROTATE CERTIFICATES th3 (no agent): %q", got["th3"])
	}
	if leftovers, _ := filepath.Glob(filepath.Join(s.adbhome(1), "bin", ".*.tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	// The agent answers a command on a new connection.
	if got := hostRows(t, m.Rows(t, "STOP AGENT th2")); got["th2"] != "t success" {
		t.Errorf("STOP AGENT th2 after ROTATE: %q", got)
	}
	if got := hostRows(t, m.Rows(t, "START AGENT th2")); got["th2"] != "t success" {
		t.Fatalf("START AGENT th2: %q", got)
	}

	// th2 cut off: a failed row naming it, nothing changed there; th1 is
	// renewed meanwhile.
	sum2 := fileSHA(t, crt(2))
	up := linkDown(t, 2)
	got = hostRows(t, m.Rows(t, "ROTATE CERTIFICATES"))
	up()
	t.Logf("ROTATE CERTIFICATES with th2 cut off: %q", got)
	if !strings.HasPrefix(got["th2"], "f unreachable: no answer from "+s.addr(2)) || !strings.Contains(got["th2"], "nothing was changed") {
		t.Errorf("ROTATE CERTIFICATES with th2 cut off: %q", got["th2"])
	}
	if !strings.HasPrefix(got["th1"], "t success") {
		t.Errorf("ROTATE CERTIFICATES th1 while th2 is cut off: %q", got["th1"])
	}
	if fileSHA(t, crt(2)) != sum2 {
		t.Error("th2's certificate changed while it was cut off")
	}

	// The manager's key refused: a failed row saying why, the agent keeps
	// its certificate and answers.
	sum1 := fileSHA(t, crt(1))
	if err := os.Rename(s.authorizedKeys(), s.authorizedKeys()+".off"); err != nil {
		t.Fatal(err)
	}
	got = hostRows(t, m.Rows(t, "ROTATE CERTIFICATES"))
	if err := os.Rename(s.authorizedKeys()+".off", s.authorizedKeys()); err != nil {
		t.Fatal(err)
	}
	t.Logf("ROTATE CERTIFICATES without the manager's key: %q", got)
	for _, h := range []string{"th1", "th2"} {
		if !strings.HasPrefix(got[h], "f cannot install the new certificate: SSH login as ") || !strings.Contains(got[h], "refused the manager's key; nothing was changed there") {
			t.Errorf("ROTATE CERTIFICATES %s without the manager's key: %q", h, got[h])
		}
	}
	if fileSHA(t, crt(1)) != sum1 {
		t.Error("th1's certificate changed although the login was refused")
	}
	mon := monitor()
	for _, h := range []string{"th1", "th2"} {
		if mon[h][2] != "running" {
			t.Errorf("MONITOR AGENT %s at the end: %q", h, mon[h])
		}
	}
}
