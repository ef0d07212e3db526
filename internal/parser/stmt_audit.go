package parser

// The audit and events statements (issue 11): LIST JOURNAL, LISTEN and
// UNLISTEN, SET MONITOR.

// ListJournal is LIST JOURNAL [n]: who changed what, the last n entries
// (0: all).
type ListJournal struct {
	Base
	Last int
}

// Listen is LISTEN channel, UNLISTEN channel or UNLISTEN *: the session
// asks for (or stops) asynchronous notifications; the doctor's actions
// go to channel "doctor".
type Listen struct {
	Base
	Unlisten bool
	All      bool // UNLISTEN *
	Channel  Ident
}

// SetMonitor is SET MONITOR (interval = seconds, retention = days): how
// often the manager samples the nodes for the monitor history and how
// long it keeps the samples.
type SetMonitor struct {
	Base
	Options []Option
}

func (*ListJournal) Command() string { return "LIST JOURNAL" }
func (*SetMonitor) Command() string  { return "SET MONITOR" }
func (s *Listen) Command() string {
	if s.Unlisten {
		return "UNLISTEN"
	}
	return "LISTEN"
}

// listJournal parses LIST JOURNAL [n].
func (p *parser) listJournal() (Statement, error) {
	p.next() // JOURNAL
	s := &ListJournal{}
	if !p.atEnd() {
		var err error
		if s.Last, err = p.integer("a number of entries", 1); err != nil {
			return nil, err
		}
	}
	return s, p.end(&s.Base)
}

// listenStmt parses LISTEN channel | UNLISTEN { channel | * }.
func (p *parser) listenStmt() (Statement, error) {
	s := &Listen{Unlisten: isWord(p.next(), "unlisten")}
	if s.Unlisten && p.acceptOp("*") {
		s.All = true
		return s, p.end(&s.Base)
	}
	var err error
	if s.Channel, err = p.name("a channel name"); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}

// setMonitor parses SET MONITOR ( option = value [, …] ).
func (p *parser) setMonitor() (Statement, error) {
	p.next() // MONITOR
	s := &SetMonitor{}
	var err error
	if s.Options, err = p.options(true); err != nil {
		return nil, err
	}
	return s, p.end(&s.Base)
}
