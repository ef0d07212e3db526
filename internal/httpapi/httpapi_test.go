package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/adbmgr/adbmgr/internal/httpapi/httpapitest"
	"github.com/adbmgr/adbmgr/internal/mgr"
)

// fake is a Source with a fixed Status.
type fake struct {
	st       mgr.Status
	err      error
	catalog  error
	calls    atomic.Int32
	blocking chan struct{} // when set, Status waits for it or ctx
}

func (f *fake) Status(ctx context.Context) (mgr.Status, error) {
	f.calls.Add(1)
	if f.blocking != nil {
		select {
		case <-f.blocking:
		case <-ctx.Done():
			return mgr.Status{}, ctx.Err()
		}
	}
	return f.st, f.err
}

func (f *fake) CatalogWritable(context.Context) error { return f.catalog }

var failover = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// demo is a gtmcoord master with a sync slave streaming, a datanode
// master with a slave that is down, and a cascading slave.
func demo() mgr.Status {
	return mgr.Status{
		Taken: time.Now(),
		Hosts: []mgr.HostState{{Name: "h1", Address: "127.0.0.2", AgentUp: true}, {Name: "h2", Address: "127.0.0.3"}},
		Nodes: []mgr.NodeState{
			{Name: "gc", Type: "gtmcoord master", Role: "master", Host: "h1", Address: "127.0.0.2", Port: 6001, Up: true, Timeline: 2, Connections: 3, Description: "running", AgentUp: true},
			{Name: "gc1", Type: "gtmcoord slave", Role: "slave", Host: "h2", Address: "127.0.0.3", Port: 6001, Parent: "gc", Up: true, Recovery: true, Timeline: 2, State: "streaming", SyncState: "sync", LagBytes: 120, LagSeconds: 0.5},
			{Name: "gc2", Type: "gtmcoord slave", Role: "slave", Host: "h2", Address: "127.0.0.3", Port: 6002, Parent: "gc1", Up: true, Recovery: true, State: "streaming", SyncState: "async", LagBytes: 4096},
			{Name: "dn1", Type: "datanode master", Role: "master", Host: "h1", Address: "127.0.0.2", Port: 6101, Up: true, Description: "running"},
			{Name: "dn1s", Type: "datanode slave", Role: "slave", Host: "h2", Address: "127.0.0.3", Port: 6101, Parent: "dn1", State: "not streaming", Description: "not running"},
		},
		Doctor:        []mgr.JournalEntry{{ID: 7, Command: "DOCTOR RESTART dn1", Status: "done", Step: "end", Started: "2026-11-30T11:00:00Z", Updated: "2026-11-30T11:00:02Z"}},
		DoctorActions: []mgr.ActionCount{{Action: "restart", Status: "done", Count: 5}, {Action: "rejoin", Status: "running", Count: 1}},
		LastFailover:  failover,
	}
}

func serve(t *testing.T, src Source) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(src, Options{CacheFor: time.Hour, ProbeTimeout: time.Second}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		catalog error
		code    int
		want    health
	}{
		{nil, 200, health{Manager: "up", Catalog: "writable"}},
		{errors.New("disk I/O error"), 503, health{Manager: "up", Catalog: "not writable", Error: "disk I/O error"}},
	} {
		srv := serve(t, &fake{catalog: tc.catalog})
		code, body := get(t, srv.URL+"/healthz")
		var got health
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if code != tc.code || got != tc.want {
			t.Errorf("catalog error %v: %d %+v, want %d %+v", tc.catalog, code, got, tc.code, tc.want)
		}
	}
}

func TestPrimaryReplica(t *testing.T) {
	srv := serve(t, &fake{st: demo()})
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/primary/gc", 200},
		{"/primary/dn1", 200},
		{"/primary/gc1", 503}, // a slave
		{"/primary/nosuch", 404},
		{"/replica/gc1", 200},
		{"/replica/gc1?lag=120", 200},
		{"/replica/gc1?lag=119", 503},
		{"/replica/gc2?lag=1000", 503},
		{"/replica/gc2", 200},  // cascading, streaming from gc1
		{"/replica/dn1s", 503}, // down
		{"/replica/gc", 503},   // a master
		{"/replica/gc1?lag=lots", 400},
		{"/replica/gc2?lag=4kB", 200},
		{"/replica/gc2?lag=3kB", 503},
		{"/replica/gc2?lag=1MB", 200},
		{"/replica/gc1?lag=-1", 400},
		{"/replica/gc1?lag=99999999999TB", 400},
		{"/replica/nosuch", 404},
	} {
		if code, body := get(t, srv.URL+tc.path); code != tc.code {
			t.Errorf("%s: %d, want %d (%s)", tc.path, code, tc.code, body)
		}
	}
}

func TestPrimaryDemoted(t *testing.T) {
	st := demo()
	st.Nodes[0].Recovery = true // a master answering as a standby
	st.Nodes[3].Up = false
	srv := serve(t, &fake{st: st})
	for _, p := range []string{"/primary/gc", "/primary/dn1"} {
		if code, _ := get(t, srv.URL+p); code != 503 {
			t.Errorf("%s: %d, want 503", p, code)
		}
	}
}

func TestCluster(t *testing.T) {
	srv := serve(t, &fake{st: demo()})
	code, body := get(t, srv.URL+"/cluster")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct {
		Members []struct {
			Name, Role, Parent, State string
			SyncState                 string `json:"sync_state"`
			LagBytes                  int64  `json:"lag_bytes"`
			Up, Streaming             bool
		}
		Hosts []struct {
			Name    string
			AgentUp bool `json:"agent_up"`
		}
		Doctor       []struct{ Command string }
		LastFailover time.Time `json:"last_failover"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, m := range got.Members {
		members = append(members, strings.Join([]string{m.Name, m.Role, m.Parent, m.SyncState, m.State}, "/"))
	}
	want := []string{"gc/master///", "gc1/slave/gc/sync/streaming", "gc2/slave/gc1/async/streaming", "dn1/master///", "dn1s/slave/dn1//not streaming"}
	if d := cmp.Diff(want, members); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
	if !got.Members[1].Streaming || got.Members[4].Streaming || got.Members[4].Up || got.Members[1].LagBytes != 120 {
		t.Errorf("members: %+v", got.Members)
	}
	// A lag only where there is one: null for a master and a slave not
	// streaming, not a misleading 0.
	if compact := strings.Join(strings.Fields(body), ""); strings.Count(compact, `"lag_bytes":null`) != 3 || strings.Count(compact, `"lag_seconds":null`) != 3 {
		t.Errorf("lags of masters and non-streaming slaves are not null:\n%s", body)
	}
	if len(got.Hosts) != 2 || !got.Hosts[0].AgentUp || got.Hosts[1].AgentUp {
		t.Errorf("hosts: %+v", got.Hosts)
	}
	if len(got.Doctor) != 1 || got.Doctor[0].Command != "DOCTOR RESTART dn1" || !got.LastFailover.Equal(failover) {
		t.Errorf("doctor %+v, last failover %v", got.Doctor, got.LastFailover)
	}
}

func TestClusterUnreadable(t *testing.T) {
	srv := serve(t, &fake{err: errors.New("catalog is locked")})
	for _, p := range []string{"/cluster", "/primary/gc", "/replica/gc1", "/"} {
		if code, body := get(t, srv.URL+p); code != 503 || !strings.Contains(body, "catalog is locked") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
}

// scrape parses /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	fams, err := httpapitest.Parse(body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

func TestMetrics(t *testing.T) {
	s := New(&fake{st: demo()}, Options{CacheFor: time.Hour})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.Statement("MONITOR ALL", 30*time.Millisecond, nil)
	s.Statement("MONITOR ALL", 10*time.Millisecond, nil)
	s.Statement("FAILOVER", time.Second, errors.New("refused"))
	// The doctor's actions count as they finish, not from the journal
	// (demo's journal counts differ on purpose).
	s.DoctorAction("restart", "done")
	s.DoctorAction("restart", "done")
	s.DoctorAction("failover", "failed")
	fams := scrape(t, srv.URL)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"adbmgr_status_up", nil, 1},
		{"adbmgr_node_up", map[string]string{"node": "gc", "type": "gtmcoord master", "host": "h1"}, 1},
		{"adbmgr_node_up", map[string]string{"node": "dn1s"}, 0},
		{"adbmgr_node_info", map[string]string{"node": "gc2", "role": "slave", "parent": "gc1", "port": "6002"}, 1},
		{"adbmgr_node_primary", map[string]string{"node": "gc"}, 1},
		{"adbmgr_node_primary", map[string]string{"node": "gc1"}, 0},
		{"adbmgr_node_streaming", map[string]string{"node": "gc1", "parent": "gc"}, 1},
		{"adbmgr_node_streaming", map[string]string{"node": "dn1s"}, 0},
		{"adbmgr_node_sync_state", map[string]string{"node": "gc1", "sync_state": "sync"}, 1},
		{"adbmgr_node_sync_state", map[string]string{"node": "gc1", "sync_state": "async"}, 0},
		{"adbmgr_node_sync_state", map[string]string{"node": "gc2", "sync_state": "async"}, 1},
		{"adbmgr_node_replication_lag_bytes", map[string]string{"node": "gc2", "parent": "gc1"}, 4096},
		{"adbmgr_node_replication_lag_seconds", map[string]string{"node": "gc1"}, 0.5},
		{"adbmgr_node_timeline", map[string]string{"node": "gc"}, 2},
		{"adbmgr_node_connections", map[string]string{"node": "gc"}, 3},
		{"adbmgr_agent_up", map[string]string{"host": "h1", "address": "127.0.0.2"}, 1},
		{"adbmgr_agent_up", map[string]string{"host": "h2"}, 0},
		{"adbmgr_doctor_actions_total", map[string]string{"action": "restart", "status": "done"}, 2},
		{"adbmgr_doctor_actions_total", map[string]string{"action": "failover", "status": "failed"}, 1},
		{"adbmgr_doctor_actions_running", map[string]string{"action": "rejoin"}, 1},
		{"adbmgr_last_failover_timestamp_seconds", nil, float64(failover.Unix())},
		{"adbmgr_commands_total", map[string]string{"command": "MONITOR ALL", "outcome": "ok"}, 2},
		{"adbmgr_commands_total", map[string]string{"command": "FAILOVER", "outcome": "error"}, 1},
		{"adbmgr_command_duration_seconds", map[string]string{"command": "MONITOR ALL"}, 2},
	} {
		got, ok := httpapitest.Value(fams, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// No lag for a slave that does not stream: absent, not 0.
	if _, ok := httpapitest.Value(fams, "adbmgr_node_replication_lag_bytes", map[string]string{"node": "dn1s"}); ok {
		t.Error("a slave not streaming has a lag")
	}
	if fams["adbmgr_doctor_actions_total"].GetType() != dto.MetricType_COUNTER || fams["adbmgr_command_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Error("wrong metric types")
	}
}

// A scrape storm probes the nodes once per CacheFor; a source that hangs
// is cut at ProbeTimeout and counted down, not waited for.
func TestCacheAndTimeout(t *testing.T) {
	f := &fake{st: demo()}
	s := New(f, Options{CacheFor: time.Hour, ProbeTimeout: 100 * time.Millisecond})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for range 5 {
		scrape(t, srv.URL)
		get(t, srv.URL+"/cluster")
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d Status calls, want 1", n)
	}
	hang := &fake{blocking: make(chan struct{})}
	s = New(hang, Options{CacheFor: time.Millisecond, ProbeTimeout: 100 * time.Millisecond})
	srv2 := httptest.NewServer(s.Handler())
	defer srv2.Close()
	start := time.Now()
	fams := scrape(t, srv2.URL)
	if v, _ := httpapitest.Value(fams, "adbmgr_status_up", nil); v != 0 {
		t.Errorf("adbmgr_status_up = %v with a hanging source", v)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("scrape took %s", d)
	}
}

func TestPage(t *testing.T) {
	srv := serve(t, &fake{st: demo()})
	code, body := get(t, srv.URL+"/")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`<tr class="up" data-node="gc" data-up="true">`,
		`<tr class="down" data-node="dn1s" data-up="false">`,
		`↳ gc2`, `DOCTOR RESTART dn1`, `<tr class="down" data-host="h2">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
	if code, _ := get(t, srv.URL+"/nosuch"); code != 404 {
		t.Errorf("/nosuch: %d", code)
	}
}

func TestTree(t *testing.T) {
	var got []string
	for _, r := range tree(demo().Nodes) {
		got = append(got, strings.Repeat(" ", r.Depth)+r.Name)
	}
	want := []string{"gc", " gc1", "  gc2", "dn1", " dn1s"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tree (-want +got):\n%s", d)
	}
	// A parent that is missing or a cycle still shows every node once.
	broken := []mgr.NodeState{{Name: "a", Parent: "b"}, {Name: "b", Parent: "a"}, {Name: "c", Parent: "gone"}}
	if n := len(tree(broken)); n != 3 {
		t.Errorf("broken tree has %d rows, want 3", n)
	}
}

func TestListenRule(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", "[::]:0", ":0"} {
		if l, err := Listen(addr, nil); err == nil {
			l.Close()
			t.Errorf("%s without TLS was allowed", addr)
		} else if !strings.Contains(err.Error(), "--http-tls") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
