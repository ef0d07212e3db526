package pgctl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func ownerOf(t *testing.T, path string) (uid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid, fi.Mode()
}

// An existing socket directory must be the node's user's, not writable by
// others and not a link: its name is predictable, so another local user
// could have made it first.
func TestMakeSocketDir(t *testing.T) {
	r, err := New(fakeHome(t, nil), testUser(t))
	if err != nil {
		t.Fatal(err)
	}
	u := r.User()
	base := sharedDir(t)
	refused := func(what, path, msg string) {
		t.Helper()
		if err := r.MakeSocketDir(path); !errors.Is(err, ErrNotPermitted) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want a refusal containing %q", what, err, msg)
		}
	}

	// Missing: created, the user's, 0755; then accepted as it is.
	fresh := filepath.Join(base, "fresh")
	if err := r.MakeSocketDir(fresh); err != nil {
		t.Fatal(err)
	}
	if uid, mode := ownerOf(t, fresh); uid != u.UID || mode.Perm() != 0o755 {
		t.Errorf("fresh: uid %d mode %v", uid, mode)
	}
	if err := r.MakeSocketDir(fresh); err != nil {
		t.Errorf("again: %v", err)
	}

	// The user's but writable by others.
	os.Chmod(fresh, 0o777)
	refused("mode 0777", fresh, "mode 0777")
	os.Chmod(fresh, 0o757)
	refused("mode 0757", fresh, "mode 0757")
	os.Chmod(fresh, 0o755)

	// A link, even to the user's own directory.
	link := filepath.Join(base, "link")
	os.Symlink(fresh, link)
	refused("link", link, "symbolic link")
	// A file.
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	refused("file", file, "not a directory")

	if os.Geteuid() != 0 {
		return
	}
	// Group-writable with the user's primary group (Debian's
	// /var/run/postgresql) is fine; with another group it is not.
	os.Chmod(fresh, 0o775)
	os.Chown(fresh, -1, int(u.GID))
	if err := r.MakeSocketDir(fresh); err != nil {
		t.Errorf("0775 with the user's group: %v", err)
	}
	os.Chown(fresh, -1, 65534)
	refused("0775 with another group", fresh, "mode 0775")

	// Pre-created by another user (nobody): refused, and left that user's.
	squat := filepath.Join(base, "squat")
	os.Mkdir(squat, 0o755)
	os.Chown(squat, 65534, 65534)
	refused("nobody's", squat, "belongs to uid 65534")
	if uid, _ := ownerOf(t, squat); uid != 65534 {
		t.Errorf("nobody's directory taken over: uid %d", uid)
	}

	// Root's, empty and closed to others: handed to the user.
	rootOwned := filepath.Join(base, "root")
	os.Mkdir(rootOwned, 0o700)
	if err := r.MakeSocketDir(rootOwned); err != nil {
		t.Fatal(err)
	}
	if uid, mode := ownerOf(t, rootOwned); uid != u.UID || mode.Perm() != 0o755 {
		t.Errorf("root's: uid %d mode %v", uid, mode)
	}
	// Root's but world-writable (as /tmp), or not empty: refused, untouched.
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0)
	os.Chmod(open, 0o777|os.ModeSticky)
	refused("root's 1777", open, "mode 0777")
	full := filepath.Join(base, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	refused("root's, not empty", full, "not empty")
	for _, d := range []string{open, full} {
		if uid, _ := ownerOf(t, d); uid != 0 {
			t.Errorf("%s handed over: uid %d", d, uid)
		}
	}
	// A link to an empty root-owned directory: its target is not chowned.
	target := filepath.Join(base, "target")
	os.Mkdir(target, 0o755)
	link2 := filepath.Join(base, "link2")
	os.Symlink(target, link2)
	refused("link to root's", link2, "symbolic link")
	if uid, _ := ownerOf(t, target); uid != 0 {
		t.Errorf("link target chowned: uid %d", uid)
	}
}

// MakeDataDir does not chown or chmod through a link.
func TestMakeDataDirRefusesLink(t *testing.T) {
	r, err := New(fakeHome(t, nil), testUser(t))
	if err != nil {
		t.Fatal(err)
	}
	base := sharedDir(t)
	target := filepath.Join(base, "target")
	os.Mkdir(target, 0o755)
	link := filepath.Join(base, "data")
	os.Symlink(target, link)
	if _, err := r.MakeDataDir(link); !errors.Is(err, ErrNotPermitted) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("MakeDataDir(link) = %v", err)
	}
	if uid, mode := ownerOf(t, target); int(uid) != os.Geteuid() || mode.Perm() != 0o755 {
		t.Errorf("link target changed: uid %d mode %v", uid, mode)
	}
}

func TestLockFilePID(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, ".s.PGSQL.5432.lock")
	if pid, alive, err := LockFilePID(lock); pid != 0 || alive || err != nil {
		t.Errorf("missing: %d %v %v", pid, alive, err)
	}
	os.WriteFile(lock, []byte("2147483000\n/tmp\n"), 0o600)
	if pid, alive, err := LockFilePID(lock); pid != 2147483000 || alive || err != nil {
		t.Errorf("dead: %d %v %v", pid, alive, err)
	}
	link := filepath.Join(dir, "link.lock")
	os.Symlink(lock, link)
	if _, _, err := LockFilePID(link); err == nil {
		t.Error("a link was read")
	}
}

// A socket directory under a run directory that is itself a link (the
// package's /usr/lib/adbmgr/run -> /var/lib/adbagent/run) is made in the
// link's target; only the socket directory itself may not be a link.
func TestMakeSocketDirUnderLinkedRun(t *testing.T) {
	r, err := New(fakeHome(t, nil), testUser(t))
	if err != nil {
		t.Fatal(err)
	}
	base := sharedDir(t)
	target := filepath.Join(base, "var-run")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(base, "run")
	if err := os.Symlink(target, run); err != nil {
		t.Fatal(err)
	}
	if err := r.MakeSocketDir(filepath.Join(run, "dn1-abc")); err != nil {
		t.Fatal(err)
	}
	if uid, mode := ownerOf(t, filepath.Join(target, "dn1-abc")); uid != r.User().UID || !mode.IsDir() {
		t.Errorf("made in the target: uid %d mode %v", uid, mode)
	}
	if err := r.MakeSocketDir(filepath.Join(run, "dn1-abc")); err != nil {
		t.Errorf("again: %v", err)
	}
}
