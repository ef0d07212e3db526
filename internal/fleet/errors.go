package fleet

import (
	"fmt"
	"strings"

	"github.com/adbmgr/adbmgr/internal/agent"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// agentError is an agent's failure as the manager shows it: a SQLSTATE,
// the agent's message (without gRPC's "rpc error: code = …" prefix), a hint
// or the failed tool's last lines.
//
// The gRPC status is kept (Cause) but not in the Unwrap chain: its message
// is already this one, and agentclient.Message would render it twice.
type agentError struct {
	pg    *pgerror.Error
	cause error
}

func (e *agentError) Error() string      { return e.pg.Message }
func (e *agentError) Unwrap() error      { return e.pg }
func (e *agentError) Cause() error       { return e.cause }
func (e *agentError) PG() *pgerror.Error { return e.pg }

// AgentError translates an error of h's agent, once: an agent that cannot
// be reached is 08006 with a hint to start it; an argument it refused
// 22023; a node or file not in the state the operation needs 55000; a
// tool that failed XX000 with the tool's last lines as DETAIL. Errors that
// are not the agent's (nil, already translated, a connection's) are
// returned as they are.
func AgentError(h cluster.Host, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := pgerror.As(err); ok {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := agentclient.Message(err)
	var pe *pgerror.Error
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		pe = pgerror.New(pgerror.ConnectionFailure, "%s", msg).
			WithHint("Start the agent (START AGENT %s); MONITOR AGENT shows every agent.", h.Name)
	case codes.InvalidArgument:
		pe = pgerror.New(pgerror.InvalidParameterValue, "%s", msg)
	case codes.FailedPrecondition:
		pe = pgerror.New(pgerror.ObjectNotInPrereqState, "%s", msg)
		if missingLibrary(st) {
			pe = pgerror.New(pgerror.UndefinedFile, `host "%s": %s`, h.Name, msg).
				WithHint("Install adbmgr's node library on that host: make ext-install, or the adbmgr package.")
		}
	case codes.Canceled:
		pe = pgerror.New(pgerror.QueryCanceled, "%s", msg)
	default:
		pe = pgerror.New(pgerror.Internal, "%s", msg)
		if d := toolLines(msg); d != "" {
			pe = pe.WithDetail("%s", d)
		}
	}
	return &agentError{pg: pe, cause: err}
}

// missingLibrary reports whether st is the agent's refusal to start a node
// whose host does not have the library the node preloads.
func missingLibrary(st *status.Status) bool {
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.GetViolations() {
				if v.GetType() == agent.MissingLibraryType {
					return true
				}
			}
		}
	}
	return false
}

// toolLines is the output a failed tool left in an agent's message
// ("… pg_ctl failed (exit status 1): line…", pgctl.ToolError).
func toolLines(msg string) string {
	i := strings.Index(msg, " failed (")
	if i < 0 {
		return ""
	}
	j := strings.Index(msg[i:], "): ")
	if j < 0 {
		return ""
	}
	return msg[i+j+3:]
}

// Unreachable reports whether err says an agent could not be reached:
// translated (AgentError, or fleettest's likeness of it) or not.
func Unreachable(err error) bool {
	if pe, ok := pgerror.As(err); ok {
		return pe.Code == pgerror.ConnectionFailure
	}
	return agentclient.Unreachable(err)
}

// wrapped is an error with what the caller was doing before its message.
// A translated error's *pgerror.Error comes first in the chain, copied
// under the longer message, so the client gets its SQLSTATE, hint and
// detail with the whole message; the wrapped error follows (errors.Is).
type wrapped struct {
	msg string
	pg  *pgerror.Error // nil: err was not translated
	err error
}

func (w *wrapped) Error() string { return w.msg }

func (w *wrapped) Unwrap() []error {
	if w.pg == nil {
		return []error{w.err}
	}
	return []error{w.pg, w.err}
}

// Wrap is err with what the caller was doing before its message ("status
// of dn1: …"), err kept in the chain (%w). A translated error (AgentError,
// or any *pgerror.Error in the chain) keeps its SQLSTATE, hint and detail:
// a dead agent stays 08006 with its START AGENT hint however many callers
// add their words. nil stays nil.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	w := &wrapped{msg: fmt.Sprintf(format, args...) + ": " + err.Error(), err: err}
	if pe, ok := pgerror.As(err); ok {
		c := *pe
		c.Message = w.msg
		w.pg = &c
	}
	return w
}

// WrapAs is Wrap for the error a command ends with: an err that was not
// translated becomes a *pgerror.Error of code (55000 for a step that
// failed); hint, when not "", is said after err's own hint.
func WrapAs(err error, code, hint, format string, args ...any) error {
	if err == nil {
		return nil
	}
	w := Wrap(err, format, args...).(*wrapped)
	if w.pg == nil {
		w.pg = pgerror.New(code, "%s", w.msg)
	}
	switch {
	case hint == "":
	case w.pg.Hint == "":
		w.pg.Hint = hint
	default:
		w.pg.Hint += " " + hint
	}
	return w
}
