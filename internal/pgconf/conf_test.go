package pgconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuoteValue(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "''"},
		{"5432", "'5432'"},
		{"it's", "'it''s'"},
		{`C:\dir`, `'C:\\dir'`},
		{"a\nb\rc", `'a\nb\rc'`},
		{"tab\there", "'tab\there'"},
		{"host=a user='b' application_name=c", "'host=a user=''b'' application_name=c'"},
		{"# not a comment", "'# not a comment'"},
	}
	for _, tt := range tests {
		got, err := QuoteValue(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("QuoteValue(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// Whatever we write reads back as the value.
		if back := parseConfLine("k = " + got); !back.wellFormed || back.value != tt.in {
			t.Errorf("QuoteValue(%q) reads back as %+v", tt.in, back)
		}
	}
	if _, err := QuoteValue("a\x00b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("NUL accepted: %v", err)
	}
}

func TestValidValue(t *testing.T) {
	for _, v := range []string{"", "on", "a\nb", "it's", strings.Repeat("v", MaxValueLen)} {
		if err := ValidValue(v); err != nil {
			t.Errorf("ValidValue(%.20q) = %v", v, err)
		}
	}
	for _, v := range []string{"a\x00b", strings.Repeat("v", MaxValueLen+1)} {
		if err := ValidValue(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidValue(%.20q) = %v, want ErrInvalid", v, err)
		}
		if _, err := QuoteValue(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("QuoteValue(%.20q) = %v, want ErrInvalid", v, err)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, k := range []string{"port", "Shared_Buffers", "_x", "auto_explain.log_min_duration", "a1"} {
		if err := ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "1port", "port 2", "a.b.c", "a.", ".a", "po-rt", "include", "INCLUDE_DIR", "include_if_exists", "k=v", "k\n", "ключ"} {
		if err := ValidKey(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalid", k, err)
		}
	}
}

func TestParseConfLine(t *testing.T) {
	tests := []struct {
		line string
		want confLine
	}{
		{"", confLine{}},
		{"# port = 1", confLine{}},
		{"   #port = 1", confLine{}},
		{"port = 5432", confLine{key: "port", value: "5432", wellFormed: true}},
		{"port=5432#c", confLine{key: "port", value: "5432", wellFormed: true, trailer: "#c"}},
		{"port 5432", confLine{key: "port", value: "5432", wellFormed: true}},
		{"\tshared_buffers = 128MB\t\t\t# min 128kB", confLine{key: "shared_buffers", value: "128MB", wellFormed: true, trailer: "\t\t\t# min 128kB"}},
		{"listen_addresses = 'localhost'		# what IP", confLine{key: "listen_addresses", value: "localhost", wellFormed: true, trailer: "\t\t# what IP"}},
		{`x = 'a''b\\c\n\101'`, confLine{key: "x", value: "a'b\\c\nA", wellFormed: true}},
		{"x = 'unterminated", confLine{key: "x"}},
		{"x = ", confLine{key: "x"}},
		{"x = 1 2", confLine{key: "x"}},
		{"x-y = 1", confLine{key: "x"}},
		{"a.b = on", confLine{key: "a.b", value: "on", wellFormed: true}},
		{"include 'other.conf'", confLine{}},
		{"include_dir = 'conf.d'", confLine{}},
		{"port = 5432\r", confLine{key: "port", value: "5432", wellFormed: true, trailer: "\r"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseConfLine(tt.line), cmp.AllowUnexported(confLine{})); diff != "" {
			t.Errorf("parseConfLine(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestEditConf(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		set     map[string]string
		remove  []string
		want    string
		changed bool
	}{
		{
			name:    "append to empty",
			in:      "",
			set:     map[string]string{"port": "5433", "listen_addresses": "127.0.0.2"},
			want:    "listen_addresses = '127.0.0.2'\nport = '5433'\n",
			changed: true,
		},
		{
			name:    "replace in place keeping the comment",
			in:      "# head\nport = 5432\t\t# (change requires restart)\nmax_connections = 100\n",
			set:     map[string]string{"port": "5433"},
			want:    "# head\nport = '5433'\t\t# (change requires restart)\nmax_connections = 100\n",
			changed: true,
		},
		{
			name:    "same value unquoted is left alone",
			in:      "port = 5432 # c\n",
			set:     map[string]string{"port": "5432"},
			want:    "port = 5432 # c\n",
			changed: false,
		},
		{
			name:    "commented line is not a setting",
			in:      "#port = 5432\n",
			set:     map[string]string{"port": "5433"},
			want:    "#port = 5432\nport = '5433'\n",
			changed: true,
		},
		{
			name:    "last of duplicates replaced, earlier dropped, case-insensitive",
			in:      "PORT = 1\nx = 2\nPort = 3\ny = 4\n",
			set:     map[string]string{"Port": "5"},
			want:    "x = 2\nport = '5'\ny = 4\n",
			changed: true,
		},
		{
			name:    "duplicates dropped even when the last has the value",
			in:      "port = 1\nport = '5'\n",
			set:     map[string]string{"port": "5"},
			want:    "port = '5'\n",
			changed: true,
		},
		{
			name:    "remove every line, keep comments",
			in:      "a = 1\n#b = 2\nb = 3\nb = 4\n",
			remove:  []string{"B"},
			want:    "a = 1\n#b = 2\n",
			changed: true,
		},
		{
			name:    "remove absent key",
			in:      "a = 1",
			remove:  []string{"b"},
			want:    "a = 1",
			changed: false,
		},
		{
			name:    "malformed line of the key is repaired",
			in:      "x = 'broken\n",
			set:     map[string]string{"x": "ok"},
			want:    "x = 'ok'\n",
			changed: true,
		},
		{
			name:    "no final newline",
			in:      "a = 1",
			set:     map[string]string{"b": "2"},
			want:    "a = 1\nb = '2'\n",
			changed: true,
		},
		{
			name:    "quoting of connection strings",
			in:      "",
			set:     map[string]string{"primary_conninfo": "host=10.0.0.1 user='a b' application_name=s1"},
			want:    "primary_conninfo = 'host=10.0.0.1 user=''a b'' application_name=s1'\n",
			changed: true,
		},
		{
			name:    "includes are not touched",
			in:      "include 'x.conf'\n",
			set:     map[string]string{"a": "1"},
			want:    "include 'x.conf'\na = '1'\n",
			changed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := EditConf([]byte(tt.in), tt.set, tt.remove)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			again, changed, err := EditConf(out, tt.set, tt.remove)
			if err != nil || changed || string(again) != string(out) {
				t.Errorf("second application changed the file: %v %q", err, again)
			}
		})
	}
}

func TestEditConfRefusals(t *testing.T) {
	tests := []struct {
		set    map[string]string
		remove []string
	}{
		{set: map[string]string{"bad key": "1"}},
		{set: map[string]string{"include": "/etc/shadow"}},
		{set: map[string]string{"a": "x\x00"}},
		{set: map[string]string{"a": "1", "A": "2"}},
		{set: map[string]string{"a": "1"}, remove: []string{"A"}},
		{remove: []string{"1a"}},
	}
	for _, tt := range tests {
		if _, _, err := EditConf([]byte("a = 0\n"), tt.set, tt.remove); !errors.Is(err, ErrInvalid) {
			t.Errorf("EditConf(%v, %v) = %v, want ErrInvalid", tt.set, tt.remove, err)
		}
	}
}

func TestEditConfFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "postgresql.conf")
	if err := os.WriteFile(conf, []byte("port = 5432\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	changed, err := EditConfFile(conf, map[string]string{"port": "6000"}, nil, false, NoOwner)
	if err != nil || !changed {
		t.Fatalf("EditConfFile = %v, %v", changed, err)
	}
	fi, err := os.Stat(conf)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v %v", fi.Mode(), err)
	}
	if changed, err := EditConfFile(conf, map[string]string{"port": "6000"}, nil, false, NoOwner); err != nil || changed {
		t.Fatalf("replay = %v, %v", changed, err)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries", len(entries))
	}

	// postgresql.conf must exist; postgresql.auto.conf may be created.
	if _, err := EditConfFile(filepath.Join(dir, "missing.conf"), map[string]string{"a": "1"}, nil, false, NoOwner); !os.IsNotExist(err) {
		t.Errorf("missing postgresql.conf: %v", err)
	}
	auto := filepath.Join(dir, "postgresql.auto.conf")
	if changed, err := EditConfFile(auto, nil, []string{"a"}, true, NoOwner); err != nil || changed {
		t.Errorf("removing from a missing auto.conf = %v, %v", changed, err)
	}
	if _, err := os.Stat(auto); !os.IsNotExist(err) {
		t.Errorf("auto.conf created for nothing")
	}
	if changed, err := EditConfFile(auto, map[string]string{"primary_slot_name": "s1"}, nil, true, NoOwner); err != nil || !changed {
		t.Fatalf("auto.conf = %v, %v", changed, err)
	}
	b, _ := os.ReadFile(auto)
	if want := AutoConfHeader + "primary_slot_name = 's1'\n"; string(b) != want {
		t.Errorf("auto.conf = %q", b)
	}
	if fi, _ := os.Stat(auto); fi.Mode().Perm() != 0o600 {
		t.Errorf("auto.conf mode %v", fi.Mode())
	}

	// A symbolic link planted in place of the file is refused, not followed.
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("password = x\n"), 0o600)
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if _, err := EditConfFile(link, map[string]string{"a": "1"}, nil, false, NoOwner); !errors.Is(err, ErrNotRegular) {
		t.Errorf("symlink: %v", err)
	}
	if _, err := ReadFile(link); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile symlink: %v", err)
	}
	if _, err := ReadFile(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile dir: %v", err)
	}
}

func TestSetFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "standby.signal")
	steps := []struct {
		exists, changed bool
	}{{true, true}, {true, false}, {false, true}, {false, false}}
	for i, s := range steps {
		changed, err := SetFile(p, s.exists, NoOwner)
		if err != nil || changed != s.changed {
			t.Fatalf("step %d: SetFile(%v) = %v, %v", i, s.exists, changed, err)
		}
		_, err = os.Stat(p)
		if (err == nil) != s.exists {
			t.Fatalf("step %d: exists = %v", i, err == nil)
		}
	}
	os.Mkdir(p, 0o700)
	if _, err := SetFile(p, false, NoOwner); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v", err)
	}
}
