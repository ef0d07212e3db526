package parser

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Parse parses a query string, which may hold several ';'-separated
// statements (empty ones are skipped, the last ';' is optional). As in
// PostgreSQL, the whole string is parsed before anything runs: a syntax error
// anywhere returns that error and no statements. Errors are *pgerror.Error
// with SQLSTATE 42601, the position of the offending token, and a hint saying
// what was expected there.
func Parse(query string) ([]Statement, error) {
	if err := checkEncoding(query); err != nil {
		return nil, err
	}
	p := &parser{q: query, toks: lex(query)}
	var out []Statement
	for {
		for p.isOp(";") {
			p.next()
		}
		if p.peek().kind == tokEOF {
			return out, nil
		}
		st, err := p.statement()
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
}

// checkEncoding rejects invalid UTF-8 and NUL bytes up front, so that no
// later stage (catalog, agents, error messages sent back to psql) ever sees
// them. PostgreSQL's wording; the code stays 42601 because this package only
// ever reports syntax errors.
func checkEncoding(q string) error {
	for i := 0; i < len(q); {
		c := q[i]
		if c == 0 {
			return pgerror.New(pgerror.SyntaxError, `invalid byte sequence for encoding "UTF8": 0x00`).At(q, i)
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(q[i:])
		if r == utf8.RuneError && n <= 1 {
			return pgerror.New(pgerror.SyntaxError, `invalid byte sequence for encoding "UTF8": 0x%02x`, c).At(q, i)
		}
		i += n
	}
	return nil
}

type parser struct {
	q     string
	toks  []token
	i     int
	last  int // end offset of the last consumed token
	start int // offset of the current statement's first token
}

func (p *parser) peek() token { return p.toks[p.i] }

// peekAt looks n tokens ahead; past the end it returns the final
// EOF/error token.
func (p *parser) peekAt(n int) token {
	j := p.i + n
	if j >= len(p.toks) {
		j = len(p.toks) - 1
	}
	return p.toks[j]
}

// next consumes and returns the current token. The final EOF/error token is
// never consumed, so the parser cannot run off the end.
func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
		p.last = t.end
	}
	return t
}

func isWord(t token, w string) bool { return t.kind == tokIdent && t.text == w }
func isOp(t token, op string) bool  { return t.kind == tokOp && t.text == op }
func isName(t token) bool           { return t.kind == tokIdent || t.kind == tokQIdent }

func (p *parser) isWord(w string) bool { return isWord(p.peek(), w) }
func (p *parser) isOp(op string) bool  { return isOp(p.peek(), op) }

func (p *parser) acceptWord(w string) bool {
	if p.isWord(w) {
		p.next()
		return true
	}
	return false
}

func (p *parser) acceptOp(op string) bool {
	if p.isOp(op) {
		p.next()
		return true
	}
	return false
}

func (p *parser) expectWord(w string) error {
	if p.acceptWord(w) {
		return nil
	}
	return p.expected(p.peek(), strings.ToUpper(w))
}

func (p *parser) expectOp(op string) error {
	if p.acceptOp(op) {
		return nil
	}
	return p.expected(p.peek(), strconv.Quote(op))
}

// atEnd reports whether the statement ends here (';' or end of input).
func (p *parser) atEnd() bool {
	t := p.peek()
	return t.kind == tokEOF || isOp(t, ";")
}

// end finishes a statement: the next token must be ';' or the end of the
// input, otherwise the error lists what could have come instead (more) and
// the end of the statement. It records the statement's span.
func (p *parser) end(b *Base, more ...string) error {
	if !p.atEnd() {
		return p.expected(p.peek(), append(more, "end of statement")...)
	}
	b.Pos, b.End = p.start, p.last
	return nil
}

// syntaxErr is the one way this package reports a syntax error: the message
// names the offending token as written (PostgreSQL's wording), the position
// points at it and the hint says what would have been accepted. At a
// lexical error token the lexer's own error wins.
func (p *parser) syntaxErr(t token, hint string) error {
	if t.kind == tokError {
		return t.err
	}
	var e *pgerror.Error
	if t.kind == tokEOF {
		e = pgerror.New(pgerror.SyntaxError, "syntax error at end of input")
	} else {
		e = pgerror.New(pgerror.SyntaxError, "syntax error at or near %s", nearText(p.q[t.pos:t.end]))
	}
	e = e.At(p.q, t.pos)
	e.Hint = hint
	return e
}

// expected reports a syntax error at t with the hint "Expected A, B or C.".
func (p *parser) expected(t token, what ...string) error {
	return p.syntaxErr(t, "Expected "+joinOr(what)+".")
}

func joinOr(what []string) string {
	switch len(what) {
	case 0:
		return "nothing"
	case 1:
		return what[0]
	}
	return strings.Join(what[:len(what)-1], ", ") + " or " + what[len(what)-1]
}

// ---------------------------------------------------------------- common pieces

// name parses an identifier in a name position: an unquoted word (any
// keyword included, folded) or a "quoted identifier". what names it in the
// error, e.g. "a node name".
func (p *parser) name(what string) (Ident, error) {
	t := p.peek()
	if isName(t) {
		p.next()
		return Ident{Name: t.text, Pos: t.pos}, nil
	}
	return Ident{}, p.expected(t, what)
}

// nameList parses name [, name …].
func (p *parser) nameList(what string) ([]Ident, error) {
	var out []Ident
	for {
		n, err := p.name(what)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
		if !p.acceptOp(",") {
			return out, nil
		}
	}
}

// parenNames parses ( name [, name …] ), used for column lists.
func (p *parser) parenNames(what string) ([]Ident, error) {
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	names, err := p.nameList(what)
	if err != nil {
		return nil, err
	}
	if !p.acceptOp(")") {
		return nil, p.expected(p.peek(), `","`, `")"`)
	}
	return names, nil
}

// dottedName parses word [. word …] (GUC names such as
// auto_explain.log_min_duration), folded unless quoted.
func (p *parser) dottedName(what string) (Ident, error) {
	id, err := p.name(what)
	if err != nil {
		return id, err
	}
	for p.isOp(".") && isName(p.peekAt(1)) {
		p.next()
		id.Name += "." + p.next().text
	}
	return id, nil
}

var familyWords = []string{"GTMCOORD", "COORDINATOR", "DATANODE"}

func familyOf(t token) Family {
	if t.kind != tokIdent {
		return FamilyNone
	}
	switch t.text {
	case "gtmcoord":
		return Gtmcoord
	case "coordinator":
		return Coordinator
	case "datanode":
		return Datanode
	}
	return FamilyNone
}

func roleOf(t token) Role {
	switch {
	case isWord(t, "master"):
		return Master
	case isWord(t, "slave"):
		return Slave
	}
	return RoleAny
}

// family parses one of the allowed family keywords (all three when none
// are given).
func (p *parser) family(allowed ...Family) (NodeKind, error) {
	if len(allowed) == 0 {
		allowed = []Family{Gtmcoord, Coordinator, Datanode}
	}
	t := p.peek()
	f := familyOf(t)
	for _, a := range allowed {
		if f == a {
			p.next()
			return NodeKind{Family: f, Pos: t.pos}, nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = strings.ToUpper(a.String())
	}
	return NodeKind{}, p.expected(t, names...)
}

// role parses MASTER or SLAVE into k; only lets through the allowed roles
// (both when none are given).
func (p *parser) role(k *NodeKind, allowed ...Role) error {
	if len(allowed) == 0 {
		allowed = []Role{Master, Slave}
	}
	t := p.peek()
	r := roleOf(t)
	for _, a := range allowed {
		if r == a {
			p.next()
			k.Role = r
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = strings.ToUpper(a.String())
	}
	return p.expected(t, names...)
}

// familyRole parses family {MASTER|SLAVE}.
func (p *parser) familyRole() (NodeKind, error) {
	k, err := p.family()
	if err != nil {
		return k, err
	}
	return k, p.role(&k)
}

// options parses ( name [=] value , … ). Names may be keywords and dotted;
// values are words (folded), 'strings' or "double quoted" (verbatim) or
// signed numbers. With requireValue false a bare name is allowed (RESET).
func (p *parser) options(requireValue bool) ([]Option, error) {
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	var out []Option
	for {
		name, err := p.dottedName("an option name")
		if err != nil {
			return nil, err
		}
		o := Option{Name: name, ValuePos: name.Pos}
		t := p.peek()
		switch {
		case isOp(t, "="):
			p.next()
			if err := p.optionValue(&o); err != nil {
				return nil, err
			}
		case isOp(t, ",") || isOp(t, ")"):
			if requireValue {
				return nil, p.expected(t, `"="`)
			}
		case startsValue(t, p.peekAt(1)):
			if err := p.optionValue(&o); err != nil {
				return nil, err
			}
		default:
			if requireValue {
				return nil, p.expected(t, `"="`)
			}
			return nil, p.expected(t, `"="`, `","`, `")"`)
		}
		out = append(out, o)
		if p.acceptOp(")") {
			return out, nil
		}
		if !p.acceptOp(",") {
			return nil, p.expected(p.peek(), `","`, `")"`)
		}
	}
}

// startsValue reports whether t (followed by u) begins an option value.
func startsValue(t, u token) bool {
	switch t.kind {
	case tokIdent, tokQIdent, tokString, tokNumber:
		return true
	case tokOp:
		return (t.text == "-" || t.text == "+") && u.kind == tokNumber
	}
	return false
}

func (p *parser) optionValue(o *Option) error {
	t := p.peek()
	o.ValuePos = t.pos
	switch t.kind {
	case tokIdent:
		id, _ := p.dottedName("")
		o.Value, o.Kind = id.Name, ValueIdent
		return nil
	case tokQIdent, tokString:
		p.next()
		o.Value, o.Kind = t.text, ValueString
		return nil
	case tokNumber:
		p.next()
		o.Value, o.Kind = t.text, ValueNumber
		return nil
	case tokOp:
		if (t.text == "-" || t.text == "+") && p.peekAt(1).kind == tokNumber {
			p.next()
			o.Value, o.Kind = t.text+p.next().text, ValueNumber
			return nil
		}
	}
	return p.syntaxErr(t, "Expected an option value: a word, a number or a 'quoted string'.")
}

// integer parses an unsigned integer literal that fits PostgreSQL's int4;
// min is the smallest accepted value. what names it in the error.
func (p *parser) integer(what string, min int) (int, error) {
	t := p.peek()
	if t.kind == tokNumber {
		if n, err := strconv.ParseInt(t.text, 10, 32); err == nil && int(n) >= min {
			p.next()
			return int(n), nil
		}
	}
	return 0, p.syntaxErr(t, fmt.Sprintf("Expected %s: an integer between %d and 2147483647.", what, min))
}

// word parses a pattern or password: a word, a number, a 'string' or a
// "quoted identifier", returned unquoted.
func (p *parser) word(what string) (string, error) {
	t := p.peek()
	switch t.kind {
	case tokIdent, tokQIdent, tokString, tokNumber:
		p.next()
		return t.text, nil
	}
	return "", p.expected(t, what)
}

// stringList parses ( 'line' | "line" [, …] ) for HBA lines; what names
// an element in the error.
func (p *parser) stringList(what string) ([]string, error) {
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	var out []string
	for {
		t := p.peek()
		if t.kind != tokString && t.kind != tokQIdent {
			return nil, p.expected(t, what)
		}
		p.next()
		out = append(out, t.text)
		if p.acceptOp(")") {
			return out, nil
		}
		if !p.acceptOp(",") {
			return nil, p.expected(p.peek(), `","`, `")"`)
		}
	}
}

// skipRest consumes tokens up to the next ';' outside parentheses (or the
// end of the input). Strings, quoted identifiers, comments and dollar
// quotes were already made single tokens by the lexer, so a ';' inside
// them is never seen here.
func (p *parser) skipRest() error {
	depth := 0
	for {
		t := p.peek()
		switch {
		case t.kind == tokEOF:
			return nil
		case t.kind == tokError:
			return t.err
		case isOp(t, ";") && depth == 0:
			return nil
		case isOp(t, "("):
			depth++
		case isOp(t, ")") && depth > 0:
			depth--
		}
		p.next()
	}
}

// ---------------------------------------------------------------- dispatch

type production func(p *parser) (Statement, error)

// commands maps a statement's first word to its production. Filled in
// init because the productions refer back to it for suggestions.
var commands map[string]production

func init() {
	commands = map[string]production{
		"add":        (*parser).addStmt,
		"alter":      (*parser).alterStmt,
		"drop":       (*parser).dropStmt,
		"list":       (*parser).listStmt,
		"help":       (*parser).helpStmt,
		"set":        (*parser).setStmt,
		"reset":      (*parser).resetStmt,
		"show":       (*parser).showStmt,
		"start":      (*parser).startStmt,
		"stop":       (*parser).stopStmt,
		"monitor":    (*parser).monitorStmt,
		"deploy":     (*parser).deployStmt,
		"init":       (*parser).initStmt,
		"clean":      (*parser).cleanStmt,
		"append":     (*parser).appendStmt,
		"remove":     (*parser).removeStmt,
		"failover":   (*parser).failoverStmt,
		"switchover": (*parser).switchoverStmt,
		"rewind":     (*parser).rewindStmt,
		"promote":    (*parser).promoteStmt,
		"adbmgr":     (*parser).adbmgrStmt,
		"config":     (*parser).configStmt,
		"expand":     (*parser).expandStmt,
		"zone":       (*parser).zoneStmt,
		"flush":      (*parser).flushStmt,
		"checkout":   (*parser).checkoutStmt,
		"rotate":     (*parser).rotateStmt,
		"grant":      (*parser).grantStmt,
		"revoke":     (*parser).grantStmt,
		"create":     (*parser).createStmt,
		"begin":      (*parser).transactionStmt,
		"commit":     (*parser).transactionStmt,
		"end":        (*parser).transactionStmt,
		"rollback":   (*parser).transactionStmt,
		"abort":      (*parser).transactionStmt,
		"savepoint":  (*parser).transactionStmt,
		"release":    (*parser).transactionStmt,
		"discard":    (*parser).discardStmt,
		"deallocate": (*parser).deallocateStmt,
		"listen":     (*parser).listenStmt,
		"unlisten":   (*parser).listenStmt,
		"select":     (*parser).selectStmt,
		"with":       (*parser).selectStmt,
		"values":     (*parser).selectStmt,
		"table":      (*parser).selectStmt,
	}
	for _, w := range writeVerbs {
		commands[w] = (*parser).writeStmt
	}
	for _, f := range monitorFuncs {
		commands[f] = (*parser).otherStmt
	}
}

func (p *parser) statement() (Statement, error) {
	t := p.peek()
	p.start = t.pos
	if isOp(t, "(") {
		return p.selectStmt()
	}
	if t.kind == tokIdent {
		if f, ok := commands[t.text]; ok {
			return f(p)
		}
	}
	return nil, p.unknownCommand(t)
}

// unknownCommand reports a statement that starts with no known command
// word, suggesting the closest command (the spec's own FAILOR and
// SWITCHOR typos).
func (p *parser) unknownCommand(t token) error {
	if t.kind == tokIdent {
		if s := closest(t.text, commands); s != "" {
			return p.syntaxErr(t, fmt.Sprintf("Expected a command; did you mean %s?", strings.ToUpper(s)))
		}
	}
	return p.syntaxErr(t, "Expected a command; try HELP.")
}

// closest returns the candidate within a small edit distance of w, or "".
func closest[V any](w string, candidates map[string]V) string {
	if len(w) < 4 {
		return ""
	}
	best, bestD := "", 3
	for c := range candidates {
		if d := editDistance(w, c); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance (Levenshtein plus
// transposition), over bytes: command words are ASCII.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
