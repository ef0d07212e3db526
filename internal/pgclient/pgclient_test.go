package pgclient

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestServerError(t *testing.T) {
	pe := &pgconn.PgError{Severity: "FATAL", Code: "55000", Message: `database "postgres" is not currently accepting connections`}
	for _, err := range []error{pe, fmt.Errorf("connect: %w", pe), errors.Join(io.EOF, fmt.Errorf("x: %w", pe))} {
		if got := ServerError(err); got != pe {
			t.Errorf("ServerError(%v) = %v, want the node's error", err, got)
		}
	}
	for _, err := range []error{nil, io.EOF, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")} {
		if got := ServerError(err); got != nil {
			t.Errorf("ServerError(%v) = %v, want nil (not an answer from the node)", err, got)
		}
	}
}

// The settings that change how a session parses, runs or answers the
// manager's queries are all pinned by its connections.
func TestSessionParams(t *testing.T) {
	got := map[string]bool{}
	for k := range SessionParams() {
		got[strings.ToLower(k)] = true
	}
	for _, k := range []string{"standard_conforming_strings", "client_encoding", "datestyle", "intervalstyle", "search_path",
		"default_transaction_read_only", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
		"default_transaction_isolation", "bytea_output", "extra_float_digits", "timezone", "session_preload_libraries"} {
		if !got[k] {
			t.Errorf("SessionParams does not set %s", k)
		}
	}
}
