package httpapi

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"time"

	"github.com/adbmgr/adbmgr/internal/mgr"
)

//go:embed templates/topology.html
var templates embed.FS

var topology = template.Must(template.ParseFS(templates, "templates/topology.html"))

// pageRefresh is how often the page reloads itself (seconds).
const pageRefresh = 5

// pageRow is a node in the page's table, indented under its parent.
type pageRow struct {
	mgr.NodeState
	Depth int
}

// Indent is the row's first cell's left padding (em).
func (r pageRow) Indent() float64 { return 0.6 + 1.5*float64(r.Depth) }

// pageData is what the template shows.
type pageData struct {
	Refresh      int
	Error        string
	Taken        string
	LastFailover string
	Hosts        []mgr.HostState
	Rows         []pageRow
	Doctor       []mgr.JournalEntry
}

// tree orders nodes as the replication trees they form: each master, then
// the slaves streaming from it (depth first, in the Status's order); a
// slave whose parent is not among the nodes comes last, unindented.
func tree(nodes []mgr.NodeState) []pageRow {
	children := map[string][]mgr.NodeState{}
	known := map[string]bool{}
	for _, n := range nodes {
		known[n.Name] = true
	}
	var roots []mgr.NodeState
	for _, n := range nodes {
		if n.Parent == "" || !known[n.Parent] || n.Parent == n.Name {
			roots = append(roots, n)
			continue
		}
		children[n.Parent] = append(children[n.Parent], n)
	}
	var out []pageRow
	seen := map[string]bool{}
	var walk func(n mgr.NodeState, depth int)
	walk = func(n mgr.NodeState, depth int) {
		if seen[n.Name] {
			return // a cycle in a broken catalog: show each node once
		}
		seen[n.Name] = true
		out = append(out, pageRow{NodeState: n, Depth: depth})
		for _, c := range children[n.Name] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	for _, n := range nodes {
		if !seen[n.Name] {
			walk(n, 0)
		}
	}
	return out
}

// page is the live topology page: server-rendered, reloading itself
// (a meta refresh: no script).
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	d := pageData{Refresh: pageRefresh}
	st, err := s.status()
	code := http.StatusOK
	if err != nil {
		d.Error = err.Error()
		code = http.StatusServiceUnavailable
	} else {
		d.Taken = st.Taken.UTC().Format(time.RFC3339)
		if !st.LastFailover.IsZero() {
			d.LastFailover = st.LastFailover.UTC().Format(time.RFC3339)
		}
		d.Hosts, d.Rows, d.Doctor = st.Hosts, tree(st.Nodes), st.Doctor
	}
	var b bytes.Buffer
	if err := topology.Execute(&b, d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}
