package mgr

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/expand"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// EXPAND, APPEND and REMOVE are executed by internal/expand; here they
// are dispatched: statement → request, the cluster lock, the result rows.
// expand.Expander runs over the manager's fleet and catalog (growCatalog);
// Check is INIT's precheck of one node, Prepare makes the running nodes
// trust a joining node's host.

// expander is the growing commands' executor for one statement.
func (m *Manager) expander(e *req) *expand.Expander {
	return &expand.Expander{
		Fleet: m.fleet, Catalog: growCatalog{m},
		Conf: func(sn expand.Snapshot, n cluster.Node) (fleet.Conf, error) { return m.nodeConf(sn.Snapshot, n) },
		Check: func(ctx context.Context, s *cluster.State, n cluster.Node) error {
			return m.initPrecheck(ctx, s, []cluster.InitStage{{Nodes: []cluster.Node{n}}})
		},
		Prepare: func(ctx context.Context, s *cluster.State, _ expand.Progress) error {
			_, err := m.prepareGrowth(e.withContext(ctx), s)
			return err
		},
		AfterStep: m.crashAfterGrowStep(),
	}
}

// crashAfterGrowStep is the crash test hook for the growing commands
// (crash.go): "EXPAND ACTIVATE:after prepare" and the like.
func (m *Manager) crashAfterGrowStep() func(string, cluster.GrowStep) {
	if m.opts.CrashAt == "" {
		return nil
	}
	return func(command string, st cluster.GrowStep) { m.crashAt(command, "after "+string(st.Kind)) }
}

// writeRows writes the growing commands' rows: nodename, status,
// description.
func writeRows(e *req, rows []expand.Row) error {
	out := make([]map[string]string, len(rows))
	for i, r := range rows {
		out[i] = map[string]string{"nodename": r.Node, "status": boolText(r.OK), "description": r.Description}
	}
	return writeTable(e.w, nodeResultColumns, out)
}

// expand is every EXPAND form (DESIGN §3, reference §4.15;
// expand.Expander): EXPAND DATANODE MASTER src TO dst, ACTIVATE, CLEAN,
// the RECOVER commands, SHOW/DOCHECK STATUS and SLEEP.
func (m *Manager) expand(e *req, st *parser.Expand) error {
	var rows []expand.Row
	var err error
	switch st.Action {
	case "datanode":
		return m.expandCopy(e, st)
	case "recover basebackup fail", "recover basebackup success", "activate recover dopromote success":
		return m.expandRecover(e, st)
	case "sleep":
		return m.expandSleep(e, st)
	case "activate":
		err = m.locked("EXPAND ACTIVATE", func() error { rows, err = m.expander(e).Activate(e.ctx, e.w); return err })
	case "clean":
		err = m.locked("EXPAND CLEAN", func() error { rows, err = m.expander(e).Clean(e.ctx, e.w); return err })
	case "show status", "docheck status":
		rows, err = m.expander(e).Status(e.ctx, st.Action == "docheck status")
	default:
		return pgerror.NotImplemented("EXPAND " + strings.ToUpper(st.Action))
	}
	if err != nil {
		return err
	}
	return writeRows(e, rows)
}

// locked runs f under the cluster lock.
func (m *Manager) locked(command string, f func() error) error {
	unlock, err := m.lockCluster(command)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

func (m *Manager) expandCopy(e *req, st *parser.Expand) error {
	var desc string
	err := m.locked("EXPAND", func() (err error) {
		desc, err = m.expander(e).Copy(e.ctx, st.Src.Name, st.Dst.Name, e.w)
		return err
	})
	if err != nil {
		return e.atField(err, map[string]int{"src": st.Src.Pos, "dst": st.Dst.Pos})
	}
	return writeNodeResult(e.w, st.Dst.Name, true, desc)
}

// expandRecover is EXPAND RECOVER BASEBACKUP {FAIL|SUCCESS} src TO dst
// and EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dst, under the cluster
// lock.
func (m *Manager) expandRecover(e *req, st *parser.Expand) error {
	x := m.expander(e)
	var desc string
	err := m.locked("EXPAND RECOVER", func() (err error) {
		switch st.Action {
		case "recover basebackup fail":
			desc, err = x.RecoverFail(e.ctx, st.Src.Name, st.Dst.Name, e.w)
		case "recover basebackup success":
			desc, err = x.RecoverSuccess(e.ctx, st.Src.Name, st.Dst.Name, e.w)
		default:
			desc, err = x.DoPromote(e.ctx, st.Dst.Name, e.w)
		}
		return err
	})
	if err != nil {
		return e.atField(err, map[string]int{"src": st.Src.Pos, "dst": st.Dst.Pos})
	}
	return writeNodeResult(e.w, st.Dst.Name, true, desc)
}

// expandSleep is EXPAND SLEEP n: n seconds of nothing, as AntDB's
// pg_sleep(n), for scripts that pace the expansion's steps; a cancel
// (CancelRequest, statement_timeout) ends it with its error.
func (m *Manager) expandSleep(e *req, st *parser.Expand) error {
	if err := fleet.Sleep(e.ctx, time.Duration(st.Sleep)*time.Second); err != nil {
		return err
	}
	return writeNodeResult(e.w, "", true, fmt.Sprintf("slept %d seconds", st.Sleep))
}

// atField points the caret of a refusal naming a field
// (cluster.FieldError) at that field's position.
func (e *req) atField(err error, pos map[string]int) error {
	if p, ok := pos[cluster.ErrorField(err)]; ok {
		return e.at(err, p)
	}
	return err
}

// withContext is e with another context (same session and writer).
func (e *req) withContext(ctx context.Context) *req {
	return &req{ctx: ctx, sess: e.sess, q: e.q, w: e.w}
}

// growCatalog is the manager's catalog as expand sees it.
type growCatalog struct{ m *Manager }

func (c growCatalog) Read(ctx context.Context) (sn expand.Snapshot, err error) {
	err = c.m.cat.View(ctx, func(tx catalog.ReadTx) error {
		if sn.Snapshot, err = readSnapshot(tx); err != nil {
			return err
		}
		if sn.Expansions, err = tx.Expansions(); err != nil {
			return err
		}
		sn.Copies, err = tx.CoordinatorCopies()
		return err
	})
	if err != nil {
		return sn, err
	}
	sn.Journal, err = c.expandJournal(ctx)
	return sn, err
}

// expandJournal reads the EXPAND commands' journal entries from the
// first one the manager's end interrupted (expand.Snapshot.Journal).
func (c growCatalog) expandJournal(ctx context.Context) ([]cluster.JournalRecord, error) {
	res, err := c.m.cat.Query(ctx, `SELECT command, status, step FROM journal WHERE command LIKE 'EXPAND %'
		AND id >= (SELECT min(id) FROM journal WHERE status = 'interrupted' AND command LIKE 'EXPAND %') ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read the journal: %w", err)
	}
	var out []cluster.JournalRecord
	for _, r := range res.Rows {
		if len(r) == 3 && r[0] != nil && r[1] != nil && r[2] != nil {
			out = append(out, cluster.JournalRecord{Command: *r[0], Status: *r[1], Step: *r[2]})
		}
	}
	return out, nil
}

// Commit runs even when the statement was cancelled: it records what
// already happened to the nodes. A failure is logged.
func (c growCatalog) Commit(ctx context.Context, j *expand.Journal, decide func(*cluster.State) (cluster.GrowPlan, error)) (cluster.GrowPlan, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var p cluster.GrowPlan
	id := j.ID
	err := c.m.cat.Update(ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if p, err = decide(s); err != nil {
			return err
		}
		if p.Journal.Status == "" {
			return fmt.Errorf("catalog change of %s without its journal row", j.Command)
		}
		if err := tx.Apply(p.Plan); err != nil {
			return err
		}
		id, err = tx.Journal(j.ID, j.Command, p.Journal.Status, p.Journal.Step, p.Journal.Detail)
		return err
	})
	if err != nil {
		c.m.log.Warn("cannot write the catalog", "command", j.Command, "step", p.Journal.Step, "error", err)
		return p, err
	}
	j.ID = id
	c.m.crashAt(j.Command, "journal "+p.Journal.Step)
	return p, nil
}

// checkGrowth refuses INIT ALL while a copy made by EXPAND or APPEND waits
// for its activation (cluster.CheckInitAll).
func (m *Manager) checkGrowth(ctx context.Context) error {
	sn, err := growCatalog{m}.Read(ctx)
	if err != nil {
		return err
	}
	return cluster.CheckInitAll(sn.Expansions, sn.Copies)
}
