package mgr

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Users' SELECTs run on SQLite, but what psql's \d, \l and \du, drivers
// and DBAs send is PostgreSQL: pg_catalog.-qualified names, ::casts,
// OPERATOR(pg_catalog.~), COLLATE pg_catalog.default, E'' strings,
// now(), current_user, current_setting(…). translateSQL rewrites that
// dialect into SQLite's, token by token, and pgcatalog.go answers the
// pg_catalog tables it reads with common table expressions built from the
// catalog's views and users.
//
// Why a rewrite rather than recognising psql's fixed query texts: those
// texts change with every psql release and every option (\d+, \dS, a
// pattern), and other clients (pgAdmin, DBeaver, JDBC's metadata calls)
// send their own. Translating the few constructs they share keeps working
// for texts never seen; what cannot be translated fails with a SQLSTATE
// that says so (0A000, 42P01, 42883), never with a SQLite syntax message.
//
// Every rewrite applies only to text SQLite would refuse anyway (a binary
// ~, a ::, a pg_catalog. prefix, an unknown function), so a query that ran
// before the translation runs unchanged.

// sqlEnv is what a translation inlines: the session's user, database and
// settings, and the statement's time.
type sqlEnv struct {
	user, database string
	pid            uint32
	now            string
	// settings are what SHOW ALL shows, for current_setting() and
	// pg_settings; changed are those the session set (pg_settings'
	// source "session", what psql's \dconfig lists).
	settings map[string]string
	changed  map[string]string
}

func (e *sqlEnv) setting(name string) (string, bool) {
	v, ok := e.settings[name]
	return v, ok
}

// all returns the settings sorted by name.
func (e *sqlEnv) all() [][2]string {
	out := make([][2]string, 0, len(e.settings))
	for k, v := range e.settings {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

type tokKind int

const (
	tkSpace tokKind = iota
	tkIdent
	tkQIdent
	tkString
	tkNumber
	tkParam
	tkOp
)

type sqlTok struct {
	kind tokKind
	text string // as written; for tkIdent folded to lower case in low
	low  string
}

// lexSQL splits a query into tokens, whitespace and comments included as
// tkSpace so that the output keeps the user's layout. It never fails: an
// unterminated string or comment runs to the end, and SQLite reports it.
func lexSQL(q string) []sqlTok {
	var out []sqlTok
	i := 0
	for i < len(q) {
		c := q[i]
		start := i
		kind := tkOp
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			for i < len(q) && strings.IndexByte(" \t\n\r\f", q[i]) >= 0 {
				i++
			}
			kind = tkSpace
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			for i < len(q) && q[i] != '\n' {
				i++
			}
			kind = tkSpace
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			depth := 0
			for i < len(q) {
				if strings.HasPrefix(q[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(q[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			kind = tkSpace
		case (c == 'e' || c == 'E') && i+1 < len(q) && q[i+1] == '\'':
			i = skipQuoted(q, i+1, '\'', true)
			kind = tkString
		case c == '\'':
			i = skipQuoted(q, i, '\'', false)
			kind = tkString
		case c == '"':
			i = skipQuoted(q, i, '"', false)
			kind = tkQIdent
		case c == '$' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			i++
			for i < len(q) && q[i] >= '0' && q[i] <= '9' {
				i++
			}
			kind = tkParam
		case c == '$':
			// A dollar-quoted string: $tag$ … $tag$.
			j := i + 1
			for j < len(q) && isIdentByte(q[j]) {
				j++
			}
			if j < len(q) && q[j] == '$' {
				tag := q[i : j+1]
				if k := strings.Index(q[j+1:], tag); k >= 0 {
					i = j + 1 + k + len(tag)
				} else {
					i = len(q)
				}
				kind = tkString
			} else {
				i++
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			for i < len(q) && (q[i] >= '0' && q[i] <= '9' || q[i] == '.' || q[i] == 'e' || q[i] == 'E' ||
				(q[i] == '-' || q[i] == '+') && (q[i-1] == 'e' || q[i-1] == 'E')) {
				i++
			}
			kind = tkNumber
		case isIdentByte(c):
			for i < len(q) && (isIdentByte(q[i]) || q[i] == '$') {
				i++
			}
			kind = tkIdent
		case strings.ContainsRune("~!@#%^&|`?+-*/<>=", rune(c)):
			// PostgreSQL's multi-character operators, as its lexer reads
			// them (a trailing + or - is split off, which is enough here).
			for i < len(q) && strings.IndexByte("~!@#%^&|`?+-*/<>=", q[i]) >= 0 {
				if strings.HasPrefix(q[i:], "--") || strings.HasPrefix(q[i:], "/*") {
					break
				}
				i++
			}
		case c == ':' && i+1 < len(q) && q[i+1] == ':':
			i += 2
		default:
			i++
		}
		t := sqlTok{kind: kind, text: q[start:i]}
		if kind == tkIdent {
			t.low = strings.ToLower(t.text)
		}
		out = append(out, t)
	}
	return out
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// skipQuoted returns the index after the quoted token opening at i; a
// doubled quote stays inside, and so does a backslash-escaped one in E”.
func skipQuoted(q string, i int, quote byte, backslash bool) int {
	i++
	for i < len(q) {
		switch {
		case backslash && q[i] == '\\':
			i += 2
			continue
		case q[i] == quote && i+1 < len(q) && q[i+1] == quote:
			i += 2
			continue
		case q[i] == quote:
			return i + 1
		}
		i++
	}
	return len(q)
}

// unescapeE reads an E” string's escapes (\n, \t, \\, \', octal and hex
// bytes are rare enough to pass through as the letter).
func unescapeE(body string) string {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\'' && i+1 < len(body) && body[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		if c != '\\' || i+1 == len(body) {
			b.WriteByte(c)
			continue
		}
		i++
		switch body[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		default:
			b.WriteByte(body[i])
		}
	}
	return b.String()
}

// quoteLiteral writes s as a SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// stringValue is the value of a string token ('…', E'…', $$…$$).
func stringValue(t sqlTok) string {
	s := t.text
	switch {
	case s[0] == 'e' || s[0] == 'E':
		return unescapeE(strings.TrimSuffix(s[2:], "'"))
	case s[0] == '$':
		j := strings.IndexByte(s[1:], '$') + 2
		return strings.TrimSuffix(s[j:], s[:j])
	}
	return strings.ReplaceAll(strings.TrimSuffix(s[1:], "'"), "''", "'")
}

// translator rewrites one query; err is the first refusal met.
type translator struct {
	env  sqlEnv
	toks []sqlTok
	err  error
	// nested counts the function arguments being translated.
	nested int
	// pgCatalog is set when the query names pg_catalog, one of its
	// pg_ tables or functions, or information_schema: its failures are
	// reported as unsupported catalog probes rather than in SQLite's
	// words, and its quoted integers ('16388') compare as numbers.
	pgCatalog bool
	// hasFrom is set when the query reads a table: a bare "user" is then
	// the audit's and the journal's column, not PostgreSQL's current_user.
	hasFrom bool
	// folded is set when the last rewrite folded now() ± interval '…'
	// into one value, which PostgreSQL names "?column?", not "now".
	folded bool
}

// translateSQL rewrites q into SQLite's dialect (see the file comment).
func translateSQL(q string, env sqlEnv) (string, bool, error) {
	t := &translator{env: env, toks: lexSQL(q)}
	for i, tk := range t.toks {
		if tk.kind == tkIdent && tk.low == "from" {
			t.hasFrom = true
		}
		if tk.kind == tkIdent && (strings.HasPrefix(tk.low, "pg_") || tk.low == "information_schema") {
			p := t.prev(i, 0)
			if p < 0 || t.toks[p].text != "." || (t.prev(p, 0) >= 0 && t.toks[t.prev(p, 0)].low == "pg_catalog") {
				t.pgCatalog = true
			}
		}
	}
	out := t.run(0, len(t.toks))
	if t.err != nil {
		return "", t.pgCatalog, t.err
	}
	return out, t.pgCatalog, nil
}

// next returns the index of the first non-space token at or after i
// (end when none before end).
func (t *translator) next(i, end int) int {
	for i < end && t.toks[i].kind == tkSpace {
		i++
	}
	return i
}

// prev returns the index of the last non-space token before i, or -1.
func (t *translator) prev(i, start int) int {
	i--
	for i >= start && t.toks[i].kind == tkSpace {
		i--
	}
	if i < start {
		return -1
	}
	return i
}

// isWord tells whether token i is the identifier w.
func (t *translator) isWord(i, end int, w string) bool {
	return i < end && t.toks[i].kind == tkIdent && t.toks[i].low == w
}

func (t *translator) isOp(i, end int, op string) bool {
	return i < end && t.toks[i].kind == tkOp && t.toks[i].text == op
}

// nesting is +1 for an opening bracket token, -1 for a closing one.
func nesting(tk sqlTok) int {
	if tk.kind == tkOp {
		switch tk.text {
		case "(", "[":
			return 1
		case ")", "]":
			return -1
		}
	}
	return 0
}

// closing returns the index of the ')' matching the '(' at i, or end.
func (t *translator) closing(i, end int) int {
	depth := 0
	for j := i; j < end; j++ {
		depth += nesting(t.toks[j])
		if depth == 0 && nesting(t.toks[j]) < 0 {
			return j
		}
	}
	return end
}

// selectItem tells whether tokens [i, end) are a whole item of a top-level
// select list: after SELECT or a comma, before a comma, FROM or the end.
func (t *translator) selectItem(i, end, to int) bool {
	p := t.prev(i, 0)
	if p >= 0 && t.toks[p].text == "." {
		// pg_catalog.now(): the item starts at the schema.
		if q := t.prev(p, 0); q >= 0 && (t.toks[q].low == "pg_catalog" || t.toks[q].low == "public") {
			p = t.prev(q, 0)
		}
	}
	if p < 0 || !(t.toks[p].low == "select" || t.toks[p].low == "distinct" || t.isOp(p, to, ",")) {
		return false
	}
	n := t.next(end, to)
	return n >= to || t.isOp(n, to, ",") || t.isOp(n, to, ";") || t.isWord(n, to, "from") ||
		t.isWord(n, to, "union") || t.isWord(n, to, "order") || t.isWord(n, to, "limit")
}

// args splits the tokens between '(' at open and ')' at close at top-level
// commas, translated.
func (t *translator) args(open, close int) []string {
	t.nested++
	defer func() { t.nested-- }()
	var out []string
	depth := 0
	from := open + 1
	if t.next(from, close) == close {
		return nil
	}
	for j := from; j < close; j++ {
		depth += nesting(t.toks[j])
		if depth == 0 && t.isOp(j, close, ",") {
			out = append(out, strings.TrimSpace(t.run(from, j)))
			from = j + 1
		}
	}
	return append(out, strings.TrimSpace(t.run(from, close)))
}

// operand tells whether token i ends an operand, so that a following ~ is
// the binary match operator and not SQLite's unary bitwise not.
func (t *translator) operand(i int) bool {
	if i < 0 {
		return false
	}
	switch tk := t.toks[i]; tk.kind {
	case tkIdent:
		return !sqlKeywords[tk.low]
	case tkQIdent, tkString, tkNumber:
		return true
	case tkOp:
		return tk.text == ")" || tk.text == "]"
	}
	return false
}

// sqlKeywords are words after which an operator is unary.
var sqlKeywords = map[string]bool{
	"select": true, "where": true, "and": true, "or": true, "not": true, "on": true,
	"when": true, "then": true, "else": true, "by": true, "having": true, "in": true,
	"is": true, "like": true, "between": true, "case": true, "return": true,
}

// clauseWords end a FROM item: a word after a function call in FROM that
// is one of them is no alias.
var clauseWords = map[string]bool{"where": true, "join": true, "left": true, "right": true, "inner": true,
	"cross": true, "full": true, "group": true, "order": true, "limit": true, "union": true, "as": true, "natural": true}

// run translates toks[from:to].
func (t *translator) run(from, to int) string {
	var b strings.Builder
	depth := 0
	for i := from; i < to; i++ {
		tk := t.toks[i]
		if t.err != nil {
			return ""
		}
		switch tk.kind {
		case tkParam:
			t.err = errParams(tk.text)
			return ""
		case tkString:
			if j := t.next(i+1, to); t.isOp(j, to, "::") {
				if typ, end := t.castType(j, to); typ == "regclass" {
					// 'node'::regclass: the relation's oid.
					b.WriteString("(SELECT oid FROM pg_class WHERE relname = " + quoteLiteral(stringValue(tk)) + ")")
					if t.nested == 0 && depth == 0 && t.selectItem(i, end, to) {
						b.WriteString(` AS "regclass"`)
					}
					i = end - 1
					continue
				}
			}
			if p := t.prev(i, from); t.pgCatalog && p >= 0 && t.toks[p].kind == tkOp && comparison[t.toks[p].text] && canonicalInt(stringValue(tk)) {
				// c.oid = '16388', as psql writes oids: the emulated
				// tables' columns have no type, and SQLite compares an
				// integer with a string as different.
				b.WriteString(stringValue(tk))
				continue
			}
			if tk.text[0] != '\'' {
				b.WriteString(quoteLiteral(stringValue(tk)))
				continue
			}
		case tkOp:
			n, skip := t.operator(i, to)
			if skip > 0 {
				b.WriteString(n)
				i += skip - 1
				continue
			}
		case tkIdent:
			t.folded = false
			n, skip := t.word(i, to)
			if skip > 0 {
				b.WriteString(n)
				if n != "" && !t.folded && t.nested == 0 && depth == 0 && t.selectItem(i, i+skip, to) {
					// PostgreSQL names the column after the function or
					// keyword: SELECT now() shows a column "now".
					b.WriteString(` AS "` + tk.low + `"`)
				}
				i += skip - 1
				continue
			}
		}
		depth += nesting(tk)
		b.WriteString(tk.text)
	}
	return b.String()
}

// operator rewrites the operator at i: it returns the replacement and how
// many tokens it stands for (0: keep the token).
func (t *translator) operator(i, to int) (string, int) {
	tk := t.toks[i]
	switch tk.text {
	case "::":
		return t.cast(i, to)
	case "~", "~*", "!~", "!~*":
		if !t.operand(t.prev(i, 0)) {
			return "", 0
		}
		if tk.text[0] == '!' {
			return " NOT REGEXP ", 1
		}
		return " REGEXP ", 1
	case "=":
		// x = ANY (subquery or array): IN; the emulated catalog's arrays
		// are always empty.
		if n := t.next(i+1, to); t.isWord(n, to, "any") && t.isOp(t.next(n+1, to), to, "(") {
			return " IN ", t.next(n+1, to) - i
		}
	case "[":
		// An array subscript (prattrs[s]) in a catalog query over columns
		// that are never arrays here: the element is the value.
		if t.operand(t.prev(i, 0)) {
			return "", t.closing(i, to) - i + 1
		}
	}
	return "", 0
}

// cast drops a ::type: SQLite is dynamically typed.
func (t *translator) cast(i, to int) (string, int) {
	_, end := t.castType(i, to)
	return "", end - i
}

// castType reads the type of the cast whose :: is at i: its last word and
// the index after it.
func (t *translator) castType(i, to int) (string, int) {
	j := t.next(i+1, to)
	if t.isWord(j, to, "pg_catalog") && t.isOp(t.next(j+1, to), to, ".") {
		j = t.next(t.next(j+1, to)+1, to)
	}
	if j >= to || (t.toks[j].kind != tkIdent && t.toks[j].kind != tkQIdent) {
		return "", j
	}
	typ := t.toks[j].low
	end := j + 1
	j = t.next(j+1, to)
	// Multi-word types: character varying, double precision,
	// timestamp/time with[out] time zone.
	for t.isWord(j, to, "varying") || t.isWord(j, to, "precision") || t.isWord(j, to, "with") ||
		t.isWord(j, to, "without") || t.isWord(j, to, "time") || t.isWord(j, to, "zone") {
		end = j + 1
		j = t.next(j+1, to)
	}
	if t.isOp(j, to, "(") {
		end = t.closing(j, to) + 1
		j = t.next(end, to)
	}
	for t.isOp(j, to, "[") {
		end = t.closing(j, to) + 1
		j = t.next(end, to)
	}
	return typ, end
}

// word rewrites the identifier at i (see operator).
func (t *translator) word(i, to int) (string, int) {
	tk := t.toks[i]
	n := t.next(i+1, to)
	dot := t.isOp(n, to, ".")
	p := t.prev(i, 0)
	afterDot := p >= 0 && t.toks[p].kind == tkOp && t.toks[p].text == "."
	if afterDot {
		// pg_catalog.name and public.name: the prefix is dropped, the
		// name translated.
		if q := t.prev(p, 0); q >= 0 && (t.toks[q].low == "pg_catalog" || t.toks[q].low == "public") {
			afterDot = false
		}
	}
	switch {
	case afterDot:
		return "", 0
	case dot && (tk.low == "pg_catalog" || tk.low == "public"):
		return "", t.next(n+1, to) - i
	case dot && tk.low == "information_schema":
		m := t.next(n+1, to)
		if m < to && t.toks[m].kind == tkIdent {
			return "information_schema_" + t.toks[m].low, m - i + 1
		}
		return "", 0
	case tk.low == "operator" && t.isOp(n, to, "("):
		// OPERATOR(pg_catalog.~) is the operator itself.
		c := t.closing(n, to)
		op := ""
		for j := n + 1; j < c; j++ {
			if t.toks[j].kind == tkOp && t.toks[j].text != "." {
				op = t.toks[j].text
			}
		}
		switch op {
		case "~", "~*":
			return " REGEXP ", c - i + 1
		case "!~", "!~*":
			return " NOT REGEXP ", c - i + 1
		case "":
			return "", 0
		}
		return " " + op + " ", c - i + 1
	case tk.low == "collate" && t.operand(t.prev(i, 0)):
		// COLLATE pg_catalog.default, COLLATE "C": SQLite's collations
		// differ, and the catalog's names are ASCII.
		j := n
		for j < to && (t.toks[j].kind == tkIdent || t.toks[j].kind == tkQIdent) {
			j = t.next(j+1, to)
			if !t.isOp(j, to, ".") {
				break
			}
			j = t.next(j+1, to)
		}
		return " ", j - i
	case tk.low == "ilike":
		return "LIKE", 1
	case tk.low == "array" && t.isOp(n, to, "["):
		// ARRAY[a, b]: PostgreSQL's text of the array, {a,b}.
		c := t.closing(n, to)
		a := t.args(n, c)
		if len(a) == 0 {
			return "'{}'", c - i + 1
		}
		return "('{' || " + strings.Join(a, " || ',' || ") + " || '}')", c - i + 1
	case tk.low == "interval" && n < to && t.toks[n].kind == tkString:
		// now() - interval '1 hour' is folded where now() is read; an
		// interval anywhere else has no SQLite counterpart.
		t.err = errInterval()
		return "", 1
	case tk.low == "is" && t.isWord(n, to, "distinct") && t.isWord(t.next(n+1, to), to, "from"):
		return "IS NOT", t.next(n+1, to) - i + 1
	case tk.low == "is" && t.isWord(n, to, "not") && t.isWord(t.next(n+1, to), to, "distinct"):
		m := t.next(t.next(n+1, to)+1, to)
		if t.isWord(m, to, "from") {
			return "IS", m - i + 1
		}
	}
	if t.isOp(n, to, "(") {
		return t.function(i, n, to)
	}
	if v, ok := t.keyword(tk.low); ok && tk.kind == tkIdent {
		if at, ok := t.timeKeyword(tk.low); ok {
			return t.timeArith(at, tk.low, i, i+1, to)
		}
		return v, 1
	}
	return "", 0
}

// timeKeyword tells whether w is one of the SQL-standard time keywords
// that are now's time.
func (t *translator) timeKeyword(w string) (time.Time, bool) {
	switch w {
	case "current_timestamp", "localtimestamp", "current_date", "current_time", "localtime":
		return t.env.nowTime(), true
	}
	return time.Time{}, false
}

// timeArith answers a time value read at the statement's start (now(),
// current_timestamp, …, in the form kind names) and, when what follows
// it at from is `+ interval '…'` or `- '…'::interval`, folds that in:
// the catalog's times are text, so the arithmetic is done here, once.
// It returns the value and how many tokens it stands for, counted from
// start, where the value's first token is.
func (t *translator) timeArith(at time.Time, kind string, start, from, to int) (string, int) {
	end := from
	for {
		op := t.next(end, to)
		if !t.isOp(op, to, "+") && !t.isOp(op, to, "-") {
			break
		}
		v, next, ok := t.intervalAt(t.next(op+1, to), to)
		if !ok {
			break
		}
		d, err := parseInterval(v)
		if err != nil {
			t.err = err
			return "", next - start
		}
		if t.toks[op].text == "-" {
			d = d.negate()
		}
		at = d.add(at)
		end = next
		t.folded = true
	}
	return quoteLiteral(formatTime(at, kind)), end - start
}

// intervalAt reads an interval literal at i: interval '…' or '…'::interval.
// It returns its text and the index after it.
func (t *translator) intervalAt(i, to int) (string, int, bool) {
	if t.isWord(i, to, "interval") {
		if j := t.next(i+1, to); j < to && t.toks[j].kind == tkString {
			return stringValue(t.toks[j]), j + 1, true
		}
		return "", i, false
	}
	if i < to && t.toks[i].kind == tkString {
		if j := t.next(i+1, to); t.isOp(j, to, "::") {
			if typ, end := t.castType(j, to); typ == "interval" {
				return stringValue(t.toks[i]), end, true
			}
		}
	}
	return "", i, false
}

// formatTime writes at as PostgreSQL shows the kind of time value (UTC:
// the manager's sessions run with TimeZone UTC).
func formatTime(at time.Time, kind string) string {
	switch kind {
	case "current_date":
		return at.Format("2006-01-02")
	case "current_time":
		return at.Format("15:04:05.000000+00")
	case "localtime":
		return at.Format("15:04:05.000000")
	case "localtimestamp":
		return at.Format("2006-01-02 15:04:05.000000")
	}
	return at.Format(catalog.TimeFormat)
}

// nowTime is the statement's time.
func (e *sqlEnv) nowTime() time.Time {
	if at, err := time.Parse(catalog.TimeFormat, e.now); err == nil {
		return at
	}
	return time.Now().UTC()
}

// interval is a PostgreSQL interval: months and days count by the
// calendar, the rest is a duration.
type interval struct {
	months, days int
	d            time.Duration
}

func (v interval) negate() interval { return interval{-v.months, -v.days, -v.d} }
func (v interval) add(at time.Time) time.Time {
	return at.AddDate(0, v.months, v.days).Add(v.d)
}

// intervalUnits are the units PostgreSQL reads in an interval's text, and
// their meaning as months, days or a duration.
var intervalUnits = func() map[string]interval {
	m := map[string]interval{}
	for _, u := range []struct {
		names string
		v     interval
	}{
		{"microsecond microseconds us usec usecs", interval{d: time.Microsecond}},
		{"millisecond milliseconds ms msec msecs", interval{d: time.Millisecond}},
		{"second seconds s sec secs", interval{d: time.Second}},
		{"minute minutes m min mins", interval{d: time.Minute}},
		{"hour hours h hr hrs", interval{d: time.Hour}},
		{"day days d", interval{days: 1}},
		{"week weeks w", interval{days: 7}},
		{"month months mon mons", interval{months: 1}},
		{"year years y yr yrs", interval{months: 12}},
	} {
		for _, n := range strings.Fields(u.names) {
			m[n] = u.v
		}
	}
	return m
}()

// parseInterval reads an interval's text as PostgreSQL does in its common
// forms: '1 hour', '2 days 3 hours', '-30 min', '90s', '01:30:00',
// '1 day ago'.
func parseInterval(s string) (interval, error) {
	bad := func() (interval, error) {
		return interval{}, pgerror.New("22007", `invalid input syntax for type interval: "%s"`, s)
	}
	f := strings.Fields(strings.ToLower(s))
	ago := len(f) > 0 && f[len(f)-1] == "ago"
	if ago {
		f = f[:len(f)-1]
	}
	if len(f) == 0 {
		return bad()
	}
	var out interval
	for i := 0; i < len(f); i++ {
		w := f[i]
		if strings.Contains(w, ":") {
			// [-]HH:MM[:SS[.frac]]
			neg := strings.HasPrefix(w, "-")
			parts := strings.Split(strings.TrimLeft(w, "+-"), ":")
			if len(parts) < 2 || len(parts) > 3 {
				return bad()
			}
			var d time.Duration
			for k, unit := range []time.Duration{time.Hour, time.Minute, time.Second}[:len(parts)] {
				x, err := strconv.ParseFloat(parts[k], 64)
				if err != nil || x < 0 || math.IsInf(x, 0) {
					return bad()
				}
				d += time.Duration(x * float64(unit))
			}
			if neg {
				d = -d
			}
			out.d += d
			continue
		}
		j := 0
		for j < len(w) && (w[j] >= '0' && w[j] <= '9' || w[j] == '.' || j == 0 && (w[j] == '-' || w[j] == '+')) {
			j++
		}
		num, unit := w[:j], w[j:]
		if unit == "" {
			if i+1 == len(f) {
				return bad()
			}
			i++
			unit = f[i]
		}
		x, err := strconv.ParseFloat(num, 64)
		u, known := intervalUnits[unit]
		if err != nil || !known || math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1e6 {
			return bad()
		}
		if x != math.Trunc(x) && (u.months != 0 || u.days != 0) {
			// 1.5 days: PostgreSQL spills the fraction into hours.
			u = interval{d: time.Duration(float64(u.days)*24+float64(u.months)*30*24) * time.Hour}
		}
		if u.d != 0 {
			out.d += time.Duration(x * float64(u.d))
		} else {
			out.months += int(x) * u.months
			out.days += int(x) * u.days
		}
	}
	if ago {
		out = out.negate()
	}
	return out, nil
}

// errInterval refuses interval arithmetic the translation cannot do.
func errInterval() error {
	return pgerror.New(pgerror.FeatureNotSupported, "interval values are supported only as now() ± interval '…'").
		WithHint("Write the time to compare with as now() - interval '1 hour' (or current_timestamp - interval '2 days'): the manager works it out before the query runs.")
}

// keyword answers PostgreSQL's SQL-standard value keywords.
func (t *translator) keyword(w string) (string, bool) {
	switch w {
	case "current_user", "session_user", "current_role":
		return quoteLiteral(t.env.user), true
	case "current_catalog":
		return quoteLiteral(t.env.database), true
	case "current_schema":
		return "'public'", true
	case "user":
		if !t.hasFrom {
			// SELECT user; with a FROM, "user" stays the column.
			return quoteLiteral(t.env.user), true
		}
	case "current_timestamp", "localtimestamp", "current_date", "current_time", "localtime":
		return "", true
	}
	return "", false
}

// function rewrites a call of a PostgreSQL function SQLite lacks; name is
// at i, '(' at open.
func (t *translator) function(i, open, to int) (string, int) {
	name := t.toks[i].low
	close := t.closing(open, to)
	span := close - i + 1
	if name == "array" {
		// ARRAY(subquery): the rows as a PostgreSQL array literal.
		t.nested++
		sub := t.run(open+1, close)
		t.nested--
		return "(WITH _array(v) AS (" + sub + ") SELECT '{' || coalesce(group_concat(v, ','), '') || '}' FROM _array)", span
	}
	if name == "unnest" || name == "generate_series" {
		// A set-returning function over the emulated catalog's arrays,
		// which are always empty: no rows, under the alias that follows.
		alias := name
		if a := t.next(close+1, to); a < to && t.toks[a].kind == tkIdent && !sqlKeywords[t.toks[a].low] && !clauseWords[t.toks[a].low] {
			alias = t.toks[a].low
		}
		return "(SELECT NULL AS " + alias + " WHERE 0)", span
	}
	switch name {
	case "now", "transaction_timestamp", "statement_timestamp", "clock_timestamp":
		if t.next(open+1, to) == close {
			return t.timeArith(t.env.nowTime(), name, i, close+1, to)
		}
	}
	f, ok := pgFunctions[name]
	if !ok {
		return "", 0
	}
	args := t.args(open, close)
	if t.err != nil {
		return "", span
	}
	v, err := f(t, args)
	if err != nil {
		t.err = err
		return "", span
	}
	return v, span
}

// pgFunctions are PostgreSQL functions answered by an expression SQLite
// knows; args are translated already.
var pgFunctions = map[string]func(t *translator, args []string) (string, error){
	"now":                   func(t *translator, _ []string) (string, error) { return quoteLiteral(t.env.now), nil },
	"transaction_timestamp": func(t *translator, _ []string) (string, error) { return quoteLiteral(t.env.now), nil },
	"statement_timestamp":   func(t *translator, _ []string) (string, error) { return quoteLiteral(t.env.now), nil },
	"clock_timestamp":       func(t *translator, _ []string) (string, error) { return quoteLiteral(t.env.now), nil },
	"current_database":      func(t *translator, _ []string) (string, error) { return quoteLiteral(t.env.database), nil },
	"current_schema":        func(*translator, []string) (string, error) { return "'public'", nil },
	"current_schemas": func(_ *translator, a []string) (string, error) {
		if len(a) == 1 && strings.EqualFold(a[0], "true") {
			return "'{pg_catalog,public}'", nil
		}
		return "'{public}'", nil
	},
	"version":                         func(*translator, []string) (string, error) { return quoteLiteral(catalog.Version), nil },
	"pg_backend_pid":                  func(t *translator, _ []string) (string, error) { return strconv.FormatUint(uint64(t.env.pid), 10), nil },
	"current_setting":                 currentSetting,
	"pg_get_userbyid":                 sub("(SELECT rolname FROM pg_roles WHERE oid = (%s))"),
	"format_type":                     sub("(CASE (%s) WHEN 20 THEN 'bigint' WHEN 16 THEN 'boolean' WHEN 25 THEN 'text' ELSE '???' END)"),
	"pg_get_viewdef":                  constant("NULL"),
	"array_to_string":                 sub("(%s)"),
	"string_agg":                      sub("group_concat(%s, %s)"),
	"array_agg":                       sub("('{' || group_concat(%s, ',') || '}')"),
	"pg_encoding_to_char":             constant("'UTF8'"),
	"pg_table_is_visible":             constant("1"),
	"pg_type_is_visible":              constant("1"),
	"pg_function_is_visible":          constant("1"),
	"has_table_privilege":             constant("1"),
	"has_schema_privilege":            constant("1"),
	"has_database_privilege":          constant("1"),
	"pg_has_role":                     constant("1"),
	"pg_relation_is_publishable":      constant("0"),
	"pg_is_in_recovery":               constant("'f'"),
	"pg_get_expr":                     constant("NULL"),
	"pg_get_statisticsobjdef_columns": constant("NULL"),
	"obj_description":                 constant("NULL"),
	"col_description":                 constant("NULL"),
	"shobj_description":               constant("NULL"),
	"array_upper":                     constant("NULL"),
	"pg_size_pretty":                  sub("(%s || ' bytes')"),
	"quote_ident":                     sub("(%s)"),
	"quote_literal":                   sub("quote(%s)"),
	"pg_get_function_result":          constant("NULL"),
	"pg_get_function_arguments":       constant("NULL"),
	"pg_get_functiondef":              constant("NULL"),
	"pg_table_size":                   constant("0"),
	"pg_indexes_size":                 constant("0"),
	"pg_tablespace_location":          constant("''"),
	"pg_relation_size":                constant("0"),
	"pg_total_relation_size":          constant("0"),
	"pg_database_size":                constant("0"),
	"pg_postmaster_start_time":        func(t *translator, _ []string) (string, error) { return quoteLiteral(t.env.now), nil },
}

// sub is a function answered by a template of its arguments, in order.
func sub(format string) func(*translator, []string) (string, error) {
	n := strings.Count(format, "%s")
	return func(_ *translator, a []string) (string, error) {
		if len(a) < n {
			return "", pgerror.New(codeUndefinedFunction, "function takes at least %d arguments", n)
		}
		out := format
		for _, v := range a[:n] {
			out = strings.Replace(out, "%s", v, 1)
		}
		return out, nil
	}
}

func constant(v string) func(*translator, []string) (string, error) {
	return func(*translator, []string) (string, error) { return v, nil }
}

// currentSetting answers current_setting('name' [, missing_ok]) from the
// session's settings, as SHOW does.
func currentSetting(t *translator, a []string) (string, error) {
	if len(a) == 0 || len(a) > 2 {
		return "", pgerror.New(codeUndefinedFunction, "function current_setting takes one or two arguments")
	}
	name, ok := literalValue(a[0])
	if !ok {
		// A name computed by the query (psql's \dconfig): read it from
		// the emulated pg_settings.
		return "(SELECT setting FROM pg_settings WHERE name = lower(" + a[0] + "))", nil
	}
	name = strings.ToLower(name)
	if v, ok := t.env.setting(name); ok {
		return quoteLiteral(v), nil
	}
	if len(a) == 2 && strings.EqualFold(a[1], "true") {
		return "NULL", nil
	}
	return "", pgerror.New(pgerror.UndefinedObject, `unrecognized configuration parameter "%s"`, name)
}

// literalValue reads a translated argument that is one string literal.
func literalValue(s string) (string, bool) {
	toks := lexSQL(s)
	if len(toks) != 1 || toks[0].kind != tkString {
		return "", false
	}
	return stringValue(toks[0]), true
}

// codeUndefinedFunction is PostgreSQL's 42883 (undefined_function).
const codeUndefinedFunction = "42883"

var comparison = map[string]bool{"=": true, "<>": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true}

// canonicalInt tells whether s is an integer written as SQLite would
// print it (no sign, no leading zero), so that reading it as a number
// changes no comparison with text.
func canonicalInt(s string) bool {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// errParams refuses a query with bind parameters ($1): neither the
// manager's commands nor its SQL over the catalog take any.
func errParams(param string) error {
	if param == "" {
		param = "$1"
	}
	return pgerror.New(pgerror.FeatureNotSupported, "parameters such as %s are not supported by adbmgr", param).
		WithHint("Write the values into the statement text: the manager's commands and its SQL over the catalog take no bind parameters.")
}

// hasParams tells whether q holds a $n parameter outside strings and
// quoted names.
func hasParams(q string) bool {
	for _, t := range lexSQL(q) {
		if t.kind == tkParam {
			return true
		}
	}
	return false
}
