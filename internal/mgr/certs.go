package mgr

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/deploy"
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
// each running agent's, written where the agent reads it — on the
// manager's machine for a local host, over SFTP beside the deployed agent
// for an ssh host. The agent re-reads its files at its next handshake, and
// a new connection checks it presents the new one. Agents that are not
// running get theirs at START AGENT, which always issues a new one.
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
	var d *deploy.Dialer
	var dialErr error
	if slices.ContainsFunc(hosts, func(h cluster.Host) bool { return h.Protocol != cluster.ProtocolLocal }) {
		d, _, dialErr = m.sshDialer()
	}
	res := make([]hostResult, len(hosts))
	parallel(len(hosts), func(i int) {
		h := hosts[i]
		install := func(certPEM, keyPEM []byte) error { return ca.WritePair(m.agentDir(h), "agent", certPEM, keyPEM) }
		if h.Protocol != cluster.ProtocolLocal {
			install = func(certPEM, keyPEM []byte) error {
				if dialErr != nil {
					return dialErr
				}
				return m.putAgentPairSSH(e.ctx, d, h, ca, certPEM, keyPEM)
			}
		}
		res[i] = m.rotateAgent(e, ca, h, install)
	})
	return writeHostResults(e.w, res)
}

// rotateAgent gives h's running agent a new certificate, which install
// puts where the agent reads it; nothing is changed on a host whose agent
// cannot be reached.
func (m *Manager) rotateAgent(e *req, ca *pki.CA, h cluster.Host, install func(certPEM, keyPEM []byte) error) hostResult {
	r := hostResult{host: h.Name}
	defer func() {
		if !r.ok {
			m.log.Warn("ROTATE CERTIFICATES", "host", h.Name, "error", r.desc)
		}
	}()
	// Dial afresh: the pooled connection may have been made with the old
	// manager certificate.
	m.agents.Forget(h)
	if _, _, err := m.agents.PingCert(e.ctx, h, pingTimeout); err != nil {
		if why := agentDown(h); why != "not running" {
			// Down or cut off: its nodes may run, and its agent will
			// answer again with the certificate it has.
			r.desc = why + "; nothing was changed there: ROTATE CERTIFICATES again once it answers"
			return r
		}
		r.ok, r.desc = true, "agent not running; START AGENT issues it a new certificate"
		return r
	}
	ip := net.ParseIP(h.Address)
	if ip == nil {
		r.desc = fmt.Sprintf("address %q is not an IP address", h.Address)
		return r
	}
	certPEM, keyPEM, err := ca.IssueAgent(h.Name, []net.IP{ip})
	var want *x509.Certificate
	if err == nil {
		want, err = parseCertPEM(certPEM)
	}
	if err != nil {
		r.desc = "cannot issue a certificate: " + err.Error()
		return r
	}
	if err := install(certPEM, keyPEM); err != nil {
		r.desc = "cannot install the new certificate: " + err.Error()
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
	return r
}

// putAgentPairSSH logs in to ssh host h and puts the agent's new pair
// beside it (putAgentPair); a host that refuses the login or cannot be
// reached keeps its files.
func (m *Manager) putAgentPairSSH(ctx context.Context, d *deploy.Dialer, h cluster.Host, ca *pki.CA, certPEM, keyPEM []byte) error {
	if err := checkSSHHost(h); err != nil {
		return err
	}
	c, err := d.Dial(ctx, sshTarget(h), "")
	if err != nil {
		return fmt.Errorf("%s; nothing was changed there", m.sshError(err, h, false).Message)
	}
	defer c.Close()
	// SFTP calls take no context: closing the connection ends them.
	ctx, cancel := context.WithTimeout(ctx, deploy.CommandTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc, err := c.SFTP()
	if err != nil {
		return err
	}
	defer sc.Close()
	return putAgentPair(sc, h, ca, certPEM, keyPEM)
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
