package parser

import (
	"strings"
)

// Productions for what is not a manager command proper: HELP, session
// SET/RESET/SHOW, transaction control, SQL (read-only SELECTs and refused
// writes) and the recognised-but-unmodelled commands (Other).

func (p *parser) helpStmt() (Statement, error) {
	p.next() // HELP
	s := &Help{}
	for !p.atEnd() {
		t := p.next()
		if t.kind == tokError {
			return nil, t.err
		}
		s.Words = append(s.Words, strings.ToLower(t.text))
	}
	return s, p.end(&s.Base)
}

// The words after SET/RESET/SHOW that start a manager command; anything
// else is a session variable.
const (
	setHint   = "Expected GTMCOORD, COORDINATOR, DATANODE, CLUSTER, DOCTOR or a parameter name followed by = or TO."
	resetHint = "Expected GTMCOORD, COORDINATOR, DATANODE, ALL or a parameter name."
	showHint  = "Expected PARAM, HBA, BOOTTIME, ALL or a parameter name."
)

var setWords = map[string]bool{"gtmcoord": true, "coordinator": true, "datanode": true, "cluster": true, "doctor": true}

func (p *parser) setStmt() (Statement, error) {
	p.next() // SET
	t := p.peek()
	switch {
	case familyOf(t) != FamilyNone:
		return p.setParam(false)
	case isWord(t, "cluster"):
		p.next()
		if err := p.expectWord("init"); err != nil {
			return nil, err
		}
		s := &SetClusterInit{}
		return s, p.end(&s.Base)
	case isWord(t, "doctor"):
		return p.setDoctor()
	case isWord(t, "monitor") && isOp(p.peekAt(1), "("):
		return p.setMonitor()
	case isWord(t, "transaction") && !isOp(p.peekAt(1), "=") && !isWord(p.peekAt(1), "to"):
		p.next()
		return p.transactionModes(&SetTransaction{})
	case isWord(t, "session") && isWord(p.peekAt(1), "characteristics"):
		p.next()
		p.next()
		if err := p.expectWord("as"); err != nil {
			return nil, err
		}
		if err := p.expectWord("transaction"); err != nil {
			return nil, err
		}
		return p.transactionModes(&SetTransaction{Session: true})
	}
	return p.setVar()
}

// transactionModes parses mode [[,] mode …]: ISOLATION LEVEL level, READ
// ONLY, READ WRITE, [NOT] DEFERRABLE.
func (p *parser) transactionModes(s *SetTransaction) (Statement, error) {
	for {
		t := p.peek()
		switch {
		case isWord(t, "isolation"):
			p.next()
			if err := p.expectWord("level"); err != nil {
				return nil, err
			}
			l := p.peek()
			switch {
			case p.acceptWord("serializable"):
				s.Isolation = "serializable"
			case p.acceptWord("repeatable"):
				if err := p.expectWord("read"); err != nil {
					return nil, err
				}
				s.Isolation = "repeatable read"
			case p.acceptWord("read"):
				w, err := p.oneOf("committed", "uncommitted")
				if err != nil {
					return nil, err
				}
				s.Isolation = "read " + w
			default:
				return nil, p.expected(l, "SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED", "READ UNCOMMITTED")
			}
		case isWord(t, "read"):
			p.next()
			w, err := p.oneOf("only", "write")
			if err != nil {
				return nil, err
			}
			s.ReadOnly = map[string]string{"only": "on", "write": "off"}[w]
		case isWord(t, "deferrable"):
			p.next()
			s.Deferrable = "on"
		case isWord(t, "not"):
			p.next()
			if err := p.expectWord("deferrable"); err != nil {
				return nil, err
			}
			s.Deferrable = "off"
		default:
			if s.Isolation == "" && s.ReadOnly == "" && s.Deferrable == "" {
				return nil, p.expected(t, "ISOLATION LEVEL", "READ ONLY", "READ WRITE", "DEFERRABLE")
			}
			return s, p.end(&s.Base, "ISOLATION LEVEL", "READ ONLY", "READ WRITE", "DEFERRABLE")
		}
		p.acceptOp(",")
	}
}

// oneOf accepts one of words (lower case) and returns it.
func (p *parser) oneOf(words ...string) (string, error) {
	for _, w := range words {
		if p.acceptWord(w) {
			return w, nil
		}
	}
	upper := make([]string, len(words))
	for i, w := range words {
		upper[i] = strings.ToUpper(w)
	}
	return "", p.expected(p.peek(), upper...)
}

// discardStmt is DISCARD {ALL | PLANS | SEQUENCES | TEMP | TEMPORARY}.
func (p *parser) discardStmt() (Statement, error) {
	p.next() // DISCARD
	t := p.peek()
	s := &Discard{}
	switch {
	case isWord(t, "all"), isWord(t, "plans"), isWord(t, "sequences"), isWord(t, "temp"):
		s.What = strings.ToUpper(t.text)
	case isWord(t, "temporary"):
		s.What = "TEMP"
	default:
		return nil, p.expected(t, "ALL", "PLANS", "SEQUENCES", "TEMP")
	}
	p.next()
	return s, p.end(&s.Base)
}

// deallocateStmt is DEALLOCATE [PREPARE] {name | ALL}.
func (p *parser) deallocateStmt() (Statement, error) {
	p.next() // DEALLOCATE
	p.acceptWord("prepare")
	s := &Deallocate{}
	if p.acceptWord("all") {
		s.All = true
		return s, p.end(&s.Base)
	}
	n, err := p.name("a prepared statement name or ALL")
	if err != nil {
		return nil, err
	}
	s.Name = n.Name
	return s, p.end(&s.Base)
}

// setVar is a session SET: SET [SESSION|LOCAL] name {=|TO} {value [, …] |
// DEFAULT}, plus the SQL-standard spellings drivers send (SET TIME ZONE,
// SET NAMES, SET SCHEMA, SET ROLE, SET SESSION AUTHORIZATION).
func (p *parser) setVar() (Statement, error) {
	s := &SetVar{}
	if (p.isWord("session") || p.isWord("local")) && isName(p.peekAt(1)) && !isWord(p.peekAt(1), "authorization") {
		s.Local = p.isWord("local")
		p.next()
	}
	t := p.peek()
	u := p.peekAt(1)
	special := func(name string, words int) (Statement, error) {
		for range words {
			p.next()
		}
		s.Name = Ident{Name: name, Pos: t.pos}
		return p.setValues(s)
	}
	plain := !isOp(u, "=") && !isWord(u, "to")
	switch {
	case isWord(t, "time") && isWord(u, "zone"):
		return special("timezone", 2)
	case isWord(t, "session") && isWord(u, "authorization"):
		return special("session_authorization", 2)
	case isWord(t, "names") && plain:
		return special("client_encoding", 1)
	case isWord(t, "schema") && plain:
		return special("search_path", 1)
	case isWord(t, "role") && plain:
		return special("role", 1)
	}
	if !isName(t) {
		return nil, p.syntaxErr(t, setHint)
	}
	s.Name, _ = p.dottedName("")
	if p.acceptOp("=") || p.acceptWord("to") {
		return p.setValues(s)
	}
	// "SET DATANDOE ALL (…)" reaches here with name "datandoe": the
	// mistake is the misspelt family word, not the word after it.
	n := p.peek()
	if isName(n) || isOp(n, "(") || closest(s.Name.Name, setWords) != "" {
		return nil, p.syntaxErr(t, setHint)
	}
	return nil, p.expected(n, `"="`, "TO")
}

// setValues parses DEFAULT or value [, value …]; strings are unquoted,
// words folded, and the list is joined with ", " as SHOW prints it.
func (p *parser) setValues(s *SetVar) (Statement, error) {
	if p.acceptWord("default") || (s.Name.Name == "timezone" && p.acceptWord("local")) {
		s.Default = true
		return s, p.end(&s.Base)
	}
	var vals []string
	for {
		t := p.peek()
		switch {
		case t.kind == tokIdent:
			id, _ := p.dottedName("")
			vals = append(vals, id.Name)
		case t.kind == tokString || t.kind == tokNumber:
			p.next()
			vals = append(vals, t.text)
		case t.kind == tokQIdent:
			// Kept quoted: in search_path the quotes are meaningful.
			p.next()
			vals = append(vals, p.q[t.pos:t.end])
		case (isOp(t, "-") || isOp(t, "+")) && p.peekAt(1).kind == tokNumber:
			p.next()
			vals = append(vals, t.text+p.next().text)
		default:
			if vals == nil {
				return nil, p.expected(t, "a value", "DEFAULT")
			}
			return nil, p.expected(t, "a value")
		}
		if !p.acceptOp(",") {
			break
		}
	}
	s.Value = strings.Join(vals, ", ")
	return s, p.end(&s.Base, `","`)
}

func (p *parser) resetStmt() (Statement, error) {
	p.next() // RESET
	t := p.peek()
	if familyOf(t) != FamilyNone {
		return p.setParam(true)
	}
	s := &ResetVar{}
	switch {
	case isWord(t, "all"):
		p.next()
		s.Name = Ident{Name: "all", Pos: t.pos}
		return s, p.end(&s.Base)
	case isWord(t, "time") && isWord(p.peekAt(1), "zone"):
		p.next()
		p.next()
		s.Name = Ident{Name: "timezone", Pos: t.pos}
		return s, p.end(&s.Base)
	case isWord(t, "session") && isWord(p.peekAt(1), "authorization"):
		p.next()
		p.next()
		s.Name = Ident{Name: "session_authorization", Pos: t.pos}
		return s, p.end(&s.Base)
	case !isName(t):
		return nil, p.syntaxErr(t, resetHint)
	}
	s.Name, _ = p.dottedName("")
	if n := p.peek(); isName(n) || isOp(n, "(") {
		return nil, p.syntaxErr(t, resetHint)
	}
	return s, p.end(&s.Base)
}

func (p *parser) showStmt() (Statement, error) {
	p.next() // SHOW
	t := p.peek()
	u := p.peekAt(1)
	switch {
	case isWord(t, "param"):
		p.next()
		s := &ShowParam{}
		var err error
		if s.Node, err = p.name("a node name"); err != nil {
			return nil, err
		}
		if p.atEnd() {
			return s, p.end(&s.Base, "a parameter name pattern")
		}
		if s.Pattern, err = p.word("a parameter name pattern"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case isWord(t, "hba"):
		p.next()
		s := &ShowHBA{}
		if p.acceptWord("all") {
			s.All = true
			return s, p.end(&s.Base)
		}
		var err error
		if s.Names, err = p.nameList("ALL or a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	case isWord(t, "boottime"):
		return p.showBoottime()
	}
	s := &ShowVar{}
	switch {
	case isWord(t, "time") && isWord(u, "zone"):
		p.next()
		p.next()
		s.Name = Ident{Name: "timezone", Pos: t.pos}
	case isWord(t, "session") && isWord(u, "authorization"):
		p.next()
		p.next()
		s.Name = Ident{Name: "session_authorization", Pos: t.pos}
	case isWord(t, "transaction") && isWord(u, "isolation"):
		p.next()
		p.next()
		if err := p.expectWord("level"); err != nil {
			return nil, err
		}
		s.Name = Ident{Name: "transaction_isolation", Pos: t.pos}
	case !isName(t):
		return nil, p.syntaxErr(t, showHint)
	default:
		s.Name, _ = p.dottedName("")
		if n := p.peek(); isName(n) || isOp(n, "(") {
			return nil, p.syntaxErr(t, showHint)
		}
	}
	return s, p.end(&s.Base)
}

// transactionStmt accepts transaction control as a no-op (each catalog
// command is atomic on its own), so that drivers and tools that wrap
// statements in BEGIN/COMMIT keep working. Modes and options are skipped.
func (p *parser) transactionStmt() (Statement, error) {
	t := p.next()
	verb := "BEGIN"
	switch t.text {
	case "commit", "end":
		verb = "COMMIT"
	case "rollback", "abort":
		verb = "ROLLBACK" // ROLLBACK TO SAVEPOINT's tag is ROLLBACK too
	case "savepoint":
		verb = "SAVEPOINT"
	case "release":
		verb = "RELEASE"
	}
	s := &Transaction{Verb: verb}
	if verb == "BEGIN" {
		// BEGIN READ ONLY: the one mode the manager keeps (refusing
		// changes until COMMIT); the others are skipped.
		for i := 0; ; i++ {
			t := p.peekAt(i)
			if t.kind == tokEOF || t.kind == tokError || isOp(t, ";") {
				break
			}
			if isWord(t, "read") && isWord(p.peekAt(i+1), "only") {
				s.ReadOnly = "on"
			} else if isWord(t, "read") && isWord(p.peekAt(i+1), "write") {
				s.ReadOnly = "off"
			}
		}
	}
	return s, p.skipTail(&s.Base)
}

// skipTail skips the rest of the statement and records its span.
func (p *parser) skipTail(b *Base) error {
	if err := p.skipRest(); err != nil {
		return err
	}
	b.Pos, b.End = p.start, p.last
	return nil
}

// selectStmt is read-only SQL, passed on verbatim (the ';' excluded).
func (p *parser) selectStmt() (Statement, error) {
	s := &Select{}
	if err := p.skipTail(&s.Base); err != nil {
		return nil, err
	}
	s.Text = p.q[s.Pos:s.End]
	return s, nil
}

// writeVerbs start SQL statements that would write; the manager refuses
// them, but they must parse so that the refusal names the statement.
var writeVerbs = []string{
	"insert", "update", "delete", "merge", "truncate", "copy", "vacuum",
	"analyze", "analyse", "cluster", "reindex", "comment", "lock", "do",
	"call", "prepare", "execute", "refresh", "reassign", "import",
	"security", "checkpoint", "load",
}

// sqlObjects are the PostgreSQL object words that may follow
// CREATE/ALTER/DROP (with CREATE's modifiers), making it SQL rather than a
// (possibly misspelt) manager command.
var sqlObjects = map[string]bool{
	"access": true, "aggregate": true, "cast": true, "collation": true,
	"constraint": true, "conversion": true, "database": true, "default": true,
	"domain": true, "event": true, "extension": true, "foreign": true,
	"function": true, "global": true, "group": true, "index": true,
	"language": true, "large": true, "local": true, "materialized": true,
	"operator": true, "or": true, "owned": true, "policy": true,
	"procedural": true, "procedure": true, "publication": true,
	"recursive": true, "role": true, "routine": true, "rule": true,
	"schema": true, "sequence": true, "server": true, "statistics": true,
	"subscription": true, "system": true, "table": true, "tablespace": true,
	"temp": true, "temporary": true, "text": true, "transform": true,
	"trigger": true, "trusted": true, "type": true, "unique": true,
	"unlogged": true, "user": true, "view": true,
}

// sqlModifiers come between CREATE and the object word; the verb skips
// them ("CREATE OR REPLACE FUNCTION" → "CREATE FUNCTION", as PostgreSQL's
// command tag).
var sqlModifiers = map[string]bool{
	"or": true, "replace": true, "temp": true, "temporary": true,
	"unlogged": true, "global": true, "local": true, "unique": true,
	"recursive": true, "trusted": true, "procedural": true, "constraint": true,
}

// twoWordObjects name their object with two words.
var twoWordObjects = map[string]bool{
	"materialized": true, "foreign": true, "event": true, "text": true,
	"access": true, "large": true, "default": true, "user": true, "owned": true,
}

// writeStmt is refused SQL named by its first word (INSERT, COPY, …).
func (p *parser) writeStmt() (Statement, error) {
	s := &WriteSQL{Verb: strings.ToUpper(p.next().text)}
	return s, p.skipTail(&s.Base)
}

// sqlObjectStmt is CREATE/ALTER/DROP of a PostgreSQL object, refused like
// any write; verb is the word already consumed, the current token is the
// object word (or a modifier before it).
func (p *parser) sqlObjectStmt(verb string) (Statement, error) {
	for t := p.peek(); t.kind == tokIdent && sqlModifiers[t.text]; t = p.peek() {
		p.next()
	}
	if t := p.peek(); t.kind == tokIdent {
		verb += " " + strings.ToUpper(t.text)
		if u := p.peekAt(1); twoWordObjects[t.text] && u.kind == tokIdent {
			verb += " " + strings.ToUpper(u.text)
		}
	}
	s := &WriteSQL{Verb: verb}
	return s, p.skipTail(&s.Base)
}

// createStmt is CREATE USER (the manager's own roles, Other) or SQL.
func (p *parser) createStmt() (Statement, error) {
	p.next() // CREATE
	t := p.peek()
	if isWord(t, "user") && !isWord(p.peekAt(1), "mapping") {
		return p.userStmt(true)
	}
	if t.kind == tokIdent && sqlObjects[t.text] {
		return p.sqlObjectStmt("CREATE")
	}
	return nil, p.expected(t, "USER", "a SQL object type such as TABLE")
}

// monitorFuncs are the monitoring-UI back-end commands (web console),
// recognised and skipped.
var monitorFuncs = []string{
	"get_host_list_all", "get_host_list_spec", "get_host_history_usage",
	"get_host_history_usage_by_time_period", "get_all_nodename_in_spec_host",
	"get_agtm_node_topology", "get_coordinator_node_topology",
	"get_datanode_node_topology", "get_cluster_headpage_line",
	"get_cluster_tps_qps", "get_cluster_connect_dbsize_indexsize",
	"get_cluster_summary", "get_database_tps_qps",
	"get_database_tps_qps_interval_time", "monitor_databasetps_func_by_time_period",
	"get_database_summary", "get_slowlog", "get_slowlog_count", "check_user",
	"get_user_info", "update_user", "check_password", "update_password",
	"update_threshold_value", "get_threshold_type", "get_threshold_all_type",
	"get_db_threshold_all_type", "get_alarm_info_asc", "get_alarm_info_desc",
	"get_alarm_info_count", "resolve_alarm",
}

// otherStmt is a one-word Other command (GRANT, REVOKE, GET_…).
func (p *parser) otherStmt() (Statement, error) {
	t := p.next()
	s := &Other{Name: strings.ToUpper(t.text)}
	return s, p.skipTail(&s.Base)
}

// other is an Other command named by verb and the next words words
// (e.g. "ADD JOB"); the rest of the statement is skipped.
func (p *parser) other(verb string, words int) (Statement, error) {
	name := verb
	for range words {
		name += " " + strings.ToUpper(p.next().text)
	}
	s := &Other{Name: name}
	return s, p.skipTail(&s.Base)
}
