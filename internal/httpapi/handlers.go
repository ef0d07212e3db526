package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/mgr"
)

// writeJSON answers code with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// health is /healthz's body.
type health struct {
	Manager string `json:"manager"`
	Catalog string `json:"catalog"`
	Error   string `json:"error,omitempty"`
}

// healthz answers 200 when the manager runs and its catalog takes a write
// transaction, 503 otherwise. It probes no node: a cluster with a node
// down has a healthy manager.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ProbeTimeout)
	defer cancel()
	if err := s.src.CatalogWritable(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, health{Manager: "up", Catalog: "not writable", Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, health{Manager: "up", Catalog: "writable"})
}

// clusterView is /cluster's body: the Status, with each slave's streaming
// flag spelt out.
type clusterView struct {
	Taken        time.Time          `json:"taken"`
	Hosts        []mgr.HostState    `json:"hosts"`
	Members      []member           `json:"members"`
	Doctor       []mgr.JournalEntry `json:"doctor"`
	LastFailover *time.Time         `json:"last_failover,omitempty"`
}

type member struct {
	mgr.NodeState
	Streaming bool `json:"streaming"`
	// The lag only of a streaming slave: null for a master, or a slave
	// down or not streaming, where 0 would read as "caught up" (the
	// metrics leave those series out for the same reason).
	LagBytes   *int64   `json:"lag_bytes"`
	LagSeconds *float64 `json:"lag_seconds"`
}

func memberOf(n mgr.NodeState) member {
	m := member{NodeState: n, Streaming: n.Streaming()}
	if m.Streaming {
		m.LagBytes, m.LagSeconds = &n.LagBytes, &n.LagSeconds
	}
	return m
}

func viewOf(st mgr.Status) clusterView {
	v := clusterView{Taken: st.Taken, Hosts: st.Hosts, Doctor: st.Doctor, Members: make([]member, len(st.Nodes))}
	if v.Hosts == nil {
		v.Hosts = []mgr.HostState{}
	}
	if v.Doctor == nil {
		v.Doctor = []mgr.JournalEntry{}
	}
	for i, n := range st.Nodes {
		v.Members[i] = memberOf(n)
	}
	if !st.LastFailover.IsZero() {
		v.LastFailover = &st.LastFailover
	}
	return v
}

type problem struct {
	Error string `json:"error"`
}

// clusterJSON answers the topology, 503 when the status cannot be read.
func (s *Server) clusterJSON(w http.ResponseWriter, r *http.Request) {
	st, err := s.status()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, problem{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, viewOf(st))
}

// node finds the node of the request's path, answering 404 (unknown) or
// 503 (no status) itself when it returns false.
func (s *Server) node(w http.ResponseWriter, r *http.Request) (mgr.NodeState, bool) {
	st, err := s.status()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, problem{err.Error()})
		return mgr.NodeState{}, false
	}
	name := r.PathValue("node")
	for _, n := range st.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	writeJSON(w, http.StatusNotFound, problem{"node " + strconv.Quote(name) + " does not exist"})
	return mgr.NodeState{}, false
}

// primary answers 200 when the node is a master that answers as a
// primary, 503 otherwise (a load balancer's write pool).
func (s *Server) primary(w http.ResponseWriter, r *http.Request) {
	n, ok := s.node(w, r)
	if !ok {
		return
	}
	code := http.StatusServiceUnavailable
	if n.LivePrimary() {
		code = http.StatusOK
	}
	writeJSON(w, code, memberOf(n))
}

// replica answers 200 when the node is a slave that answers, in recovery,
// streaming from its parent, with a replay lag of at most ?lag=BYTES when
// given; 503 otherwise; 400 for a lag that is not a size.
func (s *Server) replica(w http.ResponseWriter, r *http.Request) {
	maxLag := int64(-1)
	if v := r.URL.Query().Get("lag"); v != "" {
		l, err := parseBytes(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, problem{err.Error()})
			return
		}
		maxLag = l
	}
	n, ok := s.node(w, r)
	if !ok {
		return
	}
	code := http.StatusServiceUnavailable
	if n.Role == "slave" && n.Up && n.Recovery && n.Streaming() && (maxLag < 0 || n.LagBytes <= maxLag) {
		code = http.StatusOK
	}
	writeJSON(w, code, memberOf(n))
}

// units are the suffixes parseBytes takes: PostgreSQL's memory units
// (1024-based), as Patroni's ?lag= takes them too.
var units = []struct {
	suffix string
	factor int64
}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}

// parseBytes reads a size: a number of bytes, or one with a unit (16MB).
func parseBytes(v string) (int64, error) {
	factor := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, factor = n, u.factor
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/factor {
		return 0, fmt.Errorf("lag must be a size in bytes, or with a unit: B, kB, MB, GB, TB")
	}
	return n * factor, nil
}
