package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/jackc/pgx/v5"
)

// Status implements Fleet.
func (a *Agents) Status(ctx context.Context, m Member) (NodeStatus, error) {
	st, err := call(ctx, a, m.Host, 3*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.NodeStatus, error) {
		return c.Status(ctx, Ref(m))
	})
	return NodeStatus{Initialized: st.GetInitialized(), Running: st.GetRunning(), Ready: st.GetReady()}, err
}

// CheckDir implements Fleet.
func (a *Agents) CheckDir(ctx context.Context, m Member) (DirState, error) {
	d, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.DirStatus, error) {
		return c.CheckDir(ctx, Ref(m))
	})
	return DirState{Exists: d.GetExists(), Empty: d.GetEmpty()}, err
}

// CleanDir implements Fleet.
func (a *Agents) CleanDir(ctx context.Context, m Member) error {
	_, err := call(ctx, a, m.Host, 5*time.Minute, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.ToolResult, error) {
		return c.CleanDir(ctx, Ref(m))
	})
	return err
}

// RemoveSocketDir implements Fleet.
// The agent is reached at the host's address; the directory named is the
// one of old when given.
func (a *Agents) RemoveSocketDir(ctx context.Context, m Member, old string) (string, error) {
	ref := Ref(m)
	if old != "" {
		at := m
		at.Host.Address = old
		ref = Ref(at)
	}
	res, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.ToolResult, error) {
		return c.RemoveSocketDir(ctx, ref)
	})
	if err != nil || res.GetOk() {
		return "", err
	}
	return res.GetOutput(), nil
}

// EditHBA implements Fleet.
func (a *Agents) EditHBA(ctx context.Context, m Member, e HBAEdit) error {
	req := &agentpb.EditHBARequest{Node: Ref(m), AddManaged: HBALines(e.AddManaged), AddTail: HBALines(e.AddTail),
		Remove: HBALines(e.Remove), EnsureSeparator: e.Separator}
	_, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.HBAResponse, error) {
		return c.EditHBA(ctx, req)
	})
	return err
}

// ReadHBA implements Fleet.
func (a *Agents) ReadHBA(ctx context.Context, m Member) ([]string, error) {
	res, err := call(ctx, a, m.Host, 30*time.Second, func(ctx context.Context, c agentpb.AgentClient) (*agentpb.HBAResponse, error) {
		return c.ReadHBA(ctx, Ref(m))
	})
	return res.GetLines(), err
}

// SQLStatus implements Fleet.
func (a *Agents) SQLStatus(ctx context.Context, m Member, timeout time.Duration) (pgclient.Status, error) {
	var st pgclient.Status
	err := a.execWithin(ctx, m, timeout, func(c *pgx.Conn) (err error) {
		st, err = pgclient.NodeStatus(ctx, c)
		return err
	})
	return st, err
}

// Replication implements Fleet.
func (a *Agents) Replication(ctx context.Context, m Member) ([]pgclient.Replica, error) {
	var reps []pgclient.Replica
	err := a.execWithin(ctx, m, 3*time.Second, func(c *pgx.Conn) (err error) {
		reps, err = pgclient.Replication(ctx, c)
		return err
	})
	return reps, err
}

// ForeignServers implements Fleet.
func (a *Agents) ForeignServers(ctx context.Context, c Member) (map[string]string, error) {
	out := map[string]string{}
	err := a.execWithin(ctx, c, 3*time.Second, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, coord.ServersQuery)
		if pe := pgclient.ServerError(err); pe != nil && (pe.Code == "42P01" || pe.Code == "42883") {
			// No adb schema, or an older one: configured never, or
			// by an older adbmgr.
			rows, err = conn.Query(ctx, coord.BareServersQuery)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, at string
			if err := rows.Scan(&name, &at); err != nil {
				return err
			}
			out[name] = at
		}
		return rows.Err()
	})
	return out, err
}

// Settings implements Fleet.
func (a *Agents) Settings(ctx context.Context, m Member, keys []string) (map[string]string, error) {
	out := map[string]string{}
	err := a.execWithin(ctx, m, 5*time.Second, func(c *pgx.Conn) error {
		for _, k := range keys {
			var v string
			if err := c.QueryRow(ctx, "SELECT current_setting($1)", k).Scan(&v); err != nil {
				return err
			}
			out[k] = v
		}
		return nil
	})
	return out, err
}

// ShowSettings implements Fleet. The manager's connection sets
// pgclient.SessionParams itself (source "client"); for those it shows
// what the node's other sessions get: the value of its configuration
// files, as written there, or the default.
func (a *Agents) ShowSettings(ctx context.Context, m Member, pattern string) ([]Setting, error) {
	var out []Setting
	err := a.execWithin(ctx, m, 5*time.Second, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT s.name,
			CASE WHEN s.source = 'client' THEN coalesce(f.setting, s.boot_val, '') ELSE s.setting END,
			CASE WHEN s.source = 'client' AND f.setting IS NOT NULL THEN '' ELSE coalesce(s.unit, '') END,
			s.context,
			CASE WHEN s.source <> 'client' THEN s.source WHEN f.setting IS NULL THEN 'default' ELSE 'configuration file' END,
			s.pending_restart
			FROM pg_settings s LEFT JOIN LATERAL (SELECT setting FROM pg_file_settings
				WHERE lower(name) = lower(s.name) AND applied ORDER BY seqno DESC LIMIT 1) f ON true
			WHERE s.name ILIKE %s ORDER BY s.name`, pgclient.Literal("%"+pattern+"%")))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s Setting
			if err := rows.Scan(&s.Name, &s.Setting, &s.Unit, &s.Context, &s.Source, &s.PendingRestart); err != nil {
				return err
			}
			out = append(out, s)
		}
		return rows.Err()
	})
	return out, err
}

// ConnectError is a failed login to a node, apart from a failed query
// once logged in (SHOW PARAM says "cannot connect" for the first alone).
// It unwraps to pgx's error, so pgclient.ServerError still finds what the
// server said.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

// GUCs implements Fleet.
func (a *Agents) GUCs(ctx context.Context, m Member) ([]cluster.GUC, error) {
	var gucs []cluster.GUC
	err := a.execWithin(ctx, m, 3*time.Second, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT name, context, vartype, coalesce(unit, ''), coalesce(min_val, ''), coalesce(max_val, ''),
		coalesce(array_to_string(enumvals, ','), ''), coalesce(boot_val, '') FROM pg_settings ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g cluster.GUC
			var enums string
			if err := rows.Scan(&g.Name, &g.Context, &g.VarType, &g.Unit, &g.Min, &g.Max, &enums, &g.Default); err != nil {
				return err
			}
			if enums != "" {
				g.EnumValues = strings.Split(enums, ",")
			}
			gucs = append(gucs, g)
		}
		return rows.Err()
	})
	return gucs, err
}
