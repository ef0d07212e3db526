package mgr

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Doctor settings in the catalog (mgr_setting).
const (
	settingDoctor     = "doctor.enable"
	settingInterval   = "doctor.interval_ms"
	settingFailures   = "doctor.failures"
	settingRestarts   = "doctor.restarts"
	settingFollows    = "doctor.follows"
	settingRetry      = "doctor.retry"
	doctorDescription = "self-healing: restart a node that went down, fail a master over, isolate and bring back the others, rewind the old master"
)

// Run does the manager's background work until ctx ends: the monitor
// history, the data plane's watch (deadlocks, in-doubt transactions) and the doctor,
// when a DBA enabled it (START DOCTOR survives a manager restart).
func (m *Manager) Run(ctx context.Context) {
	m.doctorMu.Lock()
	m.bg = ctx
	m.doctorMu.Unlock()
	defer m.startHistory(ctx)()   // the monitor history's sampler (history.go)
	defer m.startDataPlane(ctx)() // deadlocks and in-doubt transactions (dataplane.go)
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
		held := m.heldReason(ctx)
		m.doctorMu.Lock()
		if !m.doctorStarted {
			m.doctorHeld = held
		}
		m.doctorMu.Unlock()
		m.log.Warn("the doctor stays off: operations were interrupted by the previous manager's end; check the cluster, then START DOCTOR", "held", held)
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
	if v, err := strconv.Atoi(set[settingFollows]); err == nil && v >= 0 {
		cfg.Follows = v
	}
	if v, err := strconv.Atoi(set[settingRetry]); err == nil && v > 0 {
		cfg.Retry = v
	}
	return cfg
}

// heldReason says why the doctor is held until START DOCTOR: the
// operations the previous manager's end interrupted (the journal entries
// marked interrupted at this start-up, which all share its time).
func (m *Manager) heldReason(ctx context.Context) string {
	res, err := m.cat.Query(ctx, `SELECT command, step FROM journal WHERE status = 'interrupted'
		AND updated = (SELECT max(updated) FROM journal WHERE status = 'interrupted') ORDER BY id`)
	var ops []string
	if err == nil {
		for _, row := range res.Rows {
			if len(row) == 2 && row[0] != nil && row[1] != nil {
				ops = append(ops, fmt.Sprintf("%s (at step %q)", *row[0], *row[1]))
			}
		}
	}
	return heldComment(ops)
}

// heldComment is LIST DOCTOR's comment on a held doctor, naming what the
// previous manager's end interrupted.
func heldComment(ops []string) string {
	what := "an operation"
	if len(ops) > 0 {
		what = strings.Join(ops, ", ")
	}
	return fmt.Sprintf("held: the previous manager ended during %s; check the cluster (MONITOR ALL, the journal), then START DOCTOR finishes the doctor's own actions and starts it", what)
}

func (m *Manager) startDoctor(set map[string]string) {
	m.doctorMu.Lock()
	defer m.doctorMu.Unlock()
	if m.doctorStop != nil {
		m.doctorStop()
	}
	m.doctorHeld, m.doctorStarted = "", true
	parent := m.bg
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	m.doctorStop = func() { cancel(); <-done }
	cfg := doctorConfig(set)
	m.looks.reset(cfg.Interval)
	go func() {
		defer close(done)
		// What the previous manager's end cut short first (resume).
		if (doctorHands{m}).resumeLoop(ctx, cfg.Interval) {
			doctor.Run(ctx, doctorHands{m}, cfg, m.log)
		}
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

var doctorColumns = []pgwire.Column{
	{Name: "type", TypeOID: pgwire.OIDText},
	{Name: "subtype", TypeOID: pgwire.OIDText},
	{Name: "key", TypeOID: pgwire.OIDText},
	{Name: "value", TypeOID: pgwire.OIDText},
	{Name: "comment", TypeOID: pgwire.OIDText},
}

// doctorCommand is START DOCTOR, STOP DOCTOR, SET DOCTOR (…), SET DOCTOR
// {NODE|HOST} n {ON|OFF} and LIST DOCTOR.
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
	case "set node", "set host":
		if _, err := m.change(e, nil, st.Name.Pos, func(s *cluster.State) (cluster.Plan, error) {
			return doctorSwitch(s, st.Action == "set host", st.Name.Name, st.On)
		}); err != nil {
			return err
		}
		return e.w.Complete("SET DOCTOR")
	case "list":
		return m.doctorList(e)
	}
	return fmt.Errorf("unknown doctor action %q", st.Action)
}

// doctorSwitch is SET DOCTOR {NODE|HOST} name {ON|OFF}: allowcure on the
// row (reference §3.8). The doctor leaves the nodes of a host that is off
// alone, whatever their own allowcure.
func doctorSwitch(s *cluster.State, host bool, name string, on bool) (cluster.Plan, error) {
	if host {
		h, ok := s.Host(name)
		if !ok {
			return cluster.Plan{}, pgerror.New(pgerror.UndefinedObject, `host "%s" does not exist`, name)
		}
		h.AllowCure = on
		return cluster.Plan{UpdateHost: &h}, nil
	}
	n, ok := s.Node(name)
	if !ok {
		return cluster.Plan{}, pgerror.New(pgerror.UndefinedObject, `node "%s" does not exist`, name)
	}
	n.AllowCure = on
	return cluster.Plan{UpdateNodes: []cluster.Node{n}}, nil
}

// doctorSet is SET DOCTOR (interval_ms, failures, restarts, follows,
// retry): every option
// is checked before any is stored.
func (m *Manager) doctorSet(e *req, st *parser.Doctor) error {
	keys := map[string]struct {
		setting string
		min     int
	}{"interval_ms": {settingInterval, 100}, "failures": {settingFailures, 1}, "restarts": {settingRestarts, 0},
		"follows": {settingFollows, 0}, "retry": {settingRetry, 1}}
	for _, o := range st.Options {
		k, ok := keys[o.Name.Name]
		if !ok {
			return pgerror.New(pgerror.SyntaxError, `option "%s" is not recognized`, o.Name.Name).
				WithHint("Doctor options are interval_ms, failures, restarts, follows, retry.").At(e.q, o.Name.Pos)
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
// allowcure, then each host's.
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
	m.doctorMu.Lock()
	held, running, started := m.doctorHeld, m.doctorStop != nil, m.doctorStarted
	m.doctorMu.Unlock()
	if held == "" && enable == "on" && !running && !started && m.interrupted {
		held = m.heldReason(e.ctx) // asked before Run said it
	}
	state, comment := "stopped", "START DOCTOR starts it"
	switch {
	case enable == "on" && held != "":
		state, comment = "held", held
	case enable == "on" && running:
		state, comment = "running", "it looks at the nodes every interval_ms"
	case enable == "on":
		state, comment = "starting", "it starts once the manager's background work runs"
	}
	rows := []map[string]string{
		{"type": "PARAMETER", "subtype": "", "key": "enable", "value": enable, "comment": doctorDescription},
		{"type": "PARAMETER", "subtype": "", "key": "interval_ms", "value": strconv.Itoa(int(cfg.Interval / time.Millisecond)), "comment": "time between two looks at the masters"},
		{"type": "PARAMETER", "subtype": "", "key": "failures", "value": strconv.Itoa(cfg.Failures), "comment": "failed looks in a row before acting"},
		{"type": "PARAMETER", "subtype": "", "key": "restarts", "value": strconv.Itoa(cfg.Restarts), "comment": "restarts tried before failing over"},
		{"type": "PARAMETER", "subtype": "", "key": "follows", "value": strconv.Itoa(cfg.Follows), "comment": "re-points of a stray slave before isolating it"},
		{"type": "PARAMETER", "subtype": "", "key": "retry", "value": strconv.Itoa(cfg.Retry), "comment": "rounds before a failed repair, a sync list or a step-up is tried again"},
		{"type": "PARAMETER", "subtype": "", "key": "state", "value": state, "comment": comment},
	}
	var s *cluster.State
	if err := m.cat.View(e.ctx, func(tx catalog.ReadTx) (err error) { s, err = tx.State(); return err }); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		rows = append(rows, map[string]string{"type": "NODE", "subtype": string(n.Type), "key": n.Name, "value": onOff(n.AllowCure),
			"comment": "whether the doctor may act on it"})
	}
	for _, h := range s.Hosts {
		rows = append(rows, map[string]string{"type": "HOST", "subtype": h.Address, "key": h.Name, "value": onOff(h.AllowCure),
			"comment": "whether the doctor may act on its nodes"})
	}
	return writeTable(e.w, doctorColumns, rows)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
