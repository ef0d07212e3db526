// Package pgerror is the one error type that crosses every boundary of the
// manager: parser, catalog and executor return it, and the wire server turns
// it into an ErrorResponse with SQLSTATE, hint and cursor position.
package pgerror

import (
	"errors"
	"fmt"
)

// SQLSTATE codes used by the manager. Names follow PostgreSQL's errcodes.txt.
const (
	SyntaxError            = "42601"
	FeatureNotSupported    = "0A000"
	UndefinedObject        = "42704"
	DuplicateObject        = "42710"
	InvalidParameterValue  = "22023"
	ObjectInUse            = "55006"
	ObjectNotInPrereqState = "55000"
	UniqueViolation        = "23505"
	ReadOnlySQLTransaction = "25006"
	InsufficientPrivilege  = "42501"
	UndefinedFile          = "58P01"
	SerializationFailure   = "40001"
	QueryCanceled          = "57014"
	UndefinedColumn        = "42703"
	UndefinedTable         = "42P01"
	InvalidName            = "42602"
	ConfigFileError        = "F0000"
	ConnectionFailure      = "08006"
	InvalidAuthorization   = "28000"
	InvalidPassword        = "28P01"
	ProtocolViolation      = "08P01"
	Internal               = "XX000"
)

// Error is a user-facing error. Position is a 1-based character offset into
// the query string (0 = none), as PostgreSQL's ErrorResponse 'P' field.
type Error struct {
	Severity string // ERROR (default), FATAL
	Code     string
	Message  string
	Detail   string
	Hint     string
	Position int
}

func (e *Error) Error() string { return e.Message }

// New returns an ERROR with the given SQLSTATE.
func New(code, format string, args ...any) *Error {
	return &Error{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithHint returns e with Hint set.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}

// WithDetail returns e with Detail set.
func (e *Error) WithDetail(format string, args ...any) *Error {
	e.Detail = fmt.Sprintf(format, args...)
	return e
}

// At returns e with Position set from a 0-based byte offset into the query
// string q. PostgreSQL counts characters, not bytes, so multi-byte text before
// the offset is counted once.
func (e *Error) At(q string, offset int) *Error {
	if offset < 0 || offset > len(q) {
		return e
	}
	e.Position = len([]rune(q[:offset])) + 1
	return e
}

// As reports whether err is (or wraps) an *Error and returns it.
func As(err error) (*Error, bool) {
	var pe *Error
	if errors.As(err, &pe) {
		return pe, true
	}
	return nil, false
}

// NotImplemented is the answer for commands that parse but are not built yet.
func NotImplemented(command string) *Error {
	return New(FeatureNotSupported, "%s is not implemented yet", command)
}
