package mgr

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// The monitor history (issue 11): every interval the manager samples each
// initialised node as MONITOR ALL sees it (m.probe: up or down, the role
// it answers as, its timeline and client sessions) and each slave's lag
// as its master's pg_stat_replication tells it (MONITOR HA's read), and
// keeps the samples in the catalog (the monitor_history view) for the
// retention. SET MONITOR (interval = s, retention = days) sets both
// (mgr_setting keys; interval 0 stops sampling); CLEAN MONITOR n deletes
// the samples older than n days. The sampler runs beside the doctor under
// Run's context, takes no cluster lock (a DBA's command never waits for
// it), and a round never lasts longer than its bound.

const (
	settingMonitorInterval  = "monitor.interval_s"
	settingMonitorRetention = "monitor.retention_days"

	defaultMonitorInterval  = 60 * time.Second
	defaultMonitorRetention = 7 * 24 * time.Hour

	// maxSampleRound bounds one round: probes run in parallel with their
	// own timeouts (3 s for SQL), but an unreachable host's agent call
	// must not hold the next round back.
	maxSampleRound = 10 * time.Second
)

// history is the sampler's state.
type history struct {
	once sync.Once
	wake chan struct{} // SET MONITOR changed the settings
	// now is the clock; tests set it.
	now func() time.Time
}

func (h *history) wakeup() chan struct{} {
	h.once.Do(func() { h.wake = make(chan struct{}, 1) })
	return h.wake
}

func (h *history) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

type historyConfig struct {
	interval, retention time.Duration
}

func monitorConfig(set map[string]string) historyConfig {
	c := historyConfig{interval: defaultMonitorInterval, retention: defaultMonitorRetention}
	if v, err := strconv.Atoi(set[settingMonitorInterval]); err == nil && v >= 0 {
		c.interval = time.Duration(v) * time.Second
	}
	if v, err := strconv.Atoi(set[settingMonitorRetention]); err == nil && v > 0 {
		c.retention = time.Duration(v) * 24 * time.Hour
	}
	return c
}

// startHistory starts the sampler; the function it returns waits until
// it has stopped (ctx ended), so that the manager closes the catalog
// after its last write.
func (m *Manager) startHistory(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.runHistory(ctx)
	}()
	return func() { <-done }
}

// runHistory samples the nodes every interval until ctx ends.
func (m *Manager) runHistory(ctx context.Context) {
	wake := m.history.wakeup()
	for {
		cfg := historyConfig{interval: defaultMonitorInterval, retention: defaultMonitorRetention}
		if set, err := m.cat.Settings(ctx); err == nil {
			cfg = monitorConfig(set)
		}
		wait := cfg.interval
		if wait == 0 {
			wait = time.Hour // off: only SET MONITOR wakes it
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
			continue
		case <-t.C:
		}
		if cfg.interval > 0 {
			m.sampleRound(ctx, cfg)
		}
	}
}

// sampleRound takes one sample of every initialised node and prunes what
// the retention no longer keeps.
func (m *Manager) sampleRound(ctx context.Context, cfg historyConfig) {
	bound := min(cfg.interval, maxSampleRound)
	rctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	s, err := m.state(rctx)
	if err != nil {
		m.log.Warn("monitor history: cannot read the catalog", "error", err)
		return
	}
	samples := m.sample(rctx, s)
	if ctx.Err() != nil {
		return // the manager stops: probes cut short would read as "down"
	}
	// The writes are not cut short by the round's bound: the samples
	// were paid for.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer wcancel()
	if err := m.cat.AddSamples(wctx, samples); err != nil {
		m.log.Warn("monitor history: cannot write the samples", "error", err)
	}
	if _, err := m.cat.CleanMonitor(wctx, m.history.clock().Add(-cfg.retention)); err != nil {
		m.log.Warn("monitor history: cannot prune old samples", "error", err)
	}
}

// sample probes the initialised nodes of s in parallel, then reads the
// slaves' lag on their masters (one pg_stat_replication read per master
// that answered).
func (m *Manager) sample(ctx context.Context, s *cluster.State) []catalog.Sample {
	var nodes []cluster.Node
	for _, n := range s.Nodes {
		if n.Initialized {
			nodes = append(nodes, n)
		}
	}
	at := m.history.clock()
	out := make([]catalog.Sample, len(nodes))
	parallel(len(nodes), func(i int) {
		n := nodes[i]
		row := map[string]string{}
		desc := m.probe(ctx, s, n, row)
		smp := catalog.Sample{Time: at, Node: n.Name, NodeType: string(n.Type), Host: n.Host,
			Up: row["status"] == "t", Description: desc}
		switch row["recovery"] {
		case "true":
			smp.Role = "standby"
		case "false":
			smp.Role = "primary"
		}
		smp.Timeline = intOrNil(row["timeline"])
		smp.Connections = intOrNil(row["connections"])
		out[i] = smp
	})
	// Each live parent's replication is read once, as MONITOR HA does.
	up := map[string]bool{}
	for _, smp := range out {
		up[smp.Node] = smp.Role != ""
	}
	var slaves []cluster.Node
	for _, n := range nodes {
		if n.Master != "" && up[n.Master] {
			slaves = append(slaves, n)
		}
	}
	parents := m.replicas(ctx, s, slaves)
	for i, n := range nodes {
		if r, ok := replicaOf(parents, n); ok {
			lb, ls := r.LagBytes, r.LagSeconds
			out[i].SyncState, out[i].LagBytes, out[i].LagSeconds = r.SyncState, &lb, &ls
		}
	}
	return out
}

func intOrNil(s string) *int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

// setMonitor is SET MONITOR (interval = seconds, retention = days): every
// option is checked before any is stored; the sampler starts over with
// the new settings at once.
func (m *Manager) setMonitor(e *req, st *parser.SetMonitor) error {
	keys := map[string]struct {
		setting  string
		min, max int
	}{"interval": {settingMonitorInterval, 0, 86400}, "retention": {settingMonitorRetention, 1, 36500}}
	for _, o := range st.Options {
		k, ok := keys[o.Name.Name]
		if !ok {
			return pgerror.New(pgerror.SyntaxError, `option "%s" is not recognized`, o.Name.Name).
				WithHint("Monitor options are interval (seconds, 0 = off), retention (days).").At(e.q, o.Name.Pos)
		}
		v, err := strconv.Atoi(o.Value)
		if err != nil || v < k.min || v > k.max {
			return pgerror.New(pgerror.InvalidParameterValue, `invalid value for option "%s": "%s"`, o.Name.Name, o.Value).
				WithHint("An integer between %d and %d.", k.min, k.max).At(e.q, o.ValuePos)
		}
	}
	for _, o := range st.Options {
		if err := m.cat.SetSetting(e.ctx, keys[o.Name.Name].setting, o.Value); err != nil {
			return err
		}
	}
	select {
	case m.history.wakeup() <- struct{}{}:
	default:
	}
	return e.w.Complete("SET MONITOR")
}

// cleanMonitor is CLEAN MONITOR days: the samples taken more than days
// days ago are deleted (0: all of them).
func (m *Manager) cleanMonitor(e *req, days int) error {
	before := m.history.clock().Add(-time.Duration(days) * 24 * time.Hour)
	n, err := m.cat.CleanMonitor(e.ctx, before)
	if err != nil {
		return err
	}
	e.w.Notice("NOTICE", fmt.Sprintf("%d monitor samples taken before %s deleted", n, before.UTC().Format(catalog.TimeFormat)))
	return e.w.Complete("CLEAN MONITOR DATA")
}
