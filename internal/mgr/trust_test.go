package mgr

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// wantErr checks a refusal's SQLSTATE, message and caret (the character
// position of what the caret must point at in q; "" for no check).
func wantErr(t *testing.T, q string, err error, code, msg, caretAt string) {
	t.Helper()
	pe, ok := pgerror.As(err)
	if !ok || pe.Code != code || !strings.Contains(pe.Message, msg) {
		t.Fatalf("%s: got %v, want %s %q", q, err, code, msg)
	}
	if caretAt != "" {
		if want := strings.Index(q, caretAt) + 1; pe.Position != want {
			t.Errorf("%s: caret at %d, want %d (%s)", q, pe.Position, want, caretAt)
		}
	}
}

func TestHostAddressRules(t *testing.T) {
	for _, tc := range []struct {
		addr string
		hint string // "" when accepted
	}{
		{"127.0.0.2", ""},
		{"10.1.2.3", ""},
		{"::1", ""},
		{"fe80::1", ""},
		{"0.0.0.0", "not an unspecified one"},
		{"::", "not an unspecified one"},
		{"::ffff:0.0.0.0", "not an unspecified one"},
		{"224.0.0.1", "not a multicast or broadcast one"},
		{"239.1.2.3", "not a multicast or broadcast one"},
		{"ff02::1", "not a multicast or broadcast one"},
		{"255.255.255.255", "not a multicast or broadcast one"},
		{"localhost", "address literal"},
		{"127.0.0.1/8", "address literal"},
		{"", "address literal"},
	} {
		// Not t.Run(""): catalog.Open puts the directory in a file: URI
		// unescaped, and t.TempDir() of a test named "#00" has a '#'.
		t.Run("address="+tc.addr, func(t *testing.T) {
			m, _ := newManager(t)
			q := `ADD HOST h (protocol=local, address='` + tc.addr + `')`
			_, err := run(t, m, q)
			if tc.hint == "" {
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return
			}
			wantErr(t, q, err, pgerror.InvalidParameterValue, `invalid value for option "address"`, "'"+tc.addr+"'")
			if pe, _ := pgerror.As(err); !strings.Contains(pe.Hint, tc.hint) {
				t.Errorf("hint %q, want %q", pe.Hint, tc.hint)
			}
			// ALTER HOST has the same rule.
			mustRun(t, m, `ADD HOST h (protocol=local, address='127.0.0.9')`)
			q = `ALTER HOST h (address='` + tc.addr + `')`
			_, err = run(t, m, q)
			wantErr(t, q, err, pgerror.InvalidParameterValue, `invalid value for option "address"`, "'"+tc.addr+"'")
		})
	}
}

func TestHostPathRules(t *testing.T) {
	for _, tc := range []struct {
		value, stored, hint string
	}{
		{"/opt/adb", "/opt/adb", ""},
		{"/opt//adb/./", "/opt/adb", ""},
		{"/opt/adb/", "/opt/adb", ""},
		{"/opt/..adb", "/opt/..adb", ""}, // a name, not a ".." component
		{"/opt/../tmp/evil", "", `must not contain ".."`},
		{"/opt/adb/..", "", `must not contain ".."`},
		{"opt/adb", "", "must be absolute"},
		{"./adb", "", "must be absolute"},
		{"", "", "must be absolute"},
		{"/", "", "cannot be an installation directory"},
		{"//./", "", "cannot be an installation directory"},
		{"/opt/a\tb", "", "control character"},
		{"/" + strings.Repeat("a", 1001), "", "too long"},
	} {
		for _, opt := range []string{"adbhome", "pghome"} {
			t.Run(opt+"="+tc.value, func(t *testing.T) {
				m, _ := newManager(t)
				q := `ADD HOST h (protocol=local, address='127.0.0.2', ` + opt + `='` + tc.value + `')`
				_, err := run(t, m, q)
				if tc.hint != "" {
					wantErr(t, q, err, pgerror.InvalidParameterValue, `invalid value for option "`+opt+`"`, "'"+tc.value+"'")
					if pe, _ := pgerror.As(err); !strings.Contains(pe.Hint, tc.hint) {
						t.Errorf("hint %q, want %q", pe.Hint, tc.hint)
					}
					mustRun(t, m, `ADD HOST h (protocol=local, address='127.0.0.2')`)
					q = `ALTER HOST h (` + opt + `='` + tc.value + `')`
					_, err = run(t, m, q)
					wantErr(t, q, err, pgerror.InvalidParameterValue, `invalid value for option "`+opt+`"`, "'"+tc.value+"'")
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				s, err := m.state(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				h, _ := s.Host("h")
				if got := map[string]string{"adbhome": h.ADBHome, "pghome": h.PGHome}[opt]; got != tc.stored {
					t.Errorf("stored %q, want %q", got, tc.stored)
				}
			})
		}
	}
}

// The file checks run for local hosts at ADD HOST, and at ALTER HOST when
// what they depend on changes; a refusal points at the option and changes
// nothing.
func TestHostFilesChecked(t *testing.T) {
	m, cat := newManager(t)
	var checked []string
	m.opts.CheckHostFiles = func(h cluster.Host) error {
		checked = append(checked, h.Name)
		if h.PGHome == "/evil" {
			return &cluster.FieldError{Field: "pghome", Err: pgerror.New(pgerror.ObjectNotInPrereqState, `pghome "/evil" of host "%s" is not safe`, h.Name)}
		}
		return nil
	}
	q := `ADD HOST h1 (protocol=local, address='127.0.0.2', pghome='/evil')`
	_, err := run(t, m, q)
	wantErr(t, q, err, pgerror.ObjectNotInPrereqState, `pghome "/evil" of host "h1" is not safe`, "'/evil'")
	mustRun(t, m, `ADD HOST h1 (protocol=local, address='127.0.0.2'); ADD HOST h2 (protocol=ssh, address='127.0.0.3', pghome='/evil')`)
	if strings.Join(checked, ",") != "h1,h1" {
		t.Errorf("checked %v, want h1 twice (never the ssh host h2)", checked)
	}
	checked = nil
	mustRun(t, m, `ALTER HOST h1 (agentport=5555); ALTER HOST h2 (agentport=5556)`)
	if len(checked) != 0 {
		t.Errorf("checked %v for changes the checks do not depend on", checked)
	}
	q = `ALTER HOST h1 (pghome='/evil')`
	_, err = run(t, m, q)
	wantErr(t, q, err, pgerror.ObjectNotInPrereqState, `is not safe`, "'/evil'")
	// Making the ssh host local brings its (default-looking) pghome under
	// the rule; the caret has no option to point at, so it points at the
	// host's name.
	q = `ALTER HOST h2 (protocol=local)`
	_, err = run(t, m, q)
	wantErr(t, q, err, pgerror.ObjectNotInPrereqState, `is not safe`, "h2")
	var s *cluster.State
	if err := cat.View(context.Background(), func(tx catalog.ReadTx) (err error) { s, err = tx.State(); return err }); err != nil {
		t.Fatal(err)
	}
	h1, _ := s.Host("h1")
	h2, _ := s.Host("h2")
	if h1.PGHome != cluster.DefaultPGHome || h2.Protocol != cluster.ProtocolSSH {
		t.Errorf("a refused ALTER changed the catalog: %+v %+v", h1, h2)
	}
}

// trustTree makes a root-owned 0755 directory in /tmp (whose sticky bit
// the rule accepts above it) and returns a function creating files in it.
func trustTree(t *testing.T) (string, func(rel string, mode fs.FileMode, uid int, content string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files other owners")
	}
	base, err := os.MkdirTemp("/tmp", "mgr-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(rel string, mode fs.FileMode, uid int, content string) {
		t.Helper()
		p := filepath.Join(base, rel)
		var err error
		if mode.IsDir() {
			err = os.Mkdir(p, 0o700)
		} else {
			err = os.WriteFile(p, []byte(content), 0o700)
		}
		if err == nil {
			err = os.Chmod(p, mode)
		}
		if err == nil {
			err = os.Chown(p, uid, -1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return base, mk
}

func TestCheckHostFiles(t *testing.T) {
	base, mk := trustTree(t)
	dir := fs.ModeDir | 0o755
	mk("good", dir, 0, "")
	mk("evil", dir, 65534, "")
	mk("open", fs.ModeDir|0o777, 0, "")
	// The review's case: a root-owned pghome whose bin links to nobody's.
	mk("evilbin", dir, 65534, "")
	mk("evilbin/initdb", 0o755, 65534, "#!/bin/sh\n")
	mk("linked", dir, 0, "")
	if err := os.Symlink(filepath.Join(base, "evilbin"), filepath.Join(base, "linked", "bin")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		adbhome, pghome, field, code, msg string
	}{
		{"good", "linked", "pghome", pgerror.ObjectNotInPrereqState, "65534"},
		{"good", "good", "", "", ""},
		{"evil", "good", "adbhome", pgerror.ObjectNotInPrereqState, "is owned by uid 65534 (nobody)"},
		{"good", "evil", "pghome", pgerror.ObjectNotInPrereqState, "is owned by uid 65534 (nobody)"},
		{"open", "good", "adbhome", pgerror.ObjectNotInPrereqState, "is writable by group and others (mode 0777)"},
		{"missing", "good", "adbhome", pgerror.UndefinedFile, "does not exist"},
	} {
		h := cluster.Host{Name: "h", User: "postgres", Protocol: cluster.ProtocolLocal,
			ADBHome: filepath.Join(base, tc.adbhome), PGHome: filepath.Join(base, tc.pghome)}
		err := checkHostFiles(h)
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s, %s: %v", tc.adbhome, tc.pghome, err)
			}
			continue
		}
		pe, ok := pgerror.As(err)
		if cluster.ErrorField(err) != tc.field || !ok || pe.Code != tc.code || !strings.Contains(pe.Message, tc.msg) {
			t.Errorf("%s, %s: got %v (field %q), want %s on %s saying %q", tc.adbhome, tc.pghome, err, cluster.ErrorField(err), tc.code, tc.field, tc.msg)
		}
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin"); err == nil {
		h := cluster.Host{Name: "h", User: "postgres", ADBHome: filepath.Join(base, "good"), PGHome: "/usr/lib/postgresql/15"}
		if err := checkHostFiles(h); err != nil {
			t.Errorf("Debian's PostgreSQL: %v", err)
		}
	}
}

// openAgent accepts a host only when its adbagent is safe and the
// manager's build, and hands back the manager's own file.
func TestOpenAgent(t *testing.T) {
	base, mk := trustTree(t)
	dir := fs.ModeDir | 0o755
	const build = "\x7fELF the manager's build"
	mk("mgr", dir, 0, "")
	mk("mgr/bin", dir, 0, "")
	mk("mgr/bin/adbagent", 0o755, 0, build)
	for _, h := range []struct {
		name string
		mode fs.FileMode
		uid  int
		body string
	}{
		{"same", 0o755, 0, build},
		{"userowned", 0o750, 101, build}, // the host's user's own copy
		{"other", 0o755, 0, "#!/bin/sh\ntouch /tmp/pwned\n"},
		{"nobodys", 0o755, 65534, build},
		{"worldw", 0o777, 0, build},
	} {
		mk(h.name, dir, 0, "")
		mk(h.name+"/bin", dir, 0, "")
		mk(h.name+"/bin/adbagent", h.mode, h.uid, h.body)
	}
	mk("evil", dir, 65534, "")
	mk("evil/bin", dir, 65534, "")
	mk("evil/bin/adbagent", 0o755, 65534, build)
	own := filepath.Join(base, "mgr/bin/adbagent")
	m, _ := newManager(t)
	m.opts.AgentBinary = own
	host := func(name string) cluster.Host {
		return cluster.Host{Name: name, User: "postgres", Protocol: cluster.ProtocolLocal, ADBHome: filepath.Join(base, name)}
	}
	f, err := m.openAgent([]cluster.Host{host("same"), host("userowned"), host("mgr")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(procFD(f))
	f.Close()
	if err != nil || string(b) != build {
		t.Errorf("openAgent's file reads %q, %v; want the manager's build", b, err)
	}
	for _, tc := range []struct{ host, code, msg string }{
		{"other", pgerror.ObjectNotInPrereqState, "is not this manager's build"},
		{"nobodys", pgerror.ObjectNotInPrereqState, "is owned by uid 65534 (nobody)"},
		{"worldw", pgerror.ObjectNotInPrereqState, "is writable by group and others"},
		{"evil", pgerror.ObjectNotInPrereqState, "evil is owned by uid 65534 (nobody)"},
		{"missing", pgerror.UndefinedFile, "does not exist"},
	} {
		// The bad host last: the good one before it must not have
		// started anything (openAgent starts nothing at all).
		f, err := m.openAgent([]cluster.Host{host("same"), host(tc.host)})
		if f != nil {
			f.Close()
		}
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != tc.code || !strings.Contains(pe.Message, tc.msg) || !strings.Contains(pe.Message, `host "`+tc.host+`"`) {
			t.Errorf("%s: got %v, want %s %q", tc.host, err, tc.code, tc.msg)
		}
	}
	// The manager's own copy must be root's alone.
	for _, bad := range []func() error{
		func() error { return os.Chmod(own, 0o775) },
		func() error { return os.Chown(filepath.Dir(own), 101, -1) },
	} {
		if err := bad(); err != nil {
			t.Fatal(err)
		}
		_, err := m.openAgent([]cluster.Host{host("same")})
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ObjectNotInPrereqState || !strings.Contains(pe.Message, "the manager's own adbagent") {
			t.Errorf("unsafe manager copy: got %v", err)
		}
	}
	m.opts.AgentBinary = ""
	if _, err := m.openAgent(nil); err == nil {
		t.Error("no AgentBinary: accepted")
	}
	if _, err := os.Stat("/tmp/pwned"); !errors.Is(err, fs.ErrNotExist) {
		t.Error("/tmp/pwned exists")
	}
}

func TestChangedUnderUs(t *testing.T) {
	h := cluster.Host{Name: "h", Protocol: cluster.ProtocolLocal, User: "postgres", ADBHome: "/a", PGHome: "/p"}
	moved := h
	moved.PGHome = "/elsewhere"
	port := h
	port.AgentPort = 1
	for _, tc := range []struct {
		vetted, h *cluster.Host
		refused   bool
	}{
		{nil, nil, false},
		{&h, nil, false},
		{&h, &h, false},
		{&h, &port, false},
		{&h, &moved, true},
		// The dry run refused (or wrote no host) but the transaction
		// would write one: it was never checked.
		{nil, &h, true},
	} {
		err := changedUnderUs(tc.vetted, tc.h)
		if pe, ok := pgerror.As(err); tc.refused != (err != nil) || err != nil && (!ok || pe.Code != pgerror.SerializationFailure) {
			t.Errorf("changedUnderUs(%v, %v) = %v, want refused %v", tc.vetted, tc.h, err, tc.refused)
		}
	}
}
