package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "adbmgr")
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/adbmgr/adbmgr/internal/version.Version=v-test", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCommandLine runs the binary: help of every command exits 0 on
// stdout and lists only that command's options; the version; refusals
// exit 1; the configuration file's unknown key is named.
func TestCommandLine(t *testing.T) {
	bin := build(t)
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "ADBMGR_DATA=")
			out, err := cmd.Output()
			if err != nil || !strings.Contains(string(out), "usage: adbmgr "+c.name) {
				t.Errorf("adbmgr %q: %v\n%s", args, err, out)
			}
			if strings.Contains(string(out), "crash-at") {
				t.Errorf("adbmgr %q shows the test hook:\n%s", args, out)
			}
		}
	}
	help, _ := exec.Command(bin, "start", "--help").Output()
	init, _ := exec.Command(bin, "init", "--help").Output()
	if !strings.Contains(string(help), "--listen") || strings.Contains(string(help), "--auth-host") || !strings.Contains(string(init), "--auth-host") || strings.Contains(string(init), "--listen") {
		t.Errorf("per-command options:\nstart:\n%s\ninit:\n%s", help, init)
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		if out, err := exec.Command(bin, args...).Output(); err != nil || !strings.Contains(string(out), "adbmgr start") {
			t.Errorf("adbmgr %q: %v\n%s", args, err, out)
		}
	}
	for _, v := range []string{"version", "--version", "-V"} {
		if out, err := exec.Command(bin, v).Output(); err != nil || !strings.HasPrefix(string(out), "adbmgr v-test ") {
			t.Errorf("adbmgr %s: %v %q", v, err, out)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "adbmgr.conf"), []byte("listen = \"127.0.0.1:1\"\nlsiten = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"start", "--bogus"}, "flag provided but not defined"},
		{[]string{"start", "-D", dir}, `unknown key "lsiten"`},
		{[]string{"start", "-D", dir, "--log-level", "loud"}, `unknown key "lsiten"`},
		{[]string{"start", "-D", dir, "--config", "/dev/null", "--log-level", "loud"}, "--log-level"},
		{[]string{"start", "stray"}, `unexpected argument "stray"`},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "ADBMGR_DATA="+dir)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Errorf("adbmgr %q: %v, want exit 1 and %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
