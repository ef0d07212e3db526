package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flags is a command with a long string flag, a long int flag, a short
// flag and the fixed --config.
type flags struct {
	listen, dir, config string
	port                int
	fs                  *flag.FlagSet
}

func newFlags() *flags {
	f := &flags{fs: flag.NewFlagSet("t", flag.ContinueOnError)}
	f.fs.StringVar(&f.listen, "listen", "default", "")
	f.fs.IntVar(&f.port, "http-port", 1, "")
	f.fs.StringVar(&f.dir, "D", "", "")
	f.fs.StringVar(&f.config, "config", "", "")
	return f
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestPrecedence: the file < the environment < the command line, flag by
// flag; what none of them sets keeps its default.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen = \"file\"\nhttp-port = 7\n")
	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		listen string
		port   int
	}{
		{"defaults", nil, nil, "default", 1},
		{"file", nil, nil, "file", 7},
		{"env beats file", nil, map[string]string{"ADBMGR_LISTEN": "env"}, "env", 7},
		{"flag beats env", []string{"--listen", "flag"}, map[string]string{"ADBMGR_LISTEN": "env", "ADBMGR_HTTP_PORT": "9"}, "flag", 9},
		{"flag beats file", []string{"--http-port", "3"}, nil, "file", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlags()
			if err := f.fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			src := Sources{File: file, Lookup: env(tc.env), Fixed: []string{"config"}}
			if tc.name == "defaults" {
				src.File = filepath.Join(t.TempDir(), "missing.conf")
			}
			if err := Apply(f.fs, src); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([2]any{tc.listen, tc.port}, [2]any{f.listen, f.port}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestRefusals: keys that are no flag, short flags, the fixed --config,
// values a flag refuses and tables are errors naming the key and file.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"lisen = \"x\"\n", `unknown key "lisen"`},
		{"D = \"/x\"\n", `unknown key "D"`},
		{"config = \"/x\"\n", `unknown key "config"`},
		{"http-port = \"many\"\n", `key "http-port"`},
		{"[listen]\nx = 1\n", `key "listen": want a string`},
		{"listen = \n", FileName},
	} {
		f := newFlags()
		file := writeFile(t, tc.text)
		err := Apply(f.fs, Sources{File: file, Fixed: []string{"config"}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: %v, want an error with %q and the file's name", tc.text, err, tc.want)
		}
	}
	// A file named by --config that is not there is an error that names
	// it; the implicit DIR/adbmgr.conf may be absent.
	missing := filepath.Join(t.TempDir(), "nope.conf")
	if err := Apply(newFlags().fs, Sources{File: missing, Required: true}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing --config file: %v", err)
	}
	if err := Apply(newFlags().fs, Sources{File: missing}); err != nil {
		t.Errorf("a missing default file: %v", err)
	}
	// The environment's bad value names the variable.
	f := newFlags()
	err := Apply(f.fs, Sources{Lookup: env(map[string]string{"ADBMGR_HTTP_PORT": "x"})})
	if err == nil || !strings.Contains(err.Error(), "ADBMGR_HTTP_PORT") {
		t.Errorf("bad environment value: %v", err)
	}
}

// TestElsewhere: a key of another command is taken and ignored.
func TestElsewhere(t *testing.T) {
	f := newFlags()
	file := writeFile(t, "auth-host = \"trust\"\nlisten = \"x\"\n")
	if err := Apply(f.fs, Sources{File: file, Elsewhere: map[string]bool{"auth-host": true}}); err != nil {
		t.Fatal(err)
	}
	if f.listen != "x" {
		t.Errorf("listen %q", f.listen)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("log-level"); got != "ADBMGR_LOG_LEVEL" {
		t.Errorf("EnvName: %s", got)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := Log{Format: "json", Level: "warn"}.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "shown" || rec["k"] != "v" {
		t.Errorf("json log %q: %v", buf.String(), err)
	}
	for _, bad := range []Log{{Format: "xml"}, {Level: "loud"}} {
		if _, err := bad.Logger(&buf); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
