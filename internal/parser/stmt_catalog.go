package parser

// Productions for the catalog commands: ADD/ALTER/DROP/LIST of hosts,
// nodes, HBA lines and parameters. The help text for each lives in help.go
// under the same command words.

// ---------------------------------------------------------------- ADD

func (p *parser) addStmt() (Statement, error) {
	p.next() // ADD
	t := p.peek()
	switch {
	case isWord(t, "host"):
		p.next()
		s := &AddHost{}
		if p.isWord("if") && isWord(p.peekAt(1), "not") {
			p.next()
			p.next()
			if err := p.expectWord("exists"); err != nil {
				return nil, err
			}
			s.IfNotExists = true
		}
		var err error
		if s.Name, err = p.name("a host name"); err != nil {
			return nil, err
		}
		if s.Options, err = p.options(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case familyOf(t) != FamilyNone:
		return p.addNode()
	case isWord(t, "hba"):
		return p.addHBA()
	case isWord(t, "job"), isWord(t, "item"), isWord(t, "extension"):
		return p.other("ADD", 1)
	}
	return nil, p.expected(t, "HOST", "GTMCOORD", "COORDINATOR", "DATANODE", "HBA", "JOB", "ITEM", "EXTENSION")
}

// addNode is ADD family {MASTER n | SLAVE n FOR m} (options).
func (p *parser) addNode() (Statement, error) {
	s := &AddNode{}
	var err error
	if s.Kind, err = p.familyRole(); err != nil {
		return nil, err
	}
	if s.Name, err = p.name("a node name"); err != nil {
		return nil, err
	}
	if s.Kind.Role == Slave {
		if err := p.expectWord("for"); err != nil {
			return nil, err
		}
		if s.For, err = p.name("the name of the node to follow"); err != nil {
			return nil, err
		}
	}
	if s.Options, err = p.options(true); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}

// addHBA is ADD HBA family {ALL | n} ( "line" [, …] ).
func (p *parser) addHBA() (Statement, error) {
	p.next() // HBA
	s := &AddHBA{}
	var err error
	if s.Target.Kind, err = p.family(); err != nil {
		return nil, err
	}
	if p.acceptWord("all") {
		s.Target.All = true
	} else {
		n, err := p.name("ALL or a node name")
		if err != nil {
			return nil, err
		}
		s.Target.Names = []Ident{n}
	}
	if s.Lines, err = p.stringList("a quoted pg_hba.conf line"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}

// ---------------------------------------------------------------- ALTER

func (p *parser) alterStmt() (Statement, error) {
	p.next() // ALTER
	t := p.peek()
	switch {
	case isWord(t, "host"):
		p.next()
		s := &AlterHost{}
		var err error
		if s.Name, err = p.name("a host name"); err != nil {
			return nil, err
		}
		if s.Options, err = p.options(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case familyOf(t) != FamilyNone:
		s := &AlterNode{}
		var err error
		if s.Kind, err = p.familyRole(); err != nil {
			return nil, err
		}
		if s.Name, err = p.name("a node name"); err != nil {
			return nil, err
		}
		if s.Options, err = p.options(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case isWord(t, "user") && !isWord(p.peekAt(1), "mapping"):
		return p.userStmt(false)
	case isWord(t, "job"), isWord(t, "item"):
		return p.other("ALTER", 1)
	case sqlObjects[t.text] && t.kind == tokIdent:
		return p.sqlObjectStmt("ALTER")
	}
	return nil, p.expected(t, "HOST", "GTMCOORD", "COORDINATOR", "DATANODE", "JOB", "ITEM", "USER")
}

// ---------------------------------------------------------------- DROP

func (p *parser) dropStmt() (Statement, error) {
	p.next() // DROP
	t := p.peek()
	switch {
	case isWord(t, "host"):
		p.next()
		s := &DropHost{}
		if p.isWord("if") && isWord(p.peekAt(1), "exists") {
			p.next()
			p.next()
			s.IfExists = true
		}
		var err error
		if s.Names, err = p.nameList("a host name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	case familyOf(t) != FamilyNone:
		s := &DropNode{}
		var err error
		if s.Kind, err = p.familyRole(); err != nil {
			return nil, err
		}
		if s.Names, err = p.nameList("a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	case isWord(t, "zone"):
		p.next()
		s := &DropZone{}
		var err error
		if s.Zone, err = p.name("a zone name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case isWord(t, "hba"):
		p.next()
		s := &DropHBA{}
		if p.acceptWord("all") {
			s.All = true
		} else {
			var err error
			if s.Node, err = p.name("ALL or a node name"); err != nil {
				return nil, err
			}
		}
		if p.isOp("(") {
			var err error
			if s.Lines, err = p.stringList("a quoted pg_hba.conf line"); err != nil {
				return nil, err
			}
			return s, p.end(&s.Base)
		}
		return s, p.end(&s.Base, `"("`)
	case isWord(t, "user") && !isWord(p.peekAt(1), "mapping"):
		return p.dropUser()
	case isWord(t, "job"), isWord(t, "item"), isWord(t, "extension"):
		return p.other("DROP", 1)
	case sqlObjects[t.text] && t.kind == tokIdent:
		return p.sqlObjectStmt("DROP")
	}
	return nil, p.expected(t, "HOST", "GTMCOORD", "COORDINATOR", "DATANODE", "ZONE", "HBA", "JOB", "ITEM", "EXTENSION", "USER")
}

// ---------------------------------------------------------------- LIST

func (p *parser) listStmt() (Statement, error) {
	p.next() // LIST
	t := p.peek()
	switch {
	case isWord(t, "host"):
		p.next()
		s := &ListHost{}
		var err error
		if p.isOp("(") {
			if s.Columns, err = p.parenNames("a column name"); err != nil {
				return nil, err
			}
		}
		if p.atEnd() {
			return s, p.end(&s.Base)
		}
		if s.Names, err = p.nameList("a host name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	case isWord(t, "node"):
		return p.listNode()
	case isWord(t, "param"):
		return p.listParam()
	case isWord(t, "hba"):
		p.next()
		s := &ListHBA{}
		if p.atEnd() {
			return s, p.end(&s.Base)
		}
		var err error
		if s.Names, err = p.nameList("a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	case isWord(t, "doctor"):
		p.next()
		s := &Doctor{Action: "list"}
		return s, p.end(&s.Base)
	case isWord(t, "acl"):
		p.next()
		s := &ListACL{All: p.acceptWord("all")}
		return s, p.end(&s.Base)
	case isWord(t, "journal"):
		return p.listJournal()
	case isWord(t, "job"), isWord(t, "item"):
		return p.other("LIST", 1)
	}
	return nil, p.expected(t, "HOST", "NODE", "PARAM", "HBA", "DOCTOR", "JOURNAL", "JOB", "ITEM", "ACL")
}

// listNode parses every LIST NODE form. Keywords win over node names: a
// node called "host" or "size" has to be written "host" (quoted) here.
func (p *parser) listNode() (Statement, error) {
	p.next() // NODE
	t := p.peek()
	s := &ListNode{}
	var err error
	switch {
	case p.atEnd():
		return s, p.end(&s.Base)
	case familyOf(t) != FamilyNone:
		s.Filter = ListNodeByKind
		s.Kind, _ = p.family()
		if r := roleOf(p.peek()); r != RoleAny {
			p.next()
			s.Kind.Role = r
			if s.Kind.Family == Datanode && r == Master && isName(p.peek()) {
				n, _ := p.name("")
				s.Filter, s.Names = ListNodeDatanodeMaster, []Ident{n}
				return s, p.end(&s.Base)
			}
			return s, p.end(&s.Base)
		}
		return s, p.end(&s.Base, "MASTER", "SLAVE")
	case isWord(t, "host"):
		p.next()
		s.Filter = ListNodeHost
		if s.Names, err = p.nameList("a host name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	case isWord(t, "zone"):
		p.next()
		s.Filter = ListNodeZone
		z, err := p.name("a zone name")
		if err != nil {
			return nil, err
		}
		s.Names = []Ident{z}
		return s, p.end(&s.Base)
	case isWord(t, "pretty"), isWord(t, "size"):
		return p.listNodeSize()
	case isOp(t, "("):
		if s.Columns, err = p.parenNames("a column name"); err != nil {
			return nil, err
		}
		if p.atEnd() {
			return s, p.end(&s.Base)
		}
	case !isName(t):
		return nil, p.expected(t, "GTMCOORD", "COORDINATOR", "DATANODE", "HOST", "ZONE", "SIZE", `"("`, "a node name", "end of statement")
	}
	if s.Names, err = p.nameList("a node name"); err != nil {
		return nil, err
	}
	// "LIST NODE DATANDOE MASTER" parses as a name list followed by junk;
	// the mistake is the misspelt family word, so point there.
	if len(s.Names) == 1 && roleOf(p.peek()) != RoleAny && s.Columns == nil {
		return nil, p.expected(t, "GTMCOORD", "COORDINATOR", "DATANODE")
	}
	return s, p.end(&s.Base, `","`)
}

// listNodeSize is LIST NODE [PRETTY] SIZE {ALL | n [, …]} [WITH SLINK].
func (p *parser) listNodeSize() (Statement, error) {
	s := &ListNodeSize{}
	s.Pretty = p.acceptWord("pretty")
	if err := p.expectWord("size"); err != nil {
		return nil, err
	}
	if p.acceptWord("all") {
		s.All = true
	} else {
		var err error
		if s.Names, err = p.nameList("ALL or a node name"); err != nil {
			return nil, err
		}
	}
	if p.acceptWord("with") {
		if err := p.expectWord("slink"); err != nil {
			return nil, err
		}
		s.Slink = true
		return s, p.end(&s.Base)
	}
	if s.All {
		return s, p.end(&s.Base, "WITH")
	}
	return s, p.end(&s.Base, `","`, "WITH")
}

// ---------------------------------------------------------------- parameters

// paramTarget parses what SET/RESET/LIST PARAM act on after the family:
// {MASTER|SLAVE} {ALL | n} | ALL.
func (p *parser) paramTarget() (NodeTarget, error) {
	var tg NodeTarget
	var err error
	if tg.Kind, err = p.family(); err != nil {
		return tg, err
	}
	if r := roleOf(p.peek()); r != RoleAny {
		p.next()
		tg.Kind.Role = r
		if p.acceptWord("all") {
			tg.All = true
			return tg, nil
		}
		n, err := p.name("ALL or a node name")
		if err != nil {
			return tg, err
		}
		tg.Names = []Ident{n}
		return tg, nil
	}
	if !p.acceptWord("all") {
		return tg, p.expected(p.peek(), "MASTER", "SLAVE", "ALL")
	}
	tg.All = true
	return tg, nil
}

// setParam is {SET|RESET} family [role] {ALL | n} ( k = v , … ) [FORCE].
// RESET takes bare names; values, if written, are kept but mean nothing.
func (p *parser) setParam(reset bool) (Statement, error) {
	s := &SetParam{Reset: reset}
	var err error
	if s.Target, err = p.paramTarget(); err != nil {
		return nil, err
	}
	if s.Params, err = p.options(!reset); err != nil {
		return nil, err
	}
	if p.acceptWord("force") {
		s.Force = true
		return s, p.end(&s.Base)
	}
	return s, p.end(&s.Base, "FORCE")
}

// listParam is LIST PARAM [family [role] {ALL | n} [pattern]].
func (p *parser) listParam() (Statement, error) {
	p.next() // PARAM
	s := &ListParam{}
	if p.atEnd() {
		return s, p.end(&s.Base)
	}
	if familyOf(p.peek()) == FamilyNone {
		return nil, p.expected(p.peek(), "GTMCOORD", "COORDINATOR", "DATANODE", "end of statement")
	}
	var err error
	if s.Target, err = p.paramTarget(); err != nil {
		return nil, err
	}
	if p.atEnd() {
		return s, p.end(&s.Base)
	}
	if s.Pattern, err = p.word("a parameter name pattern"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}
