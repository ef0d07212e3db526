// Package mgr executes the manager's statements: it is the pgwire Handler.
// One file per command family; the decisions themselves are pure functions
// in package cluster, and every catalog change runs inside one catalog
// transaction so a refused or failed command changes nothing.
package mgr

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/deploy"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Options configures a Manager.
type Options struct {
	// Interrupted tells that the previous manager left operations
	// unfinished (the journal's "interrupted" entries).
	Interrupted bool
	// DataDir is the manager's data directory (pki/, agents/).
	DataDir string
	// Agents reaches the hosts' agents; nil refuses every agent command.
	Agents *agentclient.Pool
	// InstallDir is the default adbhome of new hosts: the directory holding
	// the manager's bin/.
	InstallDir string
	// PGHome is the default pghome of new hosts.
	PGHome string
	// Resolve maps a host name to an address when ADD HOST has no ADDRESS.
	// Defaults to the system resolver, IPv4 preferred.
	Resolve func(ctx context.Context, name string) (string, error)
	// AgentBinary is the adbagent shipped beside bin/adbmgr: START AGENT
	// runs it, and only when a host's <adbhome>/bin/adbagent has the same
	// SHA-256. Empty: no agent is started.
	AgentBinary string
	// CheckHostFiles checks a local host's adbhome and pghome at ADD and
	// ALTER HOST; nil means checkHostFiles (ownership and modes on this
	// machine). Tests with invented paths replace it.
	CheckHostFiles func(cluster.Host) error
	// CrashAt is the crash test hook's point (crash.go; adbmgr start
	// --crash-at): empty, as always outside tests, does nothing.
	CrashAt string
	Logger  *slog.Logger
	// Observer, when set, is told of every statement (observe.go).
	Observer Observer
}

// Manager executes statements against the catalog.
type Manager struct {
	cat    catalog.Catalog
	opts   Options
	log    *slog.Logger
	agents *agentclient.Pool
	// fleet does what the switches (and the node helpers of nodeops.go)
	// do to nodes: agent calls and SQL, with the nodes' credentials.
	fleet fleet.Fleet

	// ops is a one-slot semaphore held by commands that change the cluster
	// or the catalog (INIT, START, STOP, CLEAN, SET, ADD NODE, …), so that
	// two of them never interleave. LIST and MONITOR never take it.
	ops chan struct{}
	// opsHolder names the command holding ops (lockOps), for waiting on
	// the doctor's actions rather than refusing.
	opsHolder atomic.Value // string
	// guests lets the doctor act on other nodes while the command holding
	// ops only waits (lock.go).
	guests guestPass

	// interrupted is set at start-up when the journal shows operations the
	// previous manager did not finish.
	interrupted bool
	// doctorHeld, under doctorMu, says why the doctor is held until START
	// DOCTOR (interrupted operations), for LIST DOCTOR; "" when it is not.
	doctorHeld string
	// doctorStarted, under doctorMu: the doctor was started since this
	// manager began (it is then no longer held).
	doctorStarted bool

	// creds are the nodes' password and the CA (nodesecrets.go).
	creds nodeCreds

	// known is the SSH host keys' record, made once (deploy.go).
	sshOnce sync.Once
	known   *deploy.KnownHosts
	keyMu   sync.Mutex // DEPLOY … PASSWORD's authorized_keys edits

	// bg is Run's context; the doctor lives under it.
	bg         context.Context
	doctorMu   sync.Mutex
	doctorStop func()
	// looks are the doctor's looks at the nodes (doctor_looks.go).
	looks lookout
	// events are the sessions that LISTEN (events.go); history is the
	// monitor history's sampler (history.go).
	events  listeners
	history history
}

// New returns a Manager over cat.
func New(cat catalog.Catalog, opts Options) *Manager {
	if opts.PGHome == "" {
		opts.PGHome = cluster.DefaultPGHome
	}
	if opts.Resolve == nil {
		opts.Resolve = resolve
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	agents := opts.Agents
	if agents == nil {
		// Without credentials every agent looks unreachable.
		agents = agentclient.New(&tls.Config{MinVersion: tls.VersionTLS13})
	}
	m := &Manager{cat: cat, opts: opts, log: log, agents: agents, ops: make(chan struct{}, 1), interrupted: opts.Interrupted}
	m.fleet = fleet.New(agents, fleet.Credentials{Secrets: m.nodeSecrets, Auth: m.nodeAuth})
	return m
}

func resolve(ctx context.Context, name string) (string, error) {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, name)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if v4 := a.IP.To4(); v4 != nil {
			return v4.String(), nil
		}
	}
	if len(addrs) > 0 {
		return addrs[0].IP.String(), nil
	}
	return "", &net.DNSError{Err: "no address", Name: name}
}

var _ pgwire.Handler = (*Manager)(nil)

// req carries what one statement's execution needs.
type req struct {
	ctx  context.Context
	sess *pgwire.Session
	q    string // the whole query string, for error positions
	w    pgwire.ResultWriter
}

// at positions err (if it is a *pgerror.Error without a position) at the
// byte offset pos of the query.
func (e *req) at(err error, pos int) error {
	if pe, ok := pgerror.As(err); ok && pe.Position == 0 {
		pe.At(e.q, pos)
	}
	return err
}

func (e *req) notices(ns []cluster.Notice) {
	for _, n := range ns {
		e.w.Notice(n.Severity, n.Message)
	}
}

// secretStatement finds the statements that take a password (DEPLOY, START
// AGENT, CREATE/ALTER USER or ROLE).
var secretStatement = regexp.MustCompile(`(?i)\b(deploy|start\s+agent|(create|alter)\s+(user|role))\b`)

// mayCarryPassword: a query naming PASSWORD, or one of the statements that
// take a password with a quoted string in it (a misspelt PASSWORD keyword
// leaves the word unknown, the password still in the line).
func mayCarryPassword(q string) bool {
	return strings.Contains(strings.ToLower(q), "password") || (secretStatement.MatchString(q) && strings.ContainsAny(q, "'\"$"))
}

// Query implements pgwire.Handler. As in PostgreSQL, the whole string is
// parsed first, so a syntax error anywhere runs nothing; then statements run
// in order and the first error ends the query.
func (m *Manager) Query(ctx context.Context, s *pgwire.Session, q string, w pgwire.ResultWriter) error {
	stmts, err := parser.Parse(q)
	if err != nil {
		// psql prints the line an error points into: a query that may
		// carry a password (CREATE USER, DEPLOY, START AGENT …) gets no
		// position, so a typo never echoes the password.
		if pe, ok := pgerror.As(err); ok && mayCarryPassword(q) {
			pe.Position = 0
			if i := strings.Index(pe.Message, " at or near "); i >= 0 {
				pe.Message = pe.Message[:i]
			}
		}
		return err
	}
	if len(stmts) == 0 {
		return w.EmptyQuery()
	}
	// Every statement is authorised before any runs: a refused one in a
	// list changes nothing, as a syntax error does.
	for _, st := range stmts {
		if err := m.authorizeAudited(&req{ctx: ctx, sess: s, q: q, w: w}, st); err != nil {
			return err
		}
	}
	for _, st := range stmts {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &req{ctx: ctx, sess: s, q: q, w: w}
		// Errors point at a token only when they are about one; a refusal
		// of the statement as a whole carries no position, as in PostgreSQL.
		if err := m.audited(e, st); err != nil {
			return err
		}
	}
	return nil
}

// execute is the dispatcher: one case per statement, each a call. It is
// as long as the command set is; splitting it would only hide the table.
func (m *Manager) execute(e *req, st parser.Statement) error {
	switch st := st.(type) {
	case *parser.AddHost:
		return m.addHost(e, st)
	case *parser.AlterHost:
		return m.alterHost(e, st)
	case *parser.DropHost:
		return m.dropHost(e, st)
	case *parser.ListHost:
		return m.listHost(e, st)
	case *parser.AddNode:
		return m.addNode(e, st)
	case *parser.AlterNode:
		return m.alterNode(e, st)
	case *parser.DropNode:
		return m.dropNode(e, st)
	case *parser.DropZone:
		return m.dropZone(e, st)
	case *parser.ListNode:
		return m.listNode(e, st)
	case *parser.Help:
		return m.help(e, st)
	case *parser.Select:
		return m.sqlSelect(e, st)
	case *parser.WriteSQL:
		return writeSQLRefusal(e.q, st)
	case *parser.SetVar:
		return m.setVar(e, st)
	case *parser.ResetVar:
		return m.resetVar(e, st)
	case *parser.ShowVar:
		return m.showVar(e, st)
	case *parser.Transaction:
		return m.transaction(e, st)
	case *parser.SetTransaction:
		return m.setTransaction(e, st)
	case *parser.Discard:
		return m.discard(e, st)
	case *parser.Deallocate:
		return m.deallocate(e, st)
	case *parser.StartAgent:
		return m.startAgent(e, st)
	case *parser.Deploy:
		return m.deployCmd(e, st)
	case *parser.StopAgent:
		return m.stopAgent(e, st)
	case *parser.MonitorAgent:
		return m.monitorAgent(e, st)
	case *parser.RotateCertificates:
		return m.rotateCertificates(e, st)
	case *parser.InitAll:
		return m.initAll(e, st)
	case *parser.StartNodes:
		return m.startNodes(e, st)
	case *parser.StopNodes:
		return m.stopNodes(e, st)
	case *parser.Monitor:
		return m.monitor(e, st)
	case *parser.MonitorHA:
		return m.monitorHA(e, st)
	case *parser.Clean:
		return m.clean(e, st)
	case *parser.AddHBA:
		return m.addHBA(e, st)
	case *parser.DropHBA:
		return m.dropHBA(e, st)
	case *parser.ListHBA:
		return m.listHBA(e, st)
	case *parser.ShowHBA:
		return m.showHBA(e, st)
	case *parser.SetParam:
		return m.setParam(e, st)
	case *parser.ListParam:
		return m.listParam(e, st)
	case *parser.ShowParam:
		return m.showParam(e, st)
	case *parser.Failover:
		return m.failover(e, st)
	case *parser.Rewind:
		return m.rewind(e, st)
	case *parser.Switchover:
		return m.switchover(e, st)
	case *parser.Promote:
		return m.promote(e, st)
	case *parser.ConfigSlave:
		return m.configSlave(e, st)
	case *parser.Append:
		return m.appendNode(e, st)
	case *parser.Doctor:
		return m.doctorCommand(e, st)
	case *parser.Expand:
		return m.expand(e, st)
	case *parser.Zone:
		if st.Action == "init" {
			return m.zoneInit(e, st)
		}
		return m.zoneSwitch(e, st)
	case *parser.Remove:
		return m.remove(e, st)
	case *parser.Flush:
		switch st.What {
		case "param":
			return m.flushParam(e)
		case "readonly slave":
			return m.flushReadonly(e)
		case "host":
			return m.flushHost(e)
		}
	case *parser.ShowBoottime:
		return m.showBoottime(e, st)
	case *parser.Checkout:
		return m.checkout(e)
	case *parser.UserStmt:
		return m.userStmt(e, st)
	case *parser.DropUser:
		return m.dropUser(e, st)
	case *parser.Grant:
		return m.grant(e, st)
	case *parser.ListACL:
		return m.listACL(e, st)
	case *parser.ListJournal:
		return m.listJournal(e, st)
	case *parser.Listen:
		return m.listen(e, st)
	case *parser.SetMonitor:
		return m.setMonitor(e, st)
	}
	return pgerror.NotImplemented(st.Command()).
		WithHint("This command of the AntDB manager set is recognised but not built yet; see HELP for what works.")
}

// Describe implements pgwire.Handler for the extended protocol: the columns
// of a single statement, computed without running anything that writes.
func (m *Manager) Describe(ctx context.Context, s *pgwire.Session, q string) ([]pgwire.Column, error) {
	stmts, err := parser.Parse(q)
	if err != nil && hasParams(q) {
		// A manager command with $1 from a driver's parameterised query:
		// say what is missing rather than where the syntax broke.
		return nil, errParams("")
	}
	if err != nil || len(stmts) == 0 {
		return nil, err
	}
	if len(stmts) > 1 {
		// As PostgreSQL: a prepared statement is one statement, so that an
		// Execute never half-runs a list.
		return nil, pgerror.New(pgerror.SyntaxError, "cannot insert multiple commands into a prepared statement")
	}
	// Describing a SELECT reads the catalog: only for users who may run it.
	if err := m.authorize(&req{ctx: ctx, sess: s, q: q}, stmts[0]); err != nil {
		return nil, err
	}
	switch st := stmts[0].(type) {
	case *parser.ListHost:
		return project(q, hostColumns, st.Columns, "LIST HOST")
	case *parser.ListNode:
		return project(q, nodeColumns, st.Columns, "LIST NODE")
	case *parser.Help:
		return helpColumns, nil
	case *parser.StartAgent, *parser.StopAgent, *parser.RotateCertificates, *parser.Deploy:
		return hostResultColumns, nil
	case *parser.MonitorAgent:
		return monitorAgentColumns, nil
	case *parser.InitAll, *parser.StartNodes, *parser.StopNodes:
		return opColumns, nil
	case *parser.Monitor:
		return monitorColumns, nil
	case *parser.ListHBA, *parser.ShowHBA:
		return hbaColumns, nil
	case *parser.ListACL:
		return aclColumns, nil
	case *parser.ListJournal:
		return journalColumns, nil
	case *parser.ListParam:
		return paramColumns, nil
	case *parser.Expand:
		return nodeResultColumns, nil
	case *parser.Failover, *parser.Rewind, *parser.Switchover, *parser.Promote, *parser.ConfigSlave:
		return nodeResultColumns, nil
	case *parser.Doctor:
		switch st.Action {
		case "list":
			return doctorColumns, nil
		case "start", "stop":
			return nodeResultColumns, nil
		}
		return nil, nil
	case *parser.Append:
		return nodeResultColumns, nil
	case *parser.ShowBoottime:
		return boottimeColumns, nil
	case *parser.Zone:
		return nodeResultColumns, nil
	case *parser.Checkout:
		return cleanColumns, nil
	case *parser.ShowParam:
		return showParamColumns, nil
	case *parser.MonitorHA:
		return project(q, haColumns, st.Columns, "MONITOR HA")
	case *parser.Clean:
		if st.MonitorDays < 0 {
			return cleanColumns, nil
		}
	case *parser.ShowVar:
		return showColumns(st), nil
	case *parser.Select:
		return m.describeSelect(ctx, s, st)
	}
	return nil, nil
}

// complete ends a row-returning statement with PostgreSQL's "SELECT n" tag.
func complete(w pgwire.ResultWriter, n int) error {
	return w.Complete("SELECT " + strconv.Itoa(n))
}
