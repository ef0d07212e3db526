package mgr

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/jackc/pgx/v5"
)

// Node actions shared by INIT, START/STOP, CLEAN, SET and ALTER: each goes
// through the node's host agent (files and processes) or, for SQL, straight
// to the node with pgx.

// nodeRef names node n of host h for the agent.
func nodeRef(n cluster.Node, h cluster.Host) *agentpb.NodeRef {
	return fleet.Ref(fleet.Member{Node: n, Host: h})
}

// target is a node with its host and agent, resolved from one snapshot,
// for the commands that call its agent directly; every call goes through
// the fleet (internal/fleet), which builds and translates it once.
type target struct {
	n     cluster.Node
	h     cluster.Host
	agent agentpb.AgentClient
	f     *fleet.Agents
}

func (m *Manager) target(s *cluster.State, n cluster.Node) (target, error) {
	h, ok := s.Host(n.Host)
	if !ok {
		return target{}, fmt.Errorf("host %q of node %q does not exist", n.Host, n.Name)
	}
	c, err := m.agents.Client(h)
	if err != nil {
		return target{}, err
	}
	return target{n: n, h: h, agent: c, f: m.fleet}, nil
}

// member is t's node for the fleet.
func (t target) member() fleet.Member { return fleet.Member{Node: t.n, Host: t.h} }

func (t target) ref() *agentpb.NodeRef { return fleet.Ref(t.member()) }

// call bounds one agent call.
func call(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// pgctl runs one pg_ctl action on t's node (fleet.Agents.PgCtl).
func (t target) pgctl(ctx context.Context, action agentpb.PgCtlRequest_Action, mode agentpb.PgCtlRequest_Mode) (*agentpb.ToolResult, error) {
	return t.f.PgCtl(ctx, t.member(), action, mode)
}

// secrets are t's node's credentials for the agent.
func (t target) secrets() (*agentpb.NodeSecrets, error) {
	return t.f.Secrets(t.member())
}

// connect opens a connection to node n of host h with the nodes'
// credentials.
func (m *Manager) connect(ctx context.Context, h cluster.Host, n cluster.Node, timeout time.Duration) (*pgx.Conn, error) {
	return m.fleet.Conn(ctx, fleet.Member{Node: n, Host: h}, timeout)
}

// setConf writes parameters into postgresql.conf (auto: postgresql.auto.conf).
func (t target) setConf(ctx context.Context, auto bool, set map[string]string, remove []string) error {
	return t.f.SetConf(ctx, t.member(), auto, set, remove)
}

// setHBA adds the manager's pg_hba.conf lines (above the separator).
func (t target) setHBA(ctx context.Context, lines []cluster.HBALine, tail []*agentpb.HBALine, separator bool) error {
	return t.f.EditHBA(ctx, t.member(), lines, tail, separator)
}

// sql opens a connection to t's node.
func (t target) sql(ctx context.Context) (*pgx.Conn, error) {
	return t.f.Conn(ctx, t.member(), 10*time.Second)
}

// exec runs f on a fresh connection to t's node.
func (t target) exec(ctx context.Context, f func(*pgx.Conn) error) error {
	return t.f.Exec(ctx, t.member(), f)
}

// basebackup clones parent into t's node, reporting progress as NOTICEs
// at most every few seconds.
func (t target) basebackup(ctx context.Context, parent target, w pgwire.ResultWriter) error {
	ctx, cancel := call(ctx, 6*time.Hour)
	defer cancel()
	sec, err := t.secrets()
	if err != nil {
		return err
	}
	stream, err := t.agent.BaseBackup(ctx, &agentpb.BaseBackupRequest{
		Node: t.ref(), SourceHost: parent.h.Address, SourcePort: int32(parent.n.Port), SourceUser: parent.h.User,
		ApplicationName: t.n.Name, Slot: t.n.Name, Secrets: sec,
	})
	if err != nil {
		return err
	}
	last := time.Now()
	for {
		p, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if p.Done {
			return nil
		}
		if time.Since(last) > 3*time.Second && p.TotalKb > 0 {
			last = time.Now()
			w.Notice("NOTICE", fmt.Sprintf("%s: pg_basebackup from %s %d/%d kB (%d%%)", t.n.Name, parent.n.Name,
				p.DoneKb, p.TotalKb, p.DoneKb*100/p.TotalKb))
		}
	}
}

// markNodes applies f to the named nodes' catalog rows in one transaction.
//
// It runs even when the statement was cancelled: it records what already
// happened to the nodes, and the catalog must not lose that.
func (m *Manager) markNodes(ctx context.Context, names []string, f func(*cluster.Node)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return m.cat.Update(ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		var p cluster.Plan
		for _, name := range names {
			if n, ok := s.Node(name); ok {
				f(&n)
				p.UpdateNodes = append(p.UpdateNodes, n)
			}
		}
		return tx.Apply(p)
	})
}

// agentError renders an agent failure for a result row.
func agentError(err error) string { return agentclient.Message(err) }

// detached is e for the part of a command that must finish once started
// (after a promotion, say): same session and writer, a context that a
// cancel does not end.
func (e *req) detached() *req {
	return &req{ctx: context.WithoutCancel(e.ctx), sess: e.sess, q: e.q, w: e.w}
}

// inCluster selects nodes in the cluster (for SyncNames and friends).
func inCluster(n cluster.Node) bool { return n.InCluster }

// sleepCtx waits d, or until ctx ends (its error then).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
