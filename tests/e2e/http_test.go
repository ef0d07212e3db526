package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/adbmgr/adbmgr/internal/httpapi/httpapitest"
)

// TestHTTP: a manager started with --http serves, over a real cluster,
// /healthz, /cluster, /primary, /replica and /metrics, and the topology
// page in headless Chromium; a node whose postmaster is killed turns down
// everywhere (in red on the page) within a few seconds, and once the doctor
// restarted it the page shows its action. Screenshots of the page at each
// step go to $ADBMGR_ARTIFACTS (default tests/e2e/artifacts).
func TestHTTP(t *testing.T) {
	chromium := requireChromium(t)
	c := newTestCluster(t, 2)
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h2", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h2", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, initTimeout, "INIT ALL")
	// Restarted with the HTTP side on (newTestCluster starts the manager
	// without flags).
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.M.Stop()
	c.M.Args = []string{"--http", addr}
	c.M.Restart()
	base := "http://" + addr
	waitFor(t, 10*time.Second, "the HTTP side answers", func() (bool, string) {
		code, body, err := httpGet(base + "/healthz")
		return err == nil && code == 200, fmt.Sprint(code, body, err)
	})
	// Everything but /healthz wants a manager user's password (HTTP
	// Basic), as psql over TCP does.
	for _, path := range []string{"/cluster", "/metrics", "/"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		if path == "/" {
			req.SetBasicAuth("postgres", "wrong")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != `Basic realm="adbmgr"` {
			t.Errorf("GET %s without the password: %d %q", path, res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	}
	if code, body, _ := httpGet(base + "/healthz"); code != 200 || !strings.Contains(body, `"catalog": "writable"`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	c.mustRows(t, time.Minute, "MONITOR ALL")

	var cl struct {
		Members []struct {
			Name, Role, Parent string
			SyncState          string `json:"sync_state"`
			Up, Streaming      bool
		}
	}
	waitFor(t, 20*time.Second, "every node up and dn1s streaming in /cluster", func() (bool, string) {
		code, body, err := httpGet(base + "/cluster")
		if err != nil || code != 200 {
			return false, fmt.Sprint(code, body, err)
		}
		if err := json.Unmarshal([]byte(body), &cl); err != nil {
			return false, err.Error()
		}
		up := 0
		for _, m := range cl.Members {
			if m.Up {
				up++
			}
			if m.Name == "dn1s" && (!m.Streaming || m.SyncState != "sync" || m.Parent != "dn1") {
				return false, body
			}
		}
		return up == len(c.Nodes) && len(cl.Members) == len(c.Nodes), body
	})
	for path, want := range map[string]int{
		"/primary/dn1": 200, "/primary/gc": 200, "/primary/dn1s": 503, "/primary/nosuch": 404,
		"/replica/dn1s": 200, "/replica/dn1s?lag=1000000000": 200, "/replica/dn1": 503,
	} {
		if code, body, err := httpGet(base + path); code != want {
			t.Errorf("%s: %d, want %d (%s %v)", path, code, want, body, err)
		}
	}
	fams := scrapeMetrics(t, base)
	for _, n := range c.Nodes {
		if v, ok := httpapitest.Value(fams, "adbmgr_node_up", map[string]string{"node": n.Name}); !ok || v != 1 {
			t.Errorf("adbmgr_node_up{node=%q} = %v (%v)", n.Name, v, ok)
		}
	}
	for name, labels := range map[string]map[string]string{
		"adbmgr_node_streaming":  {"node": "dn1s", "parent": "dn1"},
		"adbmgr_node_sync_state": {"node": "dn1s", "sync_state": "sync"},
		"adbmgr_agent_up":        {"host": "h1"},
		"adbmgr_node_primary":    {"node": "dn1"},
		"adbmgr_status_up":       nil,
	} {
		if v, ok := httpapitest.Value(fams, name, labels); !ok || v != 1 {
			t.Errorf("%s%v = %v (%v)", name, labels, v, ok)
		}
	}
	if v, ok := httpapitest.Value(fams, "adbmgr_commands_total", map[string]string{"command": "MONITOR", "outcome": "ok"}); !ok || v < 1 {
		t.Errorf("adbmgr_commands_total{MONITOR} = %v (%v)", v, ok)
	}
	if v, ok := httpapitest.Value(fams, "adbmgr_node_timeline", map[string]string{"node": "dn1"}); !ok || v < 1 {
		t.Errorf("adbmgr_node_timeline{dn1} = %v (%v)", v, ok)
	}
	for _, name := range []string{"adbmgr_node_replication_lag_bytes", "adbmgr_node_replication_lag_seconds"} {
		if _, ok := httpapitest.Value(fams, name, map[string]string{"node": "dn1s"}); !ok {
			t.Errorf("no %s for dn1s", name)
		}
	}

	// The page, in a browser: every node, all up.
	dom := chromiumDOM(t, chromium, base+"/", "before")
	for _, n := range c.Nodes {
		if !strings.Contains(dom, fmt.Sprintf(`<tr class="up" data-node="%s"`, n.Name)) {
			t.Errorf("the page does not show %s up:\n%s", n.Name, dom)
		}
	}

	// dn1s's postmaster dies (the doctor is off: it stays down).
	syscall.Kill(postmasterPID(t, c.node("dn1s")), syscall.SIGKILL)
	waitFor(t, 20*time.Second, "dn1s down in /metrics", func() (bool, string) {
		v, ok := httpapitest.Value(scrapeMetrics(t, base), "adbmgr_node_up", map[string]string{"node": "dn1s"})
		return ok && v == 0, fmt.Sprint(v, ok)
	})
	if code, _, _ := httpGet(base + "/replica/dn1s"); code != 503 {
		t.Errorf("/replica/dn1s of a dead slave: %d", code)
	}
	if code, _, _ := httpGet(base + "/primary/dn1"); code != 200 {
		t.Errorf("/primary/dn1 with its slave dead: %d", code)
	}
	dom = chromiumDOM(t, chromium, base+"/", "after")
	if !strings.Contains(dom, `<tr class="down" data-node="dn1s"`) || !strings.Contains(dom, "tr.down td { color: #b00; }") {
		t.Errorf("the page does not show dn1s down in red:\n%s", dom)
	}
	if !strings.Contains(dom, `<tr class="up" data-node="dn1"`) {
		t.Errorf("the page does not show dn1 still up:\n%s", dom)
	}

	// The doctor restarts it: its action shows in the metrics and on the
	// page.
	c.mustRows(t, time.Minute, "SET DOCTOR (interval_ms = 500, failures = 2)")
	c.mustRows(t, time.Minute, "START DOCTOR")
	waitFor(t, 30*time.Second, "the doctor's restart of dn1s in /metrics", func() (bool, string) {
		fams := scrapeMetrics(t, base)
		up, _ := httpapitest.Value(fams, "adbmgr_node_up", map[string]string{"node": "dn1s"})
		n, _ := httpapitest.Value(fams, "adbmgr_doctor_actions_total", map[string]string{"action": "restart", "status": "done"})
		return up == 1 && n >= 1, fmt.Sprintf("up %v, restarts %v", up, n)
	})
	dom = chromiumDOM(t, chromium, base+"/", "doctor")
	if !strings.Contains(dom, "DOCTOR RESTART dn1s") || !strings.Contains(dom, `<tr class="up" data-node="dn1s"`) {
		t.Errorf("the page does not show the doctor's restart of dn1s:\n%s", dom)
	}
}

// TestHTTPOpenAddress: --http on an address other than loopback without
// --http-tls keeps the manager from starting, and says why; with
// --http-tls the monitor's certificate gets in and no certificate does not.
func TestHTTPOpenAddress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mgr")
	bin := filepath.Join(binDir, "adbmgr")
	if out, err := exec.Command(bin, "init", "-D", dir).CombinedOutput(); err != nil {
		t.Fatalf("adbmgr init: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "start", "-D", dir, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--http", "0.0.0.0:0").CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "not a loopback address: give --http-tls") {
		t.Errorf("adbmgr start --http 0.0.0.0:0: %v\n%s", err, out)
	}

	// With --http-tls it serves any address, to the monitor's certificate.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	m := &Manager{t: t, Dir: dir, Port: freePort(t), log: &bytes.Buffer{}, Args: []string{"--http", "0.0.0.0:" + strings.Split(addr, ":")[1], "--http-tls"}}
	m.start()
	t.Cleanup(m.Stop)
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", "monitor.crt"), filepath.Join(dir, "pki", "monitor.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, certs := range [][]tls.Certificate{{pair}, nil} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		// The certificate is enough: no password asked for.
		for _, path := range []string{"/healthz", "/cluster"} {
			res, err := c.Get("https://" + addr + path)
			if err == nil {
				res.Body.Close()
			}
			if ok := err == nil && res.StatusCode == 200; ok != (certs != nil) {
				t.Errorf("--http-tls %s with %d client certificates: %v", path, len(certs), err)
			}
		}
	}
}

// requireChromium finds Debian's chromium (.ci/run installs it).
func requireChromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: apt-get install -y chromium (.ci/run does)")
	}
	return p
}

// chromiumDOM loads url in headless Chromium and returns the DOM it built;
// a screenshot of the page is kept as ARTIFACTS/http-<name>.png.
func chromiumDOM(t *testing.T, chromium, url, name string) string {
	t.Helper()
	art := os.Getenv("ADBMGR_ARTIFACTS")
	if art == "" {
		art = "artifacts"
	}
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, err := filepath.Abs(filepath.Join(art, "http-"+name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// As root Chromium needs --no-sandbox; a profile of its own keeps
		// runs apart.
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(), "--window-size=1400,900"}
		cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
		var stdout strings.Builder
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, tailLines(stderr.String(), 20))
		}
		return stdout.String()
	}
	// The page wants the superuser's password: in the URL, as a browser
	// takes it.
	url = strings.Replace(url, "http://", "http://postgres:"+Password+"@", 1)
	dom := run("--dump-dom", url)
	run("--screenshot="+shot, url)
	t.Logf("screenshot: %s", shot)
	return dom
}

// httpGet gets url as the e2e managers' superuser (HTTP Basic).
func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 15 * time.Second}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth("postgres", Password)
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := httpGet(base + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v\n%s", code, err, body)
	}
	fams, err := httpapitest.Parse(body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}
