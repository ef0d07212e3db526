package mgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/deploy"
	"github.com/adbmgr/adbmgr/internal/fstrust"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pki"
	"github.com/pkg/sftp"
)

// What DEPLOY puts on an ssh host, under its adbhome: the manager's own
// adbagent in bin/, and beside it the agent's certificate and key and the
// CA's certificate; START AGENT logs to adbhome/adbagent.log.
const (
	remoteAgentLog = "adbagent.log"
	uploadTimeout  = 5 * time.Minute
)

// remoteLayout are the paths of h's agent files (h is an ssh host; its
// adbhome was checked with deploy.CheckPath).
type remoteLayout struct{ bin, agent, cert, key, ca, log string }

func layoutOf(h cluster.Host) remoteLayout {
	bin := path.Join(h.ADBHome, "bin")
	return remoteLayout{
		bin:   bin,
		agent: path.Join(bin, "adbagent"),
		cert:  path.Join(bin, "agent.crt"),
		key:   path.Join(bin, "agent.key"),
		ca:    path.Join(bin, pki.CACert),
		log:   path.Join(h.ADBHome, remoteAgentLog),
	}
}

func (m *Manager) sshDir() string { return filepath.Join(m.opts.DataDir, "ssh") }

// knownHosts is the manager's one KnownHosts (its mutex orders the
// parallel first contacts).
func (m *Manager) knownHosts() *deploy.KnownHosts {
	m.sshOnce.Do(func() { m.known = deploy.NewKnownHosts(filepath.Join(m.sshDir(), deploy.KnownHostsFile)) })
	return m.known
}

// sshDialer returns a dialer with the manager's key, and the key's
// authorized_keys line.
func (m *Manager) sshDialer() (*deploy.Dialer, string, error) {
	signer, line, err := deploy.LoadKey(m.sshDir())
	if err != nil {
		return nil, "", pgerror.New(pgerror.ObjectNotInPrereqState, "cannot use the manager's SSH key: %v", err).
			WithHint("Restart the manager: adbmgr start makes the key when it is missing.")
	}
	return &deploy.Dialer{Signer: signer, Known: m.knownHosts()}, line, nil
}

func sshTarget(h cluster.Host) deploy.Target {
	return deploy.Target{Host: h.Name, Address: h.Address, Port: h.Port, User: h.User}
}

// checkSSHHost refuses an ssh host whose catalog values cannot go into a
// remote command: adbhome must be an absolute clean path without control
// characters (ADD HOST checks most of it; a catalog from an older version
// might not), the address an IP address.
func checkSSHHost(h cluster.Host) error {
	if err := deploy.CheckPath(h.ADBHome); err != nil {
		return pgerror.New(pgerror.InvalidParameterValue, `adbhome of host "%s" cannot be used over SSH: %v`, h.Name, err).
			WithHint("ALTER HOST %s (adbhome='/absolute/path').", h.Name)
	}
	if net.ParseIP(h.Address) == nil {
		return pgerror.New(pgerror.InvalidParameterValue, `address "%s" of host "%s" is not an IP address`, h.Address, h.Name)
	}
	if h.User == "" || strings.ContainsAny(h.User, "\x00\n\r") {
		return pgerror.New(pgerror.InvalidParameterValue, `host "%s" has no usable user`, h.Name)
	}
	return nil
}

// sshError turns a failed SSH login into the DBA's error. SQLSTATEs: 28000
// when the host's identity or the manager's key is not accepted (a changed
// host key, a key the host does not know), 28P01 for a refused password,
// 08006 when the host cannot be reached.
func (m *Manager) sshError(err error, h cluster.Host, password bool) *pgerror.Error {
	var de *deploy.DialError
	if !errors.As(err, &de) {
		return pgerror.New(pgerror.ConnectionFailure, "%v", err)
	}
	switch de.Kind {
	case deploy.HostKey:
		var ce *deploy.HostKeyChangedError
		errors.As(err, &ce)
		entry := ce.Addr
		return pgerror.New(pgerror.InvalidAuthorization, "%s", de.Error()).
			WithDetail("Host keys are recorded in %s on first contact; a different key means the host was reinstalled or someone is between the manager and it.", m.knownHosts().Path()).
			WithHint("If host %s was reinstalled, check its key on the console and forget the old one: ssh-keygen -R '%s' -f %s", h.Name, entry, m.knownHosts().Path())
	case deploy.AuthFailed:
		if password {
			return pgerror.New(pgerror.InvalidPassword, "%s", de.Error()).
				WithHint("Check the password of the OS user %s on host %s; nothing was changed there.", h.User, h.Name)
		}
		return pgerror.New(pgerror.InvalidAuthorization, "%s", de.Error()).
			WithHint("Install the manager's key for %s once: DEPLOY %s PASSWORD '…' (or append %s to ~%s/.ssh/authorized_keys there).", h.User, h.Name, filepath.Join(m.sshDir(), deploy.PublicKeyFile), h.User)
	}
	return pgerror.New(pgerror.ConnectionFailure, "%s", de.Error()).
		WithHint("Check that sshd runs on %s port %d and that the manager can reach it.", h.Address, h.Port)
}

// dialAll logs in to every host at once. Either every connection is made
// or none is kept and the first host's failure (in the statement's order)
// is the answer, its DETAIL naming every other host whose login failed
// and saying nothing (what the command would have done) happened
// anywhere: a command over SSH refuses before it changes anything.
func (m *Manager) dialAll(e *req, d *deploy.Dialer, hosts []cluster.Host, password string, pos map[string]int, nothing string) ([]*deploy.Client, error) {
	clients := make([]*deploy.Client, len(hosts))
	errs := make([]error, len(hosts))
	parallel(len(hosts), func(i int) {
		clients[i], errs[i] = d.Dial(e.ctx, sshTarget(hosts[i]), password)
	})
	var first *pgerror.Error
	var others, failed []string
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed = append(failed, hosts[i].Name)
		if first == nil {
			first = m.sshError(err, hosts[i], password != "")
			if p, ok := pos[hosts[i].Name]; ok {
				first.At(e.q, p)
			}
		} else {
			others = append(others, err.Error())
		}
	}
	if first == nil {
		return clients, nil
	}
	closeAll(clients)
	var detail []string
	if first.Detail != "" {
		detail = append(detail, first.Detail)
	}
	if len(hosts) > 1 {
		detail = append(detail, fmt.Sprintf("The SSH login failed on %s (%d of %d hosts): %s.", strings.Join(failed, ", "), len(failed), len(hosts), nothing))
	}
	if len(others) > 0 {
		detail = append(detail, "Also: "+strings.Join(others, "; "))
	}
	first.Detail = strings.Join(detail, "\n")
	return nil, first
}

func closeAll(cs []*deploy.Client) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

// hostPositions maps the names a statement listed to where they were
// written, for error positions.
func hostPositions(t parser.AgentTarget) map[string]int {
	pos := map[string]int{}
	for _, id := range t.Hosts {
		if _, ok := pos[id.Name]; !ok {
			pos[id.Name] = id.Pos
		}
	}
	return pos
}

// ownAgent reads the manager's own adbagent (the file beside bin/adbmgr,
// which must be root's alone) and returns its content and SHA-256: what
// DEPLOY uploads is exactly what was hashed.
func (m *Manager) ownAgent() ([]byte, []byte, error) {
	own := m.opts.AgentBinary
	if own == "" {
		return nil, nil, pgerror.New(pgerror.ObjectNotInPrereqState, "the manager does not know its own adbagent")
	}
	euid := uint32(os.Geteuid())
	if err := fstrust.Executable(own, euid); err != nil {
		return nil, nil, pgerror.New(pgerror.ObjectNotInPrereqState, "the manager's own adbagent %s cannot be trusted: %v", own, err).
			WithHint("Install adbmgr and adbagent in a directory that only root can write.")
	}
	// One read, checked on the open file and hashed from the bytes read
	// (openVerified would hash it, and DEPLOY would read it again).
	f, err := os.Open(own)
	if err == nil {
		defer f.Close()
		err = fstrust.File(f, euid)
	}
	if err != nil {
		return nil, nil, pgerror.New(pgerror.ObjectNotInPrereqState, "the manager's own adbagent %s cannot be trusted: %v", own, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	// Read into a buffer of the file's size (ReadAll would grow one
	// through copies).
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", own, err)
	}
	sum := sha256.Sum256(b)
	return b, sum[:], nil
}

// refuseRunningAgents refuses DEPLOY while an agent of one of hosts
// answers: replacing the binary under a running agent would leave the
// host running a build nobody can name.
func (m *Manager) refuseRunningAgents(e *req, hosts []cluster.Host, pos map[string]int) error {
	running := make([]bool, len(hosts))
	parallel(len(hosts), func(i int) {
		_, err := m.agents.Ping(e.ctx, hosts[i], pingTimeout)
		running[i] = err == nil
	})
	var names []string
	first := -1
	for i, r := range running {
		if r {
			names = append(names, hosts[i].Name)
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return nil
	}
	h := hosts[first]
	what := fmt.Sprintf(`host "%s"`, h.Name)
	if len(names) > 1 {
		what = "hosts " + strings.Join(names, ", ")
	}
	err := pgerror.New(pgerror.ObjectInUse, `cannot deploy to %s: %s running`, what, map[bool]string{true: "their agents are", false: "its agent is"}[len(names) > 1]).
		WithHint("STOP AGENT %s first, then DEPLOY and START AGENT again.", strings.Join(names, ", "))
	if p, ok := pos[h.Name]; ok {
		err.At(e.q, p)
	}
	return err
}

// errEmptyPassword refuses PASSWORD ”: it would read as "no password"
// and log in with the manager's key.
func errEmptyPassword() error {
	return pgerror.New(pgerror.InvalidParameterValue, "the password must not be empty").
		WithHint("Leave PASSWORD out to log in with the manager's key.")
}

// deployCmd is DEPLOY {ALL | h, …} [PASSWORD 'pw']. The password is used for
// one SSH login per host and is never logged, stored or shown: it appears in
// no error (the SSH library's messages name only the methods tried), no
// result row, no journal entry.
func (m *Manager) deployCmd(e *req, st *parser.Deploy) (err error) {
	if st.PasswordSet && st.Password == "" {
		return errEmptyPassword()
	}
	if st.Password != "" {
		// psql prints the query line an error's position points into:
		// with a password in it, errors carry no position.
		defer func() {
			if pe, ok := pgerror.As(err); ok {
				pe.Position = 0
			}
		}()
	}
	unlock, err := m.lockCatalog(e.ctx, "DEPLOY")
	if err != nil {
		return err
	}
	defer unlock()
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
	if err := m.deployPrecheck(e, hosts, local, pos); err != nil {
		return err
	}
	// Reading and hashing the agent (20 ms for 18 MB) while the hosts'
	// sshds log us in; its refusal still comes first.
	type build struct {
		data, sum []byte
		err       error
	}
	own := make(chan build, 1)
	go func() {
		var b build
		b.data, b.sum, b.err = m.ownAgent()
		own <- b
	}()
	var clients []*deploy.Client
	var keyLine string
	var dialErr error
	if len(remote) > 0 {
		var d *deploy.Dialer
		if d, keyLine, dialErr = m.sshDialer(); dialErr == nil {
			clients, dialErr = m.dialAll(e, d, remote, st.Password, pos, "nothing was copied to any host")
		}
		defer closeAll(clients)
	}
	b := <-own
	if b.err != nil {
		return b.err
	}
	if dialErr != nil {
		return dialErr
	}
	return writeHostResults(e.w, m.deployHosts(e, hosts, remote, clients, b.data, b.sum, keyLine, st.Password != ""))
}

// deployPrecheck checks every host first: nothing is copied anywhere
// unless every host can take it.
func (m *Manager) deployPrecheck(e *req, hosts, local []cluster.Host, pos map[string]int) error {
	if err := m.refuseRunningAgents(e, hosts, pos); err != nil {
		return err
	}
	for _, h := range local {
		if m.skipLocal(h) {
			continue
		}
		if err := fstrust.Dir(h.ADBHome, hostUID(h.User)); err != nil {
			return e.at(untrusted(h, "adbhome", h.ADBHome, err), pos[h.Name])
		}
	}
	return nil
}

// deployHosts copies the agent (data, its SHA-256 sum) to every host in
// parallel, the remote ones over their SSH clients (clients[j] is
// remote[j]'s), and returns a result row each.
func (m *Manager) deployHosts(e *req, hosts, remote []cluster.Host, clients []*deploy.Client, data, sum []byte, keyLine string, password bool) []hostResult {
	res := make([]hostResult, len(hosts))
	parallel(len(hosts), func(i int) {
		h := hosts[i]
		res[i] = hostResult{host: h.Name}
		var desc string
		var err error
		if h.Protocol == cluster.ProtocolLocal {
			desc, err = m.deployLocal(h, data, sum)
		} else {
			for j, r := range remote {
				if r.Name == h.Name {
					desc, err = m.deploySSH(e.ctx, clients[j], h, data, sum, keyLine, password)
				}
			}
		}
		if err != nil {
			res[i].desc = "deploy fail: " + err.Error()
			m.log.Warn("DEPLOY failed", "host", h.Name, "error", err)
			return
		}
		res[i].ok, res[i].desc = true, desc
		m.log.Info("DEPLOY", "host", h.Name, "result", desc)
	})
	return res
}

// skipLocal: a local host whose adbhome is the manager's own install
// already has the manager's agent.
func (m *Manager) skipLocal(h cluster.Host) bool {
	return m.opts.InstallDir != "" && filepath.Clean(h.ADBHome) == filepath.Clean(m.opts.InstallDir)
}

// deployLocal copies the manager's agent into a local host's
// adbhome/bin (made root's, 0755, when missing), through a temporary file
// that is hashed again before the rename.
func (m *Manager) deployLocal(h cluster.Host, data, sum []byte) (string, error) {
	if m.skipLocal(h) {
		return "skip localhost", nil
	}
	uid := hostUID(h.User)
	bin := filepath.Join(h.ADBHome, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	// The directory the agent will run from must be as safe as adbhome.
	if err := fstrust.Dir(bin, uid); err != nil {
		return "", untrusted(h, "adbhome/bin", bin, err)
	}
	f, err := os.CreateTemp(bin, ".adbagent.tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o755)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	g, got, err := openVerified(tmp, uid)
	if err != nil {
		return "", err
	}
	g.Close()
	if !bytes.Equal(got, sum) {
		return "", fmt.Errorf("the copy in %s has SHA-256 %x, not %x", tmp, got, sum)
	}
	if err := os.Rename(tmp, filepath.Join(bin, "adbagent")); err != nil {
		return "", err
	}
	return "success", nil
}

// deploySSH puts the manager's agent and the agent's certificate, key and
// CA certificate into h's adbhome/bin over SFTP. With a password (c logged
// in with it), it first installs the manager's key for h's user and logs
// in again with the key, so that the key is proven before anything else
// relies on it.
func (m *Manager) deploySSH(ctx context.Context, c *deploy.Client, h cluster.Host, data, sum []byte, keyLine string, password bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	// SFTP calls take no context: when the statement is cancelled, the
	// client disconnects, or uploadTimeout passes, closing the connection
	// is what ends an upload stuck on a dead link.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc, err := c.SFTP()
	if err != nil {
		return "", err
	}
	defer sc.Close()
	note := ""
	if password {
		// One host at a time: hosts often share home directories (NFS,
		// or the test hosts' one file system), and two read-then-append
		// would add the key twice.
		m.keyMu.Lock()
		added, err := deploy.AuthorizeKey(sc, keyLine)
		m.keyMu.Unlock()
		if err != nil {
			return "", fmt.Errorf("install the manager's key: %w", err)
		}
		if added {
			note = fmt.Sprintf("; the manager's key was added to ~%s/.ssh/authorized_keys", h.User)
		}
		d, _, err := m.sshDialer()
		if err != nil {
			return "", err
		}
		kc, err := d.Dial(ctx, sshTarget(h), "")
		if err != nil {
			return "", fmt.Errorf("the manager's key was installed but does not log in: %w", err)
		}
		kc.Close()
	}
	l := layoutOf(h)
	if err := deploy.MkdirAll(sc, l.bin, 0o755); err != nil {
		return "", err
	}
	tmp, err := deploy.Upload(sc, l.agent, data, 0o755)
	if err != nil {
		return "", err
	}
	got, err := c.SHA256(ctx, tmp)
	if err == nil && !bytes.Equal(got, sum) {
		err = fmt.Errorf("the uploaded adbagent has SHA-256 %x, not the manager's %x", got, sum)
	}
	if err != nil {
		sc.Remove(tmp)
		return "", err
	}
	if err := deploy.Install(sc, tmp, l.agent); err != nil {
		return "", err
	}
	if err := m.pushAgentCert(sc, h); err != nil {
		return "", err
	}
	return "success" + note, nil
}

// pushAgentCert issues h's agent a certificate for its address with the
// manager's CA and puts it beside the agent (putAgentPair).
func (m *Manager) pushAgentCert(sc *sftp.Client, h cluster.Host) error {
	ca, err := pki.LoadCA(m.pkiDir())
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueAgent(h.Name, []net.IP{net.ParseIP(h.Address)})
	if err != nil {
		return err
	}
	return putAgentPair(sc, h, ca, certPEM, keyPEM)
}

// putAgentPair puts an agent's key and certificate and the CA's
// certificate beside the agent on h (0600: the agent runs as the files'
// owner). All three are uploaded to temporary files before the first is
// renamed into place, so that a failed upload changes nothing; a running
// agent reads the files again at its next TLS handshake and keeps its
// previous pair until the new key and certificate on disk match.
func putAgentPair(sc *sftp.Client, h cluster.Host, ca *pki.CA, certPEM, keyPEM []byte) error {
	l := layoutOf(h)
	files := []struct {
		name string
		data []byte
		tmp  string
	}{{name: l.key, data: keyPEM}, {name: l.cert, data: certPEM}, {name: l.ca, data: ca.CertPEM()}}
	var err error
	for i := range files {
		if files[i].tmp, err = deploy.Upload(sc, files[i].name, files[i].data, 0o600); err != nil {
			break
		}
	}
	for i := range files {
		switch {
		case err == nil:
			if err = deploy.Install(sc, files[i].tmp, files[i].name); err != nil && i == 1 {
				// Between two renames: the link died or the disk
				// filled just then.
				err = fmt.Errorf("%w; the new key is in place but not its certificate: the agent keeps its previous pair until it is restarted (START AGENT writes a new pair)", err)
			}
		case files[i].tmp != "":
			sc.Remove(files[i].tmp)
		}
	}
	return err
}

// prepareSSHStart logs in to the ssh hosts whose agents do not answer and
// checks that each has the manager's agent build (its SHA-256, computed
// there). It returns one client per host, nil for a host whose agent
// already runs; on any refusal it keeps no connection.
func (m *Manager) prepareSSHStart(e *req, hosts []cluster.Host, pos map[string]int) ([]*deploy.Client, error) {
	down := make([]bool, len(hosts))
	parallel(len(hosts), func(i int) {
		_, err := m.agents.Ping(e.ctx, hosts[i], pingTimeout)
		down[i] = err != nil
	})
	var todo []cluster.Host
	var idx []int
	for i, h := range hosts {
		if down[i] {
			todo = append(todo, h)
			idx = append(idx, i)
		}
	}
	out := make([]*deploy.Client, len(hosts))
	if len(todo) == 0 {
		return out, nil
	}
	_, want, err := m.ownAgent()
	if err != nil {
		return nil, err
	}
	d, _, err := m.sshDialer()
	if err != nil {
		return nil, err
	}
	clients, err := m.dialAll(e, d, todo, "", pos, "no agent was started")
	if err != nil {
		return nil, err
	}
	sums := make([][]byte, len(todo))
	errs := make([]error, len(todo))
	parallel(len(todo), func(i int) {
		sums[i], errs[i] = clients[i].SHA256(e.ctx, layoutOf(todo[i]).agent)
	})
	for i, h := range todo {
		var perr *pgerror.Error
		switch {
		case errors.Is(errs[i], deploy.ErrNoFile):
			perr = pgerror.New(pgerror.ObjectNotInPrereqState, `adbagent is not deployed on host "%s": nothing was started`, h.Name).
				WithHint("DEPLOY %s puts the manager's agent into %s.", h.Name, layoutOf(h).bin)
		case errs[i] != nil:
			perr = pgerror.New(pgerror.ObjectNotInPrereqState, `cannot check the adbagent of host "%s": %v`, h.Name, errs[i])
		case !bytes.Equal(sums[i], want):
			perr = pgerror.New(pgerror.ObjectNotInPrereqState, `adbagent "%s" of host "%s" is not this manager's build: nothing was started`, layoutOf(h).agent, h.Name).
				WithDetail("Its SHA-256 is %x; the manager's own %s has %x.", sums[i], m.opts.AgentBinary, want).
				WithHint("STOP AGENT %s if it runs, then DEPLOY %s.", h.Name, h.Name)
		}
		if perr != nil {
			closeAll(clients)
			if p, ok := pos[h.Name]; ok {
				perr.At(e.q, p)
			}
			return nil, perr
		}
	}
	for i, c := range clients {
		out[idx[i]] = c
	}
	return out, nil
}

// startSSHAgent starts h's deployed agent over SSH, detached (setsid -f:
// its own session, so it outlives the SSH session and the manager; stdin
// /dev/null, output appended to adbhome/adbagent.log), as h's user, bound
// to h's address and agent port, with a certificate issued now. Every word
// of the command is the manager's own validated value, quoted. c is nil
// when the agent already answered.
func (m *Manager) startSSHAgent(ctx context.Context, c *deploy.Client, h cluster.Host) error {
	if c == nil {
		return nil
	}
	if conn, err := net.DialTimeout("tcp", agentclient.Target(h), time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("port %d on %s is in use by something that is not an adbagent of this manager", h.AgentPort, h.Address)
	}
	sc, err := c.SFTP()
	if err != nil {
		return err
	}
	err = m.pushAgentCert(sc, h)
	sc.Close()
	if err != nil {
		return fmt.Errorf("install the agent's certificate: %w", err)
	}
	l := layoutOf(h)
	cmd := "cd / && exec setsid -f " + deploy.Command(l.agent, "--listen", agentclient.Target(h),
		"--cert", l.cert, "--key", l.key, "--ca", l.ca, "--log", l.log) +
		" </dev/null >>" + deploy.Quote(l.log) + " 2>&1"
	if _, err := c.Run(ctx, cmd, 0); err != nil {
		return fmt.Errorf("start adbagent over SSH: %w", err)
	}
	m.agents.Forget(h)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := m.agents.Ping(ctx, h, pingTimeout); err == nil {
			m.log.Info("START AGENT over SSH", "host", h.Name, "address", agentclient.Target(h))
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := c.Run(ctx, "tail -n 3 -- "+deploy.Quote(l.log), 0)
			log = strings.Join(strings.Fields(strings.ReplaceAll(log, "\n", " | ")), " ")
			return fmt.Errorf("adbagent did not answer within 15s: %s", log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
