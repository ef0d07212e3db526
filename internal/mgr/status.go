package mgr

// The read-only view of the cluster that the HTTP side (internal/httpapi)
// serves: the same probes as MONITOR ALL and MONITOR HA, as plain structs,
// plus the journal's record of the doctor and of switches. Nothing here
// takes the operations lock or writes to a node.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgclient"
)

// NodeState is one node as it is now.
type NodeState struct {
	Name string `json:"name"`
	// Type is AntDB's node type ("datanode slave"); Role "master" or
	// "slave", from the catalog.
	Type    string `json:"type"`
	Role    string `json:"role"`
	Host    string `json:"host"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Parent is the node a slave streams from (its master or, cascading,
	// another slave).
	Parent    string `json:"parent,omitempty"`
	Zone      string `json:"zone,omitempty"`
	InCluster bool   `json:"in_cluster"`
	// Up: the node answers (MONITOR's status); Description is MONITOR's.
	Up          bool   `json:"up"`
	Description string `json:"description"`
	// Recovery: it answered as a standby; a master answering with false
	// is a live primary.
	Recovery    bool  `json:"recovery"`
	Timeline    int64 `json:"timeline,omitempty"`
	Connections int64 `json:"connections"`
	// A slave's row in its parent's pg_stat_replication: State
	// ("streaming", "catchup", … or "not streaming"), SyncState (sync,
	// potential, async, quorum), the replay lag in bytes and seconds.
	State      string  `json:"state,omitempty"`
	SyncState  string  `json:"sync_state,omitempty"`
	LagBytes   int64   `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
	AgentUp    bool    `json:"agent_up"`
}

// Streaming tells whether n is a slave its parent streams to.
func (n NodeState) Streaming() bool { return n.State == "streaming" }

// LivePrimary tells whether n is a master that answers as a primary.
func (n NodeState) LivePrimary() bool { return n.Role == "master" && n.Up && !n.Recovery }

// HostState is one host and whether its agent answers.
type HostState struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	AgentUp bool   `json:"agent_up"`
}

// JournalEntry is one row of the operation journal.
type JournalEntry struct {
	ID      int64  `json:"id"`
	Command string `json:"command"`
	Status  string `json:"status"`
	Step    string `json:"step"`
	Detail  string `json:"detail"`
	Started string `json:"started"`
	Updated string `json:"updated"`
}

// Status is the cluster at one moment.
type Status struct {
	Taken time.Time   `json:"taken"`
	Hosts []HostState `json:"hosts"`
	Nodes []NodeState `json:"nodes"`
	// Doctor is the doctor's latest journal entries, newest first.
	Doctor []JournalEntry `json:"doctor"`
	// DoctorActions counts the doctor's journal entries by action
	// ("restart", "failover", …) and outcome (the journal's status).
	DoctorActions []ActionCount `json:"-"`
	// LastFailover is when the last failover, switchover or promotion
	// finished (zero: none in the journal).
	LastFailover time.Time `json:"last_failover,omitzero"`
}

// ActionCount is how many doctor actions of a kind ended with a status.
type ActionCount struct {
	Action, Status string
	Count          int64
}

// doctorEntries is how many of the doctor's latest actions Status keeps.
const doctorEntries = 10

// Status probes every node as MONITOR ALL does and every slave's row in
// its parent's pg_stat_replication as MONITOR HA does, in parallel; ctx
// bounds the whole.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	s, err := m.state(ctx)
	if err != nil {
		return Status{}, err
	}
	out := Status{Taken: time.Now()}
	nodes := append([]cluster.Node(nil), s.Nodes...)
	cluster.SortForList(nodes)
	var slaves []cluster.Node
	for _, n := range nodes {
		if !n.Type.IsMaster() {
			slaves = append(slaves, n)
		}
	}
	out.Hosts = make([]HostState, len(s.Hosts))
	out.Nodes = make([]NodeState, len(nodes))
	var parents map[string][]pgclient.Replica
	parallel(3, func(part int) {
		switch part {
		case 0:
			parallel(len(s.Hosts), func(i int) {
				h := s.Hosts[i]
				out.Hosts[i] = HostState{Name: h.Name, Address: h.Address, AgentUp: m.fleet.AgentUp(ctx, h) == nil}
			})
		case 1:
			parents = m.replicas(ctx, s, slaves)
		case 2:
			parallel(len(nodes), func(i int) {
				out.Nodes[i] = m.nodeState(ctx, s, nodes[i])
			})
		}
	})
	agents := map[string]bool{}
	for _, h := range out.Hosts {
		agents[h.Name] = h.AgentUp
	}
	for i, n := range nodes {
		ns := &out.Nodes[i]
		ns.AgentUp = agents[n.Host]
		if n.Type.IsMaster() {
			continue
		}
		ns.State = "not streaming"
		if r, ok := replicaOf(parents, n); ok {
			ns.State, ns.SyncState, ns.LagBytes, ns.LagSeconds = r.State, r.SyncState, r.LagBytes, r.LagSeconds
		}
	}
	if err := m.journalStatus(ctx, &out); err != nil {
		return Status{}, err
	}
	return out, nil
}

// nodeState probes n with MONITOR's probe.
func (m *Manager) nodeState(ctx context.Context, s *cluster.State, n cluster.Node) NodeState {
	h, _ := s.Host(n.Host)
	ns := NodeState{Name: n.Name, Type: string(n.Type), Role: "slave", Host: n.Host, Address: h.Address, Port: n.Port,
		Parent: n.Master, Zone: n.Zone, InCluster: n.InCluster}
	if n.Type.IsMaster() {
		ns.Role = "master"
	}
	row := map[string]string{}
	ns.Description = m.probe(ctx, s, n, row)
	ns.Up = row["status"] == "t"
	ns.Recovery = row["recovery"] == "true"
	ns.Timeline, _ = strconv.ParseInt(row["timeline"], 10, 64)
	ns.Connections, _ = strconv.ParseInt(row["connections"], 10, 64)
	return ns
}

// journalStatus reads the doctor's entries and the last switch from the
// journal.
func (m *Manager) journalStatus(ctx context.Context, out *Status) error {
	res, err := m.cat.Query(ctx, fmt.Sprintf(`SELECT id, command, status, step, detail, started, updated FROM journal
		WHERE command LIKE 'DOCTOR %%' ORDER BY id DESC LIMIT %d`, doctorEntries))
	if err != nil {
		return fmt.Errorf("read the journal: %w", err)
	}
	for _, r := range res.Rows {
		v := texts(r)
		id, _ := strconv.ParseInt(v[0], 10, 64)
		out.Doctor = append(out.Doctor, JournalEntry{ID: id, Command: v[1], Status: v[2], Step: v[3], Detail: v[4], Started: v[5], Updated: v[6]})
	}
	// "DOCTOR <ACTION> <node>": grouped by the action word.
	res, err = m.cat.Query(ctx, `SELECT lower(substr(command, 8, instr(substr(command, 8), ' ') - 1)), status, count(*) FROM journal
		WHERE command LIKE 'DOCTOR % %' GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("read the journal: %w", err)
	}
	for _, r := range res.Rows {
		v := texts(r)
		c, _ := strconv.ParseInt(v[2], 10, 64)
		out.DoctorActions = append(out.DoctorActions, ActionCount{Action: v[0], Status: v[1], Count: c})
	}
	res, err = m.cat.Query(ctx, `SELECT coalesce(max(updated), '') FROM journal WHERE status = 'done'
		AND (command LIKE 'FAILOVER %' OR command LIKE 'DOCTOR FAILOVER %' OR command LIKE 'SWITCHOVER %' OR command LIKE 'ADBMGR PROMOTE %')`)
	if err != nil {
		return fmt.Errorf("read the journal: %w", err)
	}
	if len(res.Rows) == 1 {
		if t, err := time.Parse(time.RFC3339, texts(res.Rows[0])[0]); err == nil {
			out.LastFailover = t
		}
	}
	return nil
}

func texts(r []*string) []string {
	out := make([]string, len(r))
	for i, v := range r {
		if v != nil {
			out[i] = *v
		}
	}
	return out
}

// CatalogWritable checks that the catalog's writer opens and commits a
// transaction within ctx (the HTTP side's /healthz).
func (m *Manager) CatalogWritable(ctx context.Context) error {
	done := make(chan error, 1)
	// The writer's lock does not heed ctx: wait for it aside.
	go func() { done <- m.cat.Update(ctx, func(catalog.Tx) error { return nil }) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the catalog's writer did not answer: %w", ctx.Err())
	}
}
