package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metrics' names, per Prometheus's conventions: adbmgr_ prefix, base
// units (bytes, seconds) in the name, _total for counters. docs/OBSERVABILITY.md
// lists them.
var (
	descNodeUp = prometheus.NewDesc("adbmgr_node_up",
		"Whether the node answers (MONITOR's status): 1 up, 0 down.", []string{"node", "type", "host"}, nil)
	descNodeInfo = prometheus.NewDesc("adbmgr_node_info",
		"The node's place in the topology (always 1): role master or slave, parent a slave streams from.",
		[]string{"node", "type", "role", "host", "address", "port", "parent", "zone"}, nil)
	descNodePrimary = prometheus.NewDesc("adbmgr_node_primary",
		"Whether the node answers as a primary (up and not in recovery).", []string{"node"}, nil)
	descNodeStreaming = prometheus.NewDesc("adbmgr_node_streaming",
		"Whether a slave streams from its parent (pg_stat_replication state streaming).", []string{"node", "parent"}, nil)
	descSyncState = prometheus.NewDesc("adbmgr_node_sync_state",
		"A streaming slave's sync_state in its parent's pg_stat_replication: 1 for the current one.", []string{"node", "sync_state"}, nil)
	descLagBytes = prometheus.NewDesc("adbmgr_node_replication_lag_bytes",
		"A streaming slave's replay lag behind its parent, in bytes of WAL.", []string{"node", "parent"}, nil)
	descLagSeconds = prometheus.NewDesc("adbmgr_node_replication_lag_seconds",
		"A streaming slave's replay_lag (0 when idle and caught up).", []string{"node", "parent"}, nil)
	descTimeline = prometheus.NewDesc("adbmgr_node_timeline",
		"The timeline of the node's last checkpoint or restartpoint.", []string{"node"}, nil)
	descConnections = prometheus.NewDesc("adbmgr_node_connections",
		"The node's client backends.", []string{"node"}, nil)
	descAgentUp = prometheus.NewDesc("adbmgr_agent_up",
		"Whether the host's agent answers.", []string{"host", "address"}, nil)
	descDoctorRunning = prometheus.NewDesc("adbmgr_doctor_actions_running",
		"The doctor's actions under way (running in the operation journal), by action.", []string{"action"}, nil)
	descLastFailover = prometheus.NewDesc("adbmgr_last_failover_timestamp_seconds",
		"When the last failover, switchover or promotion finished (Unix time; 0: none in the journal).", nil, nil)
	descStatusUp = prometheus.NewDesc("adbmgr_status_up",
		"Whether the manager could read the cluster's status for this scrape (catalog readable).", nil, nil)
	descStatusAge = prometheus.NewDesc("adbmgr_status_age_seconds",
		"How old the status this scrape shows is (it is cached briefly).", nil, nil)
)

// syncStates are the values adbmgr_node_sync_state spells out, so that a
// change shows as one series going to 0 and another to 1.
var syncStates = []string{"sync", "potential", "async", "quorum"}

type metrics struct {
	reg      *prometheus.Registry
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
	doctor   *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adbmgr_commands_total",
			Help: "Statements the manager ran, by command and outcome (ok or error).",
		}, []string{"command", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "adbmgr_command_duration_seconds",
			Help:    "How long the manager's statements ran, by command.",
			Buckets: []float64{.001, .005, .025, .1, .5, 1, 5, 15, 60, 300},
		}, []string{"command"}),
		// Counted as the doctor's actions finish (mgr.DoctorObserver),
		// not read from the journal: a counter must never go down, and a
		// journal row goes from running to done.
		doctor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adbmgr_doctor_actions_total",
			Help: "The doctor's actions that finished since the manager started, by action and outcome (done or failed).",
		}, []string{"action", "status"}),
	}
	m.reg.MustRegister(m.commands, m.duration, m.doctor, clusterCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Statement implements mgr.Observer.
func (s *Server) Statement(command string, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.m.commands.WithLabelValues(command, outcome).Inc()
	s.m.duration.WithLabelValues(command).Observe(d.Seconds())
}

// DoctorAction implements mgr.DoctorObserver.
func (s *Server) DoctorAction(action, outcome string) {
	s.m.doctor.WithLabelValues(action, outcome).Inc()
}

// clusterCollector turns the cached Status into metrics at scrape time.
type clusterCollector struct{ s *Server }

// Describe implements prometheus.Collector.
func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeUp, descNodeInfo, descNodePrimary, descNodeStreaming, descSyncState,
		descLagBytes, descLagSeconds, descTimeline, descConnections, descAgentUp, descDoctorRunning, descLastFailover,
		descStatusUp, descStatusAge} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolean(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.s.status()
	gauge(ch, descStatusUp, boolean(err == nil))
	if err != nil {
		return
	}
	gauge(ch, descStatusAge, time.Since(st.Taken).Seconds())
	for _, h := range st.Hosts {
		gauge(ch, descAgentUp, boolean(h.AgentUp), h.Name, h.Address)
	}
	for _, n := range st.Nodes {
		gauge(ch, descNodeUp, boolean(n.Up), n.Name, n.Type, n.Host)
		gauge(ch, descNodeInfo, 1, n.Name, n.Type, n.Role, n.Host, n.Address, strconv.Itoa(n.Port), n.Parent, n.Zone)
		gauge(ch, descNodePrimary, boolean(n.LivePrimary()), n.Name)
		if n.Up {
			gauge(ch, descConnections, float64(n.Connections), n.Name)
			if n.Timeline > 0 {
				gauge(ch, descTimeline, float64(n.Timeline), n.Name)
			}
		}
		if n.Role != "slave" {
			continue
		}
		gauge(ch, descNodeStreaming, boolean(n.Streaming()), n.Name, n.Parent)
		if !n.Streaming() {
			continue
		}
		for _, ss := range syncStates {
			gauge(ch, descSyncState, boolean(n.SyncState == ss), n.Name, ss)
		}
		gauge(ch, descLagBytes, float64(n.LagBytes), n.Name, n.Parent)
		gauge(ch, descLagSeconds, n.LagSeconds, n.Name, n.Parent)
	}
	for _, a := range st.DoctorActions {
		if a.Status == "running" {
			gauge(ch, descDoctorRunning, float64(a.Count), a.Action)
		}
	}
	var last float64
	if !st.LastFailover.IsZero() {
		last = float64(st.LastFailover.Unix())
	}
	gauge(ch, descLastFailover, last)
}

var _ prometheus.Collector = clusterCollector{}
