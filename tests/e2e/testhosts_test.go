package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testhosts runs scripts/testhosts.sh with its state under dir.
func testhosts(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "testhosts.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Env = append(os.Environ(), "TESTHOSTS_DIR="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sshAnswers reports whether an sshd answers at addr, asked from netns ns
// ("" for this machine's own network stack).
func sshAnswers(t *testing.T, ns, addr string) bool {
	t.Helper()
	args := []string{"ssh-keyscan", "-T", "2", "-t", "ed25519", addr}
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	out, _ := exec.Command(args[0], args[1:]...).Output()
	return strings.Contains(string(out), "ssh-ed25519")
}

// TestTestHosts: the multi-host issue's test hosts are machines as far as
// the network can tell — their own stacks and addresses in 198.18.0.0/24, an
// sshd each, links that can be cut — and down removes what up made and
// nothing else.
func TestTestHosts(t *testing.T) {
	if _, err := exec.Command("ip", "link", "show", "adbtbr0").CombinedOutput(); err == nil {
		t.Fatal("bridge adbtbr0 exists: test hosts are up already (scripts/testhosts.sh down)")
	}
	dir := filepath.Join(t.TempDir(), "hosts")
	// Something of someone else's that down must leave alone.
	if out, err := exec.Command("ip", "netns", "add", "adbt-unrelated").CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", "adbt-unrelated").Run() })
	t.Cleanup(func() { testhosts(t, dir, "down") })

	out, err := testhosts(t, dir, "up", "2")
	if err != nil {
		t.Fatalf("up 2: %v\n%s", err, out)
	}
	if out != "th1 198.18.0.11\nth2 198.18.0.12\n" {
		t.Fatalf("up 2 printed %q", out)
	}
	if out, err := testhosts(t, dir, "up", "2"); err == nil || !strings.Contains(out, "already up") {
		t.Errorf("a second up: %v\n%s", err, out)
	}
	for i, a := range []string{"198.18.0.11", "198.18.0.12"} {
		ns := "adbth" + string(rune('1'+i))
		addrs, err := exec.Command("ip", "-n", ns, "-4", "-o", "addr", "show").Output()
		if err != nil || !strings.Contains(string(addrs), a+"/24") || !strings.Contains(string(addrs), "127.0.0.1/8") {
			t.Errorf("%s addresses: %v\n%s", ns, err, addrs)
		}
		if fi, err := os.Stat(filepath.Join(dir, "th"+string(rune('1'+i)), "data")); err != nil || !fi.IsDir() {
			t.Errorf("th%d has no data directory: %v", i+1, err)
		}
		if !sshAnswers(t, "", a) {
			t.Errorf("no sshd at %s from this machine", a)
		}
	}
	if !sshAnswers(t, "adbth1", "198.18.0.12") {
		t.Error("th1 cannot reach th2's sshd")
	}
	// Cutting th2's link cuts it off from everyone, and only it.
	if out, err := exec.Command("ip", "link", "set", "adbtv2", "down").CombinedOutput(); err != nil {
		t.Fatalf("cut: %v\n%s", err, out)
	}
	if sshAnswers(t, "", "198.18.0.12") || sshAnswers(t, "adbth1", "198.18.0.12") {
		t.Error("th2 answers with its link down")
	}
	if !sshAnswers(t, "", "198.18.0.11") {
		t.Error("th1 stopped answering when th2 was cut off")
	}
	if st, _ := testhosts(t, dir, "status"); !strings.Contains(st, "th2 198.18.0.12 sshd up link=down") {
		t.Errorf("status:\n%s", st)
	}

	if out, err := testhosts(t, dir, "down"); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(ns), "adbth") || !strings.Contains(string(ns), "adbt-unrelated") {
		t.Errorf("after down, namespaces:\n%s", ns)
	}
	for _, link := range []string{"adbtbr0", "adbtv1", "adbtv2"} {
		if err := exec.Command("ip", "link", "show", link).Run(); err == nil {
			t.Errorf("link %s survived down", link)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s survived down: %v", dir, err)
	}
}
