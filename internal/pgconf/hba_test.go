package pgconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func host(db, user, addr, method string) Rule {
	return Rule{Type: "host", Database: db, User: user, Address: addr, Method: method}
}

func TestRuleValidate(t *testing.T) {
	good := []Rule{
		host("all", "all", "10.0.0.1/32", "trust"),
		host("replication", "postgres", "::1/128", "scram-sha-256"),
		host("db1,db2", "+admins", "10.0.0.0/8", "md5"),
		{Type: "local", Database: "all", User: "all", Method: "peer"},
		{Type: "hostssl", Database: "all", User: "all", Address: "0.0.0.0/0", Method: "cert"},
		{Type: "hostnossl", Database: "sameuser", User: "all", Address: "10.0.0.1/24", Method: "reject"},
	}
	for _, r := range good {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	bad := []Rule{
		{Type: "hostgssenc", Database: "all", User: "all", Address: "10.0.0.1/32", Method: "trust"},
		{Type: "Host", Database: "all", User: "all", Address: "10.0.0.1/32", Method: "trust"},
		{Type: "local", Database: "all", User: "all", Address: "10.0.0.1/32", Method: "trust"},
		host("all", "all", "10.0.0.1", "trust"),
		host("all", "all", "", "trust"),
		host("all", "all", "samenet", "trust"),
		host("all", "all", "10.0.0.1/33", "trust"),
		host("", "all", "10.0.0.1/32", "trust"),
		host("all", "", "10.0.0.1/32", "trust"),
		host("all all", "x", "10.0.0.1/32", "trust"),
		host("all", "x\ny", "10.0.0.1/32", "trust"),
		host("all", `"x"`, "10.0.0.1/32", "trust"),
		host("all", "x'", "10.0.0.1/32", "trust"),
		host("all", "x#", "10.0.0.1/32", "trust"),
		host("all", `x\`, "10.0.0.1/32", "trust"),
		host("@/etc/passwd", "x", "10.0.0.1/32", "trust"),
		host("a,@f", "x", "10.0.0.1/32", "trust"),
		host("a,,b", "x", "10.0.0.1/32", "trust"),
		host("all", "x\u00a0", "10.0.0.1/32", "trust"),
		host("all", "all", "10.0.0.1/32", "ldap"),
		host("all", "all", "10.0.0.1/32", "trust clientcert=verify-full"),
		host("all", "all", "10.0.0.1/32", "peer"),
		host("all", "all", "10.0.0.1/32", "cert"),
	}
	for _, r := range bad {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v accepted (%v)", r, err)
		}
	}
}

const initdbHBA = `# TYPE  DATABASE        USER            ADDRESS                 METHOD

# "local" is for Unix domain socket connections only
local   all             all                                     trust
# IPv4 local connections:
host    all             all             127.0.0.1/32            trust
host    replication     all             127.0.0.1/32            trust
`

func TestEditHBA(t *testing.T) {
	repl := host("replication", "postgres", "10.0.0.2/32", "trust")
	mgr := host("all", "all", "10.0.0.9/32", "trust")
	user := host("db", "u", "192.168.0.0/16", "md5")
	tests := []struct {
		name    string
		in      string
		edit    HBAEdit
		want    string
		changed bool
	}{
		{
			name:    "managed at the end, then the separator",
			in:      initdbHBA,
			edit:    HBAEdit{AddManaged: []Rule{repl, mgr}, EnsureSeparator: true},
			want:    initdbHBA + repl.String() + "\n" + mgr.String() + "\n" + Separator + "\n",
			changed: true,
		},
		{
			name:    "managed before the separator, tail after everything",
			in:      initdbHBA + Separator + "\n" + user.String() + "\n",
			edit:    HBAEdit{AddManaged: []Rule{repl}, AddTail: []Rule{mgr}},
			want:    initdbHBA + repl.String() + "\n" + Separator + "\n" + user.String() + "\n" + mgr.String() + "\n",
			changed: true,
		},
		{
			name:    "present anywhere, in any spelling, is not added",
			in:      "host replication postgres 10.0.0.2 255.255.255.255 trust # mine\nhost\tall all 10.0.0.9/32 trust\n",
			edit:    HBAEdit{AddManaged: []Rule{repl}, AddTail: []Rule{mgr}},
			want:    "host replication postgres 10.0.0.2 255.255.255.255 trust # mine\nhost\tall all 10.0.0.9/32 trust\n",
			changed: false,
		},
		{
			name:    "remove every equal line, keep comments and others",
			in:      "# c\n" + mgr.String() + "\nhost all all 10.0.0.9/32 trust\n" + user.String() + "\n",
			edit:    HBAEdit{Remove: []Rule{mgr}},
			want:    "# c\n" + user.String() + "\n",
			changed: true,
		},
		{
			name:    "a line with options is a different rule",
			in:      "host all all 10.0.0.9/32 trust clientcert=verify-ca\n",
			edit:    HBAEdit{Remove: []Rule{mgr}},
			want:    "host all all 10.0.0.9/32 trust clientcert=verify-ca\n",
			changed: false,
		},
		{
			name:    "alter: delete then add",
			in:      initdbHBA + user.String() + "\n",
			edit:    HBAEdit{Remove: []Rule{user}, AddTail: []Rule{host("db", "u", "192.168.1.0/24", "md5")}},
			want:    initdbHBA + host("db", "u", "192.168.1.0/24", "md5").String() + "\n",
			changed: true,
		},
		{
			name:    "alter to the same rule does not move it",
			in:      user.String() + "\n" + Separator + "\n",
			edit:    HBAEdit{Remove: []Rule{user}, AddManaged: []Rule{repl, user}},
			want:    user.String() + "\n" + repl.String() + "\n" + Separator + "\n",
			changed: true,
		},
		{
			name:    "duplicates within one edit are added once",
			in:      "",
			edit:    HBAEdit{AddManaged: []Rule{repl, repl}, AddTail: []Rule{repl}},
			want:    repl.String() + "\n",
			changed: true,
		},
		{
			name:    "separator only",
			in:      "local all all trust",
			edit:    HBAEdit{EnsureSeparator: true},
			want:    "local all all trust\n" + Separator + "\n",
			changed: true,
		},
		{
			name:    "quoted names are not keywords",
			in:      `host "all" all 10.0.0.9/32 trust` + "\n",
			edit:    HBAEdit{Remove: []Rule{mgr}},
			want:    `host "all" all 10.0.0.9/32 trust` + "\n",
			changed: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := EditHBA([]byte(tt.in), tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			again, changed, err := EditHBA(out, tt.edit)
			if err != nil || changed || string(again) != string(out) {
				t.Errorf("second application changed the file: %v\n%s", err, again)
			}
		})
	}
}

func TestHBARules(t *testing.T) {
	got := HBARules([]byte(initdbHBA + "  " + Separator + "\n\n  host all all 10.0.0.1/32 trust  # x\n"))
	want := []string{
		"local   all             all                                     trust",
		"host    all             all             127.0.0.1/32            trust",
		"host    replication     all             127.0.0.1/32            trust",
		"host all all 10.0.0.1/32 trust  # x",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEditHBAFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pg_hba.conf")
	if _, _, err := EditHBAFile(p, HBAEdit{EnsureSeparator: true}); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(p, []byte(initdbHBA), 0o600)
	rules, changed, err := EditHBAFile(p, HBAEdit{AddManaged: []Rule{host("all", "all", "10.0.0.9/32", "trust")}, EnsureSeparator: true})
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if len(rules) != 4 || !strings.Contains(rules[3], "10.0.0.9/32") {
		t.Errorf("rules = %q", rules)
	}
	if _, _, err := EditHBAFile(p, HBAEdit{AddTail: []Rule{host("all", "all", "x", "trust")}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid rule: %v", err)
	}
	read, err := ReadHBAFile(p)
	if err != nil || !cmp.Equal(read, rules) {
		t.Errorf("ReadHBAFile = %q, %v", read, err)
	}
}
