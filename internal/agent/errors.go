package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/adbmgr/adbmgr/internal/pgconf"
	"github.com/adbmgr/adbmgr/internal/pgctl"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusal is a decision of the agent itself, with the code it maps to.
type refusal struct {
	code codes.Code
	msg  string
}

func (e *refusal) Error() string { return e.msg }

func invalidf(format string, a ...any) error {
	return &refusal{codes.InvalidArgument, fmt.Sprintf(format, a...)}
}

func preconditionf(format string, a ...any) error {
	return &refusal{codes.FailedPrecondition, fmt.Sprintf(format, a...)}
}

// toStatus is the one place where errors become gRPC statuses. The message
// is the whole wrapped chain: the manager shows it to the DBA, so it must
// say which node, which file or tool, and what went wrong.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var r *refusal
	var te *pgctl.ToolError
	var ml *missingLibrary
	if errors.As(err, &ml) {
		return ml.status()
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.As(err, &r):
		code = r.code
	case errors.Is(err, pgconf.ErrInvalid), errors.Is(err, pgctl.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, pgctl.ErrNotPermitted), errors.Is(err, pgconf.ErrNotRegular), errors.Is(err, fs.ErrNotExist):
		code = codes.FailedPrecondition
	case errors.As(err, &te):
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}
