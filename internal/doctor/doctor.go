// Package doctor is the manager's self-healing loop: it watches every
// master that may be cured, restarts one that went down while its agent is
// there to do it, and fails it over to a slave when it cannot be brought
// back. The decision (Decide) is a pure function over what one round
// observed and what earlier rounds remembered; the actions are the
// manager's, behind the Actions interface, so the loop knows nothing of
// agents or SQL.
package doctor

import (
	"context"
	"log/slog"
	"time"
)

// Observation is what one round saw of a master.
type Observation struct {
	Node string
	// Answering: it accepted an SQL connection and answered as a primary.
	Answering bool
	// Responding: it runs and answered the manager with an error of its own
	// (an SQL or authentication error, too many clients, a database that
	// refuses connections). It is not down, and neither a restart nor a
	// failover cures what a DBA must fix, so the doctor leaves it alone.
	// Down means cannot connect or not running.
	Responding bool
	// Error is what it answered when Responding, for the log.
	Error string
	// AgentUp: the agent of its host answered, so a restart is possible.
	AgentUp bool
}

// Config tunes the loop.
type Config struct {
	// Interval between rounds.
	Interval time.Duration
	// Failures is how many consecutive rounds a master must fail before
	// the doctor acts (a restart or a blip must not cause a failover).
	Failures int
	// Restarts is how many restarts are tried before failing over.
	Restarts int
}

// DefaultConfig fails a master over in about five seconds when it cannot
// be restarted.
var DefaultConfig = Config{Interval: time.Second, Failures: 3, Restarts: 1}

// ActionKind is what the doctor decided for a node.
type ActionKind string

const (
	Restart  ActionKind = "restart"
	Failover ActionKind = "failover"
)

// Action is one decision of a round.
type Action struct {
	Kind ActionKind
	Node string
}

// health is what the doctor remembers of a node between rounds.
type health struct {
	failures int // consecutive failed rounds
	restarts int // restarts tried since it last answered
}

// Memory is the state Decide carries from round to round.
type Memory map[string]*health

// Decide returns the actions of one round and updates mem. A node that
// answers, if only with an error of its own, is forgotten; one that failed cfg.Failures rounds in a row is
// restarted while restarts remain and its agent is up, and failed over
// otherwise. After an action the count starts again, so the next action
// comes only after another cfg.Failures failed rounds.
func Decide(mem Memory, obs []Observation, cfg Config) []Action {
	var out []Action
	seen := map[string]bool{}
	for _, o := range obs {
		seen[o.Node] = true
		if o.Answering || o.Responding {
			delete(mem, o.Node)
			continue
		}
		h := mem[o.Node]
		if h == nil {
			h = &health{}
			mem[o.Node] = h
		}
		h.failures++
		if h.failures < cfg.Failures {
			continue
		}
		h.failures = 0
		if o.AgentUp && h.restarts < cfg.Restarts {
			h.restarts++
			out = append(out, Action{Kind: Restart, Node: o.Node})
			continue
		}
		out = append(out, Action{Kind: Failover, Node: o.Node})
		delete(mem, o.Node)
	}
	// Nodes no longer watched (failed over, stopped by a DBA) are forgotten.
	for n := range mem {
		if !seen[n] {
			delete(mem, n)
		}
	}
	return out
}

// Actions are the manager's hands.
type Actions interface {
	// Observe looks at every master the doctor may cure.
	Observe(ctx context.Context) ([]Observation, error)
	// Restart starts a master that is down.
	Restart(ctx context.Context, node string) error
	// Failover fails a master over (without FORCE: no acknowledged commit
	// may be lost, or the manager refuses and the doctor tries again).
	Failover(ctx context.Context, node string) error
}

// Run is the loop; it returns when ctx is cancelled.
func Run(ctx context.Context, a Actions, cfg Config, log *slog.Logger) {
	mem := Memory{}
	responding := map[string]bool{} // said once, not every round
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		obs, err := a.Observe(ctx)
		if err != nil {
			log.Warn("doctor: cannot observe the cluster", "error", err)
			continue
		}
		now := map[string]bool{}
		for _, o := range obs {
			if o.Responding {
				now[o.Node] = true
				if !responding[o.Node] {
					log.Warn("doctor: master runs but answers with an error; leaving it alone", "node", o.Node, "error", o.Error)
				}
			}
		}
		responding = now
		for _, act := range Decide(mem, obs, cfg) {
			var err error
			switch act.Kind {
			case Restart:
				log.Warn("doctor: master down, restarting it", "node", act.Node)
				err = a.Restart(ctx, act.Node)
			case Failover:
				log.Warn("doctor: master down and cannot be restarted, failing over", "node", act.Node)
				err = a.Failover(ctx, act.Node)
			}
			if err != nil {
				log.Warn("doctor: action failed; it will be tried again", "action", act.Kind, "node", act.Node, "error", err)
			} else {
				log.Info("doctor: action done", "action", act.Kind, "node", act.Node)
			}
		}
	}
}
