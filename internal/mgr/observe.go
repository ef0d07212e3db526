package mgr

import (
	"strings"
	"time"
)

// Observer is told of every statement the manager ran, reads included:
// its command ("ADD NODE", "MONITOR"), how long it took and its error
// (nil: ok; a *pgerror.Error carries the SQLSTATE). Options.Observer
// receives them (the metrics' command counts and durations); it is
// called on the session's goroutine after the statement's result was
// written, so it must be quick.
type Observer interface {
	Statement(command string, d time.Duration, err error)
}

// observe tells Options.Observer, when set, of a statement.
func (m *Manager) observe(command string, d time.Duration, err error) {
	if m.opts.Observer != nil {
		m.opts.Observer.Statement(command, d, err)
	}
}

// DoctorObserver, when Options.Observer implements it too, is told of
// each doctor action as it finishes: its kind ("restart", "failover", the
// word after DOCTOR in the journal's command) and its outcome ("done" or
// "failed"). It counts events as they happen, so that a counter of them
// only grows, whatever the journal keeps.
type DoctorObserver interface {
	DoctorAction(action, outcome string)
}

// observeDoctor tells a DoctorObserver of a doctor journal row that ends
// an action.
func (m *Manager) observeDoctor(command, status string) {
	o, ok := m.opts.Observer.(DoctorObserver)
	if !ok || (status != "done" && status != "failed") {
		return
	}
	action, _, _ := strings.Cut(strings.TrimPrefix(command, "DOCTOR "), " ")
	o.DoctorAction(strings.ToLower(action), status)
}
