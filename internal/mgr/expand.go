package mgr

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/jackc/pgx/v5"
)

// The write pause covers the whole distributed table (PostgreSQL cannot
// lock a foreign-table partition), not only its moving slots.
//
// Expansion state in the catalog's settings: "expand.pending.<dst>" = src
// after EXPAND DATANODE MASTER src TO dst; "expand.clean.<dst>" =
// "src:k,k,…" (the slots moved) after EXPAND ACTIVATE, until EXPAND CLEAN.
const (
	expandPending = "expand.pending."
	expandClean   = "expand.clean."
)

// expand is EXPAND DATANODE MASTER src TO dst, EXPAND ACTIVATE and EXPAND
// CLEAN (DESIGN §3): slots move physically. dst starts as a streaming copy
// of src; ACTIVATE blocks writes to the moving slots on every coordinator,
// waits for dst to replay all of src's WAL, promotes dst and re-points the
// moving slots' partitions at it; CLEAN empties, on each side, the shard
// tables it no longer owns.
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
	s := sn.s
	src, ok := s.Node(st.Src.Name)
	if !ok || src.Type != cluster.DatanodeMaster || !src.InCluster {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `%s is not a datanode master in the cluster`, st.Src.Name).At(e.q, st.Src.Pos)
	}
	dst, ok := s.Node(st.Dst.Name)
	if !ok || dst.Type != cluster.DatanodeMaster {
		return pgerror.New(pgerror.UndefinedObject, `datanode master "%s" does not exist in the node table`, st.Dst.Name).
			WithHint("ADD DATANODE MASTER it first.").At(e.q, st.Dst.Pos)
	}
	if dst.InCluster || dst.Initialized {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "The node %s status is error. It should be not initialized and not in cluster.", dst.Name).At(e.q, st.Dst.Pos)
	}
	set, err := m.cat.Settings(e.ctx)
	if err != nil {
		return err
	}
	for k := range set {
		switch {
		case strings.HasPrefix(k, expandClean):
			return pgerror.New(pgerror.ObjectNotInPrereqState, "an expansion is not cleaned yet").WithHint("Run EXPAND CLEAN first.")
		case strings.HasPrefix(k, expandPending):
			return pgerror.New(pgerror.ObjectNotInPrereqState, "datanode %s is being expanded already", strings.TrimPrefix(k, expandPending)).
				WithHint("One expansion at a time: EXPAND ACTIVATE and EXPAND CLEAN it first.")
		}
	}
	if _, err := m.target(s, dst); err != nil {
		return err
	}
	if err := m.initPrecheck(e.ctx, s, []cluster.InitStage{{Nodes: []cluster.Node{dst}}}); err != nil {
		return err
	}
	managerIPs, err := m.managerIPs(s)
	if err != nil {
		return err
	}
	hba := cluster.HBALines(s, managerIPs...)
	m.refreshHBA(e, s, hba)
	m.refreshDBAPassFile(e, s)
	// dst streams from src like a slave until ACTIVATE.
	asSlave := dst
	asSlave.Master = src.Name
	s2 := &cluster.State{Hosts: s.Hosts, Nodes: append([]cluster.Node(nil), s.Nodes...)}
	for i := range s2.Nodes {
		if s2.Nodes[i].Name == dst.Name {
			s2.Nodes[i] = asSlave
		}
	}
	if err := m.initStep(e, s2, sn, "basebackup", asSlave, hba, 0, false, func(string) bool { return false }); err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "expand %s to %s: %s", src.Name, dst.Name, err).
			WithHint("CLEAN DATANODE MASTER %s, then run EXPAND DATANODE MASTER again.", dst.Name)
	}
	if err := m.cat.SetSetting(context.WithoutCancel(e.ctx), expandPending+dst.Name, src.Name); err != nil {
		return err
	}
	return writeNodeResult(e.w, dst.Name, true, "streaming from "+src.Name+"; run EXPAND ACTIVATE")
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
	set, err := m.cat.Settings(e.ctx)
	if err != nil {
		return err
	}
	var dsts []string
	for k := range set {
		if strings.HasPrefix(k, expandPending) {
			dsts = append(dsts, strings.TrimPrefix(k, expandPending))
		}
	}
	sort.Strings(dsts)
	if len(dsts) == 0 {
		return writeNodeResult(e.w, "", true, "no node need activate")
	}
	var results []map[string]string
	for _, d := range dsts {
		desc, err := m.activateOne(e, set[expandPending+d], d)
		ok := err == nil
		if err != nil {
			desc = err.Error()
		}
		results = append(results, map[string]string{"nodename": d, "status": boolText(ok), "description": desc})
	}
	return writeTable(e.w, nodeResultColumns, results)
}

func (m *Manager) activateOne(e *req, srcName, dstName string) (string, error) {
	s, err := m.state(e.ctx)
	if err != nil {
		return "", err
	}
	src, _ := s.Node(srcName)
	dst, _ := s.Node(dstName)
	st, err := m.target(s, src)
	if err != nil {
		return "", err
	}
	dt, err := m.target(s, dst)
	if err != nil {
		return "", err
	}
	var conn *pgx.Conn
	if conn, err = m.connect(e.ctx, st.h, src, 5*time.Second); err != nil {
		return "", fmt.Errorf("connect %s: %w", src.Name, err)
	}
	defer conn.Close(e.ctx)
	// Every second slot of src moves.
	var owned []int
	rows, err := m.slotsOf(e, s, src.Name)
	if err != nil {
		return "", err
	}
	owned = rows
	moving := map[int]bool{}
	var movingList []string
	for i, k := range owned {
		if i%2 == 1 {
			moving[k] = true
			movingList = append(movingList, strconv.Itoa(k))
		}
	}
	if len(moving) == 0 {
		return "", fmt.Errorf("%s owns %d slot(s): nothing to move", src.Name, len(owned))
	}
	// Block writes to the moving slots: on every coordinator, one
	// transaction holds a lock on the distributed tables until their moving
	// partitions point at dst.
	type held struct {
		c     *pgx.Conn
		tx    pgx.Tx
		parts []partition
	}
	var locks []held
	defer func() {
		for _, h := range locks {
			h.tx.Rollback(context.WithoutCancel(e.ctx))
			h.c.Close(context.WithoutCancel(e.ctx))
		}
	}()
	for _, cn := range coordinatorsOf(s) {
		ct, err := m.target(s, cn)
		if err != nil {
			return "", err
		}
		c, err := ct.sql(e.ctx)
		if err != nil {
			return "", fmt.Errorf("connect %s: %w", cn.Name, err)
		}
		tx, err := c.Begin(e.ctx)
		if err != nil {
			c.Close(e.ctx)
			return "", err
		}
		locks = append(locks, held{c: c, tx: tx})
		// A session holding the table must not stall the switch (and every
		// writer behind it) without end.
		if _, err := tx.Exec(e.ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return "", err
		}
		parts, err := movingPartitions(e.ctx, c, src.Name, moving)
		if err != nil {
			return "", err
		}
		locks[len(locks)-1].parts = parts
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
				return "", fmt.Errorf("lock %s on %s: %w", p.parent, cn.Name, err)
			}
		}
	}
	e.w.Notice("NOTICE", fmt.Sprintf("writes to slots %s of %s are blocked; waiting for %s to catch up", strings.Join(movingList, ","), src.Name, dst.Name))
	var target string
	if err := conn.QueryRow(e.ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		return "", err
	}
	want, _ := cluster.ParseLSN(target)
	caught := false
	for i := 0; i < 40 && !caught; i++ {
		var lsn string
		err := dt.exec(e.ctx, func(c *pgx.Conn) error {
			return c.QueryRow(e.ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, '0/0')").Scan(&lsn)
		})
		if v, perr := cluster.ParseLSN(lsn); err == nil && perr == nil && v >= want {
			caught = true
			break
		}
		// The coordinators hold EXCLUSIVE locks meanwhile: a cancel must
		// end the wait at once, not after 20 s.
		if err := sleepCtx(e.ctx, 500*time.Millisecond); err != nil {
			return "", err
		}
	}
	if !caught {
		return "", fmt.Errorf("expend src node and dst node can not sync in 20 seconds")
	}
	// Re-point the partitions in the locked transactions first (creating
	// a foreign table does not connect to dst): a failure here rolls
	// everything back with dst still a standby, and ACTIVATE can be run
	// again. Only then promote and commit.
	dh, _ := s.Host(dst.Host)
	for _, h := range locks {
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
		fmt.Fprintf(&b, "UPDATE adb.slot SET node = %s WHERE slot IN (%s);\n", pgclient.Literal(dst.Name), strings.Join(movingList, ","))
		if _, err := h.tx.Exec(e.ctx, b.String()); err != nil {
			return "", fmt.Errorf("re-point the slots on a coordinator: %w", err)
		}
	}
	if err := m.promote(e, dt); err != nil {
		return "", err
	}
	ctx := context.WithoutCancel(e.ctx)
	dt.setConf(ctx, true, nil, []string{"primary_conninfo", "primary_slot_name"})
	var failed []string
	for i := range locks {
		if err := locks[i].tx.Commit(ctx); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("%s was promoted but the new slot map did not commit on every coordinator (%s): compare adb.slot on the coordinators before anything else",
			dst.Name, strings.Join(failed, "; "))
	}
	st.exec(ctx, func(c *pgx.Conn) error { return pgclient.DropSlot(ctx, c, dst.Name) })
	if err := m.markNodes(ctx, []string{dst.Name}, func(x *cluster.Node) {
		x.Initialized, x.InCluster, x.AllowCure, x.CureStatus = true, true, true, "normal"
	}); err != nil {
		return "", err
	}
	if err := m.cat.SetSetting(ctx, expandClean+dst.Name, src.Name+":"+strings.Join(movingList, ",")); err != nil {
		return "", err
	}
	if err := m.cat.DeleteSetting(ctx, expandPending+dst.Name); err != nil {
		return "", err
	}
	after, err := m.state(ctx)
	if err == nil {
		m.refreshCoordinators(&req{ctx: ctx, sess: e.sess, q: e.q, w: e.w}, after, "", "")
	}
	return fmt.Sprintf("slots %s moved from %s", strings.Join(movingList, ","), src.Name), nil
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
// owns: on src the moved slots, on dst every slot it does not own.
func (m *Manager) expandClean(e *req) error {
	unlock, err := m.lockCluster("EXPAND CLEAN")
	if err != nil {
		return err
	}
	defer unlock()
	set, err := m.cat.Settings(e.ctx)
	if err != nil {
		return err
	}
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	tables, err := m.distributedTables(e, s)
	if err != nil {
		return err
	}
	var results []map[string]string
	for k, v := range set {
		if !strings.HasPrefix(k, expandClean) {
			continue
		}
		dstName := strings.TrimPrefix(k, expandClean)
		srcName, _, _ := strings.Cut(v, ":")
		for _, side := range []string{srcName, dstName} {
			n, ok := s.Node(side)
			if !ok {
				continue
			}
			owned, err := m.slotsOf(e, s, side)
			if err != nil {
				return err
			}
			own := map[int]bool{}
			for _, o := range owned {
				own[o] = true
			}
			t, err := m.target(s, n)
			if err != nil {
				return err
			}
			dropped := 0
			err = t.exec(e.ctx, func(c *pgx.Conn) error {
				// Only shards of distributed tables: <table>_<slot> for a
				// table the coordinators distribute, never a user table that
				// merely ends in a number.
				for _, tbl := range tables {
					for k := 0; k < slots; k++ {
						if own[k] {
							continue
						}
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
						dropped++
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("clean %s: %w", side, err)
			}
			results = append(results, map[string]string{"nodename": side, "status": "t", "description": fmt.Sprintf("%d shard tables emptied", dropped)})
		}
		m.cat.DeleteSetting(context.WithoutCancel(e.ctx), k)
	}
	if len(results) == 0 {
		return writeNodeResult(e.w, "", true, "No database need expand clean.")
	}
	return writeTable(e.w, nodeResultColumns, results)
}

func (m *Manager) expandStatus(e *req) error {
	set, err := m.cat.Settings(e.ctx)
	if err != nil {
		return err
	}
	var results []map[string]string
	for k, v := range set {
		switch {
		case strings.HasPrefix(k, expandPending):
			results = append(results, map[string]string{"nodename": strings.TrimPrefix(k, expandPending), "status": "t", "description": "streaming from " + v + "; run EXPAND ACTIVATE"})
		case strings.HasPrefix(k, expandClean):
			results = append(results, map[string]string{"nodename": strings.TrimPrefix(k, expandClean), "status": "t", "description": "activated (" + v + "); run EXPAND CLEAN"})
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i]["nodename"] < results[j]["nodename"] })
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
