package mgr

import (
	"context"
	"time"

	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
)

// Helpers of the commands that act on nodes; every action on a node goes
// through the fleet (internal/fleet).

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

// inCluster selects nodes in the cluster (for SyncNames and friends).
func inCluster(n cluster.Node) bool { return n.InCluster }
