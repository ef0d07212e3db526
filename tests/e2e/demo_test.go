package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// demoShift picks ADBMGR_DEMO_SHIFT for scripts/demo.sh: every port the
// demo uses, shifted, is free on its loopback host.
func demoShift(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		shift := 20000 + rand.IntN(25000)
		free := true
		for _, p := range []int{5430, 6768, 5432, 15432, 15433} {
			for _, a := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
				l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p+shift)))
				if err != nil {
					free = false
					continue
				}
				l.Close()
			}
		}
		if free {
			return shift
		}
	}
	t.Fatal("no free ports for the demo")
	return 0
}

// TestDemoResume: make demo, make demo-stop, make demo again resumes the
// stopped cluster with its data instead of refusing (scripts/demo.sh,
// kept apart from a developer's demo by its test variables).
func TestDemoResume(t *testing.T) {
	requireAgent(t)
	// Not t.TempDir(): the nodes run as postgres and need to reach it.
	dir, err := os.MkdirTemp("/tmp", "adbmgr-e2e-demo-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "demo.sh")
	port := freePort(t)
	env := append(os.Environ(), "ADBMGR_DEMO_DIR="+dir, "ADBMGR_BIN="+binDir,
		"ADBMGR_PORT="+strconv.Itoa(port), fmt.Sprintf("ADBMGR_DEMO_SHIFT=%d", demoShift(t)))
	demo := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, script, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo.sh %q: %v\n%s\nmanager log:\n%s", args, err, out, readFile(filepath.Join(dir, "mgr.log")))
		}
		return string(out)
	}
	t.Cleanup(func() {
		// CLEAN ALL takes the nodes' socket directories with it.
		psql := exec.Command("psql", "-X", "-h", filepath.Join(dir, "mgr"), "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres",
			"-c", "STOP ALL MODE immediate", "-c", "CLEAN ALL", "-c", "STOP AGENT ALL")
		if out, err := psql.CombinedOutput(); err != nil {
			t.Logf("cleanup: %v\n%s", err, out)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "mgr.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		killTrees(dir)
		os.RemoveAll(dir)
	})
	out := demo()
	if !strings.Contains(out, "750750") || !strings.Contains(out, "The demo cluster runs.") {
		t.Fatalf("make demo:\n%s", out)
	}
	if out := demo("stop"); !strings.Contains(out, "demo stopped") {
		t.Errorf("make demo-stop:\n%s", out)
	}
	out = demo()
	if !strings.Contains(out, "resuming the demo") || !strings.Contains(out, "750750") {
		t.Errorf("make demo after make demo-stop does not resume:\n%s", out)
	}
	if strings.Contains(out, "ADD HOST") {
		t.Errorf("the resumed demo added its hosts again:\n%s", out)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
