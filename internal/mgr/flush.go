package mgr

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/deploy"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// FLUSH HOST (reference §4.14): after ALTER HOST changed the address of a
// host with initialised nodes (cluster.AlterHost records the old one in
// State.Moved), move the agent and the nodes onto the new address and
// re-point everything that names it (cluster.PlanFlush says what).
//
// Order, and why:
//  1. Checks that touch nothing: every agent answers (a moved host's at its
//     new or an old address), the masters elsewhere run, the agent binary
//     to start is the manager's own.
//  2. The moved hosts' agents: stopped at the old address, started at the
//     new one with a certificate for it. The nodes keep running (the
//     postmaster does not depend on its agent), and every later step
//     reaches the host at the catalog's address.
//  3. pg_hba.conf of every initialised node admits the old and the new
//     addresses, reloaded: whichever side of the move a peer is on, it
//     gets in.
//  4. The moved hosts' nodes, parents first: listen_addresses, socket
//     directory and certificate paths (AddressParams) and a slave's
//     primary_conninfo rewritten, then stopped and started — a new
//     listen_addresses and unix_socket_directories need a restart, and a
//     start creates the new socket directory and writes the certificate
//     the CA issues for the new address (nodeCert reissues on a changed
//     address).
//  5. Slaves elsewhere of a moved node: primary_conninfo, reloaded
//     (reloadable since PostgreSQL 13; the walreceiver reconnects).
//  6. The coordinators' node list and foreign servers (configureCoordinator).
//  7. The old addresses' pg_hba.conf lines removed; DIR/pgpass rewritten;
//     the old socket directories (with their secrets) removed; the record
//     of the move cleared.
//
// Each step is idempotent and the record is cleared only at the end, so a
// failure anywhere leaves a state the next FLUSH HOST finishes. While the
// record exists, the commands that act on nodes are refused
// (requireFlushed) and the doctor leaves the moved hosts' masters alone.

// requireFlushed refuses command while a host's address changed and its
// nodes were not moved yet: it would reach the host at an address where
// neither its agent nor its nodes are.
func (m *Manager) requireFlushed(command string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set, err := m.cat.Settings(ctx)
	if err != nil {
		return err
	}
	var hosts []string
	for k, v := range set {
		if name, ok := strings.CutPrefix(k, catalog.MovedPrefix); ok {
			hosts = append(hosts, fmt.Sprintf(`"%s" (its nodes still use %s)`, name, v))
		}
	}
	if len(hosts) == 0 {
		return nil
	}
	sort.Strings(hosts)
	return pgerror.New(pgerror.ObjectNotInPrereqState, "cannot run %s: the address of host %s changed", command, strings.Join(hosts, ", ")).
		WithHint("Run FLUSH HOST first: it moves the nodes and the agent to the new address.")
}

func (m *Manager) flushHost(e *req) error {
	unlock, err := m.lockOps("FLUSH HOST")
	if err != nil {
		return err
	}
	defer unlock()
	sn, err := m.snapshot(e.ctx)
	if err != nil {
		return err
	}
	s := sn.s
	if len(s.Moved) == 0 {
		e.w.Notice("NOTICE", "no host address changed since the nodes were configured: nothing to flush")
		return e.w.Complete("FLUSH HOST")
	}
	managerIPs, _ := m.managerIPs(s)
	plan := cluster.PlanFlush(s, managerIPs)
	bin, sshc, err := m.flushPrecheck(e, s, plan)
	if err != nil {
		return err
	}
	if bin != nil {
		defer bin.Close()
	}
	defer func() {
		for _, c := range sshc {
			c.Close()
		}
	}()
	if err := m.flushMove(e, s, plan, bin, sshc); err != nil {
		return err
	}
	return e.w.Complete("FLUSH HOST")
}

// flushMove is FLUSH HOST's journaled steps, in order: the agents,
// pg_hba.conf with both addresses, the moved nodes restarted, their slaves
// re-pointed, the coordinators, the old addresses removed, the record of
// the move cleared.
func (m *Manager) flushMove(e *req, s *cluster.State, plan cluster.FlushPlan, bin *os.File, sshc map[string]*deploy.Client) error {
	journal := m.journal(e, "FLUSH HOST")
	fail := func(step string, err error) error {
		journal("failed", step, err.Error())
		return fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "Fix the cause and run FLUSH HOST again: it redoes every step and finishes what is left.",
			"FLUSH HOST failed at %s", step)
	}

	// From here on the host's processes may be at the new address too:
	// say so in the record, so that an ALTER HOST back to the old address
	// before the next FLUSH HOST still counts as a move.
	if err := m.cat.Update(e.ctx, func(tx catalog.Tx) error { return tx.Apply(moveStarted(s, plan)) }); err != nil {
		return fail("record the move", err)
	}

	journal("running", "agents", "")
	for _, mh := range plan.Hosts {
		if err := m.moveAgent(e, mh, bin, sshc[mh.Host.Name]); err != nil {
			return fail("agents", err)
		}
	}

	journal("running", "pg_hba.conf with old and new addresses", "")
	if err := m.flushHBA(e, s, plan.Configured, plan.Transitional, nil); err != nil {
		return fail("pg_hba.conf", err)
	}

	journal("running", "restart the moved nodes", "")
	for _, n := range plan.Restart {
		if err := m.moveNode(e, s, n); err != nil {
			return fail("restart "+n.Name, err)
		}
	}

	journal("running", "re-point slaves", "")
	for _, n := range plan.Repoint {
		if err := m.repointSlave(e, s, n); err != nil {
			return fail("re-point "+n.Name, err)
		}
		e.w.Notice("NOTICE", fmt.Sprintf("%s now streams from %s", describeNode(n), n.Master))
	}

	journal("running", "coordinators", "")
	for _, c := range plan.Coordinators {
		if err := m.configureCoordinator(e.ctx, s, c, inCluster); err != nil {
			return fail("coordinator "+c.Name, err)
		}
		e.w.Notice("NOTICE", fmt.Sprintf("%s: node list and foreign servers re-pointed", describeNode(c)))
	}

	journal("running", "remove the old addresses from pg_hba.conf", "")
	if err := m.flushHBA(e, s, plan.Configured, nil, plan.Stale); err != nil {
		return fail("pg_hba.conf", err)
	}
	m.flushTidy(e, s, plan)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 30*time.Second)
	defer cancel()
	for _, mh := range plan.Hosts {
		if err := m.cat.DeleteSetting(ctx, catalog.MovedPrefix+mh.Host.Name); err != nil {
			return fail("clear the record of the move", err)
		}
		e.w.Notice("NOTICE", fmt.Sprintf(`host "%s" moved from %s to %s`, mh.Host.Name, strings.Join(mh.From, ", "), mh.Host.Address))
	}
	journal("done", "end", "")
	return nil
}

// moveStarted is the record of the moves FLUSH HOST starts: each moved
// host's old addresses and its new one.
func moveStarted(s *cluster.State, plan cluster.FlushPlan) cluster.Plan {
	started := cluster.Plan{Moved: map[string][]string{}}
	for _, mh := range plan.Hosts {
		name := mh.Host.Name
		started.Moved[name] = s.Moved[name]
		if !slices.Contains(started.Moved[name], mh.Host.Address) {
			started.Moved[name] = append(slices.Clone(started.Moved[name]), mh.Host.Address)
		}
	}
	return started
}

// repointSlave writes slave n's recovery settings for where its master
// is now and reloads it if it runs.
func (m *Manager) repointSlave(e *req, s *cluster.State, n cluster.Node) error {
	t, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	if err := m.writeStandby(e.ctx, s, t); err != nil {
		return err
	}
	running, err := m.fleet.Running(e.ctx, t)
	if err != nil {
		return fleet.Wrap(err, "status")
	}
	if running {
		if err := m.fleet.Reload(e.ctx, t); err != nil {
			return fleet.Wrap(err, "reload")
		}
	}
	return nil
}

// flushTidy ends a FLUSH HOST once nothing uses the old addresses: the
// DBA's password file, the old socket directories, and replication
// checked — not waited for beyond reason: a slave that does not stream
// again is a WARNING (MONITOR HA shows it), the move itself is done.
func (m *Manager) flushTidy(e *req, s *cluster.State, plan cluster.FlushPlan) {
	m.refreshDBAPassFile(e, s)
	for _, n := range plan.Restart {
		m.removeOldSocketDirs(e, s, n)
	}
	for _, n := range s.Nodes {
		if n.InCluster && len(s.Children(n.Name)) > 0 && movedTree(s, plan, n) {
			if err := m.pushSyncNames(e, s, n, inCluster, true); err != nil {
				e.w.Notice("WARNING", err.Error())
			}
		}
	}
}

// managerIPs are the addresses the manager's connections to the nodes
// leave from (pg_hba.conf admits them): toward every host with nodes, at
// its address and the addresses a FLUSH HOST may still find it at. Hosts
// on different networks (loopback hosts and ssh hosts behind a bridge)
// are reached from different addresses. It fails only when no host can
// be routed to at all.
func (m *Manager) managerIPs(s *cluster.State) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var firstErr error
	for _, n := range s.Nodes {
		h, ok := s.Host(n.Host)
		if !ok || seen["host "+h.Name] {
			continue
		}
		seen["host "+h.Name] = true
		for _, a := range append([]string{h.Address}, s.Moved[h.Name]...) {
			ip, err := pgclient.ManagerIP(a)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("find the manager's address toward host %s (%s): %w", h.Name, a, err)
				}
				continue
			}
			if !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// movedTree reports whether master or one of its slaves was restarted or
// re-pointed by the flush: its replication is checked afterwards.
func movedTree(s *cluster.State, plan cluster.FlushPlan, master cluster.Node) bool {
	touched := map[string]bool{}
	for _, n := range append(append([]cluster.Node{}, plan.Restart...), plan.Repoint...) {
		touched[n.Name] = true
	}
	if touched[master.Name] {
		return true
	}
	for _, c := range s.Children(master.Name) {
		if touched[c.Name] {
			return true
		}
	}
	return false
}

// at is h reached at another address (where its agent or nodes may still
// be before the flush).
func at(h cluster.Host, addr string) cluster.Host {
	h.Address = addr
	return h
}

// flushPrecheck refuses FLUSH HOST before anything is touched. It returns
// the verified agent binary when an agent must be started.
func (m *Manager) flushPrecheck(e *req, s *cluster.State, plan cluster.FlushPlan) (*os.File, map[string]*deploy.Client, error) {
	moved := map[string]bool{}
	var toStart, sshStart []cluster.Host
	for _, mh := range plan.Hosts {
		moved[mh.Host.Name] = true
		if err := m.fleet.AgentUp(e.ctx, mh.Host); err == nil {
			continue // already moved by an earlier FLUSH HOST
		}
		// The agent is started at the new address whether or not it
		// still answers at an old one: by this machine for a local host,
		// over SSH to the host's new address for an ssh one.
		if mh.Host.Protocol == cluster.ProtocolSSH {
			if err := checkSSHHost(mh.Host); err != nil {
				return nil, nil, err
			}
			sshStart = append(sshStart, mh.Host)
			continue
		}
		toStart = append(toStart, mh.Host)
	}
	needed := map[string]bool{}
	for _, n := range plan.Configured {
		needed[n.Host] = true
	}
	for _, h := range s.Hosts {
		if needed[h.Name] && !moved[h.Name] {
			if err := m.requireAgent(e.ctx, h); err != nil {
				return nil, nil, err
			}
		}
	}
	// The masters elsewhere must run: the moved nodes' slaves, the
	// coordinators and the checks at the end need them (the moved hosts'
	// masters are started by the flush itself).
	for _, n := range s.Nodes {
		if !n.Type.IsMaster() || !n.InCluster || moved[n.Host] {
			continue
		}
		t, err := fleet.At(s, n)
		if err != nil {
			return nil, nil, err
		}
		running, err := m.fleet.Running(e.ctx, t)
		if err != nil {
			return nil, nil, fleet.WrapAs(err, pgerror.ObjectNotInPrereqState, "", "status of %s", describeNode(n))
		}
		if !running {
			return nil, nil, pgerror.New(pgerror.ObjectNotInPrereqState, "%s is not running", describeNode(n)).
				WithHint("Start it first (START %s); FLUSH HOST needs every master of the cluster.", strings.ToUpper(string(n.Type))+" "+n.Name)
		}
	}
	var sshc map[string]*deploy.Client
	if len(sshStart) > 0 {
		// Logs in at the new address and checks the deployed agent is the
		// manager's build before anything moves.
		clients, err := m.prepareSSHStart(e, sshStart, map[string]int{})
		if err != nil {
			return nil, nil, err
		}
		sshc = map[string]*deploy.Client{}
		for i, c := range clients {
			if c != nil {
				sshc[sshStart[i].Name] = c
			}
		}
	}
	if len(toStart) == 0 {
		return nil, sshc, nil
	}
	bin, err := m.openAgent(toStart)
	if err != nil {
		for _, c := range sshc {
			c.Close()
		}
		return nil, nil, err
	}
	return bin, sshc, nil
}

// moveAgent makes mh's agent listen on the host's new address: the one at
// an old address is stopped (its certificate names that address), and one
// is started at the new address unless it answers there already.
func (m *Manager) moveAgent(e *req, mh cluster.MovedHost, bin *os.File, sshc *deploy.Client) error {
	h := mh.Host
	_, err := m.agents.Ping(e.ctx, h, pingTimeout)
	atNew := err == nil
	for _, old := range mh.From {
		if old == h.Address {
			continue
		}
		oh := at(h, old)
		if _, err := m.agents.Ping(e.ctx, oh, pingTimeout); err != nil {
			m.agents.Forget(oh)
			if h.Protocol == cluster.ProtocolSSH && sshc != nil {
				// The machine lost its old address: the agent bound to it
				// runs on, unreachable. End it over SSH.
				m.killOldAgent(e, sshc, h, old)
			}
			continue
		}
		if err := m.shutdownAgent(e.ctx, oh); err != nil {
			return fmt.Errorf(`agent of host "%s" at %s: %w`, h.Name, old, err)
		}
		e.w.Notice("NOTICE", fmt.Sprintf(`stopped the agent of host "%s" at its old address %s`, h.Name, old))
	}
	if atNew {
		return nil
	}
	var err2 error
	switch {
	case h.Protocol == cluster.ProtocolSSH && sshc != nil:
		err2 = m.startSSHAgent(e.ctx, sshc, h)
	case h.Protocol != cluster.ProtocolSSH && bin != nil:
		err2 = m.startLocalAgent(e.ctx, h, bin)
	default:
		return fmt.Errorf(`the agent of host "%s" does not answer at %s`, h.Name, h.Address)
	}
	if err := err2; err != nil {
		return fmt.Errorf(`start the agent of host "%s" at %s: %w`, h.Name, h.Address, err)
	}
	e.w.Notice("NOTICE", fmt.Sprintf(`started the agent of host "%s" at %s`, h.Name, h.Address))
	return nil
}

// flushHBA adds add and removes remove in the manager's part of the
// pg_hba.conf of every node of nodes, reloading the running ones.
func (m *Manager) flushHBA(e *req, s *cluster.State, nodes []cluster.Node, add, remove []cluster.HBALine) error {
	if len(add)+len(remove) == 0 {
		return nil
	}
	errs := make([]error, len(nodes))
	parallel(len(nodes), func(i int) {
		n := nodes[i]
		t, err := fleet.At(s, n)
		if err != nil {
			errs[i] = err
			return
		}
		if err := m.fleet.EditHBA(e.ctx, t, fleet.HBAEdit{AddManaged: add, Remove: remove}); err != nil {
			errs[i] = fleet.Wrap(err, "pg_hba.conf of %s", n.Name)
			return
		}
		running, err := m.fleet.Running(e.ctx, t)
		if err != nil {
			errs[i] = fleet.Wrap(err, "status of %s", n.Name)
			return
		}
		if running {
			if err := m.fleet.Reload(e.ctx, t); err != nil {
				errs[i] = fleet.Wrap(err, "reload %s", n.Name)
			}
		}
	})
	return firstError(errs)
}

// writeStandby writes slave t's primary_conninfo (and the rest of its
// recovery settings) from the catalog.
func (m *Manager) writeStandby(ctx context.Context, s *cluster.State, t fleet.Member) error {
	parentNode, ok := s.Node(t.Node.Master)
	if !ok {
		return fmt.Errorf("the master %q of %s does not exist", t.Node.Master, t.Name())
	}
	ph, _ := s.Host(parentNode.Host)
	parent := fleet.Member{Node: parentNode, Host: ph}
	if err := m.fleet.WriteRecovery(ctx, t, parent); err != nil {
		return fleet.Wrap(err, "write primary_conninfo")
	}
	return nil
}

// moveNode rewrites the address settings of node n of a moved host and
// restarts it there: stop, then start, so that the agent creates the new
// socket directory and writes the certificate for the new address. A node
// that is stopped and not in the cluster stays stopped (it starts on the
// new address when it is started).
func (m *Manager) moveNode(e *req, s *cluster.State, n cluster.Node) error {
	t, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	if err := m.fleet.SetConf(e.ctx, t, false, cluster.AddressParams(n, t.Host), nil); err != nil {
		return fleet.Wrap(err, "write postgresql.conf")
	}
	if !n.Type.IsMaster() {
		if err := m.writeStandby(e.ctx, s, t); err != nil {
			return err
		}
	}
	running, err := m.fleet.Running(e.ctx, t)
	if err != nil {
		return fleet.Wrap(err, "status")
	}
	if !running && !n.InCluster {
		e.w.Notice("NOTICE", fmt.Sprintf("%s is stopped: it will listen on %s when started", describeNode(n), t.Host.Address))
		return nil
	}
	if running && m.listensOn(e.ctx, t) {
		// Moved by an earlier FLUSH HOST that failed further on.
		e.w.Notice("NOTICE", fmt.Sprintf("%s already listens on %s", describeNode(n), t.Host.Address))
		return nil
	}
	e.w.Notice("NOTICE", fmt.Sprintf("restart %s on %s", describeNode(n), t.Host.Address))
	if running {
		if _, err := m.fleet.Stop(e.ctx, t, fleet.Fast); err != nil {
			return fleet.Wrap(err, "pg_ctl stop")
		}
	}
	if _, err := m.fleet.Start(e.ctx, t); err != nil {
		return fleet.Wrap(err, "pg_ctl start")
	}
	return nil
}

// listensOn reports whether t's node answers at its host's address with
// the settings FLUSH HOST gives it. The connection verifies the node's
// certificate for that address, so nothing else on the port passes.
func (m *Manager) listensOn(ctx context.Context, t fleet.Member) bool {
	keys := []string{"listen_addresses", "unix_socket_directories"}
	got, err := m.fleet.Settings(ctx, t, keys)
	if err != nil {
		return false
	}
	want := cluster.AddressParams(t.Node, t.Host)
	for _, k := range keys {
		if got[k] != want[k] {
			return false
		}
	}
	return true
}

// removeOldSocketDirs removes n's socket directories of its host's old
// addresses (the directory's name hashes the address), with the secrets
// in them. The agent keeps one a live postmaster still uses.
func (m *Manager) removeOldSocketDirs(e *req, s *cluster.State, n cluster.Node) {
	h, ok := s.Host(n.Host)
	if !ok {
		return
	}
	for _, old := range s.Moved[h.Name] {
		if old == h.Address {
			continue
		}
		kept, err := m.fleet.RemoveSocketDir(e.ctx, fleet.Member{Node: n, Host: h}, old)
		if err != nil {
			e.w.Notice("WARNING", fmt.Sprintf("old socket directory of %s not removed: %s", n.Name, agentError(err)))
		} else if kept != "" {
			e.w.Notice("WARNING", fmt.Sprintf("old socket directory of %s: %s", n.Name, kept))
		}
	}
}

// killOldAgent ends, over SSH, h's agent still bound to an address the
// host no longer has (its listen address is in its command line; the
// pattern is the manager's own values, quoted, with regexp metacharacters
// escaped). Nothing matching is fine.
func (m *Manager) killOldAgent(e *req, c *deploy.Client, h cluster.Host, old string) {
	pattern := regexp.QuoteMeta(layoutOf(h).agent+" --listen "+net.JoinHostPort(old, strconv.Itoa(h.AgentPort))) + "( |$)"
	who := "-u " + deploy.Quote(h.User) + " -f -- " + deploy.Quote(pattern)
	// SIGTERM lets it finish what it does; after 5 s it is killed.
	cmd := "pkill -TERM " + who + "; for i in $(seq 50); do pgrep " + who + " >/dev/null || exit 0; sleep 0.1; done; pkill -KILL " + who + "; true"
	if _, err := c.Run(e.ctx, cmd, 0); err != nil {
		e.w.Notice("WARNING", fmt.Sprintf(`the agent of host "%s" may still run bound to its old address %s: %v`, h.Name, old, err))
		return
	}
	e.w.Notice("NOTICE", fmt.Sprintf(`stopped the agent of host "%s" bound to its old address %s`, h.Name, old))
}
