package mgr

import (
	"sync"
)

// guestPass lets the doctor act while a DBA's command holds the cluster
// lock but only waits — a SWITCHOVER waiting up to maxTrys seconds for
// its master's clients (switches.Waiter) — on nodes outside what that
// command touches (its scope): a dead master of another group is failed
// over at once, not an hour later. Never two actions on one node at once:
// a node in the scope stays the command's, one guest acts at a time, and
// the command goes on (or frees the lock) only once the guest ended
// (Close). The zero value has no scope.
type guestPass struct {
	mu    sync.Mutex
	ended *sync.Cond // signalled when a guest ends
	// scope is the open scope's nodes; nil while none is open.
	scope map[string]bool
	// acting is the number of guests acting now; since, how many were let
	// in since the scope opened.
	acting, since int
}

// cond returns ended, made on first use; g.mu must be held.
func (g *guestPass) cond() *sync.Cond {
	if g.ended == nil {
		g.ended = sync.NewCond(&g.mu)
	}
	return g.ended
}

// Open implements switches.Waiter.
func (g *guestPass) Open(scope []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.scope != nil {
		return
	}
	g.scope = map[string]bool{}
	for _, n := range scope {
		g.scope[n] = true
	}
	g.since = 0
}

// Close implements switches.Waiter. It does not give up on the
// statement's cancellation: the guest is acting on nodes, and the lock
// must not be freed (nor the command go on) under it.
func (g *guestPass) Close() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.scope == nil && g.acting == 0 {
		return 0
	}
	g.scope = nil
	for g.acting > 0 {
		g.cond().Wait()
	}
	n := g.since
	g.since = 0
	return n
}

// enter lets in an action touching nodes, when a scope is open, none of
// nodes is in it and no other guest acts; leave ends it.
func (g *guestPass) enter(nodes []string) (leave func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.scope == nil || g.acting > 0 || len(nodes) == 0 {
		return nil, false
	}
	for _, n := range nodes {
		if g.scope[n] {
			return nil, false
		}
	}
	g.acting++
	g.since++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.acting--
			g.cond().Broadcast()
		})
	}, true
}
