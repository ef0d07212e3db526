package cluster

import (
	"errors"
	"fmt"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Notice is a message shown to the user while a command runs.
type Notice struct {
	Severity string // NOTICE or WARNING
	Message  string
}

func notice(format string, args ...any) Notice {
	return Notice{Severity: "NOTICE", Message: fmt.Sprintf(format, args...)}
}

func warning(format string, args ...any) Notice {
	return Notice{Severity: "WARNING", Message: fmt.Sprintf(format, args...)}
}

// Plan is what a catalog command decided: rows to write, in order, and what
// to tell the user. Applying it is the caller's job, inside one catalog
// transaction, so a refused command changes nothing.
type Plan struct {
	InsertHost  *Host
	UpdateHost  *Host // replaces the row with the same Name
	DeleteHosts []string

	InsertNode  *Node
	UpdateNodes []Node // replace rows with the same ID
	DeleteNodes []string

	PutParams    []Param // insert or replace (by node, type, key)
	DeleteParams []Param // by node, type, key
	PutHBA       []HBARule
	DeleteHBA    []HBARule

	// Live lists changes that must also reach running PostgreSQL processes
	// (e.g. "port", "sync_state" of an initialised node); empty when the
	// change is catalog-only.
	Live []string

	// Moved records, per host, the addresses its agent and nodes may
	// still use after an ALTER HOST of its address (State.Moved); an
	// empty list deletes the record. FLUSH HOST clears it once everything
	// uses the new address.
	Moved map[string][]string

	// PutExpansions inserts or replaces expansion rows (by Dst);
	// DeleteExpansions deletes the expansions of these destinations.
	PutExpansions    []Expansion
	DeleteExpansions []string
	// PutCoordinatorCopies inserts or replaces the rows of APPEND
	// COORDINATOR … FOR … (by Node); DeleteCoordinatorCopies deletes them.
	PutCoordinatorCopies    []CoordinatorCopy
	DeleteCoordinatorCopies []string

	Notices []Notice
}

// FieldError is a refusal caused by one option of the statement, so that the
// executor can point the cursor at that option.
type FieldError struct {
	Field string
	Err   *pgerror.Error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, code, format string, args ...any) error {
	return &FieldError{Field: field, Err: pgerror.New(code, format, args...)}
}

// ErrorField returns the option an error is about, or "".
func ErrorField(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}
