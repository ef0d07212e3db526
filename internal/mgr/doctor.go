package mgr

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgclient"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// Doctor settings in the catalog (mgr_setting).
const (
	settingDoctor     = "doctor.enable"
	settingInterval   = "doctor.interval_ms"
	settingFailures   = "doctor.failures"
	settingRestarts   = "doctor.restarts"
	doctorDescription = "self-healing: restart a master that went down, fail it over when it cannot be restarted"
)

// Run does the manager's background work until ctx ends: today the doctor,
// when a DBA enabled it (START DOCTOR survives a manager restart).
func (m *Manager) Run(ctx context.Context) {
	m.doctorMu.Lock()
	m.bg = ctx
	m.doctorMu.Unlock()
	var set map[string]string
	for {
		var err error
		if set, err = m.cat.Settings(ctx); err == nil {
			break
		}
		m.log.Warn("cannot read the manager's settings; retrying", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	switch {
	case set[settingDoctor] != "on":
	case m.interrupted:
		// A switch cut off half-way may have left a master stopped on
		// purpose; the doctor must not restart it before a DBA looked.
		m.log.Warn("the doctor stays off: operations were interrupted by the previous manager's end; check the cluster, then START DOCTOR")
	default:
		m.startDoctor(set)
	}
	<-ctx.Done()
	m.stopDoctor()
}

func doctorConfig(set map[string]string) doctor.Config {
	cfg := doctor.DefaultConfig
	if v, err := strconv.Atoi(set[settingInterval]); err == nil && v > 0 {
		cfg.Interval = time.Duration(v) * time.Millisecond
	}
	if v, err := strconv.Atoi(set[settingFailures]); err == nil && v > 0 {
		cfg.Failures = v
	}
	if v, err := strconv.Atoi(set[settingRestarts]); err == nil && v >= 0 {
		cfg.Restarts = v
	}
	return cfg
}

func (m *Manager) startDoctor(set map[string]string) {
	m.doctorMu.Lock()
	defer m.doctorMu.Unlock()
	if m.doctorStop != nil {
		m.doctorStop()
	}
	parent := m.bg
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	m.doctorStop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		doctor.Run(ctx, doctorHands{m}, doctorConfig(set), m.log)
	}()
	m.log.Info("doctor started")
}

func (m *Manager) stopDoctor() {
	m.doctorMu.Lock()
	defer m.doctorMu.Unlock()
	if m.doctorStop != nil {
		m.doctorStop()
		m.doctorStop = nil
		m.log.Info("doctor stopped")
	}
}

// doctorHands gives the doctor the manager's actions.
type doctorHands struct{ m *Manager }

// curable are the masters the doctor watches: gtmcoord and datanode masters
// in the cluster that a DBA did not stop (STOP clears allowcure), on hosts
// whose address did not change since they started (until FLUSH HOST they
// listen where the catalog no longer says, and would look down).
func curable(s *cluster.State) []cluster.Node {
	var out []cluster.Node
	for _, n := range s.Nodes {
		if (n.Type == cluster.GtmcoordMaster || n.Type == cluster.DatanodeMaster) && n.InCluster && n.AllowCure && len(s.Moved[n.Host]) == 0 {
			out = append(out, n)
		}
	}
	return out
}

func (d doctorHands) Observe(ctx context.Context) ([]doctor.Observation, error) {
	s, err := d.m.state(ctx)
	if err != nil {
		return nil, err
	}
	nodes := curable(s)
	obs := make([]doctor.Observation, len(nodes))
	parallel(len(nodes), func(i int) {
		n := nodes[i]
		o := doctor.Observation{Node: n.Name}
		t, err := fleet.At(s, n)
		if err != nil {
			obs[i] = o
			return
		}
		// 2 s to log in, 5 s for the query.
		qctx, cancel := context.WithTimeout(ctx, 7*time.Second)
		st, err := d.m.fleet.SQLStatus(qctx, t, 2*time.Second)
		cancel()
		if err == nil && !st.Recovery {
			o.Answering = true
		}
		if pe := pgclient.ServerError(err); pe != nil {
			// It runs and said no (a DBA's pg_hba.conf or ALTER DATABASE,
			// too many clients…): not down. Restarting or failing it over
			// would not fix that, and would lose what it is doing.
			o.Responding = true
			o.Error = pe.Code + ": " + pe.Message
		}
		if !o.Answering && !o.Responding {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			o.AgentUp = d.m.fleet.AgentUp(actx, t.Host) == nil
			cancel()
			// A postmaster that runs but refuses connections (crash
			// recovery, too many clients) is not down: neither a restart
			// nor a failover would help it.
			if o.AgentUp {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				running, serr := d.m.fleet.Running(cctx, t)
				cancel()
				if serr == nil && running {
					o.Answering = true
				}
			}
		}
		obs[i] = o
	})
	return obs, nil
}

// stillCurable re-reads the catalog: a command that ran meanwhile (STOP,
// FAILOVER, SWITCHOVER) may have changed what the node is.
func (d doctorHands) stillCurable(ctx context.Context, node string) (*cluster.State, cluster.Node, error) {
	s, err := d.m.state(ctx)
	if err != nil {
		return nil, cluster.Node{}, err
	}
	for _, n := range curable(s) {
		if n.Name == node {
			return s, n, nil
		}
	}
	return nil, cluster.Node{}, fmt.Errorf("node %q is no longer a master the doctor may cure", node)
}

func (d doctorHands) Restart(ctx context.Context, node string) error {
	// Under the cluster lock: a switch in progress has stopped the old
	// master on purpose, and starting it again would make two masters.
	unlock, err := d.m.lockCluster("the doctor's restart")
	if err != nil {
		return err
	}
	defer unlock()
	s, n, err := d.stillCurable(ctx, node)
	if err != nil {
		return err
	}
	t, err := fleet.At(s, n)
	if err != nil {
		return err
	}
	_, err = d.m.fleet.Start(ctx, t)
	return err
}

// Failover is FAILOVER of the node, without FORCE, under the cluster lock,
// its NOTICEs going to the manager's log.
func (d doctorHands) Failover(ctx context.Context, node string) error {
	unlock, err := d.m.lockCluster("FAILOVER")
	if err != nil {
		return err
	}
	defer unlock()
	_, n, err := d.stillCurable(ctx, node)
	if err != nil {
		return err
	}
	_, err = d.m.switches().Failover(ctx, switches.Failover{Family: n.Type.Family(), Master: n.Name, Zone: n.Zone, Doctor: true}, logProgress{d.m.log})
	return err
}

// logProgress sends the NOTICEs of the doctor's switches to the manager's
// log.
type logProgress struct{ log *slog.Logger }

func (w logProgress) Notice(sev, msg string) { w.log.Info("doctor: "+msg, "severity", sev) }

var doctorColumns = []pgwire.Column{
	{Name: "type", TypeOID: pgwire.OIDText},
	{Name: "subtype", TypeOID: pgwire.OIDText},
	{Name: "key", TypeOID: pgwire.OIDText},
	{Name: "value", TypeOID: pgwire.OIDText},
	{Name: "comment", TypeOID: pgwire.OIDText},
}

// doctorCommand is START DOCTOR, STOP DOCTOR, SET DOCTOR (…), SET DOCTOR
// NODE n {ON|OFF} and LIST DOCTOR.
func (m *Manager) doctorCommand(e *req, st *parser.Doctor) error {
	switch st.Action {
	case "start":
		if err := m.cat.SetSetting(e.ctx, settingDoctor, "on"); err != nil {
			return err
		}
		set, err := m.cat.Settings(e.ctx)
		if err != nil {
			return err
		}
		m.startDoctor(set)
		return writeNodeResult(e.w, "doctor", true, "started")
	case "stop":
		if err := m.cat.SetSetting(e.ctx, settingDoctor, "off"); err != nil {
			return err
		}
		m.stopDoctor()
		return writeNodeResult(e.w, "doctor", true, "stopped")
	case "set":
		return m.doctorSet(e, st)
	case "set node":
		if _, err := m.change(e, nil, st.Name.Pos, func(s *cluster.State) (cluster.Plan, error) {
			n, ok := s.Node(st.Name.Name)
			if !ok {
				return cluster.Plan{}, pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, st.Name.Name)
			}
			n.AllowCure = st.On
			return cluster.Plan{UpdateNodes: []cluster.Node{n}}, nil
		}); err != nil {
			return err
		}
		return e.w.Complete("SET DOCTOR")
	case "list":
		return m.doctorList(e)
	}
	return pgerror.NotImplemented("SET DOCTOR HOST").WithHint("The doctor watches masters; agents are restarted with START AGENT.")
}

// doctorSet is SET DOCTOR (interval_ms, failures, restarts): every option
// is checked before any is stored.
func (m *Manager) doctorSet(e *req, st *parser.Doctor) error {
	keys := map[string]struct {
		setting string
		min     int
	}{"interval_ms": {settingInterval, 100}, "failures": {settingFailures, 1}, "restarts": {settingRestarts, 0}}
	for _, o := range st.Options {
		k, ok := keys[o.Name.Name]
		if !ok {
			return pgerror.New(pgerror.SyntaxError, `option "%s" is not recognized`, o.Name.Name).
				WithHint("Doctor options are interval_ms, failures, restarts.").At(e.q, o.Name.Pos)
		}
		v, err := strconv.Atoi(o.Value)
		if err != nil || v < k.min {
			return pgerror.New(pgerror.InvalidParameterValue, `invalid value for option "%s": "%s"`, o.Name.Name, o.Value).
				WithHint("An integer of at least %d.", k.min).At(e.q, o.ValuePos)
		}
	}
	for _, o := range st.Options {
		if err := m.cat.SetSetting(e.ctx, keys[o.Name.Name].setting, o.Value); err != nil {
			return err
		}
	}
	if set, err := m.cat.Settings(e.ctx); err == nil && set[settingDoctor] == "on" {
		m.startDoctor(set)
	}
	return e.w.Complete("SET DOCTOR")
}

// doctorList is LIST DOCTOR: the doctor's settings, then each node's
// allowcure.
func (m *Manager) doctorList(e *req) error {
	set, err := m.cat.Settings(e.ctx)
	if err != nil {
		return err
	}
	cfg := doctorConfig(set)
	enable := set[settingDoctor]
	if enable == "" {
		enable = "off"
	}
	rows := []map[string]string{
		{"type": "PARAMETER", "subtype": "", "key": "enable", "value": enable, "comment": doctorDescription},
		{"type": "PARAMETER", "subtype": "", "key": "interval_ms", "value": strconv.Itoa(int(cfg.Interval / time.Millisecond)), "comment": "time between two looks at the masters"},
		{"type": "PARAMETER", "subtype": "", "key": "failures", "value": strconv.Itoa(cfg.Failures), "comment": "failed looks in a row before acting"},
		{"type": "PARAMETER", "subtype": "", "key": "restarts", "value": strconv.Itoa(cfg.Restarts), "comment": "restarts tried before failing over"},
	}
	var s *cluster.State
	if err := m.cat.View(e.ctx, func(tx catalog.ReadTx) (err error) { s, err = tx.State(); return err }); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		rows = append(rows, map[string]string{"type": "NODE", "subtype": string(n.Type), "key": n.Name, "value": onOff(n.AllowCure),
			"comment": "whether the doctor may act on it"})
	}
	return writeTable(e.w, doctorColumns, rows)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
