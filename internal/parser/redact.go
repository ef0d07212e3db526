package parser

import "strings"

// Redacted replaces a password in a statement's text.
const Redacted = "'********'"

// Redact returns statement text q with every password replaced by
// Redacted, for the audit: the word after the keyword PASSWORD (a string,
// a quoted identifier, a word or a number, as CREATE USER, ALTER USER,
// DEPLOY and START AGENT take it), except NULL. It works on tokens, so a
// password holding quotes, spaces or the word PASSWORD is replaced whole;
// text the lexer cannot read past (an unterminated quote) is cut there.
func Redact(q string) string {
	toks := lex(q)
	var b strings.Builder
	at := 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind == tokError {
			b.WriteString(q[at:t.pos])
			b.WriteString(Redacted)
			return b.String()
		}
		if t.kind != tokIdent || t.text != "password" || i+1 >= len(toks) {
			continue
		}
		v := toks[i+1]
		switch v.kind {
		case tokIdent:
			if v.text == "null" {
				continue
			}
		case tokQIdent, tokString, tokNumber, tokParam:
		case tokError:
			continue // handled at the next round
		default:
			continue
		}
		b.WriteString(q[at:v.pos])
		b.WriteString(Redacted)
		at = v.end
		i++
	}
	b.WriteString(q[at:])
	return b.String()
}
