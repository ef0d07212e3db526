// Package pgctl runs PostgreSQL's command-line tools (initdb, pg_ctl,
// pg_basebackup, pg_rewind, pg_controldata, pg_isready, postgres
// --describe-config) for the agent, and reads the few files of a data
// directory it needs to reason about a node (PG_VERSION, postmaster.pid).
//
// Tools are executed from <pghome>/bin with an argv, never through a shell,
// so no value can be interpreted as shell syntax. When the agent runs as
// root, each tool runs as the node's OS user (uid, gid, supplementary
// groups, HOME, USER), because PostgreSQL refuses to run as root and the
// files it creates must belong to that user; a non-root agent only runs
// tools as itself. The environment is rebuilt from scratch (PATH, HOME,
// USER, LOGNAME, LC_ALL=C, TZ): a PGDATA, PGPORT or PGPASSWORD in the agent's
// environment must never leak into a node, and LC_ALL=C keeps tool output
// in English so that it can be parsed.
//
// Every tool runs in its own session (setsid): signals aimed at the agent's
// process group (a terminal's Ctrl-C, a kill of the group) do not reach it,
// and the servers pg_ctl starts keep running when the agent dies. Output
// (stdout and stderr interleaved) is captured up to its last 64 KB.
package pgctl
