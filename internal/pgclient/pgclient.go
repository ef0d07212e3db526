// Package pgclient is the manager's SQL access to cluster nodes, with pgx:
// recovery state, boot time, replication slots and pg_stat_replication.
package pgclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/jackc/pgx/v5"
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
	// Bound every statement the manager sends: an application holding a
	// lock must not hang a command (and the cluster lock) forever.
	cfg.RuntimeParams["statement_timeout"] = "120s"
	cfg.RuntimeParams["lock_timeout"] = "30s"
	// Simple protocol: one round trip, no statement cache to go stale across
	// the node restarts the manager causes.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// Status is what MONITOR shows of a running node.
type Status struct {
	Recovery bool
	Boot     time.Time
}

// NodeStatus reads a node's recovery state and start time.
func NodeStatus(ctx context.Context, c *pgx.Conn) (Status, error) {
	var s Status
	err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_postmaster_start_time()`).Scan(&s.Recovery, &s.Boot)
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
}

// Replication reads pg_stat_replication on a master (or a cascading slave,
// whose own position is its last received LSN).
func Replication(ctx context.Context, c *pgx.Conn) ([]Replica, error) {
	rows, err := c.Query(ctx, `
		WITH cur AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn)
		SELECT application_name, coalesce(host(client_addr), ''), state, sync_state,
		       coalesce(sent_lsn::text, ''), coalesce(replay_lsn::text, ''), coalesce(cur.lsn::text, ''),
		       coalesce(pg_size_pretty(pg_wal_lsn_diff(cur.lsn, sent_lsn)), ''),
		       coalesce(pg_size_pretty(pg_wal_lsn_diff(cur.lsn, replay_lsn)), '')
		FROM pg_stat_replication, cur ORDER BY application_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		if err := rows.Scan(&r.Application, &r.ClientAddr, &r.State, &r.SyncState, &r.SentLSN, &r.ReplayLSN,
			&r.MasterLSN, &r.SentDelay, &r.ReplayDelay); err != nil {
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
