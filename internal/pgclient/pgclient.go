// Package pgclient is the manager's SQL access to cluster nodes, with pgx:
// recovery state, boot time, replication slots and pg_stat_replication.
package pgclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Auth is how the manager authenticates to nodes and they to it.
type Auth struct {
	// Password is the nodes' superuser password (SCRAM-SHA-256).
	Password string
	// RootCAs, when set, makes the connection require TLS with a node
	// certificate issued by the manager's CA for the host's address (as
	// libpq's sslmode=verify-full); nil connects without TLS.
	RootCAs *x509.CertPool
}

// Connect opens a connection to node n on host h as the host's user, to the
// postgres database, within timeout, with a (cluster.HBALines: hostssl,
// scram-sha-256).
func Connect(ctx context.Context, h cluster.Host, n cluster.Node, timeout time.Duration, a Auth) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(cluster.ConnInfo("host", h.Address, "port", strconv.Itoa(n.Port),
		"user", h.User, "dbname", "postgres", "sslmode", "disable", "application_name", "adbmgr"))
	if err != nil {
		return nil, err
	}
	// Set after parsing: the password never goes through a string, and
	// sslmode=disable left no plaintext fallback to take when TLS is on.
	cfg.Password = a.Password
	if a.RootCAs != nil {
		cfg.TLSConfig = &tls.Config{RootCAs: a.RootCAs, ServerName: h.Address, MinVersion: tls.VersionTLS12}
	}
	cfg.ConnectTimeout = timeout
	for k, v := range SessionParams() {
		cfg.RuntimeParams[k] = v
	}
	// Simple protocol: one round trip, no statement cache to go stale across
	// the node restarts the manager causes.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// SessionParams are the settings of every manager connection to a node,
// sent in the startup packet. A setting from the startup packet (source
// "client") wins over postgresql.conf, ALTER SYSTEM, ALTER DATABASE and
// ALTER ROLE, so a DBA may SET any of these on the nodes for the
// applications' sake without changing how the manager's own queries are
// parsed, run or answered. Without them one `SET DATANODE ALL
// (standard_conforming_strings = off)` made pgx refuse every query (its
// simple protocol requires on), so MONITOR showed healthy masters as down.
func SessionParams() map[string]string {
	return map[string]string{
		// How text is parsed and printed: pgx's simple protocol requires
		// UTF8 and standard strings (Literal doubles quotes only, so with
		// backslash escapes on, a value could end the literal early);
		// timestamps and intervals are scanned in ISO and postgres style
		// (pg_postmaster_start_time in MONITOR).
		"client_encoding":             "UTF8",
		"standard_conforming_strings": "on",
		"DateStyle":                   "ISO, MDY",
		"IntervalStyle":               "postgres",
		"TimeZone":                    "UTC",
		"extra_float_digits":          "1",
		"bytea_output":                "hex",
		// MONITOR and the logs show the node's errors in English,
		// whatever the node's locale.
		"lc_messages": "C",
		// Names resolve as on a fresh cluster: the manager creates
		// extensions and the adb schema's objects in the usual places.
		"search_path":        `"$user", public`,
		"default_tablespace": "",
		// The manager writes on masters (adb.*, slots, foreign servers):
		// transactions are read-write, read committed, never deferred.
		"default_transaction_read_only":  "off",
		"default_transaction_isolation":  "read committed",
		"default_transaction_deferrable": "off",
		// Bound every statement the manager sends: an application holding
		// a lock must not hang a command (and the cluster lock) forever.
		"statement_timeout": "120s",
		"lock_timeout":      "30s",
		// EXPAND ACTIVATE holds its coordinator transactions open while it
		// waits for replay; a node's idle timeout must not end them.
		"idle_in_transaction_session_timeout": "0",
		"idle_session_timeout":                "0",
		// A library that cannot be loaded would make every new session
		// fail (FATAL), the manager's included; the manager needs none.
		// (This and lc_messages need a superuser, which the manager's
		// user is: the host's user, who ran initdb.)
		"session_preload_libraries": "",
		"local_preload_libraries":   "",
	}
}

// CannotConnectNow is the SQLSTATE of "the database system is starting up"
// (or shutting down, or in recovery without hot standby): the postmaster
// runs but lets nobody in, which libpq's PQping reports as PQPING_REJECT.
const CannotConnectNow = "57P03"

// ServerError returns the error the node itself sent (an ErrorResponse
// during the startup or to a query: an SQL error, an authentication
// failure, too many clients, a database that refuses connections), or nil
// when err is not one (refused, timed out, reset: the node may be down).
// A node that sends an error runs; as libpq's PQping says, it is up, even
// if it did not like the manager's user or query.
func ServerError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// Status is what MONITOR shows of a running node, and what the monitor
// history keeps of it.
type Status struct {
	Recovery bool
	Boot     time.Time
	// Timeline is the node's timeline: a standby's as its WAL receiver
	// streams it, else the last checkpoint's (every promotion ends with
	// a checkpoint).
	Timeline int64
	// Connections counts the client sessions, the reader's own left out.
	Connections int64
}

// NodeStatus reads a node's recovery state, start time, timeline and
// client sessions.
func NodeStatus(ctx context.Context, c *pgx.Conn) (Status, error) {
	var s Status
	err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_postmaster_start_time(),
		coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0), (SELECT timeline_id FROM pg_control_checkpoint()))::int8,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())`).
		Scan(&s.Recovery, &s.Boot, &s.Timeline, &s.Connections)
	return s, err
}

// EnsureSlot creates the physical replication slot name unless it exists.
func EnsureSlot(ctx context.Context, c *pgx.Conn, name string) error {
	_, err := c.Exec(ctx, fmt.Sprintf(`SELECT pg_create_physical_replication_slot(%s)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)`, Literal(name), Literal(name)))
	return err
}

// DropSlot drops the replication slot name if it exists and is not active.
func DropSlot(ctx context.Context, c *pgx.Conn, name string) error {
	_, err := c.Exec(ctx, fmt.Sprintf(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		WHERE slot_name = %s AND NOT active`, Literal(name)))
	return err
}

// Replica is one row of a master's pg_stat_replication.
type Replica struct {
	Application string
	ClientAddr  string
	State       string
	SyncState   string
	SentLSN     string
	ReplayLSN   string
	MasterLSN   string
	SentDelay   string // pg_size_pretty of current − sent
	ReplayDelay string // pg_size_pretty of current − replay
	// LagBytes is current − replay in bytes, LagSeconds replay_lag (0
	// when the standby is idle and caught up, as PostgreSQL reports it).
	LagBytes   int64
	LagSeconds float64
}

// Replication reads pg_stat_replication on a master (or a cascading slave,
// whose own position is its last received LSN).
func Replication(ctx context.Context, c *pgx.Conn) ([]Replica, error) {
	rows, err := c.Query(ctx, `
		WITH cur AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn)
		SELECT application_name, coalesce(host(client_addr), ''), state, sync_state,
		       coalesce(sent_lsn::text, ''), coalesce(replay_lsn::text, ''), coalesce(cur.lsn::text, ''),
		       coalesce(pg_size_pretty(pg_wal_lsn_diff(cur.lsn, sent_lsn)), ''),
		       coalesce(pg_size_pretty(pg_wal_lsn_diff(cur.lsn, replay_lsn)), ''),
		       coalesce(pg_wal_lsn_diff(cur.lsn, replay_lsn), 0)::int8,
		       coalesce(extract(epoch FROM replay_lag), 0)::float8
		FROM pg_stat_replication, cur ORDER BY application_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		if err := rows.Scan(&r.Application, &r.ClientAddr, &r.State, &r.SyncState, &r.SentLSN, &r.ReplayLSN,
			&r.MasterLSN, &r.SentDelay, &r.ReplayDelay, &r.LagBytes, &r.LagSeconds); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Literal quotes s as an SQL string literal.
func Literal(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// Ident quotes s as an SQL identifier.
func Ident(s string) string {
	return pgx.Identifier{s}.Sanitize()
}

// Ping reports whether something accepts TCP connections on address:port —
// CLEAN and INIT use it to refuse touching a directory whose node runs, or a
// port already taken.
func Ping(address string, port int, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(address, strconv.Itoa(port)), timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ManagerIP returns the address the manager's connections to addr come
// from, as the kernel's routing picks it; nodes trust it in pg_hba.conf.
func ManagerIP(addr string) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(addr, "9"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}
