package fstrust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	nodeUser = 101   // the host's user in these tests (any non-root uid)
	stranger = 65534 // nobody
)

// tree builds, under a root-owned 0755 directory in /tmp (t.TempDir() is
// 0700, fine too, but /tmp's sticky exception is worth exercising), the
// files the cases name. Owners need root, as the agent and manager run.
func tree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files other owners")
	}
	base, err := os.MkdirTemp("/tmp", "fstrust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(base, 0o755))
	dir := func(rel string, mode fs.FileMode, uid int) {
		p := filepath.Join(base, rel)
		must(os.Mkdir(p, 0o700))
		must(os.Chmod(p, mode))
		must(os.Chown(p, uid, -1))
	}
	file := func(rel string, mode fs.FileMode, uid int) {
		p := filepath.Join(base, rel)
		must(os.WriteFile(p, []byte("#!/bin/sh\ntouch marker\n"), 0o700))
		must(os.Chmod(p, mode))
		must(os.Chown(p, uid, -1))
	}
	link := func(rel, target string) { must(os.Symlink(target, filepath.Join(base, rel))) }

	dir("good", 0o755, 0)
	dir("good/bin", 0o755, 0)
	file("good/bin/tool", 0o755, 0)
	file("good/bin/usertool", 0o750, nodeUser)
	file("good/bin/groupw", 0o775, 0)
	file("good/bin/otherw", 0o757, 0)
	file("good/bin/strangers", 0o755, stranger)
	dir("good/bin/subdir", 0o755, 0)
	dir("userhome", 0o700, nodeUser)
	dir("userhome/bin", 0o755, nodeUser)
	file("userhome/bin/tool", 0o755, nodeUser)
	dir("evil", 0o755, stranger) // the issue's /tmp/evil
	dir("evil/bin", 0o755, stranger)
	file("evil/bin/adbagent", 0o755, stranger)
	dir("rootevil", 0o755, stranger) // a root-owned file in a stranger's directory
	file("rootevil/tool", 0o755, 0)
	dir("open", 0o777, 0)
	file("open/tool", 0o755, 0)
	dir("groupopen", 0o775, 0)
	file("groupopen/tool", 0o755, 0)
	dir("sticky", fs.ModeSticky|0o777, 0)
	dir("sticky/home", 0o755, 0)
	file("sticky/home/tool", 0o755, 0)
	dir("strangesticky", fs.ModeSticky|0o777, stranger)
	dir("strangesticky/home", 0o755, 0)
	link("good/bin/linked", "../../open/tool")      // relative, through ..
	link("good/bin/linkok", "tool")                 // relative, same directory
	link("good/bin/abslink", base+"/good/bin/tool") // absolute
	link("good/dirlink", "bin")
	link("good/bin/loop", "loop")
	link("open/link", "../good/bin/tool") // the link sits in a bad directory
	return base
}

func TestExecutable(t *testing.T) {
	base := tree(t)
	for _, tc := range []struct {
		path    string
		uid     uint32
		culprit string // "" when the path is trusted
		reason  string
	}{
		{"good/bin/tool", nodeUser, "", ""},
		{"good/bin/tool", 0, "", ""},
		{"good/bin/usertool", nodeUser, "", ""},
		{"good/bin/usertool", 0, "good/bin/usertool", "is owned by uid 101"},
		{"userhome/bin/tool", nodeUser, "", ""},
		{"userhome/bin/tool", stranger, "userhome", "is owned by uid 101"},
		{"good/bin/groupw", nodeUser, "good/bin/groupw", "is writable by group (mode 0775)"},
		{"good/bin/otherw", nodeUser, "good/bin/otherw", "is writable by others (mode 0757)"},
		{"good/bin/strangers", nodeUser, "good/bin/strangers", "is owned by uid 65534 (nobody), neither root nor uid 101"},
		{"evil/bin/adbagent", nodeUser, "evil", "is owned by uid 65534"},
		{"evil/bin/adbagent", 0, "evil", "is owned by uid 65534 (nobody), not root"},
		{"rootevil/tool", nodeUser, "rootevil", "is owned by uid 65534"},
		{"open/tool", nodeUser, "open", "is writable by group and others (mode 0777)"},
		{"groupopen/tool", nodeUser, "groupopen", "is writable by group (mode 0775)"},
		{"sticky/home/tool", nodeUser, "", ""},
		{"good/bin/linkok", nodeUser, "", ""},
		{"good/bin/abslink", nodeUser, "", ""},
		{"good/dirlink/tool", nodeUser, "", ""},
		{"good/bin/linked", nodeUser, "open", "is writable by group and others"},
		{"open/link", nodeUser, "open", "is writable"},
		{"good/bin/loop", nodeUser, "good/bin/loop", "too many symbolic links"},
		{"good/bin/subdir", nodeUser, "good/bin/subdir", "is not a regular file"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			p := filepath.Join(base, tc.path)
			err := Executable(p, tc.uid)
			checkErr(t, err, base, p, tc.culprit, tc.reason)
		})
	}
}

func TestDir(t *testing.T) {
	base := tree(t)
	for _, tc := range []struct {
		path    string
		uid     uint32
		culprit string
		reason  string
	}{
		{"good", nodeUser, "", ""},
		{"good/dirlink", nodeUser, "", ""},
		{"userhome", nodeUser, "", ""},
		{"userhome", 0, "userhome", "is owned by uid 101"},
		{"evil", nodeUser, "evil", "is owned by uid 65534"},
		{"open", nodeUser, "open", "is writable by group and others (mode 0777)"},
		{"sticky/home", nodeUser, "", ""},
		// A sticky directory is fine on the way, not as the directory
		// itself: anyone could create bin/ in it.
		{"sticky", nodeUser, "sticky", "is writable by group and others (mode 0777)"},
		// Only a root-owned sticky directory is trusted on the way.
		{"strangesticky/home", nodeUser, "strangesticky", "is owned by uid 65534"},
		{"good/bin/tool", nodeUser, "good/bin/tool", "is not a directory"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			p := filepath.Join(base, tc.path)
			checkErr(t, Dir(p, tc.uid), base, p, tc.culprit, tc.reason)
		})
	}
}

func checkErr(t *testing.T, err error, base, path, culprit, reason string) {
	t.Helper()
	if culprit == "" {
		if err != nil {
			t.Fatalf("want trusted, got %v", err)
		}
		return
	}
	var ue *UnsafeError
	if !errors.As(err, &ue) {
		t.Fatalf("want an *UnsafeError about %s (%s), got %v", culprit, reason, err)
	}
	if ue.Path != path || ue.Culprit != filepath.Join(base, culprit) || !strings.Contains(ue.Reason, reason) {
		t.Fatalf("got path %s, culprit %s, reason %q; want culprit %s and a reason with %q", ue.Path, ue.Culprit, ue.Reason, culprit, reason)
	}
	if !strings.Contains(err.Error(), ue.Culprit) {
		t.Errorf("message %q does not name %s", err, ue.Culprit)
	}
}

func TestNotFoundAndBadPaths(t *testing.T) {
	base := tree(t)
	if err := Executable(filepath.Join(base, "good/bin/missing"), nodeUser); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	for _, p := range []string{"", "relative/bin", base + "/good/../good/bin/tool", base + "/good/bin/", base + "//good", "/a\x00b"} {
		err := Executable(p, nodeUser)
		var ue *UnsafeError
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "absolute, clean") {
			t.Errorf("Executable(%q) = %v, want a refusal of the path's form", p, err)
		}
	}
}

// The places the e2e tests and the demo use: the root, a Debian PostgreSQL
// installation, and a root-owned directory in /tmp.
func TestSystemPlaces(t *testing.T) {
	if err := Dir("/", nodeUser); err != nil {
		t.Errorf("/: %v", err)
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err == nil {
		if err := Executable("/usr/lib/postgresql/15/bin/initdb", nodeUser); err != nil {
			t.Errorf("Debian's initdb: %v", err)
		}
	}
	if err := Dir("/tmp", nodeUser); err == nil {
		t.Errorf("/tmp itself (1777) trusted as a directory")
	}
}

func TestFile(t *testing.T) {
	base := tree(t)
	for _, tc := range []struct {
		path, reason string
	}{
		{"good/bin/tool", ""},
		{"good/bin/otherw", "is writable by others"},
		{"good/bin/strangers", "is owned by uid 65534"},
		{"good/bin/subdir", "is not a regular file"},
		// The descriptor alone is judged: the directory is Executable's job.
		{"evil/bin/adbagent", "is owned by uid 65534"},
		{"rootevil/tool", ""},
	} {
		f, err := os.Open(filepath.Join(base, tc.path))
		if err != nil {
			t.Fatal(err)
		}
		err = File(f, nodeUser)
		f.Close()
		if (tc.reason == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("File(%s) = %v, want %q", tc.path, err, tc.reason)
		}
	}
}
