package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/jackc/pgx/v5"
)

// Credentials are the nodes' secrets, which the manager keeps
// (mgr/nodesecrets.go): what the agent writes beside a node before it
// (re)reads them, and how the manager logs in to nodes.
type Credentials struct {
	Secrets func(cluster.Node, cluster.Host) (*agentpb.NodeSecrets, error)
	Auth    func() (pgclient.Auth, error)
}

// Agents is the Fleet of real nodes: their hosts' agents over gRPC
// (agentclient) and SQL over pgx (pgclient).
type Agents struct {
	pool  *agentclient.Pool
	creds Credentials
}

var _ Fleet = (*Agents)(nil)

// New returns the fleet reached through pool with creds.
func New(pool *agentclient.Pool, creds Credentials) *Agents {
	return &Agents{pool: pool, creds: creds}
}

// Ref names m for its agent.
func Ref(m Member) *agentpb.NodeRef {
	return &agentpb.NodeRef{
		Path: m.Node.Path, Pghome: m.Host.PGHome, User: m.Host.User,
		Port: int32(m.Node.Port), Address: m.Host.Address, SocketDir: cluster.SocketDir(m.Node, m.Host),
	}
}

// Client is m's host's agent.
func (a *Agents) Client(h cluster.Host) (agentpb.AgentClient, error) {
	return a.pool.Client(h)
}

// Secrets are m's credentials for its agent.
func (a *Agents) Secrets(m Member) (*agentpb.NodeSecrets, error) {
	return a.creds.Secrets(m.Node, m.Host)
}

// call runs one agent call on m's host within d, its error translated.
func call[T any](ctx context.Context, a *Agents, h cluster.Host, d time.Duration, f func(context.Context, agentpb.AgentClient) (T, error)) (T, error) {
	var zero T
	c, err := a.pool.Client(h)
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out, err := f(ctx, c)
	if err != nil {
		return zero, AgentError(h, err)
	}
	return out, nil
}

// PgCtl runs one pg_ctl action on m. The node's secrets go along for the
// actions that (re)read them, so a node always starts with the current
// password file and a valid certificate.
func (a *Agents) PgCtl(ctx context.Context, m Member, action agentpb.PgCtlRequest_Action, mode agentpb.PgCtlRequest_Mode) (*agentpb.ToolResult, error) {
	req := &agentpb.PgCtlRequest{Node: Ref(m), Action: action, Mode: mode, WaitSeconds: 120}
	switch action {
	case agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_RESTART, agentpb.PgCtlRequest_RELOAD:
		sec, err := a.Secrets(m)
		if err != nil {
			return nil, err
		}
		req.Secrets = sec
	}
	return call(ctx, a, m.Host, 150*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.ToolResult, error) {
		return c.PgCtl(ctx, req)
	})
}

// AgentUp implements Fleet.
func (a *Agents) AgentUp(ctx context.Context, h cluster.Host) error {
	_, err := a.pool.Ping(ctx, h, 3*time.Second)
	return AgentError(h, err)
}

// Running implements Fleet.
func (a *Agents) Running(ctx context.Context, m Member) (bool, error) {
	st, err := call(ctx, a, m.Host, 3*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.NodeStatus, error) {
		return c.Status(ctx, Ref(m))
	})
	return st.GetRunning(), err
}

// Listening implements Fleet.
func (a *Agents) Listening(m Member) bool {
	return pgclient.Ping(m.Host.Address, m.Node.Port, time.Second)
}

// Start implements Fleet.
func (a *Agents) Start(ctx context.Context, m Member) (bool, error) {
	r, err := a.PgCtl(ctx, m, agentpb.PgCtlRequest_START, agentpb.PgCtlRequest_MODE_UNSPECIFIED)
	return r.GetAlready(), err
}

// Stop implements Fleet.
func (a *Agents) Stop(ctx context.Context, m Member, mode Mode) (bool, error) {
	md := agentpb.PgCtlRequest_FAST
	switch mode {
	case Smart:
		md = agentpb.PgCtlRequest_SMART
	case Immediate:
		md = agentpb.PgCtlRequest_IMMEDIATE
	}
	r, err := a.PgCtl(ctx, m, agentpb.PgCtlRequest_STOP, md)
	return r.GetAlready(), err
}

// Reload implements Fleet.
func (a *Agents) Reload(ctx context.Context, m Member) error {
	_, err := a.PgCtl(ctx, m, agentpb.PgCtlRequest_RELOAD, agentpb.PgCtlRequest_MODE_UNSPECIFIED)
	return err
}

// Promote implements Fleet: pg_ctl promote (which waits until the node
// accepts writes), then a CHECKPOINT.
//
// Why the checkpoint: a promotion only requests one, spread over
// checkpoint_timeout, so for minutes the node's control file still names
// the timeline it left. PostgreSQL 15's pg_rewind takes a target's
// timeline from its last checkpoint (16 also looks at minRecoveryPointTLI):
// a node killed in that window and later rewound looks as if it had
// stayed on the old timeline, and pg_rewind searches the divergence in
// that timeline's WAL, where the node has nothing ("could not find
// previous WAL record at …: invalid record length … got 0"). An immediate
// checkpoint closes the window at once.
func (a *Agents) Promote(ctx context.Context, m Member) error {
	// A promotion replayed on a node already promoted checkpoints too: the
	// first may have stopped before its checkpoint.
	if _, err := a.PgCtl(ctx, m, agentpb.PgCtlRequest_PROMOTE, agentpb.PgCtlRequest_MODE_UNSPECIFIED); err != nil {
		return err
	}
	if err := a.Checkpoint(ctx, m); err != nil {
		return fmt.Errorf("promoted, but the checkpoint that records its new timeline failed: %w", err)
	}
	return nil
}

// ControlData implements Fleet.
func (a *Agents) ControlData(ctx context.Context, m Member) (ControlData, error) {
	cd, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.ControlDataResponse, error) {
		return c.ControlData(ctx, Ref(m))
	})
	return ControlData(cd.GetFields()), err
}

// SetConf implements Fleet.
func (a *Agents) SetConf(ctx context.Context, m Member, auto bool, set map[string]string, remove []string) error {
	file := agentpb.EditConfRequest_POSTGRESQL_CONF
	if auto {
		file = agentpb.EditConfRequest_POSTGRESQL_AUTO_CONF
	}
	_, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.EditConfResponse, error) {
		return c.EditConf(ctx, &agentpb.EditConfRequest{Node: Ref(m), File: file, Set: set, Remove: remove})
	})
	return err
}

// HBALines renders pg_hba.conf lines for the agent.
func HBALines(lines []cluster.HBALine) []*agentpb.HBALine {
	var out []*agentpb.HBALine
	for _, l := range lines {
		out = append(out, &agentpb.HBALine{Type: l.Type, Database: l.Database, User: l.User, Address: l.Address, Method: l.Method})
	}
	return out
}

// Configure implements Fleet.
func (a *Agents) Configure(ctx context.Context, m Member, c Conf) error {
	if err := a.SetConf(ctx, m, false, c.Set, c.Remove); err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	if err := a.EditHBA(ctx, m, HBAEdit{AddManaged: c.HBA, AddTail: c.UserHBA, Separator: true}); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return nil
}

// SetStandby creates (or removes) m's standby.signal.
func (a *Agents) SetStandby(ctx context.Context, m Member, standby bool) error {
	_, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.SetStandbyResponse, error) {
		return c.SetStandby(ctx, &agentpb.SetStandbyRequest{Node: Ref(m), Standby: standby})
	})
	return err
}

// MakeStandbyOf implements Fleet: the slot on parent, then WriteStandby.
func (a *Agents) MakeStandbyOf(ctx context.Context, m, parent Member) error {
	if err := a.EnsureSlot(ctx, parent, m.Name()); err != nil {
		return fmt.Errorf("create replication slot %q on %s: %w", m.Name(), parent.Name(), err)
	}
	return a.WriteStandby(ctx, m, parent)
}

// WriteStandby implements Fleet: WriteRecovery, then standby.signal.
func (a *Agents) WriteStandby(ctx context.Context, m, parent Member) error {
	if err := a.WriteRecovery(ctx, m, parent); err != nil {
		return fmt.Errorf("write recovery settings: %w", err)
	}
	if err := a.SetStandby(ctx, m, true); err != nil {
		return fmt.Errorf("create standby.signal: %w", err)
	}
	return nil
}

// WriteRecovery implements Fleet.
func (a *Agents) WriteRecovery(ctx context.Context, m, parent Member) error {
	return a.SetConf(ctx, m, true, cluster.StandbyParams(m.Node, parent.Node, parent.Host, m.Host), nil)
}

// Rewind implements Fleet.
func (a *Agents) Rewind(ctx context.Context, m, source Member) (string, error) {
	sec, err := a.Secrets(m)
	if err != nil {
		return "", fmt.Errorf("node credentials: %w", err)
	}
	res, err := call(ctx, a, m.Host, time.Hour, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.ToolResult, error) {
		return c.Rewind(ctx, &agentpb.RewindRequest{Node: Ref(m), SourceHost: source.Host.Address, SourcePort: int32(source.Node.Port),
			SourceUser: source.Host.User, WriteRecoveryConf: true, ApplicationName: m.Name(), Secrets: sec})
	})
	return strings.TrimSpace(res.GetOutput()), err
}

// Conn opens a connection to m with the nodes' credentials.
func (a *Agents) Conn(ctx context.Context, m Member, timeout time.Duration) (*pgx.Conn, error) {
	auth, err := a.creds.Auth()
	if err != nil {
		return nil, err
	}
	return pgclient.Connect(ctx, m.Host, m.Node, timeout, auth)
}

// Exec runs f on a fresh connection to m.
func (a *Agents) Exec(ctx context.Context, m Member, f func(*pgx.Conn) error) error {
	return a.execWithin(ctx, m, 10*time.Second, f)
}

// execWithin runs f on a fresh connection to m, opened within timeout; a
// failed login is a *ConnectError.
func (a *Agents) execWithin(ctx context.Context, m Member, timeout time.Duration, f func(*pgx.Conn) error) error {
	c, err := a.Conn(ctx, m, timeout)
	if err != nil {
		return &ConnectError{Err: err}
	}
	defer c.Close(context.WithoutCancel(ctx))
	return f(c)
}

// Probe implements Fleet.
func (a *Agents) Probe(ctx context.Context, m Member) cluster.Probe {
	conn, err := a.Conn(ctx, m, 5*time.Second)
	if err != nil {
		return cluster.Probe{}
	}
	defer conn.Close(ctx)
	var rec bool
	var lsn string
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		coalesce(greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), pg_current_wal_lsn())::text`).Scan(&rec, &lsn)
	if err != nil {
		return cluster.Probe{}
	}
	v, err := cluster.ParseLSN(lsn)
	if err != nil {
		return cluster.Probe{}
	}
	return cluster.Probe{Reachable: true, InRecovery: rec, LSN: v}
}

// InRecovery implements Fleet.
func (a *Agents) InRecovery(ctx context.Context, m Member) (bool, error) {
	var rec bool
	err := a.Exec(ctx, m, func(c *pgx.Conn) error { return c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec) })
	return rec, err
}

// WaitReplay implements Fleet. The replay position is the end of the
// last record replayed: beyond a record's start means the whole record
// is there. It looks every 20 ms over one connection (opened again if it
// fails): a SWITCHOVER's writes pause while it waits.
func (a *Agents) WaitReplay(ctx context.Context, m Member, lsn uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		var text string
		err := func() error {
			if conn == nil {
				c, err := a.Conn(ctx, m, 10*time.Second)
				if err != nil {
					return err
				}
				conn = c
			}
			err := conn.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, '0/0')").Scan(&text)
			if err != nil {
				conn.Close(context.WithoutCancel(ctx))
				conn = nil
			}
			return err
		}()
		if err == nil {
			var v uint64
			if v, err = cluster.ParseLSN(text); err == nil && v > lsn {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("replayed up to %s", text)
			}
		}
		last = err
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%s did not replay beyond %s within %s: %w", m.Name(), cluster.FormatLSN(lsn), timeout, last)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits d, or until ctx ends (its error then).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Checkpoint implements Fleet.
func (a *Agents) Checkpoint(ctx context.Context, m Member) error {
	return a.Exec(ctx, m, func(c *pgx.Conn) error { _, err := c.Exec(ctx, "CHECKPOINT"); return err })
}

// EnsureSlot implements Fleet.
func (a *Agents) EnsureSlot(ctx context.Context, m Member, slot string) error {
	return a.Exec(ctx, m, func(c *pgx.Conn) error { return pgclient.EnsureSlot(ctx, c, slot) })
}

// DropInactiveSlots implements Fleet.
func (a *Agents) DropInactiveSlots(ctx context.Context, m Member) error {
	return a.Exec(ctx, m, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
		return err
	})
}

// ReplicationStates maps application_name → sync_state of the standbys
// streaming from m.
func (a *Agents) ReplicationStates(ctx context.Context, m Member) (map[string]string, error) {
	out := map[string]string{}
	err := a.Exec(ctx, m, func(c *pgx.Conn) error {
		reps, err := pgclient.Replication(ctx, c)
		for _, r := range reps {
			if r.State == "streaming" {
				out[r.Application] = r.SyncState
			}
		}
		return err
	})
	return out, err
}

// SetSyncNames implements Fleet.
func (a *Agents) SetSyncNames(ctx context.Context, m Member, names string, want map[string]string, waitAll bool) ([]string, error) {
	if err := a.SetConf(ctx, m, false, map[string]string{"synchronous_standby_names": names}, nil); err != nil {
		return nil, fmt.Errorf("%s: write synchronous_standby_names: %w", m.Name(), err)
	}
	if err := a.Reload(ctx, m); err != nil {
		return nil, fmt.Errorf("%s: reload: %w", m.Name(), err)
	}
	if len(want) == 0 {
		return nil, nil
	}
	wait := 60 * time.Second
	if !waitAll {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		got, err := a.ReplicationStates(ctx, m)
		absent, last := compareReplication(want, got, waitAll)
		if err != nil {
			last = err.Error()
		} else if last == "" {
			return absent, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replication of %s does not match the node table after %s:%s", m.Name(), wait, last)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// compareReplication compares pg_stat_replication (got) with the catalog
// (want): the slaves not streaming (when they may be absent) and what
// differs, "" when nothing does.
func compareReplication(want, got map[string]string, waitAll bool) (absent []string, diff string) {
	for name, st := range want {
		g, streaming := got[name]
		switch {
		case !streaming && !waitAll:
			absent = append(absent, name)
		case g != st:
			diff += fmt.Sprintf(" %s is %q (want %q);", name, g, st)
		}
	}
	sort.Strings(absent)
	return absent, diff
}

// RenameServer implements Fleet.
func (a *Agents) RenameServer(ctx context.Context, c Member, old, newName string) error {
	return a.Exec(ctx, c, func(conn *pgx.Conn) error { _, err := conn.Exec(ctx, coord.RenameServer(old, newName)); return err })
}

// ConfigureCoordinator implements Fleet.
func (a *Agents) ConfigureCoordinator(ctx context.Context, s *cluster.State, c Member, ok func(cluster.Node) bool) error {
	conn, err := a.Conn(ctx, c, 10*time.Second)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, coord.Configure(s, c.Node, ok))
	return err
}
