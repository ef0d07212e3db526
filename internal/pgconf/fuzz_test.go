package pgconf

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzEditConf: for any file content, setting a valid key yields a file
// whose effective value of the key is the requested one, whose other
// parameters are unchanged, and which a second identical edit leaves alone;
// removing the key leaves no active line of it.
func FuzzEditConf(f *testing.F) {
	f.Add([]byte("port = 5432\n# c\nshared_buffers = 128MB # x\n"), "port", "5433")
	f.Add([]byte("x = 'a''b\\\\'\nx = 2"), "X", "it's \\ a\nvalue")
	f.Add([]byte("include 'f'\nkey='unterminated\n"), "key", "")
	f.Add([]byte("a.b = on\r\nA.B = off\r\n"), "a.b", "#")
	f.Add([]byte(""), "include", "x")
	f.Fuzz(func(t *testing.T, content []byte, key, value string) {
		out, changed, err := EditConf(content, map[string]string{key: value}, nil)
		if err != nil {
			if ValidKey(key) == nil && !strings.Contains(value, "\x00") {
				t.Fatalf("valid edit refused: %v", err)
			}
			return
		}
		lk := strings.ToLower(key)
		before, after := Effective(content), Effective(out)
		if got, ok := after[lk]; !ok || got != value {
			t.Fatalf("after setting %q=%q the file says %q (present %v):\n%s", key, value, got, ok, out)
		}
		for k, v := range before {
			if k != lk && after[k] != v {
				t.Fatalf("%q changed from %q to %q", k, v, after[k])
			}
		}
		if len(after) != len(before) && len(after) != len(before)+1 {
			t.Fatalf("parameter count %d -> %d", len(before), len(after))
		}
		if !changed && !bytes.Equal(out, content) {
			t.Fatalf("changed=false but content differs")
		}
		again, changed2, err := EditConf(out, map[string]string{key: value}, nil)
		if err != nil || changed2 || !bytes.Equal(again, out) {
			t.Fatalf("second edit not a no-op: %v %v\n%q\n%q", err, changed2, out, again)
		}
		// Exactly one active line of the key remains.
		n := 0
		for _, s := range ParseConf(out) {
			if strings.EqualFold(s.Key, key) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d lines of %q", n, key)
		}

		removed, _, err := EditConf(out, nil, []string{key})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range splitLines(removed) {
			if cl := parseConfLine(line); strings.EqualFold(cl.key, key) {
				t.Fatalf("line %q of %q left after remove", line, key)
			}
		}
		if again, changed, _ := EditConf(removed, nil, []string{key}); changed || !bytes.Equal(again, removed) {
			t.Fatalf("second remove not a no-op")
		}
	})
}

// FuzzEditHBA: for any file content and any rule that validates, adding it
// yields a file with a line equal to it, a second identical edit changes
// nothing, removing it leaves no equal line, and no other rule line is lost.
func FuzzEditHBA(f *testing.F) {
	f.Add([]byte(initdbHBA), "host", "all", "all", "10.0.0.1/32", "trust", true, false)
	f.Add([]byte(initdbHBA+Separator+"\nhost db u 10.0.0.0/8 md5\n"), "host", "replication", "postgres", "10.0.0.2/32", "trust", false, true)
	f.Add([]byte("local all all peer\n\"a b\" # c"), "local", "all", "all", "", "peer", true, true)
	f.Add([]byte("host all all 10.0.0.1 255.255.255.255 trust"), "host", "all", "all", "10.0.0.1/32", "trust", true, false)
	f.Fuzz(func(t *testing.T, content []byte, typ, db, user, addr, method string, managed, sep bool) {
		r := Rule{Type: typ, Database: db, User: user, Address: addr, Method: method}
		e := HBAEdit{EnsureSeparator: sep}
		if managed {
			e.AddManaged = []Rule{r}
		} else {
			e.AddTail = []Rule{r}
		}
		out, changed, err := EditHBA(content, e)
		if err != nil {
			if r.Validate() == nil {
				t.Fatalf("valid rule refused: %v", err)
			}
			return
		}
		if !changed && !bytes.Equal(out, content) {
			t.Fatalf("changed=false but content differs")
		}
		count := func(b []byte) int {
			n := 0
			for _, line := range splitLines(b) {
				if lineKey(line) == r.key() {
					n++
				}
			}
			return n
		}
		if count(out) < 1 {
			t.Fatalf("rule %q not in\n%s", r, out)
		}
		if count(content) == 0 && count(out) != 1 {
			t.Fatalf("rule added %d times", count(out))
		}
		if sep && !bytes.Contains(out, []byte(Separator)) {
			t.Fatalf("separator missing")
		}
		// No rule line is lost, and the file re-parses.
		if got, had := len(HBARules(out)), len(HBARules(content)); got < had {
			t.Fatalf("%d rule lines became %d", had, got)
		}
		again, changed, err := EditHBA(out, e)
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("second edit not a no-op: %v\n%q\n%q", err, out, again)
		}
		rm := HBAEdit{Remove: []Rule{r}}
		removed, _, err := EditHBA(out, rm)
		if err != nil {
			t.Fatal(err)
		}
		if count(removed) != 0 {
			t.Fatalf("rule left after remove:\n%s", removed)
		}
		if again, changed, _ := EditHBA(removed, rm); changed || !bytes.Equal(again, removed) {
			t.Fatalf("second remove not a no-op")
		}
	})
}
