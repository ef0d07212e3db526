package fleettest

import (
	"context"

	"github.com/adbmgr/adbmgr/internal/dataplane"
	"github.com/adbmgr/adbmgr/internal/fleet"
)

// The fake's side of fleet.DataPlane: NodeWaits are read as they are set;
// a cancel ("cancel deadlock cn2:20 on cn2") and a resolution ("resolve
// prepared cn1") are steps.

// Waits implements fleet.Fleet.
func (f *Fleet) Waits(_ context.Context, m fleet.Member, coordinator bool) (dataplane.NodeWaits, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.login(m, "waits %s", m.Name()); err != nil {
		return dataplane.NodeWaits{}, err
	}
	nw := f.NodeWaits[m.Name()]
	nw.Node, nw.Coordinator = m.Name(), coordinator
	return nw, nil
}

// CancelDeadlock implements fleet.Fleet: the victim is cancelled when
// its coordinator runs.
func (f *Fleet) CancelDeadlock(_ context.Context, c fleet.Member, d dataplane.Deadlock) (bool, error) {
	if err := f.sql(c, "cancel deadlock %s on %s", d.Victim, c.Name()); err != nil {
		return false, err
	}
	return true, nil
}

// ResolvePrepared implements fleet.Fleet: a step on the coordinators of
// Resolver.
func (f *Fleet) ResolvePrepared(_ context.Context, c fleet.Member) (string, bool, error) {
	f.mu.Lock()
	has := f.Resolver[c.Name()]
	f.mu.Unlock()
	if !has {
		return "", false, nil
	}
	if err := f.sql(c, "resolve prepared %s", c.Name()); err != nil {
		return "", true, err
	}
	return "", true, nil
}
