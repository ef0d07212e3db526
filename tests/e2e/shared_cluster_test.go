package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// Data-plane tests that only create their own (prefixed) tables, roles and
// functions share a sharded cluster: INIT ALL and the cluster's end were a
// third of such a test's time. The first test to ask builds it; the next
// ones take it once every node answers. A test that fails takes it down
// at its end (what it left behind is unknown), and the next one builds
// another; so does a test asking for another number of coordinators
// (those tests come one after another). TestMain takes the last down.

// sharedClusters are the shared clusters by number of coordinators.
var sharedClusters = map[int]*fixture{}

// sharedShardedCluster is newShardedCluster(t, coordinators), shared with
// the other tests that ask for one with as many coordinators.
func sharedShardedCluster(t *testing.T, coordinators int) *testCluster {
	t.Helper()
	// The tests of one size come one after another: another size's
	// cluster has served its last.
	for k, other := range sharedClusters {
		if k != coordinators {
			other.use(t)
			other.close()
			delete(sharedClusters, k)
		}
	}
	f := sharedClusters[coordinators]
	if f != nil {
		f.use(t)
		if n, err := f.c.unanswering(); err != "" {
			t.Logf("the shared cluster's %s does not answer (%s): building another", n, err)
			f.close()
			f = nil
		}
	}
	if f == nil {
		f = &fixture{}
		sharedClusters[coordinators] = f
		f.use(t)
	}
	t.Cleanup(func() {
		if t.Failed() || f.c == nil {
			// f.c is nil when the set-up itself failed.
			f.failed = true
			f.close()
			if sharedClusters[coordinators] == f {
				delete(sharedClusters, coordinators)
			}
		}
		f.use(nil)
	})
	if f.c == nil {
		f.c = newShardedCluster(f, coordinators)
	}
	return f.c
}

// unanswering names a node of c that does not answer a query, and why;
// "" and "" when every node answers.
func (c *testCluster) unanswering() (string, string) {
	for _, n := range c.Nodes {
		if _, err := c.nodeSQL(n, "SELECT 1"); err != nil {
			return n.Name, err.Error()
		}
	}
	return "", ""
}

// closeSharedClusters takes every shared cluster down (TestMain, after
// the tests) and says whether that went without error.
func closeSharedClusters() bool {
	ok := true
	for k, f := range sharedClusters {
		f.close()
		ok = ok && !f.failed
		delete(sharedClusters, k)
	}
	return ok
}

// fixture is the testing.TB of a shared cluster and its manager, which
// outlive the test that built them: a call goes to the test using them at
// the time (use), or, between tests, to stderr. Their cleanups run at
// close, in reverse order, as a test's would.
type fixture struct {
	testing.TB // the test using it now; nil between tests

	c        *testCluster
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   bool
}

func (f *fixture) use(t testing.TB) { f.TB = t }

// close runs the cleanups (stopping the cluster and the manager).
func (f *fixture) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	cleanups := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

func (f *fixture) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// TempDir is a directory removed at close (not the current test's: that
// goes at the test's end).
func (f *fixture) TempDir() string {
	dir, err := os.MkdirTemp("", "adbmgr-e2e-shared-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (f *fixture) Helper() {
	if f.TB != nil {
		f.TB.Helper()
	}
}

func (f *fixture) Failed() bool { return f.failed || f.TB != nil && f.TB.Failed() }

func (f *fixture) Log(args ...any) { f.Logf("%s", fmt.Sprintln(args...)) }

func (f *fixture) Logf(format string, args ...any) {
	f.Helper()
	f.say(false, format, args...)
}

func (f *fixture) Error(args ...any) { f.Errorf("%s", fmt.Sprintln(args...)) }

func (f *fixture) Errorf(format string, args ...any) {
	f.Helper()
	f.failed = true
	f.say(true, format, args...)
}

// say logs to the current test, as an error or not, or to stderr.
func (f *fixture) say(isError bool, format string, args ...any) {
	switch {
	case f.TB == nil:
		fmt.Fprintf(os.Stderr, "shared cluster: "+format+"\n", args...)
	case isError:
		f.TB.Helper()
		f.TB.Errorf(format, args...)
	default:
		f.TB.Helper()
		f.TB.Logf(format, args...)
	}
}

func (f *fixture) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprintln(args...)) }

// Fatalf ends the current test; between tests (close), nothing calls it.
func (f *fixture) Fatalf(format string, args ...any) {
	f.failed = true
	if f.TB == nil {
		panic(fmt.Sprintf("shared cluster: "+format, args...))
	}
	f.TB.Helper()
	f.TB.Fatalf(format, args...)
}
