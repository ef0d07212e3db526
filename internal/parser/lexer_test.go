package parser

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tok is a compact token for table tests: kind, text, and the text as
// written.
type tok struct {
	Kind tokKind
	Text string
	Raw  string
}

func lexAll(q string) []tok {
	var out []tok
	for _, t := range lex(q) {
		if t.kind == tokEOF {
			break
		}
		if t.kind == tokError {
			out = append(out, tok{Kind: tokError, Text: t.err.Message})
			break
		}
		out = append(out, tok{t.kind, t.text, q[t.pos:t.end]})
	}
	return out
}

func TestLex(t *testing.T) {
	id := func(text, raw string) tok { return tok{tokIdent, text, raw} }
	op := func(s string) tok { return tok{tokOp, s, s} }
	str := func(text, raw string) tok { return tok{tokString, text, raw} }
	num := func(s string) tok { return tok{tokNumber, s, s} }
	for _, tc := range []struct {
		name string
		in   string
		want []tok
	}{
		{"empty", "", nil},
		{"white space only", " \t\r\n\f\v", nil},
		{"keywords fold", "ADD DataNode", []tok{id("add", "ADD"), id("datanode", "DataNode")}},
		{"identifier characters", "dn1_a$b _x", []tok{id("dn1_a$b", "dn1_a$b"), id("_x", "_x")}},
		{"non-ASCII letters are identifier characters, not folded", "节点A Äb", []tok{id("节点a", "节点A"), id("Äb", "Äb")}},
		{"line comment", "a -- b ; c\nd", []tok{id("a", "a"), id("d", "d")}},
		{"line comment at end", "a --", []tok{id("a", "a")}},
		{"nested block comment", "a /* x /* y */ ; */ b", []tok{id("a", "a"), id("b", "b")}},
		{"unterminated block comment", "a /* x /* y */", []tok{id("a", "a"), {Kind: tokError, Text: `unterminated /* comment at or near "/* x /* y */"`}}},
		{"minus is not a comment", "a-b", []tok{id("a", "a"), op("-"), id("b", "b")}},
		{"quoted identifier keeps case", `"Dn1" "a""b"`, []tok{{tokQIdent, "Dn1", `"Dn1"`}, {tokQIdent, `a"b`, `"a""b"`}}},
		{"zero-length quoted identifier", `x "" y`, []tok{id("x", "x"), {Kind: tokError, Text: `zero-length delimited identifier at or near """"`}}},
		{"unterminated quoted identifier", `"abc`, []tok{{Kind: tokError, Text: `unterminated quoted identifier at or near ""abc"`}}},
		{"string with doubled quote", `'it''s' ''`, []tok{str("it's", `'it''s'`), str("", "''")}},
		{"backslash is literal in standard strings", `'a\'`, []tok{str(`a\`, `'a\'`)}},
		{"E string escapes", `E'a\'b\n\\' e'x'`, []tok{str("a'b\n\\", `E'a\'b\n\\'`), str("x", "e'x'")}},
		{"E as identifier", "e E", []tok{id("e", "e"), id("e", "E")}},
		{"unterminated string", "'abc", []tok{{Kind: tokError, Text: `unterminated quoted string at or near "'abc"`}}},
		{"dollar quote", "$$a;'b$$ $t$x$$y$t$", []tok{str("a;'b", "$$a;'b$$"), str("x$$y", "$t$x$$y$t$")}},
		{"dollar quote unterminated", "$q$ abc $", []tok{{Kind: tokError, Text: `unterminated dollar-quoted string at or near "$q$ abc $"`}}},
		{"parameter", "$1 $", []tok{{tokParam, "$1", "$1"}, op("$")}},
		{"typographic quotes", "’/data’ ‘x’ ‘y‘", []tok{str("/data", "’/data’"), str("x", "‘x’"), str("y", "‘y‘")}},
		{"typographic quote ends an identifier", "a’b’", []tok{id("a", "a"), str("b", "’b’")}},
		{"unterminated typographic string", "’abc", []tok{{Kind: tokError, Text: `unterminated quoted string at or near "’abc"`}}},
		{"numbers", "12 1.5 .5 1. 1e3 2E-2 1_000 0x1F 0b10 0o7", []tok{num("12"), num("1.5"), num(".5"), num("1."), num("1e3"), num("2E-2"), num("1_000"), num("0x1F"), num("0b10"), num("0o7")}},
		{"sign is an operator", "-5 +1", []tok{op("-"), num("5"), op("+"), num("1")}},
		{"trailing junk after number", "port=15GB", []tok{id("port", "port"), op("="), {Kind: tokError, Text: `trailing junk after numeric literal at or near "15GB"`}}},
		{"range dots", "1..2", []tok{num("1"), op("."), num(".2")}},
		{"punctuation", "(a,b)=;.*", []tok{op("("), id("a", "a"), op(","), id("b", "b"), op(")"), op("="), op(";"), op("."), op("*")}},
		{"options glued to a name", "coord1(HOST=h)", []tok{id("coord1", "coord1"), op("("), id("host", "HOST"), op("="), id("h", "h"), op(")")}},
		{"no-break and ideographic spaces are white space", "a\u00a0b\u3000c", []tok{id("a", "a"), id("b", "b"), id("c", "c")}},
		{"full-width punctuation is a token of its own", "a，b（", []tok{id("a", "a"), op("，"), id("b", "b"), op("（")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, lexAll(tc.in)); diff != "" {
				t.Errorf("lex(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestLexEndsWithEOFOrError(t *testing.T) {
	for _, q := range []string{"", "a", "'x", "a b c", "/*"} {
		toks := lex(q)
		last := toks[len(toks)-1]
		if last.kind != tokEOF && last.kind != tokError {
			t.Errorf("lex(%q) ends with %v", q, last)
		}
		for _, t2 := range toks[:len(toks)-1] {
			if t2.kind == tokEOF || t2.kind == tokError {
				t.Errorf("lex(%q): %v before the end", q, t2)
			}
		}
	}
}
