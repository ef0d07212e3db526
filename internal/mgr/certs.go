package mgr

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/pki"
)

// monitorAgentColumns are AntDB's MONITOR AGENT columns plus when the
// certificate the agent presents expires and the agent's build version
// (both empty when it does not answer).
var monitorAgentColumns = append(append([]pgwire.Column(nil), hostResultColumns...),
	pgwire.Column{Name: "cert_expires", TypeOID: pgwire.OIDText},
	pgwire.Column{Name: "version", TypeOID: pgwire.OIDText})

// certTime renders a certificate time as PostgreSQL renders a timestamptz
// in UTC.
func certTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05+00") }

func (m *Manager) pkiDir() string { return filepath.Join(m.opts.DataDir, "pki") }

// rotateCertificates is ROTATE CERTIFICATES: the manager's client
// certificate first (agents accept any certificate of the CA with the
// manager's identity, so the old and the new one both work meanwhile), then
// each running agent's, written where the agent reads it: the agent
// re-reads its files at its next handshake, and a new connection checks it
// presents the new one. Agents that are not running get theirs at START
// AGENT, which always issues a new one.
func (m *Manager) rotateCertificates(e *req, st *parser.RotateCertificates) error {
	if st.CA {
		return pgerror.NotImplemented(st.Command()).
			WithHint("To replace the CA: STOP AGENT ALL, stop the manager, move DATA/pki away, start the manager (it creates a new CA and certificate), START AGENT ALL.")
	}
	// One at a time with the other cluster commands: they would see their
	// agent connections closed under them.
	unlock, err := m.lockCluster(st.Command())
	if err != nil {
		return err
	}
	defer unlock()
	hosts, err := m.targetHosts(e, parser.AgentTarget{All: true})
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(m.pkiDir())
	if err != nil {
		return pgerror.New(pgerror.Internal, "cannot load the manager's CA: %v", err)
	}
	if err := ca.RenewManager(m.pkiDir()); err != nil {
		return pgerror.New(pgerror.Internal, "cannot renew the manager's certificate: %v", err)
	}
	if c, err := pki.ReadCert(filepath.Join(m.pkiDir(), pki.ManagerCert)); err == nil {
		e.w.Notice("NOTICE", fmt.Sprintf("the manager's client certificate was renewed; it expires at %s", certTime(c.NotAfter)))
	}
	m.log.Info("ROTATE CERTIFICATES: the manager's client certificate was renewed")
	res := make([]hostResult, len(hosts))
	parallel(len(hosts), func(i int) {
		res[i] = m.rotateAgent(e, ca, hosts[i])
	})
	return writeHostResults(e.w, res)
}

func (m *Manager) rotateAgent(e *req, ca *pki.CA, h cluster.Host) hostResult {
	r := hostResult{host: h.Name}
	if h.Protocol != cluster.ProtocolLocal {
		// The agent's key lives on its host; START AGENT issues and
		// uploads a new certificate.
		r.desc = fmt.Sprintf("protocol %s: renew its certificate with STOP AGENT %s; START AGENT %s", h.Protocol, h.Name, h.Name)
		return r
	}
	// Dial afresh: the pooled connection may have been made with the old
	// manager certificate.
	m.agents.Forget(h)
	if _, _, err := m.agents.PingCert(e.ctx, h, pingTimeout); err != nil {
		r.ok, r.desc = true, "agent not running; START AGENT issues it a new certificate"
		return r
	}
	ip := net.ParseIP(h.Address)
	if ip == nil {
		r.desc = fmt.Sprintf("address %q is not an IP address", h.Address)
		return r
	}
	certPEM, keyPEM, err := ca.IssueAgent(h.Name, []net.IP{ip})
	if err == nil {
		err = ca.WritePair(m.agentDir(h), "agent", certPEM, keyPEM)
	}
	if err != nil {
		r.desc = "cannot write the new certificate: " + err.Error()
		return r
	}
	want, err := pki.ReadCert(filepath.Join(m.agentDir(h), "agent.crt"))
	if err != nil {
		r.desc = err.Error()
		return r
	}
	m.agents.Forget(h)
	_, got, err := m.agents.PingCert(e.ctx, h, pingTimeout)
	switch {
	case err != nil:
		r.desc = "the agent does not answer with its new certificate: " + err.Error()
	case got == nil || got.SerialNumber.Cmp(want.SerialNumber) != 0:
		// An agent of an earlier version reads its certificate only at
		// start.
		r.desc = fmt.Sprintf("the agent still presents its previous certificate; restart it: STOP AGENT %s; START AGENT %s", h.Name, h.Name)
	default:
		r.ok, r.desc = true, "success; expires at "+certTime(got.NotAfter)
	}
	if !r.ok {
		m.log.Warn("ROTATE CERTIFICATES", "host", h.Name, "error", r.desc)
	}
	return r
}
