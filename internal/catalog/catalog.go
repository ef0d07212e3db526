// Package catalog stores the manager's host and node tables. The Catalog
// interface is what the rest of the manager sees, so that a later store (etcd,
// for several managers) can replace the SQLite one without touching callers.
//
// The SQLite store keeps one writer connection (WAL, synchronous=FULL,
// foreign keys on) so that catalog transactions are serialised and a kill -9
// mid-command never leaves a half-written row, and a separate read-only pool
// for users' SELECTs over the views named like AntDB's.
package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed schema.sql
var schemaSQL string

//go:embed schema_2.sql
var schema2SQL string

//go:embed schema_3.sql
var schema3SQL string

//go:embed schema_4.sql
var schema4SQL string

//go:embed schema_5.sql
var schema5SQL string

//go:embed schema_6.sql
var schema6SQL string

//go:embed schema_7.sql
var schema7SQL string

// The schema version is stored in PRAGMA user_version; migrations[i]
// upgrades version i to i+1.
var migrations = []string{schemaSQL, schema2SQL, schema3SQL, schema4SQL, schema5SQL, schema6SQL, schema7SQL}

// ReadTx reads a consistent snapshot of the catalog.
type ReadTx interface {
	// State returns every host (by name) and every node (in insertion order).
	State() (*cluster.State, error)
	// Params returns every SET parameter row, family-wide rows first.
	Params() ([]cluster.Param, error)
	// HBA returns every ADD HBA line.
	HBA() ([]cluster.HBARule, error)
	// GUCs returns the known server parameters: PostgreSQL 15's built-in
	// list until FLUSH PARAM reads them from a running node.
	GUCs() ([]cluster.GUC, error)
	// Expansions returns every expansion not cleaned yet, by destination.
	Expansions() ([]cluster.Expansion, error)
	// CoordinatorCopies returns every coordinator copied with APPEND
	// COORDINATOR … FOR … and not activated yet, by name.
	CoordinatorCopies() ([]cluster.CoordinatorCopy, error)
}

// Tx is a read-write catalog transaction.
type Tx interface {
	ReadTx
	// Apply writes a plan's rows. Node IDs of inserted rows are assigned.
	Apply(p cluster.Plan) error
	// SetGUCs replaces the known server parameters.
	SetGUCs(gucs []cluster.GUC) error
	// Journal writes a journal entry in this transaction, so that a state
	// change and the entry that tells of it commit together: a new entry
	// when id is 0 (its id is returned), else an update of entry id.
	Journal(id int64, command, status, step, detail string) (int64, error)
}

// Result is the outcome of a user's read-only SQL query.
type Result struct {
	Columns []Column
	Rows    [][]*string
}

// Column is a result column; Integer tells the wire layer to announce int8.
type Column struct {
	Name    string
	Integer bool
}

// Catalog is the manager's persistent state.
type Catalog interface {
	// Update runs fn in a serialised read-write transaction; fn's error (or a
	// constraint violation) rolls everything back.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Query runs a user's read-only SQL over the catalog views.
	Query(ctx context.Context, query string) (*Result, error)
	// Stream runs a user's read-only SQL over the catalog views and hands
	// the rows to out as they are read, so a big result is never held
	// whole. It returns the number of rows delivered.
	Stream(ctx context.Context, query string, out RowSink) (int, error)
	// Journal records the progress of a multi-step command: a new entry
	// when id is 0 (its id is returned), else an update of entry id.
	Journal(ctx context.Context, id int64, command, status, step, detail string) (int64, error)
	// Settings returns the manager's own settings; SetSetting writes one.
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, key, value string) error
	DeleteSetting(ctx context.Context, key string) error
	// Users returns every manager user, by name; User one user.
	Users(ctx context.Context) ([]User, error)
	User(ctx context.Context, name string) (User, bool, error)
	// UpdateUsers runs fn over the user table in one serialised write
	// transaction; fn's error rolls it back.
	UpdateUsers(ctx context.Context, fn func(UserTx) error) error
	// Audit records a statement that changes something: a new entry when
	// id is 0 (its id is returned), else the end of entry id.
	Audit(ctx context.Context, id int64, a AuditEntry) (int64, error)
	// AddSamples adds a round of the monitor history; CleanMonitor
	// deletes the samples older than before.
	AddSamples(ctx context.Context, samples []Sample) error
	CleanMonitor(ctx context.Context, before time.Time) (int64, error)
	Close() error
}

// RowSink receives a streamed result: Columns once, before any row, then
// each Row. An error from either ends the query and is returned as is.
type RowSink interface {
	Columns(cols []Column) error
	Row(values []*string) error
}

// User SQL runs on connections of its own, never the ones commands and the
// doctor read with, so that runaway SELECTs cannot starve them.
const (
	// userConns is the size of the pool for users' SELECTs; a SELECT that
	// finds them all busy waits for one within its statement timeout.
	userConns = 4
	// userMaxLength caps a string or blob a user's SELECT can build
	// (SQLite's SQLITE_LIMIT_LENGTH, 1 GB by default): printf('%.*c', …),
	// zeroblob() or group_concat() over a recursive CTE could otherwise
	// make one value of a gigabyte per connection.
	userMaxLength = 16 << 20
	// userCacheKiB bounds each user connection's page cache (temporary
	// b-trees of ORDER BY, DISTINCT and UNION included).
	userCacheKiB = 8 << 10
	// typePeekRows and typePeekBytes bound what Stream reads before
	// announcing the columns, to guess the type of columns SQLite does not
	// declare.
	typePeekRows  = 1000
	typePeekBytes = 1 << 20
)

// FileName is the catalog's file inside the manager's data directory.
const FileName = "catalog.db"

// SQLite is the SQLite-backed Catalog.
type SQLite struct {
	mu   sync.Mutex // serialises Update: one writer, and BEGIN IMMEDIATE besides
	rw   *sql.DB
	ro   *sql.DB // commands' and the doctor's snapshots
	user *sql.DB // users' SELECTs
}

var registerOnce sync.Once

// Open opens (creating and migrating if needed) the catalog in dir.
func Open(ctx context.Context, dir string) (*SQLite, error) {
	registerOnce.Do(registerFunctions)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create catalog directory: %w", err)
	}
	file := filepath.Join(dir, FileName)
	if err := createPrivate(file); err != nil {
		return nil, fmt.Errorf("create catalog: %w", err)
	}
	// A catalog of an earlier version was created 0644; its -wal and -shm
	// files, when left over, too.
	for _, f := range []string{file, file + "-wal", file + "-shm"} {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(f, fi.Mode().Perm()&^0o077); err != nil {
				return nil, fmt.Errorf("make %s private: %w", f, err)
			}
		}
	}
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
	rw, err := sql.Open("sqlite", "file:"+uriPath(file)+"?_txlock=immediate&"+pragmas)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	rw.SetMaxOpenConns(1)
	c := &SQLite{rw: rw}
	if err := c.migrate(ctx); err != nil {
		rw.Close()
		return nil, err
	}
	if _, err := rw.ExecContext(ctx, isoTimes); err != nil {
		rw.Close()
		return nil, fmt.Errorf("rewrite the audit's times: %w", err)
	}
	// The read-only pool cannot write even if a user finds a way to send a
	// writing statement through SELECT: the file is opened read-only and
	// query_only is set on every connection.
	ro, err := sql.Open("sqlite", "file:"+uriPath(file)+"?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		rw.Close()
		return nil, fmt.Errorf("open catalog read-only: %w", err)
	}
	ro.SetMaxOpenConns(4)
	c.ro = ro
	user := sql.OpenDB(userConnector{"file:" + uriPath(file) + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)" +
		fmt.Sprintf("&_pragma=cache_size(-%d)&_pragma=temp_store(FILE)", userCacheKiB)})
	user.SetMaxOpenConns(userConns)
	user.SetMaxIdleConns(userConns)
	c.user = user
	return c, nil
}

func (c *SQLite) migrate(ctx context.Context) error {
	var v int
	if err := c.rw.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read catalog version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("catalog version %d is newer than this adbmgr (%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := c.rw.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("catalog migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("catalog migration %d: %w", v+1, err)
		}
	}
	return nil
}

// Close closes both pools.
func (c *SQLite) Close() error {
	return errors.Join(c.user.Close(), c.ro.Close(), c.rw.Close())
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

type tx struct {
	ctx context.Context
	q   queryer
}

// Update implements Catalog.
func (c *SQLite) Update(ctx context.Context, fn func(Tx) error) error {
	return c.write(ctx, func(q queryer) error { return fn(&tx{ctx: ctx, q: q}) })
}

// write runs fn in a serialised read-write transaction.
func (c *SQLite) write(ctx context.Context, fn func(queryer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.rw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin catalog transaction: %w", err)
	}
	if err := fn(t); err != nil {
		t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return translate(fmt.Errorf("commit catalog transaction: %w", err))
	}
	return nil
}

// View implements Catalog.
func (c *SQLite) View(ctx context.Context, fn func(ReadTx) error) error {
	t, err := c.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin catalog snapshot: %w", err)
	}
	defer t.Rollback()
	return fn(&tx{ctx: ctx, q: t})
}

func (t *tx) State() (*cluster.State, error) {
	s := &cluster.State{}
	rows, err := t.q.QueryContext(t.ctx, `SELECT name, user, port, protocol, agentport, address, adbhome, pghome, allowcure FROM mgr_host ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read hosts: %w", err)
	}
	for rows.Next() {
		var h cluster.Host
		if err := rows.Scan(&h.Name, &h.User, &h.Port, &h.Protocol, &h.AgentPort, &h.Address, &h.ADBHome, &h.PGHome, &h.AllowCure); err != nil {
			rows.Close()
			return nil, err
		}
		s.Hosts = append(s.Hosts, h)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	rows, err = t.q.QueryContext(t.ctx, `SELECT id, name, host, type, coalesce(mastername, ''), port, sync_state, path,
		initialized, incluster, readonly, zone, allowcure, curestatus, presync FROM mgr_node ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n cluster.Node
		var typ string
		if err := rows.Scan(&n.ID, &n.Name, &n.Host, &typ, &n.Master, &n.Port, &n.SyncState, &n.Path,
			&n.Initialized, &n.InCluster, &n.ReadOnly, &n.Zone, &n.AllowCure, &n.CureStatus, &n.PreSync); err != nil {
			return nil, err
		}
		n.Type = cluster.NodeType(typ)
		s.Nodes = append(s.Nodes, n)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	rows, err = t.q.QueryContext(t.ctx, `SELECT key, value FROM mgr_setting WHERE substr(key, 1, ?) = ? ORDER BY key`,
		len(MovedPrefix), MovedPrefix)
	if err != nil {
		return nil, fmt.Errorf("read moved hosts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		if s.Moved == nil {
			s.Moved = map[string][]string{}
		}
		s.Moved[strings.TrimPrefix(k, MovedPrefix)] = strings.Split(v, ",")
	}
	return s, rows.Err()
}

// MovedPrefix starts the mgr_setting keys of State.Moved:
// "host.moved.<host>" = the host's earlier addresses, comma-separated.
const MovedPrefix = "host.moved."

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *tx) exec(q string, args ...any) error {
	_, err := t.q.ExecContext(t.ctx, q, args...)
	return translate(err)
}

func (t *tx) Apply(p cluster.Plan) error {
	// Deletes first: a dropped node frees its port and path for rows this
	// plan inserts, and children are listed before their parents.
	for _, name := range p.DeleteNodes {
		// A dropped node's parameters and hba lines go with it (§4.3).
		if err := t.exec(`DELETE FROM mgr_param WHERE nodename = ?`, name); err != nil {
			return err
		}
		if err := t.exec(`DELETE FROM mgr_hba WHERE nodename = ?`, name); err != nil {
			return err
		}
		if err := t.exec(`DELETE FROM mgr_node WHERE name = ?`, name); err != nil {
			return err
		}
	}
	for _, pr := range p.DeleteParams {
		if err := t.exec(`DELETE FROM mgr_param WHERE nodename = ? AND nodetype = ? AND key = ?`, pr.Node, pr.Type, pr.Key); err != nil {
			return err
		}
	}
	for _, pr := range p.PutParams {
		if err := t.exec(`INSERT INTO mgr_param (nodename, nodetype, key, value) VALUES (?, ?, ?, ?)
			ON CONFLICT (nodename, nodetype, key) DO UPDATE SET value = excluded.value`, pr.Node, pr.Type, pr.Key, pr.Value); err != nil {
			return err
		}
	}
	for _, r := range p.DeleteHBA {
		if err := t.exec(`DELETE FROM mgr_hba WHERE nodename = ? AND family = ? AND line = ?`, r.Node, string(r.Family), r.Line); err != nil {
			return err
		}
	}
	for _, r := range p.PutHBA {
		if err := t.exec(`INSERT OR IGNORE INTO mgr_hba (nodename, family, line) VALUES (?, ?, ?)`, r.Node, string(r.Family), r.Line); err != nil {
			return err
		}
	}
	for _, name := range p.DeleteHosts {
		if err := t.exec(`DELETE FROM mgr_host WHERE name = ?`, name); err != nil {
			return err
		}
		if err := t.exec(`DELETE FROM mgr_setting WHERE key = ?`, MovedPrefix+name); err != nil {
			return err
		}
	}
	for name, from := range p.Moved {
		if len(from) == 0 {
			if err := t.exec(`DELETE FROM mgr_setting WHERE key = ?`, MovedPrefix+name); err != nil {
				return err
			}
			continue
		}
		if err := t.exec(`INSERT INTO mgr_setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			MovedPrefix+name, strings.Join(from, ",")); err != nil {
			return err
		}
	}
	if h := p.InsertHost; h != nil {
		if err := t.exec(`INSERT INTO mgr_host (name, user, port, protocol, agentport, address, adbhome, pghome)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, h.Name, h.User, h.Port, h.Protocol, h.AgentPort, h.Address, h.ADBHome, h.PGHome); err != nil {
			return err
		}
	}
	if h := p.UpdateHost; h != nil {
		if err := t.exec(`UPDATE mgr_host SET user = ?, port = ?, protocol = ?, agentport = ?, address = ?, adbhome = ?, pghome = ?,
			allowcure = ? WHERE name = ?`, h.User, h.Port, h.Protocol, h.AgentPort, h.Address, h.ADBHome, h.PGHome, h.AllowCure, h.Name); err != nil {
			return err
		}
	}
	for _, n := range p.UpdateNodes {
		if err := t.exec(`UPDATE mgr_node SET host = ?, type = ?, mastername = ?, port = ?, sync_state = ?, path = ?,
			initialized = ?, incluster = ?, readonly = ?, zone = ?, allowcure = ?, curestatus = ?, presync = ? WHERE id = ?`,
			n.Host, string(n.Type), nullable(n.Master), n.Port, n.SyncState, n.Path,
			n.Initialized, n.InCluster, n.ReadOnly, n.Zone, n.AllowCure, n.CureStatus, n.PreSync, n.ID); err != nil {
			return err
		}
	}
	if n := p.InsertNode; n != nil {
		res, err := t.q.ExecContext(t.ctx, `INSERT INTO mgr_node (name, host, type, mastername, port, sync_state, path,
			initialized, incluster, readonly, zone, allowcure, curestatus, presync) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			n.Name, n.Host, string(n.Type), nullable(n.Master), n.Port, n.SyncState, n.Path,
			n.Initialized, n.InCluster, n.ReadOnly, n.Zone, n.AllowCure, n.CureStatus, n.PreSync)
		if err != nil {
			return translate(err)
		}
		if n.ID, err = res.LastInsertId(); err != nil {
			return err
		}
	}
	// Last: an expansion or a copy refers to node rows this plan may
	// have changed.
	return t.applyGrowth(p)
}

func (t *tx) Params() ([]cluster.Param, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT nodename, nodetype, key, value FROM mgr_param
		ORDER BY nodename <> '*', nodename, nodetype, key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cluster.Param
	for rows.Next() {
		var p cluster.Param
		if err := rows.Scan(&p.Node, &p.Type, &p.Key, &p.Value); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (t *tx) HBA() ([]cluster.HBARule, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT nodename, family, line FROM mgr_hba ORDER BY rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cluster.HBARule
	for rows.Next() {
		var r cluster.HBARule
		var fam string
		if err := rows.Scan(&r.Node, &fam, &r.Line); err != nil {
			return nil, err
		}
		r.Family = cluster.Family(fam)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (t *tx) GUCs() ([]cluster.GUC, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT name, context, vartype, default_val, min_val, max_val, enum_vals, unit FROM mgr_guc ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cluster.GUC
	for rows.Next() {
		var g cluster.GUC
		var enums string
		if err := rows.Scan(&g.Name, &g.Context, &g.VarType, &g.Default, &g.Min, &g.Max, &enums, &g.Unit); err != nil {
			return nil, err
		}
		if enums != "" {
			g.EnumValues = strings.Split(enums, ",")
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		// Until FLUSH PARAM reads them from a running node.
		return DefaultGUCs(), nil
	}
	return out, nil
}

func (t *tx) SetGUCs(gucs []cluster.GUC) error {
	if err := t.exec(`DELETE FROM mgr_guc`); err != nil {
		return err
	}
	for _, g := range gucs {
		if err := t.exec(`INSERT INTO mgr_guc (name, context, vartype, default_val, min_val, max_val, enum_vals, unit)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, g.Name, g.Context, g.VarType, g.Default, g.Min, g.Max, strings.Join(g.EnumValues, ","), g.Unit); err != nil {
			return err
		}
	}
	return nil
}

// Journal implements Catalog.
func (c *SQLite) Journal(ctx context.Context, id int64, command, status, step, detail string) (int64, error) {
	err := c.Update(ctx, func(t Tx) (err error) {
		id, err = t.Journal(id, command, status, step, detail)
		return err
	})
	return id, err
}

// Journal implements Tx.
func (t *tx) Journal(id int64, command, status, step, detail string) (int64, error) {
	now := time.Now().UTC().Format(time.RFC3339)
	if id == 0 {
		// An entry opened by a statement names its audit entry (WithAudit).
		res, err := t.q.ExecContext(t.ctx, `INSERT INTO mgr_journal (command, status, step, detail, started, updated, audit_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			command, status, step, detail, now, now, auditOf(t.ctx))
		if err != nil {
			return 0, translate(err)
		}
		return res.LastInsertId()
	}
	return id, t.exec(`UPDATE mgr_journal SET status = ?, step = ?, detail = ?, updated = ? WHERE id = ?`, status, step, detail, now, id)
}

// Interrupted marks journal entries left running by a manager that died as
// interrupted, and returns them, so that start-up can report them.
func (c *SQLite) Interrupted(ctx context.Context) ([]string, error) {
	var out []string
	err := c.Update(ctx, func(t Tx) error {
		q := t.(*tx)
		rows, err := q.q.QueryContext(ctx, `SELECT id, command, step FROM mgr_journal WHERE status = 'running'`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var cmd, step string
			if err := rows.Scan(&id, &cmd, &step); err != nil {
				rows.Close()
				return err
			}
			out = append(out, fmt.Sprintf("#%d %s (at step %q)", id, cmd, step))
		}
		rows.Close()
		// The statements that were running when it died, too.
		if err := q.exec(`UPDATE mgr_audit SET status = 'interrupted' WHERE status = 'running'`); err != nil {
			return err
		}
		return q.exec(`UPDATE mgr_journal SET status = 'interrupted', updated = ? WHERE status = 'running'`, time.Now().UTC().Format(time.RFC3339))
	})
	return out, err
}

// translate turns SQLite constraint violations into user-facing errors. The
// Go rules normally refuse first with a better message; these are the
// backstop when two sessions race.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	msg := se.Error()
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return pgerror.New(pgerror.UniqueViolation, "duplicate key value violates unique constraint: %s", constraintDetail(msg))
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, sqlite3.SQLITE_CONSTRAINT_TRIGGER:
		// ON DELETE RESTRICT reports itself as a trigger constraint.
		return pgerror.New("23503", "the change would leave a dangling reference (a node's host or master)")
	case sqlite3.SQLITE_CONSTRAINT_CHECK:
		return pgerror.New("23514", "the change violates a catalog check constraint: %s", constraintDetail(msg))
	}
	if se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return pgerror.New("23000", "the change violates a catalog constraint: %s", constraintDetail(msg))
	}
	return err
}

func constraintDetail(msg string) string {
	if i := strings.Index(msg, "constraint failed: "); i >= 0 {
		return msg[i+len("constraint failed: "):]
	}
	return msg
}

// Version is what SELECT version() answers; set by the binary at start-up.
var Version = "PostgreSQL 15.0 (adbmgr)"

// registerFunctions adds the functions drivers and DBAs expect from a
// PostgreSQL server to SQLite, for users' SELECTs.
func registerFunctions() {
	str := func(v func() string) func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		return func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) { return v(), nil }
	}
	for _, reg := range []func(string, int32, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error)) error{
		sqlite.RegisterScalarFunction, userDriver.RegisterScalarFunction} {
		_ = reg("version", 0, str(func() string { return Version }))
		_ = reg("current_database", 0, str(func() string { return "postgres" }))
		_ = reg("regexp", 2, regexpFunc)
		_ = reg("pg_backend_pid", 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			return int64(os.Getpid()), nil
		})
	}
	userDriver.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, _ string) error {
		r, ok := conn.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver without an authorizer")
		}
		return r.RegisterAuthorizer(userAuthorizer)
	})
}

// regexpFunc is SQLite's REGEXP operator (X REGEXP Y calls regexp(Y, X)),
// for PostgreSQL's ~ in psql's catalog queries ('^(node)$', '^pg_'). Go's
// RE2 syntax covers what those patterns use. Compiled patterns are kept,
// a bounded number of them.
func regexpFunc(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	pat, ok1 := args[0].(string)
	s, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, nil
	}
	regexpMu.Lock()
	re, ok := regexpCache[pat]
	regexpMu.Unlock()
	if !ok {
		var err error
		if re, err = regexp.Compile(pat); err != nil {
			return nil, fmt.Errorf("invalid regular expression: %w", err)
		}
		regexpMu.Lock()
		if len(regexpCache) >= 256 {
			clear(regexpCache)
		}
		regexpCache[pat] = re
		regexpMu.Unlock()
	}
	if re.MatchString(s) {
		return int64(1), nil
	}
	return int64(0), nil
}

var (
	regexpMu    sync.Mutex
	regexpCache = map[string]*regexp.Regexp{}
)

// userDriver opens the connections users' SQL runs on; they get the
// authorizer userAuthorizer on top of read-only mode.
var userDriver = &sqlite.Driver{}

type userConnector struct{ dsn string }

func (c userConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return userDriver.Open(c.dsn)
}

func (c userConnector) Driver() driver.Driver { return userDriver }

// userAuthorizer lets users' SQL read the catalog through its views only
// (host, node, param, hba, journal, expansion, audit, monitor_history), as PostgreSQL keeps
// pg_authid from everyone but superusers: the tables behind them,
// mgr_user's password verifiers above all, are not for reading directly;
// nor are PRAGMA and ATTACH, which could reach other files or settings.
func userAuthorizer(action sqlite.AuthorizerActionCode, arg1, arg2, db, view string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthRead:
		// A read with no column (count(*)) reads no value, and SQLite
		// names no view for it even when the query went through one.
		if arg1 == "mgr_user" || (view == "" && arg2 != "" && strings.HasPrefix(arg1, "mgr_")) {
			return sqlite.AuthorizerDeny
		}
	case sqlite.AuthPragma, sqlite.AuthAttach, sqlite.AuthDetach:
		return sqlite.AuthorizerDeny
	}
	return sqlite.AuthorizerOK
}

// Query implements Catalog by collecting what Stream delivers.
func (c *SQLite) Query(ctx context.Context, query string) (*Result, error) {
	var col collect
	if _, err := c.Stream(ctx, query, &col); err != nil {
		return nil, err
	}
	return &col.res, nil
}

type collect struct{ res Result }

func (c *collect) Columns(cols []Column) error { c.res.Columns = cols; return nil }
func (c *collect) Row(v []*string) error       { c.res.Rows = append(c.res.Rows, v); return nil }

// Stream implements Catalog: the query runs on the pool for user SQL, and
// values are rendered as PostgreSQL's text format (booleans as t/f come from
// the views themselves). ctx interrupts SQLite mid-statement (the driver
// calls sqlite3_interrupt), so a statement timeout or a cancel stops even a
// recursive CTE that never yields a row.
func (c *SQLite) Stream(ctx context.Context, query string, out RowSink) (int, error) {
	conn, err := c.user.Conn(ctx)
	if err != nil {
		return 0, sqlError(ctx, err)
	}
	defer conn.Close()
	if _, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, userMaxLength); err != nil {
		return 0, fmt.Errorf("limit user SQL: %w", err)
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return 0, sqlError(ctx, err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, sqlError(ctx, err)
	}
	cols := make([]Column, len(types))
	for i, ct := range types {
		cols[i] = Column{Name: ct.Name(), Integer: strings.EqualFold(ct.DatabaseTypeName(), "INTEGER")}
	}
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	// SQLite has no declared type for expressions such as count(*); a
	// column whose every value in the first typePeekRows rows is an
	// integer is announced as one, so that clients can scan it into
	// integers. Those rows are held back until the columns are announced;
	// every later row goes out as it is read, so the client's pace, not
	// the manager's memory, bounds a big result.
	allInt := make([]bool, len(types))
	for i := range allInt {
		allInt[i] = true
	}
	var peek [][]*string
	peekBytes := 0
	announced := false
	announce := func() error {
		announced = true
		if len(peek) > 0 {
			for i := range cols {
				cols[i].Integer = allInt[i]
			}
		}
		if err := out.Columns(cols); err != nil {
			return err
		}
		for _, r := range peek {
			if err := out.Row(r); err != nil {
				return err
			}
		}
		peek = nil
		return nil
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, sqlError(ctx, err)
		}
		row := make([]*string, len(vals))
		for i, v := range vals {
			row[i] = render(v)
			if _, isInt := v.(int64); !isInt && v != nil {
				allInt[i] = false
			}
			if row[i] != nil {
				peekBytes += len(*row[i])
			}
		}
		n++
		if announced {
			if err := out.Row(row); err != nil {
				return n, err
			}
			continue
		}
		peek = append(peek, row)
		if len(peek) >= typePeekRows || peekBytes >= typePeekBytes {
			if err := announce(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, sqlError(ctx, err)
	}
	if !announced {
		if err := announce(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func render(v any) *string {
	var s string
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		s = string(v)
	case string:
		s = v
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		s = "f"
		if v {
			s = "t"
		}
	case time.Time:
		s = v.Format("2006-01-02 15:04:05.999999Z07")
	default:
		s = fmt.Sprint(v)
	}
	return &s
}

// sqlError maps a failure of a user's query to a PostgreSQL-style error.
func sqlError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		msg := strings.TrimPrefix(se.Error(), "SQL logic error: ")
		if i := strings.LastIndex(msg, " ("); i > 0 && strings.HasSuffix(msg, ")") {
			msg = msg[:i]
		}
		switch {
		case strings.Contains(msg, "no such table"):
			return pgerror.New(pgerror.UndefinedTable, "%s", msg).WithHint("The catalog views are host, node, param, hba, journal, expansion, audit and monitor_history.")
		case strings.Contains(msg, "no such column"):
			return pgerror.New(pgerror.UndefinedColumn, "%s", msg)
		case strings.Contains(msg, "too big"):
			// userMaxLength: program_limit_exceeded, as PostgreSQL's
			// "invalid memory alloc request size".
			return pgerror.New("54000", "%s", msg).WithHint("A value of user SQL may hold at most %d MB.", userMaxLength>>20)
		case strings.Contains(msg, "not authorized") || strings.Contains(msg, "prohibited"):
			return pgerror.New(pgerror.InsufficientPrivilege, "permission denied: %s", msg).
				WithHint("SQL reads the catalog views host, node, param, hba, journal and expansion.")
		case strings.Contains(msg, "readonly") || strings.Contains(msg, "query_only"):
			return pgerror.New(pgerror.ReadOnlySQLTransaction, "cannot write the catalog through SQL: %s", msg)
		}
		return pgerror.New(pgerror.SyntaxError, "%s", msg)
	}
	return err
}

// Settings implements Catalog.
func (c *SQLite) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := c.ro.QueryContext(ctx, `SELECT key, value FROM mgr_setting`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// SetSetting implements Catalog.
func (c *SQLite) SetSetting(ctx context.Context, key, value string) error {
	return c.Update(ctx, func(t Tx) error {
		return t.(*tx).exec(`INSERT INTO mgr_setting (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	})
}

// DeleteSetting implements Catalog.
func (c *SQLite) DeleteSetting(ctx context.Context, key string) error {
	return c.Update(ctx, func(t Tx) error {
		return t.(*tx).exec(`DELETE FROM mgr_setting WHERE key = ?`, key)
	})
}

// uriPath escapes a file name for a SQLite "file:" URI: a data directory
// with "?", "#" or "%" in its name must not end the path early or be
// decoded into another file.
func uriPath(file string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(file)
}
