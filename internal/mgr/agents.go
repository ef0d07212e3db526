package mgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/deploy"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/pki"
	"github.com/adbmgr/adbmgr/internal/version"
)

// pingTimeout bounds one agent liveness check.
const pingTimeout = 3 * time.Second

var hostResultColumns = []pgwire.Column{
	{Name: "hostname", TypeOID: pgwire.OIDName},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
}

type hostResult struct {
	host string
	ok   bool
	desc string
}

func writeHostResults(w pgwire.ResultWriter, res []hostResult) error {
	rows := make([]map[string]string, len(res))
	for i, r := range res {
		rows[i] = map[string]string{"hostname": r.host, "status": boolText(r.ok), "description": r.desc}
	}
	return writeTable(w, hostResultColumns, rows)
}

// targetHosts resolves ALL or a host list, refusing unknown names.
func (m *Manager) targetHosts(e *req, t parser.AgentTarget) ([]cluster.Host, error) {
	s, err := m.state(e.ctx)
	if err != nil {
		return nil, err
	}
	if t.All || len(t.Hosts) == 0 {
		return s.Hosts, nil
	}
	var out []cluster.Host
	seen := map[string]bool{}
	for _, id := range t.Hosts {
		h, ok := s.Host(id.Name)
		if !ok {
			return nil, pgerror.New(pgerror.UndefinedObject, `host "%s" does not exist`, id.Name).At(e.q, id.Pos)
		}
		// A host named twice is acted on once.
		if !seen[h.Name] {
			seen[h.Name] = true
			out = append(out, h)
		}
	}
	return out, nil
}

func (m *Manager) state(ctx context.Context) (*cluster.State, error) {
	var s *cluster.State
	err := m.cat.View(ctx, func(tx catalog.ReadTx) (err error) { s, err = tx.State(); return err })
	return s, err
}

// agentDown says why h's agent did not answer a call: "not running" when
// its host answers but nothing accepts the agent's port (connection
// refused), "unreachable" when nothing answers at all within a second — the
// host is down or its link is cut, and its nodes may well still run.
func agentDown(h cluster.Host) string {
	c, err := net.DialTimeout("tcp", agentclient.Target(h), time.Second)
	switch {
	case err == nil:
		c.Close()
		return "not running" // something listens, but it is not our agent
	case errors.Is(err, syscall.ECONNREFUSED):
		return "not running"
	}
	return fmt.Sprintf("unreachable: no answer from %s", agentclient.Target(h))
}

// parallel runs f for every index in its own goroutine and waits. A panic
// in one of them is re-raised in the caller's goroutine, where the wire
// server's per-session recover catches it, instead of killing the manager.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	var once sync.Once
	var panicked any
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					once.Do(func() { panicked = r })
				}
			}()
			f(i)
		}(i)
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

func (m *Manager) startAgent(e *req, st *parser.StartAgent) error {
	if st.PasswordSet && st.Password == "" {
		return errEmptyPassword()
	}
	hosts, err := m.targetHosts(e, st.Target)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return writeHostResults(e.w, nil)
	}
	pos := hostPositions(st.Target)
	local, remote, err := splitHosts(e, hosts, pos)
	if err != nil {
		return err
	}
	// Every host's agent binary is checked before any agent starts: a
	// refusal runs nothing.
	var bin *os.File
	if len(local) > 0 {
		bin, err = m.openAgent(local)
		if err != nil {
			if pe, ok := pgerror.As(err); ok && !st.Target.All {
				for _, id := range st.Target.Hosts {
					if strings.Contains(pe.Message, `host "`+id.Name+`"`) {
						pe.At(e.q, id.Pos)
					}
				}
			}
			return err
		}
		defer bin.Close()
	}
	ssh := map[string]*deploy.Client{}
	if len(remote) > 0 {
		clients, err := m.prepareSSHStart(e, remote, pos)
		if err != nil {
			return err
		}
		defer closeAll(clients)
		for i, c := range clients {
			ssh[remote[i].Name] = c
		}
	}
	res := make([]hostResult, len(hosts))
	parallel(len(hosts), func(i int) {
		h := hosts[i]
		res[i] = hostResult{host: h.Name, ok: true, desc: "success"}
		var err error
		if h.Protocol == cluster.ProtocolLocal {
			err = m.startLocalAgent(e.ctx, h, bin)
		} else {
			err = m.startSSHAgent(e.ctx, ssh[h.Name], h)
		}
		if err != nil {
			res[i].ok, res[i].desc = false, err.Error()
		}
	})
	return writeHostResults(e.w, res)
}

// agentDir holds a local host's agent certificate, key and log.
func (m *Manager) agentDir(h cluster.Host) string {
	return filepath.Join(m.opts.DataDir, "agents", h.Name)
}

// startLocalAgent starts adbagent on this machine for host h, unless it
// already answers. bin is the manager's own agent, open and verified
// (openAgent); it is what runs. The agent runs in its own session so that
// it outlives the manager (a manager restart must not take the cluster's
// agents down), and it gets none of the manager's descriptors: stdin is
// /dev/null, stdout and stderr its own log, and nothing else passes exec.
func (m *Manager) startLocalAgent(ctx context.Context, h cluster.Host, bin *os.File) error {
	if _, err := m.agents.Ping(ctx, h, pingTimeout); err == nil {
		return nil
	}
	ip := net.ParseIP(h.Address)
	if ip == nil {
		return fmt.Errorf("address %q of host %q is not an IP address", h.Address, h.Name)
	}
	// A port already taken by something else would make the agent fail
	// in a way only its log shows; say it here.
	if c, err := net.DialTimeout("tcp", agentclient.Target(h), time.Second); err == nil {
		c.Close()
		return fmt.Errorf("port %d on %s is in use by something that is not an adbagent of this manager", h.AgentPort, h.Address)
	}
	dir := m.agentDir(h)
	ca, err := pki.LoadCA(filepath.Join(m.opts.DataDir, "pki"))
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueAgent(h.Name, []net.IP{ip})
	if err != nil {
		return err
	}
	if err := ca.WritePair(dir, "agent", certPEM, keyPEM); err != nil {
		return err
	}
	logFile := filepath.Join(dir, "agent.log")
	stdin, out, err := agentOutput(logFile)
	if err != nil {
		return err
	}
	defer stdin.Close()
	defer out.Close()
	cmd := osexec.Command(procFD(bin), "--listen", agentclient.Target(h),
		"--cert", filepath.Join(dir, "agent.crt"), "--key", filepath.Join(dir, "agent.key"),
		"--ca", filepath.Join(dir, pki.CACert), "--log", logFile)
	// ps shows the file that runs, not /proc/self/fd/N.
	cmd.Args[0] = m.opts.AgentBinary
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.opts.AgentBinary, err)
	}
	// Reap the agent if it exits while the manager runs; after the manager
	// exits, init adopts it.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	m.agents.Forget(h)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := m.agents.Ping(ctx, h, pingTimeout); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("adbagent exited (%v): %s", err, tail(logFile))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("adbagent did not answer within 15s: %s", tail(logFile))
		}
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

func (m *Manager) stopAgent(e *req, st *parser.StopAgent) error {
	hosts, err := m.targetHosts(e, st.Target)
	if err != nil {
		return err
	}
	res := make([]hostResult, len(hosts))
	parallel(len(hosts), func(i int) {
		h := hosts[i]
		res[i] = hostResult{host: h.Name, ok: true, desc: "success"}
		if _, err := m.agents.Client(h); err != nil {
			res[i].ok, res[i].desc = false, err.Error()
			return
		}
		if _, err := m.agents.Ping(e.ctx, h, pingTimeout); err != nil {
			// Only a host that refuses the agent's port is known to run
			// no agent; one that does not answer may well run it.
			if why := agentDown(h); why != "not running" {
				res[i].ok, res[i].desc = false, why+"; its agent may still run: STOP AGENT again once the host answers"
				return
			}
			res[i].desc = "success (agent was not running)"
			return
		}
		if err := m.shutdownAgent(e.ctx, h); err != nil {
			res[i].ok, res[i].desc = false, err.Error()
		}
	})
	return writeHostResults(e.w, res)
}

// shutdownAgent stops the agent answering as h (its address may be one the
// catalog no longer has: FLUSH HOST) and waits until it no longer does.
func (m *Manager) shutdownAgent(ctx context.Context, h cluster.Host) error {
	c, err := m.agents.Client(h)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Shutdown(cctx, &agentpb.ShutdownRequest{}); err != nil && !agentclient.Unreachable(err) {
		return fmt.Errorf("stop agent fail: %s", agentclient.Message(err))
	}
	for try := 0; try < 50; try++ {
		if _, err := m.agents.Ping(ctx, h, 500*time.Millisecond); err != nil {
			m.agents.Forget(h)
			return nil
		}
		if err := fleet.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("stop agent fail: the agent still answers")
}

// splitHosts sorts the hosts of START AGENT and DEPLOY into local and ssh
// ones, refusing an ssh host the manager cannot log in to as described
// (the caret on its name).
func splitHosts(e *req, hosts []cluster.Host, pos map[string]int) (local, remote []cluster.Host, err error) {
	for _, h := range hosts {
		if h.Protocol == cluster.ProtocolLocal {
			local = append(local, h)
			continue
		}
		if err := checkSSHHost(h); err != nil {
			return nil, nil, e.at(err, pos[h.Name])
		}
		remote = append(remote, h)
	}
	return local, remote, nil
}

// requireAgent refuses a command that needs h's agent when it does not
// answer, before anything is touched.
func (m *Manager) requireAgent(ctx context.Context, h cluster.Host) error {
	if _, err := m.agents.Ping(ctx, h, pingTimeout); err != nil {
		return pgerror.New(pgerror.ObjectNotInPrereqState, `the agent on host "%s" is not running`, h.Name).
			WithHint("Run START AGENT %s first.", h.Name)
	}
	return nil
}

func (m *Manager) monitorAgent(e *req, st *parser.MonitorAgent) error {
	hosts, err := m.targetHosts(e, st.Target)
	if err != nil {
		return err
	}
	rows := make([]map[string]string, len(hosts))
	var stale []string
	var mu sync.Mutex
	parallel(len(hosts), func(i int) {
		rows[i] = map[string]string{"hostname": hosts[i].Name, "status": boolText(true), "description": "running"}
		resp, cert, err := m.agents.PingCert(e.ctx, hosts[i], pingTimeout)
		if err != nil {
			rows[i]["status"], rows[i]["description"] = boolText(false), agentDown(hosts[i])
			return
		}
		if cert != nil {
			rows[i]["cert_expires"] = certTime(cert.NotAfter)
		}
		rows[i]["version"] = resp.Version
		if resp.Version != version.Version {
			rows[i]["description"] = fmt.Sprintf("running; version %s is not the manager's %s: STOP AGENT %s; DEPLOY %s; START AGENT %s",
				resp.Version, version.Version, hosts[i].Name, hosts[i].Name, hosts[i].Name)
			mu.Lock()
			stale = append(stale, hosts[i].Name)
			mu.Unlock()
		}
	})
	if len(stale) > 0 {
		slices.Sort(stale)
		e.w.Notice("WARNING", fmt.Sprintf("the agents on %s are not of the manager's version %s; redeploy them: STOP AGENT, DEPLOY, START AGENT",
			strings.Join(stale, ", "), version.Version))
	}
	return writeTable(e.w, monitorAgentColumns, rows)
}
