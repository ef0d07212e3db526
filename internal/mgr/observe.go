package mgr

import "time"

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
