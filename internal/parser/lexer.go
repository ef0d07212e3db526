package parser

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// tokKind classifies a token.
type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokIdent          // unquoted word (keyword or identifier); text folded to lower case
	tokQIdent         // "quoted identifier"; text unescaped, case kept
	tokString         // 'string', E'string', $tag$string$tag$, ’string’; text unescaped
	tokNumber         // integer or decimal literal; text as written
	tokParam          // $1: never valid in a manager command, skipped inside SQL
	tokOp             // any other single character, ';' included
	tokError          // lexing failed here; err says why. Always the last token.
)

// token is one lexeme. pos and end are byte offsets into the query; the
// text "as written" is query[pos:end].
type token struct {
	kind tokKind
	text string
	pos  int
	end  int
	err  *pgerror.Error
}

// Typographic single quotes. The user's specification writes
// PATH=’/home/antdb/data/coord1’ (a word processor's doing), so both are
// accepted as string delimiters, opening and closing alike.
const (
	leftSingleQuote  = '\u2018'
	rightSingleQuote = '\u2019'
)

// lex splits q into tokens. The result always ends with a tokEOF or a
// tokError token, so the parser can peek without bounds checks. Lexing the
// whole string first is fine because a lexical error becomes a token: the
// parser reports it only when it reaches it, so an earlier syntax error
// still wins, as in PostgreSQL's single-pass scanner+parser.
func lex(q string) []token {
	l := lexer{q: q}
	var toks []token
	for {
		t := l.next()
		toks = append(toks, t)
		if t.kind == tokEOF || t.kind == tokError {
			return toks
		}
	}
}

type lexer struct {
	q string
	i int
}

func (l *lexer) peekRune(at int) (rune, int) {
	if at >= len(l.q) {
		return -1, 0
	}
	c := l.q[at]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(l.q[at:])
}

// errTok builds a lexical error token in PostgreSQL's wording
// ("unterminated quoted string at or near …"), positioned at the start of
// the offending lexeme, which runs from pos to end (for unterminated
// quotes: the rest of the input, as PostgreSQL shows it).
func (l *lexer) errTok(pos, end int, what string) token {
	e := pgerror.New(pgerror.SyntaxError, "%s at or near %s", what, nearText(l.q[pos:end])).At(l.q, pos)
	return token{kind: tokError, pos: pos, end: len(l.q), err: e}
}

// skipSpace skips white space and comments. It returns a non-nil error
// token for an unterminated /* comment.
func (l *lexer) skipSpace() *token {
	for l.i < len(l.q) {
		c := l.q[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.i++
		case c == '-' && strings.HasPrefix(l.q[l.i:], "--"):
			nl := strings.IndexByte(l.q[l.i:], '\n')
			if nl < 0 {
				l.i = len(l.q)
			} else {
				l.i += nl + 1
			}
		case c == '/' && strings.HasPrefix(l.q[l.i:], "/*"):
			// Block comments nest, as in PostgreSQL.
			start := l.i
			depth := 0
			for {
				if l.i >= len(l.q) {
					t := l.errTok(start, len(l.q), "unterminated /* comment")
					return &t
				}
				if strings.HasPrefix(l.q[l.i:], "/*") {
					depth++
					l.i += 2
				} else if strings.HasPrefix(l.q[l.i:], "*/") {
					depth--
					l.i += 2
					if depth == 0 {
						break
					}
				} else {
					l.i++
				}
			}
		case c >= utf8.RuneSelf:
			// Non-breaking and ideographic spaces arrive by copy and paste
			// from documents; PostgreSQL would take them for identifier
			// characters and produce a baffling error, so treat them as
			// the white space they look like.
			r, n := l.peekRune(l.i)
			if !unicode.IsSpace(r) {
				return nil
			}
			l.i += n
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) next() token {
	if t := l.skipSpace(); t != nil {
		return *t
	}
	start := l.i
	if l.i >= len(l.q) {
		return token{kind: tokEOF, pos: len(l.q), end: len(l.q)}
	}
	c := l.q[l.i]
	switch {
	case c == '\'':
		return l.quoted(start, start+1, false)
	case c == '"':
		return l.quotedIdent(start)
	case c == '$':
		return l.dollar(start)
	case isDigit(c) || (c == '.' && l.i+1 < len(l.q) && isDigit(l.q[l.i+1])):
		return l.number(start)
	}
	r, n := l.peekRune(l.i)
	switch {
	case r == leftSingleQuote || r == rightSingleQuote:
		return l.typographic(start, n)
	case isIdentStart(r):
		return l.word(start)
	}
	l.i += n
	return token{kind: tokOp, text: l.q[start:l.i], pos: start, end: l.i}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	// PostgreSQL accepts any high-bit byte in identifiers. We accept
	// letters only, so that full-width punctuation such as '，' or '（'
	// (common when typing with a Chinese input method) is reported as the
	// unexpected token it is instead of being glued to a name.
	return r != leftSingleQuote && r != rightSingleQuote && (unicode.IsLetter(r) || unicode.IsMark(r))
}

func isIdentCont(r rune) bool {
	if r < utf8.RuneSelf {
		return isIdentStart(r) || ('0' <= r && r <= '9') || r == '$'
	}
	return isIdentStart(r) || unicode.IsDigit(r)
}

// word lexes an unquoted identifier or keyword, and the E'…' / N'…' /
// B'…' / X'…' string prefixes.
func (l *lexer) word(start int) token {
	for l.i < len(l.q) {
		r, n := l.peekRune(l.i)
		if !isIdentCont(r) {
			break
		}
		l.i += n
	}
	w := l.q[start:l.i]
	if len(w) == 1 && l.i < len(l.q) && l.q[l.i] == '\'' {
		switch w[0] {
		case 'e', 'E':
			return l.quoted(start, l.i+1, true)
		case 'n', 'N', 'b', 'B', 'x', 'X':
			return l.quoted(start, l.i+1, false)
		}
	}
	return token{kind: tokIdent, text: foldASCII(w), pos: start, end: l.i}
}

// foldASCII lower-cases ASCII letters only, as PostgreSQL does for
// unquoted identifiers in a multi-byte encoding.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// quoted lexes a single-quoted string whose body starts at body; start is
// the token start (the E prefix included). A doubled quote stands for one; with escapes
// (E'…') backslash sequences are decoded too.
func (l *lexer) quoted(start, body int, escapes bool) token {
	var sb strings.Builder
	i := body
	for i < len(l.q) {
		c := l.q[i]
		switch {
		case c == '\'':
			if i+1 < len(l.q) && l.q[i+1] == '\'' {
				sb.WriteByte('\'')
				i += 2
				continue
			}
			l.i = i + 1
			return token{kind: tokString, text: sb.String(), pos: start, end: l.i}
		case c == '\\' && escapes && i+1 < len(l.q):
			i++
			switch e := l.q[i]; e {
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'n':
				sb.WriteByte('\n')
			case 'r':
				sb.WriteByte('\r')
			case 't':
				sb.WriteByte('\t')
			default:
				// \\ \' and any other escaped character stand for
				// themselves; octal and hex escapes are not decoded
				// (nothing the manager accepts needs them).
				sb.WriteByte(e)
			}
			i++
		default:
			sb.WriteByte(c)
			i++
		}
	}
	return l.errTok(start, len(l.q), "unterminated quoted string")
}

// typographic lexes ‘…’ or ’…’: closed by either typographic quote, no
// escapes.
func (l *lexer) typographic(start, openLen int) token {
	body := start + openLen
	for i := body; i < len(l.q); {
		r, n := l.peekRune(i)
		if r == leftSingleQuote || r == rightSingleQuote {
			l.i = i + n
			return token{kind: tokString, text: l.q[body:i], pos: start, end: l.i}
		}
		i += n
	}
	return l.errTok(start, len(l.q), "unterminated quoted string")
}

func (l *lexer) quotedIdent(start int) token {
	var sb strings.Builder
	i := start + 1
	for i < len(l.q) {
		if l.q[i] == '"' {
			if i+1 < len(l.q) && l.q[i+1] == '"' {
				sb.WriteByte('"')
				i += 2
				continue
			}
			l.i = i + 1
			if sb.Len() == 0 {
				return l.errTok(start, l.i, "zero-length delimited identifier")
			}
			return token{kind: tokQIdent, text: sb.String(), pos: start, end: l.i}
		}
		sb.WriteByte(l.q[i])
		i++
	}
	return l.errTok(start, len(l.q), "unterminated quoted identifier")
}

// dollar lexes $1 parameters and $tag$…$tag$ strings; a lone '$' is an
// operator character.
func (l *lexer) dollar(start int) token {
	i := start + 1
	if i < len(l.q) && isDigit(l.q[i]) {
		for i < len(l.q) && isDigit(l.q[i]) {
			i++
		}
		l.i = i
		return token{kind: tokParam, text: l.q[start:i], pos: start, end: i}
	}
	// A tag is an identifier without '$'.
	if r, n := l.peekRune(i); r != '$' {
		if !isIdentStart(r) {
			l.i = start + 1
			return token{kind: tokOp, text: "$", pos: start, end: l.i}
		}
		i += n
		for {
			r, n := l.peekRune(i)
			if r == '$' || !isIdentCont(r) {
				break
			}
			i += n
		}
		if i >= len(l.q) || l.q[i] != '$' {
			l.i = start + 1
			return token{kind: tokOp, text: "$", pos: start, end: l.i}
		}
	}
	delim := l.q[start : i+1]
	body := i + 1
	k := strings.Index(l.q[body:], delim)
	if k < 0 {
		return l.errTok(start, len(l.q), "unterminated dollar-quoted string")
	}
	l.i = body + k + len(delim)
	return token{kind: tokString, text: l.q[body : body+k], pos: start, end: l.i}
}

// number lexes 12, 1.5, .5, 1e10, 1_000 and 0x1F / 0o17 / 0b101
// (PostgreSQL 16 syntax, also understood by the catalog's SQLite). Letters
// glued to a number are an error (PostgreSQL 15+: "trailing junk after
// numeric literal"), which catches unquoted sizes such as 1GB.
func (l *lexer) number(start int) token {
	digits := func(i int, ok func(byte) bool) int {
		for i < len(l.q) && (ok(l.q[i]) || (l.q[i] == '_' && i+1 < len(l.q) && ok(l.q[i+1]) && i > start)) {
			i++
		}
		return i
	}
	i := start
	if l.q[i] == '0' && i+2 < len(l.q) {
		var ok func(byte) bool
		switch l.q[i+1] {
		case 'x', 'X':
			ok = func(c byte) bool { return isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f') }
		case 'o', 'O':
			ok = func(c byte) bool { return '0' <= c && c <= '7' }
		case 'b', 'B':
			ok = func(c byte) bool { return c == '0' || c == '1' }
		}
		if ok != nil && ok(l.q[i+2]) {
			i = digits(i+2, ok)
			return l.numberEnd(start, i)
		}
	}
	i = digits(i, isDigit)
	if i < len(l.q) && l.q[i] == '.' && !(i+1 < len(l.q) && l.q[i+1] == '.') {
		i = digits(i+1, isDigit)
	}
	if i < len(l.q) && (l.q[i] == 'e' || l.q[i] == 'E') {
		j := i + 1
		if j < len(l.q) && (l.q[j] == '+' || l.q[j] == '-') {
			j++
		}
		if j < len(l.q) && isDigit(l.q[j]) {
			i = digits(j, isDigit)
		}
	}
	return l.numberEnd(start, i)
}

// numberEnd finishes a number ending at i, rejecting trailing letters.
func (l *lexer) numberEnd(start, i int) token {
	if r, _ := l.peekRune(i); r >= 0 && isIdentCont(r) {
		end := i
		for end < len(l.q) {
			r, n := l.peekRune(end)
			if !isIdentCont(r) {
				break
			}
			end += n
		}
		t := l.errTok(start, end, "trailing junk after numeric literal")
		t.err.Hint = "Quote values that carry a unit, e.g. '1GB'."
		return t
	}
	l.i = i
	return token{kind: tokNumber, text: l.q[start:i], pos: start, end: i}
}

// nearText quotes the offending text the way PostgreSQL does (plain double
// quotes, no escaping), shortened so that error messages stay readable when
// it is the rest of a long query (an unterminated string, say).
func nearText(s string) string {
	return `"` + shorten(s) + `"`
}

func shorten(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
