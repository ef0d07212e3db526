package parser

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`CREATE USER bob PASSWORD 's3cret'`, `CREATE USER bob PASSWORD '********'`},
		{`create user bob with superuser password 'it''s password x'`, `create user bob with superuser password '********'`},
		{`ALTER USER bob PASSWORD NULL`, `ALTER USER bob PASSWORD NULL`},
		{`ALTER USER bob PASSWORD $$pw$$ SUPERUSER`, `ALTER USER bob PASSWORD '********' SUPERUSER`},
		{`ALTER USER bob PASSWORD $t$a'b$t$`, `ALTER USER bob PASSWORD '********'`},
		{`DEPLOY ALL PASSWORD hunter2`, `DEPLOY ALL PASSWORD '********'`},
		{`DEPLOY h1, h2 PASSWORD "Hunter 2"`, `DEPLOY h1, h2 PASSWORD '********'`},
		{`START AGENT ALL PASSWORD 12345`, `START AGENT ALL PASSWORD '********'`},
		{`START AGENT h1 PASSWORD E'a\'b'`, `START AGENT h1 PASSWORD '********'`},
		{`CREATE USER bob PASSWORD 'unterminated`, `CREATE USER bob PASSWORD '********'`},
		{`ADD HOST h1 (address='127.0.0.2')`, `ADD HOST h1 (address='127.0.0.2')`},
		{`CREATE USER "password" PASSWORD 'x'`, `CREATE USER "password" PASSWORD '********'`},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Whatever parses as a statement with a password, its redacted text never
// holds the password.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{`CREATE USER a PASSWORD 'pw'`, `DEPLOY ALL PASSWORD pw`, `START AGENT h PASSWORD "p w"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		sts, err := Parse(q)
		if err != nil {
			return
		}
		for _, st := range sts {
			var pw string
			switch st := st.(type) {
			case *UserStmt:
				pw = st.Password
			case *Deploy:
				pw = st.Password
			case *StartAgent:
				pw = st.Password
			}
			if len(pw) < 4 {
				continue // too short to tell from the statement's own words
			}
			pos, end := st.Span()
			if red := Redact(q[pos:end]); strings.Contains(red, pw) {
				t.Fatalf("Redact(%q) = %q still holds the password", q[pos:end], red)
			}
		}
	})
}
