package doctor

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hands is a fake Actions: every round sees obs; each action is recorded,
// and answers ErrBusy while busy counts down.
type hands struct {
	mu     sync.Mutex
	obs    []Observation
	busy   int
	done   []string
	cancel context.CancelFunc
	want   int // actions done before the loop is stopped
}

func (h *hands) Observe(context.Context) ([]Observation, error) { return h.obs, nil }

func (h *hands) act(kind ActionKind, node string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy > 0 {
		h.busy--
		h.done = append(h.done, "busy "+string(kind)+" "+node)
		return ErrBusy
	}
	h.done = append(h.done, string(kind)+" "+node)
	if len(h.done) >= h.want {
		h.cancel()
	}
	return nil
}

func (h *hands) Restart(_ context.Context, n string) error  { return h.act(Restart, n) }
func (h *hands) Failover(_ context.Context, n string) error { return h.act(Failover, n) }
func (h *hands) Follow(_ context.Context, n string) error   { return h.act(Follow, n) }
func (h *hands) Isolate(_ context.Context, n, _ string) error {
	return h.act(Isolate, n)
}
func (h *hands) Rewind(_ context.Context, n string) error { return h.act(Rewind, n) }
func (h *hands) Rejoin(_ context.Context, n string) error { return h.act(Rejoin, n) }
func (h *hands) Fence(_ context.Context, n, _ string) error {
	return h.act(Fence, n)
}
func (h *hands) Refresh(_ context.Context, n string) error { return h.act(Refresh, n) }
func (h *hands) Sync(_ context.Context, n string) error    { return h.act(Sync, n) }

// TestRunRetriesWhenBusy: a DBA's command that holds the cluster makes the
// doctor try the same action next round, without spending a restart.
func TestRunRetriesWhenBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := &hands{obs: []Observation{{Node: "dn1", AgentUp: true}}, busy: 2, cancel: cancel, want: 3}
	Run(ctx, h, Config{Interval: time.Millisecond, Failures: 2, Restarts: 1, Follows: 1, Retry: 5}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.mu.Lock()
	defer h.mu.Unlock()
	want := []string{"busy restart dn1", "busy restart dn1", "restart dn1"}
	if diff := cmp.Diff(want, h.done); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}
