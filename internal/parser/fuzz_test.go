package parser

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// FuzzParse checks that no input panics, that every error is a syntax
// error with a position inside the query (1 ≤ Position ≤ characters+1, as
// psql needs to draw its caret), and that every statement's span lies
// within the query. Seeded with every line of the golden examples.
func FuzzParse(f *testing.F) {
	for _, line := range exampleLines(f) {
		f.Add(line)
	}
	f.Add("LIST HOST; LIST NODE;; MONITOR ALL")
	f.Add("SELECT $a$ ; $a$; /* /* */ */ 'x''y' E'\\'' \"q\"\"\" ’z’")
	f.Add("\xff\x00")
	f.Fuzz(func(t *testing.T, q string) {
		sts, err := Parse(q)
		if err != nil {
			pe, ok := pgerror.As(err)
			if !ok {
				t.Fatalf("Parse(%q): error %T is not a *pgerror.Error", q, err)
			}
			if pe.Code != pgerror.SyntaxError {
				t.Fatalf("Parse(%q): code %s", q, pe.Code)
			}
			// pgerror.At counts invalid bytes as one character each.
			chars := len([]rune(q))
			if pe.Position < 1 || pe.Position > chars+1 {
				t.Fatalf("Parse(%q): position %d outside 1..%d", q, pe.Position, chars+1)
			}
			if sts != nil {
				t.Fatalf("Parse(%q): statements returned with an error", q)
			}
			return
		}
		if !utf8.ValidString(q) {
			t.Fatalf("Parse(%q): invalid UTF-8 accepted", q)
		}
		prev := 0
		for _, s := range sts {
			pos, end := s.Span()
			if pos < prev || pos > end || end > len(q) {
				t.Fatalf("Parse(%q): %T span [%d,%d) out of order or bounds", q, s, pos, end)
			}
			if end > pos && strings.TrimSpace(q[pos:end]) != q[pos:end] {
				t.Fatalf("Parse(%q): %T span %q has surrounding white space", q, s, q[pos:end])
			}
			if sel, ok := s.(*Select); ok && sel.Text != q[pos:end] {
				t.Fatalf("Parse(%q): Select text %q is not its span", q, sel.Text)
			}
			if s.Command() == "" {
				t.Fatalf("Parse(%q): %T has no command name", q, s)
			}
			prev = end
		}
	})
}
