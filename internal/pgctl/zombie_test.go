package pgctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestClearZombieLock: the lock file of a postmaster that died but is not
// reaped yet goes, so that a start does not wait for the reaping; that of
// a live process stays.
func TestClearZombieLock(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "postmaster.pid")
	sock := filepath.Join(t.TempDir(), ".s.PGSQL.5432.lock")
	write := func(pid int) {
		p := strconv.Itoa(pid)
		if err := os.WriteFile(lock, []byte(p+"\n"+dir+"\n1700000000\n5432\n"+filepath.Dir(sock)+"\n*\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sock, []byte(p+"\n"+dir+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(os.Getpid())
	if err := clearZombieLock(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{lock, sock} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the lock file of a live process: %v", err)
		}
	}

	// A child that exited and is not waited for is a zombie.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); !zombie(cmd.Process.Pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the child did not become a zombie")
		}
	}
	write(cmd.Process.Pid)
	if err := clearZombieLock(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{lock, sock} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("the lock file of a zombie postmaster: %v", err)
		}
	}
	if err := clearZombieLock(dir); err != nil {
		t.Errorf("no lock file: %v", err)
	}
}
