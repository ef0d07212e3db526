// Package packaging tests what `make install` and `make deb` install: the
// binaries, their links and the systemd units, in a scratch root.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// root is the repository's top directory.
func root(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// want is a file of an installed tree: its mode, or the target of a link.
type want struct {
	mode os.FileMode
	link string
}

// tree is what an install with prefix and unitDir holds.
func tree(prefix, unitDir string) map[string]want {
	p, u := strings.TrimPrefix(prefix, "/")+"/", strings.TrimPrefix(unitDir, "/")+"/"
	return map[string]want{
		p + "lib/adbmgr/bin/adbmgr":                {mode: 0o755},
		p + "lib/adbmgr/bin/adbagent":              {mode: 0o755},
		p + "bin/adbmgr":                           {link: "../lib/adbmgr/bin/adbmgr"},
		p + "bin/adbagent":                         {link: "../lib/adbmgr/bin/adbagent"},
		u + "adbmgr.service":                       {mode: 0o644},
		u + "adbagent.service":                     {mode: 0o644},
		"etc/default/adbmgr":                       {mode: 0o644},
		"etc/default/adbagent":                     {mode: 0o644},
		p + "share/doc/adbmgr/adbmgr.conf.example": {mode: 0o644},
	}
}

// check compares the installed tree under dir with files, then verifies
// the units, runs both binaries through their links and checks that no
// @LIBDIR@ is left.
func check(t *testing.T, dir, prefix, unitDir string, files map[string]want) {
	t.Helper()
	for name, w := range files {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if w.link != "" {
			if got, err := os.Readlink(p); err != nil || got != w.link {
				t.Errorf("%s: link to %q (%v), want %q", name, got, err, w.link)
			}
			continue
		}
		if fi.Mode() != w.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), w.mode)
		}
	}
	for _, bin := range []string{"adbmgr", "adbagent"} {
		out, err := exec.Command(filepath.Join(dir, prefix, "bin", bin), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), bin+" ") {
			t.Errorf("%s --version: %v %q", bin, err, out)
		}
	}
	libdir := filepath.Join(prefix, "lib", "adbmgr")
	for _, unit := range []string{"adbmgr.service", "adbagent.service"} {
		b, err := os.ReadFile(filepath.Join(dir, unitDir, unit))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "@") || !strings.Contains(string(b), "ExecStart="+libdir+"/bin/") {
			t.Errorf("%s: ExecStart not in %s:\n%s", unit, libdir, b)
		}
		if !strings.Contains(string(b), "KillMode=process") {
			t.Errorf("%s: stopping it would stop the nodes (no KillMode=process)", unit)
		}
	}
	verifyUnits(t, dir, libdir, unitDir)
}

// verifyUnits runs systemd-analyze verify on the installed units, their
// binaries found in the scratch root: any complaint fails the test.
func verifyUnits(t *testing.T, dir, libdir, unitDir string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the units are not verified")
		return
	}
	tmp := t.TempDir()
	var units []string
	for _, unit := range []string{"adbmgr.service", "adbagent.service"} {
		b, err := os.ReadFile(filepath.Join(dir, unitDir, unit))
		if err != nil {
			t.Fatal(err)
		}
		// The binaries are in the scratch root, not yet where the unit
		// will find them.
		text := strings.ReplaceAll(string(b), libdir+"/", filepath.Join(dir, libdir)+"/")
		p := filepath.Join(tmp, unit)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestInstall: make install's script with DESTDIR and PREFIX, twice: the
// second run keeps an edited /etc/default file.
func TestInstall(t *testing.T) {
	top := root(t)
	bin := t.TempDir()
	for _, b := range []string{"adbmgr", "adbagent"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b), "./cmd/"+b)
		cmd.Dir = top
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b, err, out)
		}
	}
	dest := t.TempDir()
	install := func() {
		t.Helper()
		cmd := exec.Command(filepath.Join(top, "packaging", "install.sh"), bin)
		cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PREFIX=/opt/adb")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
	}
	install()
	check(t, dest, "/opt/adb", "/opt/adb/lib/systemd/system", tree("/opt/adb", "/opt/adb/lib/systemd/system"))
	if _, err := os.Lstat(filepath.Join(dest, "opt/adb/lib/adbmgr/run")); err == nil {
		t.Error("install.sh without RUNDIR made lib/adbmgr/run")
	}
	// With RUNDIR, lib/adbmgr/run links to it.
	runDest := t.TempDir()
	cmd := exec.Command(filepath.Join(top, "packaging", "install.sh"), bin)
	cmd.Env = append(os.Environ(), "DESTDIR="+runDest, "PREFIX=/opt/adb", "RUNDIR=/var/lib/adbagent/run")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install.sh RUNDIR=…: %v\n%s", err, out)
	}
	if got, err := os.Readlink(filepath.Join(runDest, "opt/adb/lib/adbmgr/run")); err != nil || got != "/var/lib/adbagent/run" {
		t.Errorf("lib/adbmgr/run links to %q (%v)", got, err)
	}
	if fi, err := os.Stat(filepath.Join(runDest, "var/lib/adbagent/run")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("RUNDIR: %v %v", fi, err)
	}
	edited := filepath.Join(dest, "etc/default/adbagent")
	if err := os.WriteFile(edited, []byte("ADBAGENT_LISTEN=10.0.0.1:5430\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if b, _ := os.ReadFile(edited); string(b) != "ADBAGENT_LISTEN=10.0.0.1:5430\n" {
		t.Errorf("a second install overwrote /etc/default/adbagent: %q", b)
	}
}

// TestPackage: make deb's package (ADBMGR_DEB, else made here) unpacked
// with dpkg -x into a scratch root.
func TestPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	deb := os.Getenv("ADBMGR_DEB")
	if deb == "" {
		top := root(t)
		// --no-print-directory: under make test this make is nested, and
		// would end its output with "Leaving directory …".
		cmd := exec.Command("make", "--no-print-directory", "deb")
		cmd.Dir = top
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make deb: %v\n%s", err, out)
		}
		debs, _ := filepath.Glob(filepath.Join(top, "dist", "*.deb"))
		if len(debs) != 1 {
			t.Fatalf("make deb left %d packages in dist/ (want 1): %q\n%s", len(debs), debs, out)
		}
		deb = debs[0]
	}
	dir := t.TempDir()
	if out, err := exec.Command("dpkg", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -x %s: %v\n%s", deb, err, out)
	}
	files := tree("/usr", "/usr/lib/systemd/system")
	files["var/lib/adbmgr"] = want{mode: os.ModeDir | 0o700}
	// Runtime files out of /usr: the nodes' socket directories.
	files["usr/lib/adbmgr/run"] = want{link: "/var/lib/adbagent/run"}
	files["var/lib/adbagent/run"] = want{mode: os.ModeDir | 0o755}
	// The nodes' library, in PostgreSQL 15's lib directory.
	files["usr/lib/postgresql/15/lib/adb.so"] = want{mode: 0o755}
	check(t, dir, "/usr", "/usr/lib/systemd/system", files)
	info, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version").Output()
	if err != nil || !strings.Contains(string(info), "Package: adbmgr") {
		t.Errorf("dpkg-deb -f: %v %q", err, info)
	}
	// The administrator's settings survive upgrades.
	conf, err := exec.Command("dpkg-deb", "-I", deb, "conffiles").Output()
	if err != nil || !strings.Contains(string(conf), "/etc/default/adbmgr") || !strings.Contains(string(conf), "/etc/default/adbagent") {
		t.Errorf("conffiles: %v %q", err, conf)
	}
}
