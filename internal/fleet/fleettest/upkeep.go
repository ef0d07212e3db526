package fleettest

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/pgclient"
)

// The fake's side of fleet.Upkeep. A node the fake does not know has no
// data directory; CLEAN forgets a node.

// ask is a question to m's agent: checked (Fail, Before), not recorded.
func (f *Fleet) ask(m fleet.Member, format string, args ...any) error {
	if err := f.step(false, format, args...); err != nil {
		return err
	}
	return f.agent(m.Host)
}

// Status implements fleet.Fleet.
func (f *Fleet) Status(_ context.Context, m fleet.Member) (fleet.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ask(m, "status %s", m.Name()); err != nil {
		return fleet.NodeStatus{}, err
	}
	n, ok := f.Nodes[m.Name()]
	if !ok {
		return fleet.NodeStatus{}, nil
	}
	st := fleet.NodeStatus{Initialized: true, Running: n.Running, Ready: "no response"}
	if n.Running {
		st.Ready = "accepting"
	}
	return st, nil
}

// CheckDir implements fleet.Fleet.
func (f *Fleet) CheckDir(_ context.Context, m fleet.Member) (fleet.DirState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ask(m, "checkdir %s", m.Name()); err != nil {
		return fleet.DirState{}, err
	}
	_, ok := f.Nodes[m.Name()]
	return fleet.DirState{Exists: ok, Empty: !ok}, nil
}

// CleanDir implements fleet.Fleet: the node must be stopped; the fake
// forgets it.
func (f *Fleet) CleanDir(_ context.Context, m fleet.Member) error {
	return f.action(m, func(n *Node) error {
		if n.Running {
			return errRunning(m)
		}
		delete(f.Nodes, m.Name())
		return nil
	}, "clean %s", m.Name())
}

// RemoveSocketDir implements fleet.Fleet: a running node keeps it.
// The one of an old address is always removed.
func (f *Fleet) RemoveSocketDir(_ context.Context, m fleet.Member, old string) (kept string, err error) {
	err = f.action(m, func(n *Node) error {
		if n.Running && old == "" {
			kept = errRunning(m).Error()
		}
		return nil
	}, "%s", strings.TrimSpace("rmsocket "+m.Name()+" "+old))
	return kept, err
}

func errRunning(m fleet.Member) error {
	return &runningError{m.Name()}
}

type runningError struct{ node string }

func (e *runningError) Error() string { return e.node + " is running" }

// EditHBA implements fleet.Fleet: lines added once, removed where they
// are.
func (f *Fleet) EditHBA(_ context.Context, m fleet.Member, e fleet.HBAEdit) error {
	var keys []string
	for _, l := range append(append([]cluster.HBALine(nil), e.AddManaged...), e.AddTail...) {
		keys = append(keys, "+"+hbaText(l))
	}
	for _, l := range e.Remove {
		keys = append(keys, "-"+hbaText(l))
	}
	sort.Strings(keys)
	return f.action(m, func(n *Node) error {
		for _, k := range keys {
			line := k[1:]
			if k[0] == '+' && !slices.Contains(n.HBA, line) {
				n.HBA = append(n.HBA, line)
			}
			if k[0] == '-' {
				n.HBA = slices.DeleteFunc(n.HBA, func(s string) bool { return s == line })
			}
		}
		return nil
	}, "hba %s %s", m.Name(), strings.Join(keys, ", "))
}

// hbaText is a pg_hba.conf line as the fake stores it.
func hbaText(l cluster.HBALine) string {
	return strings.Join(strings.Fields(strings.Join([]string{l.Type, l.Database, l.User, l.Address, l.Method}, " ")), " ")
}

// ReadHBA implements fleet.Fleet.
func (f *Fleet) ReadHBA(_ context.Context, m fleet.Member) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ask(m, "readhba %s", m.Name()); err != nil {
		return nil, err
	}
	return slices.Clone(f.node(m.Name()).HBA), nil
}

// login is a read over SQL (growth.go's read): m must run.
func (f *Fleet) login(m fleet.Member, format string, args ...any) (*Node, error) {
	if err := f.read(m, format, args...); err != nil {
		return nil, err
	}
	return f.node(m.Name()), nil
}

// SQLStatus implements fleet.Fleet.
func (f *Fleet) SQLStatus(_ context.Context, m fleet.Member, _ time.Duration) (pgclient.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.login(m, "sqlstatus %s", m.Name())
	if err != nil {
		return pgclient.Status{}, err
	}
	return pgclient.Status{Recovery: n.InRecovery}, nil
}

// ForeignServers implements fleet.Fleet: Servers[c], nil when unset.
func (f *Fleet) ForeignServers(_ context.Context, c fleet.Member) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.login(c, "servers %s", c.Name()); err != nil {
		return nil, err
	}
	return f.Servers[c.Name()], nil
}

// Replication implements fleet.Fleet: every running standby of m
// streams, async.
func (f *Fleet) Replication(_ context.Context, m fleet.Member) ([]pgclient.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.login(m, "replication %s", m.Name()); err != nil {
		return nil, err
	}
	var out []pgclient.Replica
	for name, n := range f.Nodes {
		if n.Parent == m.Name() && n.Running {
			out = append(out, pgclient.Replica{Application: name, State: "streaming", SyncState: "async"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Application < out[j].Application })
	return out, nil
}

// Settings implements fleet.Fleet: what postgresql.auto.conf holds.
func (f *Fleet) Settings(_ context.Context, m fleet.Member, keys []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.login(m, "settings %s", m.Name())
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		out[k] = n.Conf[k]
	}
	return out, nil
}

// ShowSettings implements fleet.Fleet: the auto.conf settings whose
// name contains pattern.
func (f *Fleet) ShowSettings(_ context.Context, m fleet.Member, pattern string) ([]fleet.Setting, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.login(m, "showsettings %s", m.Name())
	if err != nil {
		return nil, err
	}
	var out []fleet.Setting
	for k, v := range n.Conf {
		if strings.Contains(strings.ToLower(k), strings.ToLower(pattern)) {
			out = append(out, fleet.Setting{Name: k, Setting: v, Context: "sighup", Source: "configuration file"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GUCs implements fleet.Fleet: the fake's nodes define no parameter.
func (f *Fleet) GUCs(_ context.Context, m fleet.Member) ([]cluster.GUC, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.login(m, "gucs %s", m.Name())
	return nil, err
}
