// Package pgwire is the PostgreSQL wire-protocol server that DBAs reach with
// stock psql (or any libpq/pgx client). It owns the protocol only: startup,
// TLS, client authentication by pg_hba.conf-style rules (peer on a Unix
// socket, SCRAM-SHA-256 and -PLUS, trust and reject), caps and timeouts on
// connections and sessions, the simple query protocol, a
// minimal extended protocol for parameterless statements, NOTICE streaming,
// ErrorResponse with SQLSTATE and cursor position, and CancelRequest. What a
// query means is the Handler's business; this package knows no commands.
//
// Every connection is served by one goroutine that reads a message, runs it
// to completion and answers, exactly like a PostgreSQL backend. Queries run
// with a context that a CancelRequest from another connection, or server
// shutdown, cancels.
package pgwire
