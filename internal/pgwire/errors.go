package pgwire

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// SQLSTATEs only the protocol layer raises; the shared ones live in pgerror.
const (
	codeAdminShutdown              = "57P01"
	codeInvalidStatementName       = "26000"
	codeInvalidCursorName          = "34000"
	codeDuplicatePreparedStatement = "42P05"
	codeDuplicateCursor            = "42P03"
	codeInvalidTextRepresentation  = "22P02"
	codeSuccessfulCompletion       = "00000"
	codeWarning                    = "01000"
	codeTooManyConnections         = "53300"
	codeConfigurationLimitExceeded = "53400"
)

// errCancelRequest is the cause of a query context cancelled by a
// CancelRequest, so that the resulting error can be told apart from
// shutdown or a Handler's own deadline.
var errCancelRequest = errors.New("pgwire: query cancelled by CancelRequest")

// errClientGone is the cause of a query context cancelled because the
// client closed its connection while the query ran; nobody is left to
// answer, so the session ends.
var errClientGone = errors.New("pgwire: client closed the connection during the query")

// queryError turns what a Handler returned into the error the client sees.
// A *pgerror.Error passes through: the Handler chose its words. Otherwise a
// cancelled query gets PostgreSQL's 57014 messages, because clients (pgx,
// JDBC) key on that code to tell a cancel from a failure.
func queryError(qctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := pgerror.As(err); ok {
		return err
	}
	if context.Cause(qctx) == errCancelRequest {
		return pgerror.New(pgerror.QueryCanceled, "canceling statement due to user request")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return pgerror.New(pgerror.QueryCanceled, "canceling statement due to statement timeout")
	}
	return err
}

// errorResponse renders err with every field a *pgerror.Error carries; any
// other error becomes XX000 with its message, as an internal error.
func errorResponse(err error) *pgproto3.ErrorResponse {
	pe, ok := pgerror.As(err)
	if !ok {
		return &pgproto3.ErrorResponse{
			Severity: "ERROR", SeverityUnlocalized: "ERROR",
			Code: pgerror.Internal, Message: err.Error(),
		}
	}
	sev := strings.ToUpper(pe.Severity)
	if sev == "" {
		sev = "ERROR"
	}
	code := pe.Code
	if code == "" {
		code = pgerror.Internal
	}
	return &pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                code,
		Message:             pe.Message,
		Detail:              pe.Detail,
		Hint:                pe.Hint,
		Position:            int32(pe.Position),
	}
}

// noticeResponse builds a NoticeResponse. PostgreSQL gives NOTICE and INFO
// the "successful completion" class and WARNING the "warning" class.
func noticeResponse(severity, message string) *pgproto3.NoticeResponse {
	sev := strings.ToUpper(severity)
	if sev == "" {
		sev = "NOTICE"
	}
	code := codeSuccessfulCompletion
	if sev == "WARNING" {
		code = codeWarning
	}
	return &pgproto3.NoticeResponse{Severity: sev, SeverityUnlocalized: sev, Code: code, Message: message}
}

// isFatal reports whether err ends the session: PostgreSQL closes the
// connection after a FATAL error, and clients (pgx) expect it to.
func isFatal(err error) bool {
	pe, ok := pgerror.As(err)
	return ok && strings.EqualFold(pe.Severity, "FATAL")
}

func fatal(code, format string, args ...any) *pgerror.Error {
	e := pgerror.New(code, format, args...)
	e.Severity = "FATAL"
	return e
}
