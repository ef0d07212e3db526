package mgr

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/coord"
	"github.com/adbmgr/adbmgr/internal/expand"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/params"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/switches"
)

var opColumns = []pgwire.Column{
	{Name: "operation type", TypeOID: pgwire.OIDText},
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
}

// opResult is one row of an "operation type | nodename | status |
// description" result (INIT ALL, START ALL, STOP ALL).
type opResult struct {
	op, node string
	ok       bool
	desc     string
}

// notice reports r as a NOTICE, or a WARNING when it failed.
func (r opResult) notice(w pgwire.ResultWriter) {
	sev := "NOTICE"
	if !r.ok {
		sev = "WARNING"
	}
	w.Notice(sev, fmt.Sprintf("%s %s: %s", r.op, r.node, r.desc))
}

// failed sets r to a failure described by err: its message, and its HINT
// when it has one (a result row has no field of its own for it).
func (r *opResult) failed(err error) {
	r.ok, r.desc = false, err.Error()
	if pe, ok := pgerror.As(err); ok && pe.Hint != "" {
		r.desc += " HINT: " + pe.Hint
	}
}

func writeOpResults(w pgwire.ResultWriter, res []opResult) error {
	rows := make([]map[string]string, len(res))
	for i, r := range res {
		rows[i] = map[string]string{"operation type": r.op, "nodename": r.node, "status": boolText(r.ok), "description": r.desc}
	}
	return writeTable(w, opColumns, rows)
}

// snapshot is everything a cluster operation reads from the catalog.
type snapshot struct {
	s      *cluster.State
	params []cluster.Param
	hba    []cluster.HBARule
}

func (m *Manager) snapshot(ctx context.Context) (*snapshot, error) {
	sn := &snapshot{}
	err := m.cat.View(ctx, func(tx catalog.ReadTx) (err error) {
		if sn.s, err = tx.State(); err != nil {
			return err
		}
		if sn.params, err = tx.Params(); err != nil {
			return err
		}
		sn.hba, err = tx.HBA()
		return err
	})
	return sn, err
}

// lockCluster serialises commands that act on nodes: two INIT ALLs, or an
// INIT and a CLEAN, must never interleave. It refuses at once when another
// one runs (they take long). LIST and MONITOR do not take it. It also
// refuses while a host's address changed and FLUSH HOST has not moved its
// nodes (requireFlushed).
func (m *Manager) lockCluster(command string) (func(), error) {
	unlock, err := m.lockOps(command)
	if err != nil {
		return nil, err
	}
	if err := m.requireFlushed(command); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// lockOps is lockCluster without the FLUSH HOST check: for FLUSH HOST
// itself, and for START and STOP, which a DBA may need to bring a master
// up before FLUSH HOST (it refuses while one is down).
//
// A DBA's command that finds one of the doctor's actions running waits for
// it, up to doctorActionWait: the doctor's actions are short (a restart, a
// failover) and a DBA cannot know one runs; the doctor itself never waits.
func (m *Manager) lockOps(command string) (func(), error) {
	select {
	case m.ops <- struct{}{}:
		m.opsHolder.Store(command)
		return m.unlockOps, nil
	default:
	}
	holder, _ := m.opsHolder.Load().(string)
	if !isDoctorAction(command) && isDoctorAction(holder) {
		t := time.NewTimer(doctorActionWait)
		defer t.Stop()
		select {
		case m.ops <- struct{}{}:
			m.opsHolder.Store(command)
			return m.unlockOps, nil
		case <-t.C:
		}
	}
	return nil, pgerror.New(pgerror.ObjectInUse, "cannot run %s: another cluster operation is running", command).
		WithHint("Wait for it to finish; MONITOR ALL shows the cluster meanwhile.")
}

// doctorActionWait is how long a DBA's command waits for a doctor's
// action that holds the cluster lock (lockOps).
const doctorActionWait = 30 * time.Second

// isDoctorAction reports whether a lock holder's name is one of the
// doctor's actions (doctorHands.lock names them so).
func isDoctorAction(command string) bool { return strings.HasPrefix(command, doctorLockPrefix) }

// unlockOps frees the cluster lock, once the doctor's actions let in
// while the command only waited (guestPass) ended.
func (m *Manager) unlockOps() {
	m.guests.Close()
	m.opsHolder.Store("")
	<-m.ops
}

// lockCatalog is lockCluster for the quick catalog commands (ADD, ALTER,
// DROP of hosts and nodes): they wait their turn a little — two sessions
// adding nodes at once both succeed — but refuse rather than sit behind an
// INIT ALL, whose snapshot they would otherwise change under it.
func (m *Manager) lockCatalog(ctx context.Context, command string) (func(), error) {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case m.ops <- struct{}{}:
		m.opsHolder.Store(command)
		return m.unlockOps, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, pgerror.New(pgerror.ObjectInUse, "cannot run %s: another cluster operation is running", command).
			WithHint("Wait for it to finish; MONITOR ALL shows the cluster meanwhile.")
	}
}

// userHBA is the ADD HBA lines that apply to n.
func userHBA(n cluster.Node, rules []cluster.HBARule) []cluster.HBALine {
	var out []cluster.HBALine
	for _, r := range rules {
		if r.Applies(n) {
			if l, err := parseHBALine(r.Line); err == nil {
				out = append(out, l)
			}
		}
	}
	return out
}

// initAll is INIT ALL: checks under the cluster lock, then the run's
// stages (initRun): cluster.PlanInit's node stages, the coordinators, the
// sync names, and incluster for every node that made it.
func (m *Manager) initAll(e *req, st *parser.InitAll) error {
	unlock, err := m.lockCluster("INIT ALL")
	if err != nil {
		return err
	}
	defer unlock()
	walseg, err := walSegSize(e.q, st.Options)
	if err != nil {
		return err
	}
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	s := sn.s
	if err := m.checkGrowth(e.ctx); err != nil {
		return err
	}
	stages, err := cluster.PlanInit(s)
	if err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, "cannot INIT ALL: %s", err)
	}
	if err := m.initPrecheck(e.ctx, s, stages); err != nil {
		return err
	}
	warnUnwritable(e, s.Nodes, sn.params)
	managerIPs, err := m.managerIPs(s)
	if err != nil {
		return err
	}
	m.refreshDBAPassFile(e, s)
	r := &initRun{m: m, e: e, sn: sn, journal: m.journal(e, "INIT ALL"), failed: map[string]bool{}}
	hba := cluster.HBALines(s, managerIPs...)
	for _, stage := range stages {
		if err := r.stage(stage, hba, walseg, st.DataChecksums); err != nil {
			return err
		}
	}
	cur, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	r.coordinators(cur)
	r.syncNames(cur)
	return r.finish(cur)
}

// initRun is one INIT ALL's progress: the result rows and the nodes that
// failed, which later stages skip. Each finished step is reported at once
// (the writer is safe for concurrent use), so progress shows while a
// stage's other nodes work.
type initRun struct {
	m       *Manager
	e       *req
	sn      *snapshot
	journal func(status, step, detail string)

	mu      sync.Mutex
	results []opResult
	failed  map[string]bool
}

func (r *initRun) record(res opResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	if !res.ok {
		r.failed[res.node] = true
	}
}

func (r *initRun) isFailed(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed[name]
}

// ok is whether n is initialised and did not fail in this run.
func (r *initRun) ok(n cluster.Node) bool { return n.Initialized && !r.isFailed(n.Name) }

// stage runs one of cluster.PlanInit's stages on its nodes in parallel.
func (r *initRun) stage(stage cluster.InitStage, hba []cluster.HBALine, walseg int32, checksums bool) error {
	r.journal("running", stage.Operation, "")
	// Fresh snapshot: earlier stages marked nodes initialised.
	cur, err := r.m.state(r.e.ctx)
	if err != nil {
		return err
	}
	res := make([]opResult, len(stage.Nodes))
	parallel(len(stage.Nodes), func(i int) {
		n, _ := cur.Node(stage.Nodes[i].Name)
		one := opResult{op: stage.Operation, node: n.Name, ok: true, desc: "success"}
		if err := r.m.initStep(r.e, cur, r.sn, stage.Action, n, hba, walseg, checksums, r.isFailed); err != nil {
			one.failed(err)
		}
		one.notice(r.e.w)
		res[i] = one
	})
	for _, one := range res {
		r.record(one)
	}
	return nil
}

// coordinators writes every initialised coordinator's node list and
// foreign servers.
func (r *initRun) coordinators(cur *cluster.State) {
	r.journal("running", "config gtmcoord and coordinator", "")
	for _, n := range cur.Nodes {
		if coord.IsCoordinator(n) && r.ok(n) {
			one := opResult{op: "config gtmcoord and coordinator", node: n.Name, ok: true, desc: "success"}
			if err := r.m.configureCoordinator(r.e.ctx, cur, n, r.ok); err != nil {
				one.failed(err)
			}
			one.notice(r.e.w)
			r.record(one)
		}
	}
}

// syncNames writes synchronous_standby_names on the masters and on the
// slaves that have slaves of their own; a failure is a WARNING.
func (r *initRun) syncNames(cur *cluster.State) {
	r.journal("running", "synchronous_standby_names", "")
	for _, n := range cur.Nodes {
		if r.ok(n) && (n.Type.IsMaster() || len(cur.Children(n.Name)) > 0) {
			if err := r.m.pushSyncNames(r.e, cur, n, r.ok, true); err != nil {
				r.e.w.Notice("WARNING", err.Error())
			}
		}
	}
}

// finish takes every node that made it into the cluster, ends the journal
// entry and writes the result rows.
func (r *initRun) finish(cur *cluster.State) error {
	var done []string
	for _, n := range cur.Nodes {
		if r.ok(n) {
			done = append(done, n.Name)
		}
	}
	if err := r.m.markNodes(r.e.ctx, done, func(n *cluster.Node) {
		n.InCluster, n.AllowCure, n.CureStatus = true, true, "normal"
	}); err != nil {
		return err
	}
	status, detail := "done", ""
	if len(r.failed) > 0 {
		status = "failed"
		names := make([]string, 0, len(r.failed))
		for n := range r.failed {
			names = append(names, n)
		}
		sort.Strings(names)
		detail = "failed: " + strings.Join(names, ", ")
		r.e.w.Notice("WARNING", fmt.Sprintf("INIT ALL did not complete: %s. Fix the cause, CLEAN the failed nodes if their directories are not empty, and run INIT ALL again; the nodes that succeeded are kept.", detail))
	}
	r.journal(status, "end", detail)
	return writeOpResults(r.e.w, r.results)
}

// journal opens an entry of the operation journal and returns the function
// that records each later step. Journal writes survive a cancelled
// statement (they describe what happened); a journal that cannot be written
// is logged, never a reason to stop an operation half-way.
func (m *Manager) journal(e *req, command string) func(status, step, detail string) {
	write := func(id int64, status, step, detail string) int64 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 10*time.Second)
		defer cancel()
		id, err := m.cat.Journal(ctx, id, command, status, step, detail)
		if err != nil {
			m.log.Warn("cannot write the operation journal", "command", command, "step", step, "error", err)
		}
		return id
	}
	id := write(0, "running", "start", "")
	return func(status, step, detail string) {
		if id != 0 {
			write(id, status, step, detail)
		}
	}
}

func walSegSize(q string, opts []parser.Option) (int32, error) {
	o, err := parseOptions(q, opts, []string{"walsegsize"}, "INIT ALL")
	if err != nil {
		return 0, err
	}
	opt, ok := o.byKey["walsegsize"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(opt.Value)
	if err != nil || n < 1 || n > 1024 || n&(n-1) != 0 {
		return 0, o.invalid(opt, "The value of walsegsize must be a power of 2 between 1 and 1024.")
	}
	return int32(n), nil
}

// initPrecheck refuses INIT ALL before anything is touched: the hosts run
// as one user (mixedUsers), every agent involved must answer, every
// directory to fill must be absent or empty, every port of a node to
// create must be free.
func (m *Manager) initPrecheck(ctx context.Context, s *cluster.State, stages []cluster.InitStage) error {
	if err := mixedUsers(s); err != nil {
		return err
	}
	seen := map[string]bool{}
	var nodes []cluster.Node
	var hosts []cluster.Host
	for _, st := range stages {
		for _, n := range st.Nodes {
			if seen[n.Name] {
				continue
			}
			seen[n.Name] = true
			nodes = append(nodes, n)
			h, _ := s.Host(n.Host)
			if !seen["host "+h.Name] {
				seen["host "+h.Name] = true
				hosts = append(hosts, h)
			}
		}
	}
	onHost := map[string][]string{}
	for _, n := range nodes {
		onHost[n.Host] = append(onHost[n.Host], n.Name)
	}
	errs := make([]error, len(hosts))
	parallel(len(hosts), func(i int) {
		if err := m.fleet.AgentUp(ctx, hosts[i]); err != nil {
			errs[i] = pgerror.New(pgerror.ObjectNotInPrereqState, `the agent on host "%s" is not running (nodes %s need it)`,
				hosts[i].Name, strings.Join(onHost[hosts[i].Name], ", ")).
				WithHint("Run START AGENT %s first; MONITOR AGENT shows every agent.", hosts[i].Name)
		}
	})
	if err := firstError(errs); err != nil {
		return err
	}
	errs = make([]error, len(nodes))
	parallel(len(nodes), func(i int) {
		n := nodes[i]
		if n.Initialized {
			return
		}
		t, err := fleet.At(s, n)
		if err != nil {
			errs[i] = err
			return
		}
		h := t.Host
		if err := cluster.CheckSocketPath(n, h); err != nil {
			errs[i] = pgerror.New(pgerror.InvalidParameterValue, "%s", err).WithHint("Give the node a shorter name.")
			return
		}
		if m.fleet.Listening(t) {
			errs[i] = pgerror.New(pgerror.ObjectInUse, `port %d on host "%s" (%s) is already in use; %s cannot listen there`, n.Port, h.Name, h.Address, describeNode(n)).
				WithHint("Stop what listens there, or ALTER the node's PORT.")
			return
		}
		d, err := m.fleet.CheckDir(ctx, t)
		if err != nil {
			errs[i] = pgerror.New(pgerror.InvalidParameterValue, `cannot use the path "%s" of %s on host "%s": %s`, n.Path, describeNode(n), h.Name, agentError(err))
			return
		}
		if d.Exists && !d.Empty {
			errs[i] = pgerror.New(pgerror.ObjectNotInPrereqState, `the data directory "%s" of %s on host "%s" is not empty`, n.Path, describeNode(n), h.Name).
				WithHint("The path of a node must be an empty directory: CLEAN the node, or ALTER its PATH.")
		}
	})
	return firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func describeNode(n cluster.Node) string { return string(n.Type) + ` "` + n.Name + `"` }

// initStep does one node's part of one INIT ALL stage; the node is made
// by expand.Maker, as EXPAND's and APPEND's nodes are.
func (m *Manager) initStep(e *req, s *cluster.State, sn *snapshot, action string, n cluster.Node, hba []cluster.HBALine,
	walseg int32, checksums bool, failed func(string) bool) error {
	ctx := e.ctx
	mem, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	// The manager's settings first, the user's SET rows on top (a user's
	// wal_keep_size beats the manager's); keys only the manager may set
	// never come from the rows (params.IsManaged).
	set := cluster.ServerParams(n, mem.Host)
	user, remove := params.Effective(n, sn.params)
	for k, v := range user {
		set[k] = v
	}
	conf := fleet.Conf{Set: set, Remove: remove, HBA: hba, UserHBA: userHBA(n, sn.hba)}
	mk := expand.Maker{Fleet: m.fleet, Progress: e.w, Mark: func(ctx context.Context, name string) error {
		return m.markNodes(ctx, []string{name}, func(n *cluster.Node) { n.Initialized = true })
	}}
	switch action {
	case "initdb":
		return mk.InitDB(ctx, mem, conf, walseg, checksums)
	case "start":
		if failed(n.Name) {
			return fmt.Errorf("not initialized")
		}
		return mk.Start(ctx, mem)
	case "basebackup":
		parentNode, ok := s.Node(n.Master)
		if !ok || failed(parentNode.Name) {
			return fmt.Errorf("its master %q was not initialized", n.Master)
		}
		parent, err := fleet.At(s, parentNode)
		if err != nil {
			return err
		}
		return mk.Standby(ctx, mem, parent, conf)
	}
	return fmt.Errorf("unknown init action %q", action)
}

// configureCoordinator gives a coordinator (and the gtmcoord master, the
// primary coordinator) the cluster's node list, slot map and foreign
// servers (coord.Configure).
func (m *Manager) configureCoordinator(ctx context.Context, s *cluster.State, c cluster.Node, ok func(cluster.Node) bool) error {
	mem, err := fleet.At(s, c)
	if err != nil {
		return err
	}
	return m.fleet.ConfigureCoordinator(ctx, s, mem, ok)
}

// pushSyncNames writes a master's synchronous_standby_names from the
// catalog, reloads it, and checks that pg_stat_replication agrees with the
// catalog's sync states. With waitAll (INIT) it waits for every slave to
// stream; otherwise (ALTER) slaves that are not streaming are skipped — a
// dead sync slave is exactly why a DBA demotes it — and named in a NOTICE.
func (m *Manager) pushSyncNames(e *req, s *cluster.State, master cluster.Node, ok func(cluster.Node) bool, waitAll bool) error {
	return switches.SyncNames(e.ctx, m.fleet, s, master, ok, waitAll, e.w)
}
