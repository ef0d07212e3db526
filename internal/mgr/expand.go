package mgr

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/jackc/pgx/v5"
)

// expand is EXPAND DATANODE MASTER src TO dst, EXPAND ACTIVATE and EXPAND
// CLEAN (DESIGN §3): slots move physically. dst starts as a streaming copy
// of src; ACTIVATE blocks writes to the moving slots on every coordinator,
// waits for dst to replay all of src's WAL, promotes dst and re-points the
// moving slots' partitions at it; CLEAN empties, on each side, the shard
// tables it no longer owns. The decisions are cluster's (PlanExpandCopy,
// PlanExpandActivate, PlanExpandClean); the state between statements is
// the catalog's mgr_expansion, written with the command's journal entry.
//
// The write pause covers the whole distributed table (PostgreSQL cannot
// lock a foreign-table partition), not only its moving slots.
func (m *Manager) expand(e *req, st *parser.Expand) error {
	switch st.Action {
	case "datanode":
		return m.expandCopy(e, st)
	case "activate":
		return m.expandActivate(e)
	case "clean":
		return m.expandClean(e)
	case "show status", "docheck status":
		return m.expandStatus(e)
	}
	return pgerror.NotImplemented("EXPAND " + strings.ToUpper(st.Action)).
		WithHint("Retry EXPAND DATANODE MASTER / EXPAND ACTIVATE / EXPAND CLEAN: each one is resumable.")
}

// growth reads the state of EXPAND and APPEND kept between statements,
// with the node table, from one snapshot.
func (m *Manager) growth(ctx context.Context) (s *cluster.State, exps []cluster.Expansion, copies []cluster.CoordinatorCopy, err error) {
	err = m.cat.View(ctx, func(tx catalog.ReadTx) error {
		if s, err = tx.State(); err != nil {
			return err
		}
		if exps, err = tx.Expansions(); err != nil {
			return err
		}
		copies, err = tx.CoordinatorCopies()
		return err
	})
	return s, exps, copies, err
}

// checkGrowth refuses INIT ALL while a copy made by EXPAND or APPEND waits
// for its activation (cluster.CheckInitAll).
func (m *Manager) checkGrowth(ctx context.Context) error {
	_, exps, copies, err := m.growth(ctx)
	if err != nil {
		return err
	}
	return cluster.CheckInitAll(exps, copies)
}

// growJournal is one command's journal entry. A state change writes its
// rows and the entry in one catalog transaction (commit), so the journal
// never tells of a state the catalog does not hold, nor the reverse.
type growJournal struct {
	m       *Manager
	command string
	id      int64
	status  string // as last written
}

func (m *Manager) growJournal(e *req, command string) *growJournal {
	j := &growJournal{m: m, command: command}
	j.note(e, "running", "start", "")
	return j
}

// note updates the entry alone: a failure, the end. A journal that cannot
// be written is logged, not fatal, as everywhere else.
func (j *growJournal) note(e *req, status, step, detail string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
	defer cancel()
	id, err := j.m.cat.Journal(ctx, j.id, j.command, status, step, detail)
	if err != nil {
		j.m.log.Warn("cannot write the operation journal", "command", j.command, "step", step, "error", err)
		return
	}
	j.id, j.status = id, status
}

// end closes the entry, unless the last state change did; a failure
// names the step it happened at.
func (j *growJournal) end(e *req, step string, err error) {
	switch {
	case err != nil:
		j.note(e, "failed", step, err.Error())
	case j.status != "done":
		j.note(e, "done", "end", "")
	}
}

// commit writes the state a command reached: decide runs inside the
// catalog transaction on a fresh snapshot, and its rows and journal entry
// commit together. It runs to the end even if the statement is cancelled:
// the nodes already are in that state.
func (j *growJournal) commit(e *req, decide func(*cluster.State) (cluster.GrowPlan, error)) (cluster.GrowPlan, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 30*time.Second)
	defer cancel()
	var p cluster.GrowPlan
	id := j.id
	err := j.m.cat.Update(ctx, func(tx catalog.Tx) error {
		s, err := tx.State()
		if err != nil {
			return err
		}
		if p, err = decide(s); err != nil {
			return err
		}
		if err := tx.Apply(p.Plan); err != nil {
			return err
		}
		id, err = tx.Journal(j.id, j.command, p.Journal.Status, p.Journal.Step, p.Journal.Detail)
		return err
	})
	if err != nil {
		return p, err
	}
	j.id, j.status = id, p.Journal.Status
	e.notices(p.Notices)
	return p, nil
}

// grower runs the steps of a cluster.GrowPlan: EXPAND's and APPEND's one
// executor.
type grower struct {
	m   *Manager
	e   *req
	sn  *snapshot // the node table, parameters and hba rules at the start
	hba []cluster.HBALine
	j   *growJournal
	// done decides the state reached, at the GrowCatalog step.
	done func(*cluster.State, cluster.GrowStep) (cluster.GrowPlan, error)
	// APPEND of a datanode master: initdb's options.
	walseg    int32
	checksums bool
	// EXPAND ACTIVATE: the coordinators' transactions that hold the
	// moving slots, from GrowBlockWrites to GrowCommit.
	act *activation
	// EXPAND CLEAN: the distributed tables, and a result row per node.
	tables [][2]string
	rows   []map[string]string

	// committed is set once GrowCatalog wrote; result is what it wrote.
	committed bool
	result    cluster.GrowPlan
	// failed is the step that failed.
	failed cluster.GrowStep
}

// run does the steps in order and stops at the first failure. After a
// promotion or the catalog write the rest runs even if the statement is
// cancelled: the cluster has changed and must be made consistent.
func (g *grower) run(steps []cluster.GrowStep) error {
	e := g.e
	defer func() { g.e = e }()
	for _, st := range steps {
		if err := g.step(st); err != nil {
			g.failed = st
			return err
		}
		if st.Notice != "" {
			g.e.w.Notice("NOTICE", st.Notice)
		}
		if st.Kind == cluster.GrowPromote || st.Kind == cluster.GrowCatalog {
			g.e = g.e.detached()
		}
	}
	return nil
}

func (g *grower) node(name string) cluster.Node {
	n, _ := g.sn.s.Node(name)
	return n
}

func (g *grower) target(name string) (target, error) {
	return g.m.target(g.sn.s, g.node(name))
}

func (g *grower) step(st cluster.GrowStep) error {
	m, e, s := g.m, g.e, g.sn.s
	noneFailed := func(string) bool { return false }
	switch st.Kind {
	case cluster.GrowBaseBackup:
		return m.standbyOf(e, g.sn, g.node(st.Node), st.From, g.hba)
	case cluster.GrowInitDB:
		return m.initStep(e, s, g.sn, "initdb", g.node(st.Node), g.hba, g.walseg, g.checksums, noneFailed)
	case cluster.GrowStart:
		return m.initStep(e, s, g.sn, "start", g.node(st.Node), g.hba, 0, false, noneFailed)
	case cluster.GrowClone:
		return m.cloneCoordinator(e, s, g.sn, g.node(st.Node), g.node(st.From), g.hba)
	case cluster.GrowCatalog:
		p, err := g.j.commit(e, func(s *cluster.State) (cluster.GrowPlan, error) { return g.done(s, st) })
		if err != nil {
			return err
		}
		g.committed, g.result = true, p
		return nil
	case cluster.GrowPromote:
		t, err := g.target(st.Node)
		if err != nil {
			return err
		}
		return m.promote(e, t)
	case cluster.GrowStandalone:
		// A primary keeps the recovery settings it had as a standby; they
		// would point it back at its source if it were ever made a standby
		// by hand. Best effort, as after every promotion.
		if t, err := g.target(st.Node); err == nil {
			t.setConf(e.ctx, true, nil, []string{"primary_conninfo", "primary_slot_name"})
		}
		return nil
	case cluster.GrowDropSlot:
		if t, err := g.target(st.From); err == nil {
			t.exec(e.ctx, func(c *pgx.Conn) error { return pgclient.DropSlot(e.ctx, c, st.Node) })
		}
		return nil
	case cluster.GrowSyncNames, cluster.GrowRefreshCoordinators:
		after, err := m.state(e.ctx)
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("%s: %s", st.Kind, err))
			return nil
		}
		if st.Kind == cluster.GrowRefreshCoordinators {
			m.refreshCoordinators(e, after, "", "")
			return nil
		}
		p, _ := after.Node(st.From)
		if err := m.pushSyncNames(e, after, p, inCluster, true); err != nil {
			e.w.Notice("WARNING", err.Error())
		}
		return nil
	case cluster.GrowBlockWrites:
		return g.act.blockWrites(e, s, st)
	case cluster.GrowWaitReplay:
		return g.act.waitReplay(e)
	case cluster.GrowRepoint:
		return g.act.repoint(e, s, st)
	case cluster.GrowCommit:
		return g.act.commit(e)
	case cluster.GrowTruncate:
		return g.truncate(st.Node)
	}
	return fmt.Errorf("unknown step %q", st.Kind)
}

// reachable resolves the agents of every node the steps name, so that a
// plan whose agents are not all known is refused before it starts.
func (m *Manager) reachable(s *cluster.State, steps []cluster.GrowStep) error {
	for _, st := range steps {
		for _, name := range []string{st.Node, st.From} {
			if n, ok := s.Node(name); ok {
				if _, err := m.target(s, n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// standbyOf makes n a streaming standby of from: the slave path of INIT,
// for a slave of from as for a copy (EXPAND's destination, APPEND
// COORDINATOR … FOR …), which is from's slave until its activation.
func (m *Manager) standbyOf(e *req, sn *snapshot, n cluster.Node, from string, hba []cluster.HBALine) error {
	n.Master = from
	s := *sn.s
	s.Nodes = append([]cluster.Node(nil), s.Nodes...)
	for i := range s.Nodes {
		if s.Nodes[i].Name == n.Name {
			s.Nodes[i] = n
		}
	}
	return m.initStep(e, &s, sn, "basebackup", n, hba, 0, false, func(string) bool { return false })
}

// prepareGrowth makes the running nodes ready for a node that joins: they
// trust its host (before it connects to them) and the DBA's password file
// knows it. It returns the manager's pg_hba.conf lines.
func (m *Manager) prepareGrowth(e *req, s *cluster.State) ([]cluster.HBALine, error) {
	managerIPs, err := m.managerIPs(s)
	if err != nil {
		return nil, err
	}
	hba := cluster.HBALines(s, managerIPs...)
	m.refreshHBA(e, s, hba)
	m.refreshDBAPassFile(e, s)
	return hba, nil
}

func (m *Manager) expandCopy(e *req, st *parser.Expand) error {
	unlock, err := m.lockCluster("EXPAND")
	if err != nil {
		return err
	}
	defer unlock()
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	_, exps, _, err := m.growth(e.ctx)
	if err != nil {
		return err
	}
	src, dst := st.Src.Name, st.Dst.Name
	plan, err := cluster.PlanExpandCopy(sn.s, exps, src, dst)
	if err != nil {
		pos := map[string]int{"src": st.Src.Pos, "dst": st.Dst.Pos}
		if p, ok := pos[cluster.ErrorField(err)]; ok {
			return e.at(err, p)
		}
		return err
	}
	dn, _ := sn.s.Node(dst)
	if _, err := m.target(sn.s, dn); err != nil {
		return err
	}
	if err := m.initPrecheck(e.ctx, sn.s, []cluster.InitStage{{Nodes: []cluster.Node{dn}}}); err != nil {
		return err
	}
	hba, err := m.prepareGrowth(e, sn.s)
	if err != nil {
		return err
	}
	j := m.growJournal(e, "EXPAND DATANODE MASTER "+src+" TO "+dst)
	g := &grower{m: m, e: e, sn: sn, hba: hba, j: j, done: func(s *cluster.State, _ cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandCopied(s, src, dst)
	}}
	err = g.run(plan.Steps)
	j.end(e, string(g.failed.Kind), err)
	if err != nil && !g.committed {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "expand %s to %s: %s", src, dst, err).
			WithHint("CLEAN DATANODE MASTER %s, then run EXPAND DATANODE MASTER again.", dst)
	}
	if err != nil {
		return err
	}
	return writeNodeResult(e.w, dst, true, g.result.Result)
}

// coordinatorsOf lists the coordinators that route to datanodes: the
// gtmcoord master and the coordinator masters in the cluster.
func coordinatorsOf(s *cluster.State) []cluster.Node {
	var out []cluster.Node
	for _, n := range s.Nodes {
		if (n.Type == cluster.GtmcoordMaster || n.Type == cluster.CoordinatorMaster) && n.InCluster {
			out = append(out, n)
		}
	}
	return out
}

// partition is a foreign-table partition of a distributed table.
type partition struct {
	parent, name, schema string
	slot                 int
}

// movingPartitions lists, on one coordinator, the partitions of the
// distributed tables for slots: foreign tables on src's server named
// <table>_<slot>, children of a hash-partitioned <table>.
func movingPartitions(ctx context.Context, c *pgx.Conn, src string, slots map[int]bool) ([]partition, error) {
	rows, err := c.Query(ctx, `SELECT p.oid::regclass::text, ch.relname, n.nspname
		FROM pg_inherits i JOIN pg_class ch ON ch.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = ch.relnamespace JOIN pg_foreign_table ft ON ft.ftrelid = ch.oid
		JOIN pg_foreign_server s ON s.oid = ft.ftserver JOIN pg_partitioned_table pt ON pt.partrelid = p.oid
		WHERE s.srvname = `+pgclient.Literal(src)+` AND pt.partstrat = 'h' AND ch.relname LIKE p.relname || '\_%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var p partition
		if err := rows.Scan(&p.parent, &p.name, &p.schema); err != nil {
			return nil, err
		}
		i := strings.LastIndexByte(p.name, '_')
		k, err := strconv.Atoi(p.name[i+1:])
		if i < 0 || err != nil || !slots[k] {
			continue
		}
		p.slot = k
		out = append(out, p)
	}
	return out, rows.Err()
}

func (m *Manager) expandActivate(e *req) error {
	unlock, err := m.lockCluster("EXPAND ACTIVATE")
	if err != nil {
		return err
	}
	defer unlock()
	s, exps, _, err := m.growth(e.ctx)
	if err != nil {
		return err
	}
	todo := cluster.ExpansionsToActivate(exps)
	if len(todo) == 0 {
		return writeNodeResult(e.w, "", true, "no node need activate")
	}
	// Each source's slots are read once, before any of its destinations
	// takes its share of them.
	with := map[string][]string{}
	for _, x := range todo {
		with[x.Src] = append(with[x.Src], x.Dst)
	}
	type owned struct {
		slots []int
		err   error
	}
	owns := map[string]owned{}
	for src := range with {
		slots, err := m.slotsOf(e, s, src)
		owns[src] = owned{slots, err}
	}
	j := m.growJournal(e, "EXPAND ACTIVATE")
	var results []map[string]string
	var failed []string
	for _, x := range todo {
		var desc string
		err := owns[x.Src].err
		if err == nil {
			desc, err = m.activateOne(e, j, x, owns[x.Src].slots, with[x.Src])
		}
		if err != nil {
			desc = err.Error()
			failed = append(failed, x.Dst+": "+desc)
		}
		results = append(results, map[string]string{"nodename": x.Dst, "status": boolText(err == nil), "description": desc})
	}
	if len(failed) > 0 {
		j.end(e, "activate", fmt.Errorf("%s", strings.Join(failed, "; ")))
	} else {
		j.end(e, "", nil)
	}
	return writeTable(e.w, nodeResultColumns, results)
}

// activateOne activates one expansion (cluster.PlanExpandActivate) and
// returns its result row's description.
func (m *Manager) activateOne(e *req, j *growJournal, x cluster.Expansion, owned []int, with []string) (string, error) {
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return "", err
	}
	plan, err := cluster.PlanExpandActivate(sn.s, x, owned, with)
	if err != nil {
		return "", err
	}
	a := &activation{m: m}
	defer a.release(e)
	g := &grower{m: m, e: e, sn: sn, j: j, act: a, done: func(s *cluster.State, st cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandActivated(s, x.Src, x.Dst, st.Slots)
	}}
	if err := g.run(plan.Steps); err != nil {
		return "", err
	}
	return g.result.Result, nil
}

// activation holds, for EXPAND ACTIVATE of one expansion, a connection to
// the source and one open transaction per coordinator that locks the
// distributed tables until their moving partitions point at the
// destination.
type activation struct {
	m        *Manager
	src, dst target
	srcConn  *pgx.Conn
	locks    []heldCoordinator
}

type heldCoordinator struct {
	name  string
	c     *pgx.Conn
	tx    pgx.Tx
	parts []partition
}

// release rolls back what was not committed and closes the connections.
func (a *activation) release(e *req) {
	ctx := context.WithoutCancel(e.ctx)
	for _, h := range a.locks {
		h.tx.Rollback(ctx)
		h.c.Close(ctx)
	}
	if a.srcConn != nil {
		a.srcConn.Close(ctx)
	}
}

// blockWrites pauses writes to st.Slots: on every coordinator, one
// transaction locks the distributed tables that have a partition of those
// slots on st.From.
func (a *activation) blockWrites(e *req, s *cluster.State, st cluster.GrowStep) error {
	src, _ := s.Node(st.From)
	dst, _ := s.Node(st.Node)
	var err error
	if a.src, err = a.m.target(s, src); err != nil {
		return err
	}
	if a.dst, err = a.m.target(s, dst); err != nil {
		return err
	}
	if a.srcConn, err = a.m.connect(e.ctx, a.src.h, src, 5*time.Second); err != nil {
		return fmt.Errorf("connect %s: %w", src.Name, err)
	}
	moving := map[int]bool{}
	for _, k := range st.Slots {
		moving[k] = true
	}
	for _, cn := range coordinatorsOf(s) {
		ct, err := a.m.target(s, cn)
		if err != nil {
			return err
		}
		c, err := ct.sql(e.ctx)
		if err != nil {
			return fmt.Errorf("connect %s: %w", cn.Name, err)
		}
		tx, err := c.Begin(e.ctx)
		if err != nil {
			c.Close(e.ctx)
			return err
		}
		a.locks = append(a.locks, heldCoordinator{name: cn.Name, c: c, tx: tx})
		// A session holding the table must not stall the switch (and every
		// writer behind it) without end.
		if _, err := tx.Exec(e.ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return err
		}
		parts, err := movingPartitions(e.ctx, c, src.Name, moving)
		if err != nil {
			return err
		}
		a.locks[len(a.locks)-1].parts = parts
		// Foreign tables cannot be locked: lock their parents in EXCLUSIVE
		// mode, which blocks writes through this coordinator (reads go on)
		// for the few moments the switch takes.
		done := map[string]bool{}
		for _, p := range parts {
			if done[p.parent] {
				continue
			}
			done[p.parent] = true
			if _, err := tx.Exec(e.ctx, fmt.Sprintf("LOCK TABLE %s IN EXCLUSIVE MODE", p.parent)); err != nil {
				return fmt.Errorf("lock %s on %s: %w", p.parent, cn.Name, err)
			}
		}
	}
	return nil
}

// waitReplay waits up to 20 s for the destination to replay the source's
// current WAL position.
func (a *activation) waitReplay(e *req) error {
	var lsn string
	if err := a.srcConn.QueryRow(e.ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	want, _ := cluster.ParseLSN(lsn)
	for i := 0; i < 40; i++ {
		var got string
		err := a.dst.exec(e.ctx, func(c *pgx.Conn) error {
			return c.QueryRow(e.ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, '0/0')").Scan(&got)
		})
		if v, perr := cluster.ParseLSN(got); err == nil && perr == nil && v >= want {
			return nil
		}
		// The coordinators hold EXCLUSIVE locks meanwhile: a cancel must
		// end the wait at once, not after 20 s.
		if err := sleepCtx(e.ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("expend src node and dst node can not sync in 20 seconds")
}

// repoint re-creates, in the held transactions, the moving partitions as
// foreign tables on the destination's server and gives it the slots in
// adb.slot. Creating a foreign table does not connect to the destination:
// a failure here rolls everything back with it still a standby.
func (a *activation) repoint(e *req, s *cluster.State, st cluster.GrowStep) error {
	dst := a.dst.n
	dh := a.dst.h
	for _, h := range a.locks {
		var b strings.Builder
		fmt.Fprintf(&b, `DO $adb$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %[1]s) THEN
		CREATE SERVER %[2]s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %[3]s, port %[4]s, dbname 'postgres');
		CREATE USER MAPPING FOR PUBLIC SERVER %[2]s OPTIONS (user %[5]s);
	END IF;
	PERFORM adb.secure_server(%[1]s);
END $adb$;
`, pgclient.Literal(dst.Name), pgclient.Ident(dst.Name), pgclient.Literal(dh.Address), pgclient.Literal(strconv.Itoa(dst.Port)), pgclient.Literal(dh.User))
		for _, p := range h.parts {
			fmt.Fprintf(&b, "ALTER TABLE %s DETACH PARTITION %s.%s;\n", p.parent, pgclient.Ident(p.schema), pgclient.Ident(p.name))
			fmt.Fprintf(&b, "DROP FOREIGN TABLE %s.%s;\n", pgclient.Ident(p.schema), pgclient.Ident(p.name))
			fmt.Fprintf(&b, "CREATE FOREIGN TABLE %[1]s.%[2]s PARTITION OF %[3]s FOR VALUES WITH (MODULUS %[4]d, REMAINDER %[5]d) SERVER %[6]s OPTIONS (schema_name %[7]s, table_name %[8]s);\n",
				pgclient.Ident(p.schema), pgclient.Ident(p.name), p.parent, slots, p.slot, pgclient.Ident(dst.Name),
				pgclient.Literal(p.schema), pgclient.Literal(p.name))
		}
		fmt.Fprintf(&b, "UPDATE adb.slot SET node = %s WHERE slot IN (%s);\n", pgclient.Literal(dst.Name), cluster.SlotList(st.Slots))
		if _, err := h.tx.Exec(e.ctx, b.String()); err != nil {
			return fmt.Errorf("re-point the slots on a coordinator: %w", err)
		}
	}
	return nil
}

// commit commits the coordinators' transactions, the destination being
// promoted: from now on the moving slots are the destination's.
func (a *activation) commit(e *req) error {
	var failed []string
	for _, h := range a.locks {
		if err := h.tx.Commit(e.ctx); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s was promoted but the new slot map did not commit on every coordinator (%s): compare adb.slot on the coordinators before anything else",
			a.dst.n.Name, strings.Join(failed, "; "))
	}
	return nil
}

// slotsOf reads, from the gtmcoord master, the slots a datanode owns.
func (m *Manager) slotsOf(e *req, s *cluster.State, node string) ([]int, error) {
	cns := coordinatorsOf(s)
	if len(cns) == 0 {
		return nil, fmt.Errorf("no coordinator in the cluster")
	}
	ct, err := m.target(s, cns[0])
	if err != nil {
		return nil, err
	}
	var out []int
	err = ct.exec(e.ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(e.ctx, "SELECT slot FROM adb.slot WHERE node = "+pgclient.Literal(node)+" ORDER BY slot")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k int
			if err := rows.Scan(&k); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

// expandClean empties, after ACTIVATE, the shard tables each side no longer
// owns: on the source the moved slots, on the destination every slot it
// does not own (cluster.PlanExpandClean).
func (m *Manager) expandClean(e *req) error {
	unlock, err := m.lockCluster("EXPAND CLEAN")
	if err != nil {
		return err
	}
	defer unlock()
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	_, exps, _, err := m.growth(e.ctx)
	if err != nil {
		return err
	}
	tables, err := m.distributedTables(e, sn.s)
	if err != nil {
		return err
	}
	plans := cluster.PlanExpandClean(exps)
	if len(plans) == 0 {
		return writeNodeResult(e.w, "", true, "No database need expand clean.")
	}
	j := m.growJournal(e, "EXPAND CLEAN")
	g := &grower{m: m, e: e, sn: sn, j: j, tables: tables, done: func(_ *cluster.State, st cluster.GrowStep) (cluster.GrowPlan, error) {
		return cluster.ExpandCleaned(st.Node), nil
	}}
	for _, p := range plans {
		if err = g.run(p.Steps); err != nil {
			break
		}
	}
	j.end(e, string(g.failed.Kind), err)
	if err != nil {
		return err
	}
	return writeTable(e.w, nodeResultColumns, g.rows)
}

// truncate empties, on node, the shard tables of the slots it does not
// own, and adds its result row.
func (g *grower) truncate(node string) error {
	e, s := g.e, g.sn.s
	n, ok := s.Node(node)
	if !ok {
		return nil
	}
	owned, err := g.m.slotsOf(e, s, node)
	if err != nil {
		return err
	}
	t, err := g.m.target(s, n)
	if err != nil {
		return err
	}
	emptied := 0
	err = t.exec(e.ctx, func(c *pgx.Conn) error {
		// Only shards of distributed tables: <table>_<slot> for a table the
		// coordinators distribute, never a user table that merely ends in a
		// number.
		for _, tbl := range g.tables {
			for _, k := range cluster.Unowned(owned, slots) {
				name := pgclient.Ident(tbl[0]) + "." + pgclient.Ident(tbl[1]+"_"+strconv.Itoa(k))
				var exists bool
				if err := c.QueryRow(e.ctx, "SELECT to_regclass("+pgclient.Literal(name)+") IS NOT NULL").Scan(&exists); err != nil {
					return err
				}
				if !exists {
					continue
				}
				if _, err := c.Exec(e.ctx, "TRUNCATE "+name); err != nil {
					return err
				}
				emptied++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clean %s: %w", node, err)
	}
	g.rows = append(g.rows, map[string]string{"nodename": node, "status": "t", "description": fmt.Sprintf("%d shard tables emptied", emptied)})
	return nil
}

func (m *Manager) expandStatus(e *req) error {
	_, exps, _, err := m.growth(e.ctx)
	if err != nil {
		return err
	}
	var results []map[string]string
	for _, x := range exps {
		results = append(results, map[string]string{"nodename": x.Dst, "status": "t", "description": x.Status()})
	}
	return writeTable(e.w, nodeResultColumns, results)
}

// distributedTables lists (schema, table) of every distributed table, from
// the first coordinator.
func (m *Manager) distributedTables(e *req, s *cluster.State) ([][2]string, error) {
	cns := coordinatorsOf(s)
	if len(cns) == 0 {
		return nil, fmt.Errorf("no coordinator in the cluster")
	}
	ct, err := m.target(s, cns[0])
	if err != nil {
		return nil, err
	}
	var out [][2]string
	err = ct.exec(e.ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(e.ctx, `SELECT DISTINCT n.nspname, p.relname FROM pg_partitioned_table pt
			JOIN pg_class p ON p.oid = pt.partrelid JOIN pg_namespace n ON n.oid = p.relnamespace
			JOIN pg_inherits i ON i.inhparent = p.oid JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
			WHERE pt.partstrat = 'h'`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t [2]string
			if err := rows.Scan(&t[0], &t[1]); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}
