package mgr

import (
	"context"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/kinds"
	"github.com/adbmgr/adbmgr/internal/params"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// The switches (FAILOVER, SWITCHOVER, REWIND) are executed by
// internal/switches; here they are dispatched: statement → request, the
// cluster lock, the result row.

var nodeResultColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
}

func writeNodeResult(w pgwire.ResultWriter, node string, ok bool, desc string) error {
	return writeTable(w, nodeResultColumns, []map[string]string{{"nodename": node, "status": boolText(ok), "description": desc}})
}

// switches is the switches' executor over the manager's fleet and catalog.
func (m *Manager) switches() *switches.Switches {
	return &switches.Switches{Fleet: m.fleet, Catalog: switchCatalog{m}, Conf: m.nodeConf, AfterStep: m.crashAfterStep()}
}

// failover is FAILOVER {DATANODE|GTMCOORD} master [TO slave] [FORCE]
// (reference §4.11; switches.Failover).
func (m *Manager) failover(e *req, st *parser.Failover) error {
	unlock, err := m.lockCluster("FAILOVER")
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.checkFailoverTo(e, st); err != nil {
		return err
	}
	if !st.Force {
		if err := m.checkInterrupted(e.ctx, st.Name.Name); err != nil {
			return namedAt(e, err, st.Name.Pos)
		}
	}
	res, err := m.switches().Failover(e.ctx, switches.Failover{Family: kinds.Family(st.Kind.Family), Master: st.Name.Name,
		To: st.To.Name, Force: st.Force, Zone: currentZone(e)}, e.w)
	if err != nil {
		return namedAt(e, err, st.Name.Pos)
	}
	return writeNodeResult(e.w, res.Node, true, res.Description)
}

// switchover is SWITCHOVER {DATANODE|GTMCOORD} SLAVE s [FORCE] [maxTrys]
// (reference §4.12; switches.Switchover).
func (m *Manager) switchover(e *req, st *parser.Switchover) error {
	if st.Kind.Role == parser.Master {
		return pgerror.New(pgerror.InvalidParameterValue, "it is the %s master, no need switchover", kinds.Family(st.Kind.Family)).At(e.q, st.Name.Pos)
	}
	unlock, err := m.lockCluster("SWITCHOVER")
	if err != nil {
		return err
	}
	defer unlock()
	x := m.switches()
	x.Guests = &m.guests // the doctor acts on other groups while it waits
	res, err := x.Switchover(e.ctx, switches.Switchover{Family: kinds.Family(st.Kind.Family), Slave: st.Name.Name,
		Force: st.Force, MaxTrys: st.MaxTrys}, e.w)
	if err != nil {
		return namedAt(e, err, st.Name.Pos)
	}
	return writeNodeResult(e.w, res.Node, true, res.Description)
}

// rewind is REWIND {GTMCOORD|COORDINATOR|DATANODE} SLAVE n [BASEBACKUP]
// (reference §4.13; switches.Rewind).
func (m *Manager) rewind(e *req, st *parser.Rewind) error {
	unlock, err := m.lockCluster("REWIND")
	if err != nil {
		return err
	}
	defer unlock()
	res, err := m.switches().Rewind(e.ctx, switches.Rewind{Family: kinds.Family(st.Kind.Family), Slave: st.Name.Name,
		BaseBackup: st.BaseBackup}, e.w)
	if err != nil {
		return namedAt(e, err, st.Name.Pos)
	}
	return writeNodeResult(e.w, res.Node, true, res.Description)
}

// checkInterrupted refuses a FAILOVER without FORCE of a group (master's,
// following masters up to the top) that a doctor action cut short by the
// previous manager's end left unfinished: the catalog may call a slave
// sync while the promoted master acknowledges commits alone (its
// synchronous_standby_names not written yet), so trusting the catalog
// could lose them. START DOCTOR finishes the action first.
func (m *Manager) checkInterrupted(ctx context.Context, master string) error {
	res, err := m.cat.Query(ctx, `SELECT command FROM journal WHERE status = 'interrupted' AND command LIKE 'DOCTOR %' ORDER BY id`)
	if err != nil {
		return err
	}
	s, err := m.state(ctx)
	if err != nil {
		return err
	}
	var cmds []string
	for _, row := range res.Rows {
		if len(row) != 1 || row[0] == nil {
			continue
		}
		if f := strings.Fields(*row[0]); len(f) == 3 && sameGroup(s, f[2], master) {
			cmds = append(cmds, *row[0])
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	return pgerror.New(pgerror.ObjectNotInPrereqState, "the doctor's %s was interrupted by the previous manager's end and is not finished",
		strings.Join(cmds, ", ")).
		WithHint("START DOCTOR finishes it (the catalog and the masters' synchronous_standby_names then match again); or check the nodes (MONITOR HA, SHOW synchronous_standby_names on the master) and use FAILOVER … FORCE.")
}

// sameGroup: a and b have the same top master in s (following each
// node's master); a node s does not know is in no group.
func sameGroup(s *cluster.State, a, b string) bool {
	top := func(name string) string {
		for range len(s.Nodes) + 1 {
			n, ok := s.Node(name)
			if !ok {
				return ""
			}
			if n.Master == "" {
				return n.Name
			}
			name = n.Master
		}
		return ""
	}
	ta := top(a)
	return ta != "" && ta == top(b)
}

// checkFailoverTo refuses FAILOVER … TO s when s is no slave of the
// master at all — a typo, not a failed switch: a plain error at the name,
// without the switch's WARNING to check the cluster. Whether s can be
// promoted (running, far enough) stays the switch's to decide.
func (m *Manager) checkFailoverTo(e *req, st *parser.Failover) error {
	if st.To.Name == "" {
		return nil
	}
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	master, ok := s.Node(st.Name.Name)
	if !ok {
		return nil // the switch names the missing master
	}
	to, ok := s.Node(st.To.Name)
	if !ok {
		return pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, st.To.Name).At(e.q, st.To.Pos).
			WithHint("%s", slavesHint(s, master.Name))
	}
	if to.Master != master.Name {
		return pgerror.New(pgerror.InvalidParameterValue, `"%s" is not a slave of %s`, to.Name, master.Name).At(e.q, st.To.Pos).
			WithHint("%s", slavesHint(s, master.Name))
	}
	return nil
}

// slavesHint names master's direct slaves, those FAILOVER … TO may name.
func slavesHint(s *cluster.State, master string) string {
	var names []string
	for _, k := range s.Children(master) {
		names = append(names, k.Name)
	}
	if len(names) == 0 {
		return master + " has no slave."
	}
	return "FAILOVER … TO names a direct slave of " + master + ": " + strings.Join(names, ", ") + "."
}

// namedAt points a refusal about the named node at its name.
func namedAt(e *req, err error, pos int) error {
	if cluster.ErrorField(err) == "name" {
		return e.at(err, pos)
	}
	return err
}

// nodeConf is what node n's data directory is given: the manager's
// settings, the user's SET rows on top (a user's wal_keep_size beats the
// manager's; keys only the manager may set never come from the rows), the
// manager's pg_hba.conf lines and the DBA's ADD HBA lines.
func (m *Manager) nodeConf(sn switches.Snapshot, n cluster.Node) (fleet.Conf, error) {
	h, ok := sn.State.Host(n.Host)
	if !ok {
		return fleet.Conf{}, pgerror.New(pgerror.UndefinedObject, `host "%s" of node "%s" does not exist`, n.Host, n.Name)
	}
	set := cluster.ServerParams(n, h)
	user, remove := params.Effective(n, sn.Params)
	for k, v := range user {
		set[k] = v
	}
	managerIPs, _ := m.managerIPs(sn.State)
	return fleet.Conf{Set: set, Remove: remove, HBA: cluster.HBALines(sn.State, managerIPs...), UserHBA: userHBA(n, sn.HBA)}, nil
}

// refreshCoordinators tells every coordinator where the datanode masters
// are now (switches.RefreshCoordinators): for ALTER NODE's port move and
// FLUSH READONLY SLAVE.
func (m *Manager) refreshCoordinators(e *req, s *cluster.State, old, newMaster string) {
	switches.RefreshCoordinators(e.ctx, m.fleet, s, old, newMaster, e.w)
}

// switchCatalog is the manager's catalog as the switches see it.
type switchCatalog struct{ m *Manager }

func (c switchCatalog) Read(ctx context.Context) (switches.Snapshot, error) {
	sn, err := c.m.snapshot(ctx)
	if err != nil {
		return switches.Snapshot{}, err
	}
	return switches.Snapshot{State: sn.s, Params: sn.params, HBA: sn.hba}, nil
}

// Commit runs even when the statement was cancelled: it records what
// already happened to the nodes. A journal row that cannot be written is
// logged.
func (c switchCatalog) Commit(ctx context.Context, j *switches.Journal, step switches.Step, decide func(switches.Snapshot) (cluster.Plan, error)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	id := j.ID
	err := c.m.cat.Update(ctx, func(tx catalog.Tx) error {
		if decide != nil {
			sn, err := readSnapshot(tx)
			if err != nil {
				return err
			}
			plan, err := decide(sn)
			if err != nil {
				return err
			}
			if err := tx.Apply(plan); err != nil {
				return err
			}
		}
		var err error
		id, err = tx.Journal(j.ID, j.Command, step.Status, step.Name, step.Detail)
		return err
	})
	if err != nil {
		c.m.log.Warn("cannot write the catalog", "command", j.Command, "step", step.Name, "error", err)
		return err
	}
	j.ID = id
	c.m.journaled(id, j.Command, step.Status, step.Name, step.Detail)
	c.m.crashAt(j.Command, "journal "+step.Name)
	return nil
}

// readSnapshot reads what a switch decides from inside a transaction.
func readSnapshot(tx catalog.ReadTx) (sn switches.Snapshot, err error) {
	if sn.State, err = tx.State(); err != nil {
		return sn, err
	}
	if sn.Params, err = tx.Params(); err != nil {
		return sn, err
	}
	sn.HBA, err = tx.HBA()
	return sn, err
}
