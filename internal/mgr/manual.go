package mgr

import (
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/kinds"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// The manual step commands (PROMOTE, CONFIG DATANODE SLAVE, ADBMGR
// PROMOTE; reference §4.17) and the zone switches (ZONE FAILOVER, ZONE
// SWITCHOVER; §4.16) are executed by internal/switches; here they are
// dispatched: statement → request, the cluster lock, the result rows.

// promote is PROMOTE … n (switches.PromoteNode) and ADBMGR PROMOTE …
// SLAVE n (switches.AdbmgrPromote).
func (m *Manager) promote(e *req, st *parser.Promote) error {
	unlock, err := m.lockCluster(st.Command())
	if err != nil {
		return err
	}
	defer unlock()
	run := m.switches().PromoteNode
	if st.Catalog {
		run = m.switches().AdbmgrPromote
	}
	res, err := run(e.ctx, kinds.Type(st.Kind), st.Name.Name, e.w)
	if err != nil {
		return namedAt(e, err, st.Name.Pos)
	}
	return writeNodeResult(e.w, res.Node, true, res.Description)
}

// configSlave is CONFIG DATANODE SLAVE n (switches.ConfigSlave).
func (m *Manager) configSlave(e *req, st *parser.ConfigSlave) error {
	unlock, err := m.lockCluster("CONFIG DATANODE SLAVE")
	if err != nil {
		return err
	}
	defer unlock()
	res, err := m.switches().ConfigSlave(e.ctx, st.Name.Name, e.w)
	if err != nil {
		return namedAt(e, err, st.Name.Pos)
	}
	return writeNodeResult(e.w, res.Node, true, res.Description)
}

// zoneSwitch is ZONE FAILOVER z [FORCE] and ZONE SWITCHOVER z [FORCE]
// [maxTrys] (switches.Zone): one row per master switched.
func (m *Manager) zoneSwitch(e *req, st *parser.Zone) error {
	unlock, err := m.lockCluster("ZONE " + strings.ToUpper(st.Action))
	if err != nil {
		return err
	}
	defer unlock()
	res, err := m.switches().Zone(e.ctx, switches.Zone{Zone: st.Zone.Name, Current: currentZone(e), Switchover: st.Action == "switchover",
		Force: st.Force, MaxTrys: st.MaxTrys}, e.w)
	if err != nil {
		if cluster.ErrorField(err) == "zone" {
			return e.at(err, st.Zone.Pos)
		}
		return err
	}
	rows := make([]map[string]string, len(res))
	for i, r := range res {
		rows[i] = map[string]string{"nodename": r.Node, "status": boolText(r.OK), "description": r.Description}
	}
	return writeTable(e.w, nodeResultColumns, rows)
}
