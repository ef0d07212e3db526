package parser

import "strings"

// Privileges are AntDB's command privileges (reference §3.12), in the
// order LIST ACL shows them.
var Privileges = []string{"add", "alter", "append", "clean", "deploy", "drop", "failover", "flush",
	"init", "list", "monitor", "reset", "set", "show", "start", "stop"}

// userStmt parses the rest of CREATE USER / ALTER USER after USER:
// name [[WITH] {PASSWORD 'pw' | PASSWORD NULL | SUPERUSER | NOSUPERUSER} …].
func (p *parser) userStmt(create bool) (Statement, error) {
	p.next() // USER
	s := &UserStmt{Create: create}
	var err error
	if s.Name, err = p.name("a user name"); err != nil {
		return nil, err
	}
	p.acceptWord("with")
	for !p.atEnd() {
		t := p.peek()
		switch {
		case isWord(t, "password") && !s.PasswordSet:
			p.next()
			s.PasswordSet = true
			if isWord(p.peek(), "null") && p.peek().kind == tokIdent {
				p.next()
				continue
			}
			if k := p.peek().kind; k != tokString {
				// Never echo what may be a mistyped password.
				return nil, p.syntaxErr(p.peek(), "Expected the password as a 'quoted string' or NULL.")
			}
			s.Password = p.next().text
			if s.Password == "" {
				return nil, p.syntaxErr(t, "Expected a non-empty password; PASSWORD NULL removes it.")
			}
		case (isWord(t, "superuser") || isWord(t, "nosuperuser")) && s.Superuser == nil:
			p.next()
			v := isWord(t, "superuser")
			s.Superuser = &v
		default:
			return nil, p.expected(t, "PASSWORD", "SUPERUSER", "NOSUPERUSER", "end of statement")
		}
	}
	if !create && !s.PasswordSet && s.Superuser == nil {
		return nil, p.expected(p.peek(), "PASSWORD", "SUPERUSER", "NOSUPERUSER")
	}
	return s, p.end(&s.Base)
}

// dropUser parses DROP USER [IF EXISTS] name [, …] after USER.
func (p *parser) dropUser() (Statement, error) {
	p.next() // USER
	s := &DropUser{}
	if p.isWord("if") && isWord(p.peekAt(1), "exists") {
		p.next()
		p.next()
		s.IfExists = true
	}
	var err error
	if s.Names, err = p.nameList("a user name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base, `","`)
}

// grantStmt parses GRANT { priv [, …] | ALL } TO { user [, …] | ALL } and
// REVOKE … FROM ….
func (p *parser) grantStmt() (Statement, error) {
	verb := p.next()
	s := &Grant{Revoke: isWord(verb, "revoke")}
	if p.acceptWord("all") {
		s.AllPrivs = true
		p.acceptWord("privileges")
	} else {
		for {
			t := p.peek()
			if !isName(t) {
				return nil, p.expected(t, "ALL", "a command privilege")
			}
			if !isPrivilege(t.text) || t.kind != tokIdent {
				return nil, p.syntaxErr(t, "Expected a command privilege: "+strings.Join(Privileges, ", ")+", or ALL.")
			}
			p.next()
			s.Privs = append(s.Privs, t.text)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	to := "to"
	if s.Revoke {
		to = "from"
	}
	if err := p.expectWord(to); err != nil {
		return nil, err
	}
	if p.acceptWord("all") {
		s.AllUsers = true
		return s, p.end(&s.Base)
	}
	var err error
	if s.Users, err = p.nameList("ALL or a user name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base, `","`)
}

func isPrivilege(w string) bool {
	for _, p := range Privileges {
		if p == w {
			return true
		}
	}
	return false
}
