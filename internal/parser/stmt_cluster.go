package parser

// Productions for the cluster life cycle and high-availability commands:
// agents, DEPLOY, INIT, START/STOP/MONITOR, CLEAN, APPEND/REMOVE, the
// switch commands, EXPAND, ZONE, the doctor, FLUSH and CHECKOUT.

// nodeTarget parses what START/STOP act on:
// ALL | family ALL | family role {ALL | n [, …]} | ZONE z.
// extra lists the verb's other words for the error hint.
func (p *parser) nodeTarget(extra ...string) (NodeTarget, error) {
	var tg NodeTarget
	var err error
	t := p.peek()
	switch {
	case isWord(t, "all"):
		p.next()
		tg.All = true
		return tg, nil
	case isWord(t, "zone"):
		p.next()
		tg.Zone, err = p.name("a zone name")
		return tg, err
	case familyOf(t) != FamilyNone:
		tg.Kind, _ = p.family()
		if p.acceptWord("all") {
			tg.All = true
			return tg, nil
		}
		if r := roleOf(p.peek()); r != RoleAny {
			p.next()
			tg.Kind.Role = r
			if p.acceptWord("all") {
				tg.All = true
				return tg, nil
			}
			tg.Names, err = p.nameList("ALL or a node name")
			return tg, err
		}
		return tg, p.expected(p.peek(), "MASTER", "SLAVE", "ALL")
	}
	return tg, p.expected(t, append([]string{"ALL", "GTMCOORD", "COORDINATOR", "DATANODE", "ZONE"}, extra...)...)
}

// moreNames is the hint for a statement that ended a name list: another
// name could have followed.
func moreNames(names []Ident, more ...string) []string {
	if len(names) > 0 {
		return append([]string{`","`}, more...)
	}
	return more
}

// agentTarget parses ALL | h [, …]; with optional set, nothing means ALL.
func (p *parser) agentTarget(optional bool) (AgentTarget, error) {
	if p.acceptWord("all") || (optional && p.atEnd()) {
		return AgentTarget{All: true}, nil
	}
	hosts, err := p.nameList("ALL or a host name")
	return AgentTarget{Hosts: hosts}, err
}

// password parses the optional PASSWORD pw of DEPLOY and START AGENT.
func (p *parser) password() (pw string, given bool, err error) {
	if !p.acceptWord("password") {
		return "", false, nil
	}
	pw, err = p.word("a password")
	return pw, true, err
}

func (p *parser) startStmt() (Statement, error) {
	p.next() // START
	t := p.peek()
	switch {
	case isWord(t, "transaction"):
		s := &Transaction{Verb: "BEGIN"}
		return s, p.skipTail(&s.Base)
	case isWord(t, "agent"):
		p.next()
		s := &StartAgent{}
		var err error
		if s.Target, err = p.agentTarget(false); err != nil {
			return nil, err
		}
		var given bool
		if s.Password, given, err = p.password(); err != nil {
			return nil, err
		}
		s.PasswordSet = given
		if given {
			return s, p.end(&s.Base)
		}
		return s, p.end(&s.Base, moreNames(s.Target.Hosts, "PASSWORD")...)
	case isWord(t, "doctor"):
		p.next()
		s := &Doctor{Action: "start"}
		return s, p.end(&s.Base)
	}
	s := &StartNodes{}
	var err error
	if s.Target, err = p.nodeTarget("AGENT", "DOCTOR", "TRANSACTION"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base, moreNames(s.Target.Names)...)
}

func (p *parser) stopStmt() (Statement, error) {
	p.next() // STOP
	t := p.peek()
	switch {
	case isWord(t, "agent"):
		p.next()
		s := &StopAgent{}
		var err error
		if s.Target, err = p.agentTarget(false); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, moreNames(s.Target.Hosts)...)
	case isWord(t, "doctor"):
		p.next()
		s := &Doctor{Action: "stop"}
		return s, p.end(&s.Base)
	}
	s := &StopNodes{Mode: ModeSmart}
	var err error
	if s.Target, err = p.nodeTarget("AGENT", "DOCTOR"); err != nil {
		return nil, err
	}
	if !p.acceptWord("mode") {
		return s, p.end(&s.Base, moreNames(s.Target.Names, "MODE")...)
	}
	m := p.peek()
	switch {
	case isWord(m, "smart"), isWord(m, "s"):
		s.Mode = ModeSmart
	case isWord(m, "fast"), isWord(m, "f"):
		s.Mode = ModeFast
	case isWord(m, "immediate"), isWord(m, "i"):
		s.Mode = ModeImmediate
	default:
		return nil, p.expected(m, "SMART", "S", "FAST", "F", "IMMEDIATE", "I")
	}
	p.next()
	return s, p.end(&s.Base)
}

func (p *parser) monitorStmt() (Statement, error) {
	p.next() // MONITOR
	t := p.peek()
	var err error
	switch {
	case p.atEnd() || isWord(t, "all"):
		p.acceptWord("all")
		s := &Monitor{Target: NodeTarget{All: true}}
		return s, p.end(&s.Base)
	case isWord(t, "agent"):
		p.next()
		s := &MonitorAgent{}
		if s.Target, err = p.agentTarget(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, moreNames(s.Target.Hosts)...)
	case isWord(t, "ha"):
		return p.monitorHA()
	case isWord(t, "zone"):
		p.next()
		s := &Monitor{}
		if s.Target.Zone, err = p.name("a zone name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case familyOf(t) != FamilyNone:
		s := &Monitor{}
		s.Target.Kind, _ = p.family()
		if p.acceptWord("all") {
			s.Target.All = true
			return s, p.end(&s.Base)
		}
		r := roleOf(p.peek())
		if r == RoleAny {
			s.Target.All = true
			return s, p.end(&s.Base, "MASTER", "SLAVE", "ALL")
		}
		p.next()
		s.Target.Kind.Role = r
		if p.acceptWord("all") || p.atEnd() {
			s.Target.All = true
			return s, p.end(&s.Base)
		}
		if s.Target.Names, err = p.nameList("ALL or a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	}
	return nil, p.expected(t, "ALL", "GTMCOORD", "COORDINATOR", "DATANODE", "ZONE", "HA", "AGENT", "end of statement")
}

// monitorHA is MONITOR HA [(cols)] [n, …] | MONITOR HA ZONE z.
func (p *parser) monitorHA() (Statement, error) {
	p.next() // HA
	s := &MonitorHA{}
	var err error
	if p.acceptWord("zone") {
		if s.Zone, err = p.name("a zone name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	}
	if p.isOp("(") {
		if s.Columns, err = p.parenNames("a column name"); err != nil {
			return nil, err
		}
	}
	if p.atEnd() {
		return s, p.end(&s.Base)
	}
	if s.Names, err = p.nameList("a node name"); err != nil {
		if s.Columns == nil {
			return nil, p.expected(p.peek(), "ZONE", `"("`, "a node name", "end of statement")
		}
		return nil, err
	}
	return s, p.end(&s.Base, `","`)
}

func (p *parser) deployStmt() (Statement, error) {
	p.next() // DEPLOY
	s := &Deploy{}
	var err error
	if s.Target, err = p.agentTarget(false); err != nil {
		return nil, err
	}
	var given bool
	if s.Password, given, err = p.password(); err != nil {
		return nil, err
	}
	s.PasswordSet = given
	if given {
		return s, p.end(&s.Base)
	}
	return s, p.end(&s.Base, moreNames(s.Target.Hosts, "PASSWORD")...)
}

func (p *parser) initStmt() (Statement, error) {
	p.next() // INIT
	if err := p.expectWord("all"); err != nil {
		return nil, err
	}
	s := &InitAll{}
	s.DataChecksums = p.acceptWord("data_checksums")
	if p.isOp("(") {
		var err error
		if s.Options, err = p.options(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	}
	if s.DataChecksums {
		return s, p.end(&s.Base, `"("`)
	}
	return s, p.end(&s.Base, "DATA_CHECKSUMS", `"("`)
}

func (p *parser) cleanStmt() (Statement, error) {
	p.next() // CLEAN
	s := &Clean{MonitorDays: -1}
	t := p.peek()
	var err error
	switch {
	case isWord(t, "all"):
		p.next()
		s.Target.All = true
		return s, p.end(&s.Base)
	case isWord(t, "zone"):
		p.next()
		if s.Target.Zone, err = p.name("a zone name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case isWord(t, "monitor"):
		p.next()
		if s.MonitorDays, err = p.integer("a number of days", 0); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case familyOf(t) != FamilyNone:
		if s.Target.Kind, err = p.familyRole(); err != nil {
			return nil, err
		}
		if s.Target.Names, err = p.nameList("a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	}
	return nil, p.expected(t, "ALL", "GTMCOORD", "COORDINATOR", "DATANODE", "ZONE", "MONITOR")
}

func (p *parser) appendStmt() (Statement, error) {
	p.next() // APPEND
	t := p.peek()
	s := &Append{}
	var err error
	switch familyOf(t) {
	case Gtmcoord:
		// The gtmcoord master is the cluster's core and cannot be appended.
		s.Kind, _ = p.family()
		if err = p.role(&s.Kind, Slave); err != nil {
			return nil, err
		}
		if s.Name, err = p.name("a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case Datanode:
		if s.Kind, err = p.familyRole(); err != nil {
			return nil, err
		}
		if s.Name, err = p.name("a node name"); err != nil {
			return nil, err
		}
		if s.Kind.Role == Master {
			return p.appendMasterTail(s)
		}
		return s, p.end(&s.Base)
	case Coordinator:
		s.Kind, _ = p.family()
		if r := roleOf(p.peek()); r != RoleAny {
			p.next()
			s.Kind.Role = r
			if s.Name, err = p.name("a node name"); err != nil {
				return nil, err
			}
			if r == Master {
				return p.appendMasterTail(s)
			}
			return s, p.end(&s.Base)
		}
		// APPEND COORDINATOR dest FOR src: copy a running coordinator by
		// streaming replication.
		nameTok := p.peek()
		if s.Name, err = p.name("MASTER, SLAVE or a node name"); err != nil {
			return nil, err
		}
		if !p.isWord("for") && isName(p.peek()) {
			// "APPEND COORDINATOR mastr cn1": the first word was
			// meant to be the role.
			return nil, p.expected(nameTok, "MASTER", "SLAVE", "a node name followed by FOR")
		}
		if err = p.expectWord("for"); err != nil {
			return nil, err
		}
		if s.Source, err = p.name("the source coordinator's name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	}
	if isWord(t, "activate") {
		p.next()
		s.Activate = true
		if s.Kind, err = p.family(Coordinator); err != nil {
			return nil, err
		}
		if s.Name, err = p.name("a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	}
	return nil, p.expected(t, "GTMCOORD", "COORDINATOR", "DATANODE", "ACTIVATE")
}

// appendMasterTail parses [DATA_CHECKSUMS] [( options )] after
// APPEND {DATANODE|COORDINATOR} MASTER n.
func (p *parser) appendMasterTail(s *Append) (Statement, error) {
	s.DataChecksums = p.acceptWord("data_checksums")
	if p.isOp("(") {
		var err error
		if s.Options, err = p.options(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	}
	if s.DataChecksums {
		return s, p.end(&s.Base, `"("`)
	}
	return s, p.end(&s.Base, "DATA_CHECKSUMS", `"("`)
}

func (p *parser) removeStmt() (Statement, error) {
	p.next() // REMOVE
	s := &Remove{}
	var err error
	if s.Kind, err = p.familyRole(); err != nil {
		return nil, err
	}
	if s.Names, err = p.nameList("a node name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base, `","`)
}

func (p *parser) failoverStmt() (Statement, error) {
	p.next() // FAILOVER
	s := &Failover{}
	var err error
	if s.Kind, err = p.family(); err != nil {
		return nil, err
	}
	if r := p.peek(); roleOf(r) != RoleAny && isName(p.peekAt(1)) {
		// FAILOVER names the failed master, without a role word.
		return nil, p.syntaxErr(r, "Expected the master's node name: FAILOVER "+upper(s.Kind.Family.String())+" name [TO slave] [FORCE].")
	}
	if s.Name, err = p.name("the master's node name"); err != nil {
		return nil, err
	}
	more := []string{"TO", "FORCE"}
	if p.acceptWord("to") {
		if s.To, err = p.name("the name of the slave to promote"); err != nil {
			return nil, err
		}
		more = []string{"FORCE"}
	}
	if p.acceptWord("force") {
		s.Force = true
		more = nil
	}
	return s, p.end(&s.Base, more...)
}

// switchoverStmt is SWITCHOVER {GTMCOORD|DATANODE} {SLAVE|MASTER} n
// [FORCE] [maxTrys]. MASTER parses so that the executor can say "it is the
// master, no need to switch over" instead of a bare syntax error.
func (p *parser) switchoverStmt() (Statement, error) {
	p.next() // SWITCHOVER
	s := &Switchover{}
	var err error
	if s.Kind, err = p.family(Gtmcoord, Datanode); err != nil {
		return nil, err
	}
	if err = p.role(&s.Kind, Slave, Master); err != nil {
		return nil, err
	}
	if s.Name, err = p.name("a node name"); err != nil {
		return nil, err
	}
	s.Force, s.MaxTrys, err = p.forceTries()
	if err != nil {
		return nil, err
	}
	return s, p.end(&s.Base, tail(s.Force, s.MaxTrys)...)
}

// forceTries parses [FORCE] [maxTrys] of SWITCHOVER and ZONE SWITCHOVER.
func (p *parser) forceTries() (force bool, tries int, err error) {
	force = p.acceptWord("force")
	if p.peek().kind == tokNumber {
		tries, err = p.integer("the maximum number of tries", 1)
	}
	return force, tries, err
}

func tail(force bool, tries int) []string {
	switch {
	case tries != 0:
		return nil
	case force:
		return []string{"a maximum number of tries"}
	}
	return []string{"FORCE", "a maximum number of tries"}
}

func (p *parser) rewindStmt() (Statement, error) {
	p.next() // REWIND
	s := &Rewind{}
	var err error
	if s.Kind, err = p.family(); err != nil {
		return nil, err
	}
	if err = p.role(&s.Kind, Slave); err != nil {
		return nil, err
	}
	if s.Name, err = p.name("a node name"); err != nil {
		return nil, err
	}
	if p.acceptWord("basebackup") {
		s.BaseBackup = true
		return s, p.end(&s.Base)
	}
	return s, p.end(&s.Base, "BASEBACKUP")
}

func (p *parser) promoteStmt() (Statement, error) {
	p.next() // PROMOTE
	s := &Promote{}
	var err error
	if s.Kind, err = p.familyRole(); err != nil {
		return nil, err
	}
	if s.Name, err = p.name("a node name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}

// adbmgrStmt is ADBMGR PROMOTE family SLAVE n: the catalog half of a
// manual failover.
func (p *parser) adbmgrStmt() (Statement, error) {
	p.next() // ADBMGR
	if err := p.expectWord("promote"); err != nil {
		return nil, err
	}
	s := &Promote{Catalog: true}
	var err error
	if s.Kind, err = p.family(); err != nil {
		return nil, err
	}
	if err = p.role(&s.Kind, Slave); err != nil {
		return nil, err
	}
	if s.Name, err = p.name("a node name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}

func (p *parser) configStmt() (Statement, error) {
	p.next() // CONFIG
	k, err := p.family(Datanode)
	if err != nil {
		return nil, err
	}
	if err = p.role(&k, Slave); err != nil {
		return nil, err
	}
	s := &ConfigSlave{}
	if s.Name, err = p.name("a node name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}

// expectWords expects each of words in turn.
func (p *parser) expectWords(words ...string) error {
	for _, w := range words {
		if err := p.expectWord(w); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) expandStmt() (Statement, error) {
	p.next() // EXPAND
	t := p.peek()
	s := &Expand{}
	var err error
	srcTo := func() error {
		if s.Src, err = p.name("the source datanode master's name"); err != nil {
			return err
		}
		if err = p.expectWord("to"); err != nil {
			return err
		}
		s.Dst, err = p.name("the target datanode master's name")
		return err
	}
	switch {
	case isWord(t, "datanode"):
		p.next()
		s.Action = "datanode"
		if err = p.expectWord("master"); err != nil {
			return nil, err
		}
		if err = srcTo(); err != nil {
			return nil, err
		}
	case isWord(t, "activate"):
		p.next()
		if !p.acceptWord("recover") {
			s.Action = "activate"
			return s, p.end(&s.Base, "RECOVER")
		}
		s.Action = "activate recover dopromote success"
		if err = p.expectWords("dopromote", "success"); err != nil {
			return nil, err
		}
		if s.Dst, err = p.name("the target datanode master's name"); err != nil {
			return nil, err
		}
	case isWord(t, "clean"):
		p.next()
		s.Action = "clean"
	case isWord(t, "recover"):
		p.next()
		if err = p.expectWord("basebackup"); err != nil {
			return nil, err
		}
		switch r := p.peek(); {
		case isWord(r, "success"):
			s.Action = "recover basebackup success"
		case isWord(r, "fail"):
			s.Action = "recover basebackup fail"
		default:
			return nil, p.expected(r, "SUCCESS", "FAIL")
		}
		p.next()
		if err = srcTo(); err != nil {
			return nil, err
		}
	case isWord(t, "docheck"), isWord(t, "show"):
		p.next()
		s.Action = t.text + " status"
		if err = p.expectWord("status"); err != nil {
			return nil, err
		}
	case isWord(t, "sleep"):
		p.next()
		s.Action = "sleep"
		if s.Sleep, err = p.integer("a number of seconds", 0); err != nil {
			return nil, err
		}
	default:
		return nil, p.expected(t, "DATANODE", "ACTIVATE", "CLEAN", "RECOVER", "DOCHECK", "SHOW", "SLEEP")
	}
	return s, p.end(&s.Base)
}

func (p *parser) zoneStmt() (Statement, error) {
	p.next() // ZONE
	t := p.peek()
	s := &Zone{}
	switch {
	case isWord(t, "failover"), isWord(t, "switchover"), isWord(t, "init"):
		p.next()
		s.Action = t.text
	default:
		return nil, p.expected(t, "FAILOVER", "SWITCHOVER", "INIT")
	}
	var err error
	if s.Zone, err = p.name("a zone name"); err != nil {
		return nil, err
	}
	switch s.Action {
	case "failover":
		if p.acceptWord("force") {
			s.Force = true
			return s, p.end(&s.Base)
		}
		return s, p.end(&s.Base, "FORCE")
	case "switchover":
		if s.Force, s.MaxTrys, err = p.forceTries(); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, tail(s.Force, s.MaxTrys)...)
	}
	return s, p.end(&s.Base)
}

// setDoctor is SET DOCTOR ( k = v , … ) | SET DOCTOR {NODE|HOST} n {ON|OFF}.
func (p *parser) setDoctor() (Statement, error) {
	p.next() // DOCTOR
	s := &Doctor{}
	t := p.peek()
	var err error
	switch {
	case isOp(t, "("):
		s.Action = "set"
		if s.Options, err = p.options(true); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base)
	case isWord(t, "node"), isWord(t, "host"):
		p.next()
		s.Action = "set " + t.text
		if s.Name, err = p.name("a " + t.text + " name"); err != nil {
			return nil, err
		}
		switch o := p.peek(); {
		case isWord(o, "on"):
			s.On = true
		case isWord(o, "off"):
		default:
			return nil, p.expected(o, "ON", "OFF")
		}
		p.next()
		return s, p.end(&s.Base)
	}
	return nil, p.expected(t, `"("`, "NODE", "HOST")
}

func (p *parser) flushStmt() (Statement, error) {
	p.next() // FLUSH
	s := &Flush{}
	t := p.peek()
	switch {
	case isWord(t, "host"), isWord(t, "param"):
		p.next()
		s.What = t.text
	case isWord(t, "readonly"):
		p.next()
		if err := p.expectWord("slave"); err != nil {
			return nil, err
		}
		s.What = "readonly slave"
	default:
		return nil, p.expected(t, "HOST", "PARAM", "READONLY")
	}
	return s, p.end(&s.Base)
}

func (p *parser) checkoutStmt() (Statement, error) {
	p.next() // CHECKOUT
	if err := p.expectWords("datanode", "slave", "status"); err != nil {
		return nil, err
	}
	s := &Checkout{}
	return s, p.end(&s.Base)
}

// rotateStmt is ROTATE CERTIFICATES [CA].
func (p *parser) rotateStmt() (Statement, error) {
	p.next() // ROTATE
	if err := p.expectWords("certificates"); err != nil {
		return nil, err
	}
	s := &RotateCertificates{}
	if p.acceptWord("ca") {
		s.CA = true
		return s, p.end(&s.Base)
	}
	return s, p.end(&s.Base, "CA")
}

// showBoottime is SHOW BOOTTIME [ALL] | family [ALL] |
// family role {ALL | n [, …]}.
func (p *parser) showBoottime() (Statement, error) {
	p.next() // BOOTTIME
	s := &ShowBoottime{}
	t := p.peek()
	switch {
	case p.atEnd() || isWord(t, "all"):
		p.acceptWord("all")
		s.Target.All = true
		return s, p.end(&s.Base)
	case familyOf(t) != FamilyNone:
		s.Target.Kind, _ = p.family()
		if p.acceptWord("all") {
			s.Target.All = true
			return s, p.end(&s.Base)
		}
		r := roleOf(p.peek())
		if r == RoleAny {
			s.Target.All = true
			return s, p.end(&s.Base, "MASTER", "SLAVE", "ALL")
		}
		p.next()
		s.Target.Kind.Role = r
		if p.acceptWord("all") || p.atEnd() {
			s.Target.All = true
			return s, p.end(&s.Base)
		}
		var err error
		if s.Target.Names, err = p.nameList("ALL or a node name"); err != nil {
			return nil, err
		}
		return s, p.end(&s.Base, `","`)
	}
	return nil, p.expected(t, "ALL", "GTMCOORD", "COORDINATOR", "DATANODE", "end of statement")
}
