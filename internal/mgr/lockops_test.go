package mgr

import (
	"testing"
	"time"
)

// TestLockOpsWaitsForTheDoctor: a DBA's command that finds a doctor's
// action holding the cluster lock waits for it; the doctor never waits for
// a DBA's command, and two DBA commands still refuse each other at once.
func TestLockOpsWaitsForTheDoctor(t *testing.T) {
	m, _ := newManager(t)
	unlock, err := m.lockOps(doctorLockPrefix + "restart")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		unlock()
	}()
	start := time.Now()
	unlockDBA, err := m.lockOps("REWIND")
	if err != nil {
		t.Fatalf("REWIND behind the doctor's restart: %v", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("REWIND got the lock after %v, while the doctor held it", waited)
	}
	if _, err := m.lockOps(doctorLockPrefix + "failover"); err == nil {
		t.Error("the doctor got the lock while REWIND held it")
	}
	start = time.Now()
	if _, err := m.lockOps("SWITCHOVER"); err == nil {
		t.Error("SWITCHOVER got the lock while REWIND held it")
	} else if time.Since(start) > time.Second {
		t.Errorf("SWITCHOVER waited %v behind REWIND instead of refusing", time.Since(start))
	}
	unlockDBA()
	if h, _ := m.opsHolder.Load().(string); h != "" {
		t.Errorf("holder after unlock = %q", h)
	}
}
