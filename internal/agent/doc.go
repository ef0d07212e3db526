// Package agent implements adbagent's side of the manager-agent contract
// (api/agentpb): a gRPC service that carries out typed operations on the
// PostgreSQL nodes of one host.
//
// Handlers are thin: they check the request (NodeRef paths are confined to
// plausible data directories, see checkDataPath), serialise operations on
// one data directory, call pgctl (tools) and pgconf (files), and translate
// errors once, at the edge, into gRPC status codes:
//
//	InvalidArgument     the request can never work (a relative or system
//	                    path, a bad parameter name or pg_hba field)
//	FailedPrecondition  the host is not in a state for it (directory not
//	                    empty, node running, not initialised, user not
//	                    switchable)
//	Internal            a tool failed; the message names it and ends with
//	                    its last output lines
//	DeadlineExceeded,   the caller's deadline or cancel, which also kills the
//	Canceled            tool
//
// Serve runs the service with mutual TLS and stops it gracefully on context
// cancel or on the Shutdown RPC. Nodes are never the agent's children in a
// way that matters: every tool runs in its own session, and pg_ctl detaches
// the postmaster, so killing the agent (even with SIGKILL, or a Ctrl-C to
// its process group) leaves the nodes running.
package agent
