package mgr

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adbmgr/adbmgr/internal/doctor"
)

// lookDeadline is the least age at which a look that has not ended counts as
// a failed one. A host cut off from the manager drops its packets, so a
// login to it takes the whole login timeout (2 s) and an agent call its
// own (1 s): waiting for that would make a round 3 s long and a cut-off
// master be failed over after 10 s or more, against about a second for a
// dead one, whose host refuses connections at once. A healthy master on a
// busy machine logs a session in within tens of milliseconds; one that
// takes a second, three rounds in a row (doctor failures), is not told
// from a cut-off one.
const lookDeadline = time.Second

// lookout runs the doctor's looks at the nodes so that a round does not
// wait for a node that does not answer. Each node has at most one look at
// a time, which keeps its own timeouts and may outlive the round that
// began it: a round waits for its looks at most the doctor's interval;
// one still running then is no news (doctor.Observation.Pending) while
// younger than lookDeadline (or the interval, when longer), and a failed look
// after that, every round until it ends. Its result, when it ends, is the
// next round's — unless the catalog changed what the node is meanwhile.
type lookout struct {
	mu    sync.Mutex
	wait  time.Duration // 0: wait for every look (unit tests)
	late  time.Duration
	looks map[string]*look
}

// look is one look at a node.
type look struct {
	key     string // what the node was when it began
	started time.Time
	done    chan struct{}
	res     lookResult
	// answered: the node answered the look's login; the rest of the look
	// (pg_stat_replication, the sync list, a coordinator's servers) takes
	// more logins, which a busy machine makes slow, so such a look is
	// overdue only at twice the deadline.
	answered atomic.Bool
}

// lookResult is what a look found: the observation, and for a node with
// slaves who streams from it (nil: unknown).
type lookResult struct {
	obs      doctor.Observation
	standbys map[string]string // application_name → pg_stat_replication state
}

// lookAge says how a round found a look.
type lookAge int

const (
	lookDone    lookAge = iota // ended: its result counts
	lookYoung                  // running, younger than the deadline: no news
	lookOverdue                // running, older: a failed look
)

// reset forgets every look (a new doctor's looks run under a new context)
// and sets the waits from the doctor's interval.
func (l *lookout) reset(interval time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wait, l.late = interval, max(interval, lookDeadline)
	l.looks = nil
}

// round starts a look for each key's node that has none running (do(i)
// makes it, and calls answered once the node answered its login; key
// tells a node that changed in the catalog), waits at most the interval
// for them, and says of each where it stands.
func (l *lookout) round(ctx context.Context, names, keys []string, do func(ctx context.Context, i int, answered func()) lookResult) ([]lookResult, []lookAge) {
	now := time.Now()
	l.mu.Lock()
	if l.looks == nil {
		l.looks = map[string]*look{}
	}
	mine := make([]*look, len(names))
	watched := map[string]bool{}
	for i, name := range names {
		watched[name] = true
		lk := l.looks[name]
		if lk == nil || lk.key != keys[i] {
			// A look begun before the catalog changed the node (a switch
			// made a slave a master) would be judged by the wrong rules:
			// it ends unread.
			lk = &look{key: keys[i], started: now, done: make(chan struct{})}
			l.looks[name] = lk
			go func(i int, lk *look) {
				defer close(lk.done)
				lk.res = do(ctx, i, func() { lk.answered.Store(true) })
			}(i, lk)
		}
		mine[i] = lk
	}
	for name := range l.looks {
		if !watched[name] {
			delete(l.looks, name)
		}
	}
	wait, late := l.wait, l.late
	l.mu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	if wait > 0 {
		wctx, cancel = context.WithTimeout(ctx, wait)
	}
	defer cancel()
	for _, lk := range mine {
		select {
		case <-lk.done:
		case <-wctx.Done():
		}
	}
	res := make([]lookResult, len(names))
	ages := make([]lookAge, len(names))
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, lk := range mine {
		select {
		case <-lk.done:
			res[i] = lk.res
			if l.looks[names[i]] == lk {
				delete(l.looks, names[i])
			}
		default:
			ages[i] = lookYoung
			deadline := late
			if lk.answered.Load() {
				deadline = 2 * late
			}
			if time.Since(lk.started) >= deadline {
				ages[i] = lookOverdue
			}
		}
	}
	return res, ages
}
