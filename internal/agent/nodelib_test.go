package agent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgctl"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeHome is a pghome with bin/postgres (an empty file) and lib/, with
// lib/adb.so when withLib.
func fakeHome(t *testing.T, withLib bool) string {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{"bin", "lib"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch(t, filepath.Join(home, "bin", "postgres"))
	if withLib {
		touch(t, filepath.Join(home, "lib", "adb.so"))
	}
	return home
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o755); err != nil {
		t.Fatal(err)
	}
}

// confNode is a node in a temporary data directory whose postgresql.conf
// and postgresql.auto.conf hold conf and auto.
func confNode(t *testing.T, home, conf, auto string) *node {
	t.Helper()
	data := t.TempDir()
	for f, s := range map[string]string{"postgresql.conf": conf, "postgresql.auto.conf": auto} {
		if err := os.WriteFile(filepath.Join(data, f), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := pgctl.New(home, nodeUser(t))
	if err != nil {
		t.Fatal(err)
	}
	return &node{path: data, run: r}
}

func TestLibraryFiles(t *testing.T) {
	home := fakeHome(t, false)
	lib := filepath.Join(home, "lib")
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"", []string{lib + "/adb.so"}},
		{"$libdir", []string{lib + "/adb.so"}},
		{"/dev/adb:$libdir", []string{"/dev/adb/adb.so", lib + "/adb.so"}},
		{"$libdir/sub:relative::/x", []string{lib + "/sub/adb.so", "/x/adb.so"}},
		{"relative", []string{lib + "/adb.so"}},
	} {
		if got := LibraryFiles(home, tc.path, "adb"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("LibraryFiles(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	// A bin/postgres linked into another installation uses that one's
	// lib, as PostgreSQL does (it finds $libdir from its resolved path).
	other := fakeHome(t, true)
	linked := t.TempDir()
	if err := os.Mkdir(filepath.Join(linked, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "bin", "postgres"), filepath.Join(linked, "bin", "postgres")); err != nil {
		t.Fatal(err)
	}
	if got := LibDir(linked); got != filepath.Join(other, "lib") {
		t.Errorf("LibDir through a link = %s", got)
	}
	if got := LibDir("/nonexistent"); got != "/nonexistent/lib" {
		t.Errorf("LibDir without postgres = %s", got)
	}
}

func TestPreloads(t *testing.T) {
	for list, want := range map[string]bool{
		"adb": true, "pg_stat_statements, adb": true, `"adb"`: true, "$libdir/adb": true,
		"/opt/x/adb.so": true, "": false, "adbx": false, "pg_stat_statements": false,
	} {
		if got := preloads(list, "adb"); got != want {
			t.Errorf("preloads(%q) = %v", list, got)
		}
	}
}

func TestCheckNodeLibrary(t *testing.T) {
	without, with := fakeHome(t, false), fakeHome(t, true)
	dev := t.TempDir()
	touch(t, filepath.Join(dev, "adb.so"))
	const preload = "shared_preload_libraries = 'adb'\n"
	for _, tc := range []struct {
		name, home, conf, auto string
		missing                []string // nil: the node may start
	}{
		{"installed", with, preload, "", nil},
		{"not installed", without, preload, "", []string{without + "/lib/adb.so"}},
		{"not preloaded", without, "port = 5432\n", "", nil},
		{"preload removed by auto.conf", without, preload, "shared_preload_libraries = ''\n", nil},
		{"preloaded by auto.conf", without, "", preload, []string{without + "/lib/adb.so"}},
		{"developer's build", without, preload + "dynamic_library_path = '" + dev + ":$libdir'\n", "", nil},
		{"path without it", with, preload + "dynamic_library_path = '/nonexistent'\n", "", []string{"/nonexistent/adb.so"}},
		{"path and libdir without it", without, preload + "dynamic_library_path = '/nonexistent:$libdir'\n", "",
			[]string{"/nonexistent/adb.so", without + "/lib/adb.so"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := confNode(t, tc.home, tc.conf, tc.auto)
			err := n.checkNodeLibrary()
			if tc.missing == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ml *missingLibrary
			if !errors.As(err, &ml) || !reflect.DeepEqual(ml.tried, tc.missing) {
				t.Fatalf("got %v, want the files %q missing", err, tc.missing)
			}
			for _, want := range append([]string{n.path, `"adb"`}, tc.missing...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %s", err, want)
				}
			}
		})
	}
}

// The manager recognises the refusal by its detail (fleet.AgentError),
// whatever wraps it in the agent.
func TestMissingLibraryStatus(t *testing.T) {
	err := toStatus(errors.Join(errors.New("start"), &missingLibrary{node: "/d/n1", tried: []string{"/pg/lib/adb.so"}}))
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "/pg/lib/adb.so does not exist") {
		t.Fatalf("status = %v", st)
	}
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok && pf.Violations[0].Type == MissingLibraryType && pf.Violations[0].Subject == "/pg/lib/adb.so" {
			return
		}
	}
	t.Errorf("no %s detail in %v", MissingLibraryType, st.Details())
}
