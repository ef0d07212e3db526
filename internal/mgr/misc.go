package mgr

import (
	"errors"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/fleet"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

var boottimeColumns = []pgwire.Column{
	{Name: "nodename", TypeOID: pgwire.OIDName},
	{Name: "nodetype", TypeOID: pgwire.OIDText},
	{Name: "status", TypeOID: pgwire.OIDBool},
	{Name: "description", TypeOID: pgwire.OIDText},
	{Name: "host", TypeOID: pgwire.OIDText},
	{Name: "boot time", TypeOID: pgwire.OIDText},
}

// showBoottime is SHOW BOOTTIME [ALL] and its per-type forms: MONITOR's
// rows, fewer columns.
func (m *Manager) showBoottime(e *req, st *parser.ShowBoottime) error {
	rows, err := m.monitorRows(e, st.Target)
	if err != nil {
		return err
	}
	return writeTable(e.w, boottimeColumns, rows)
}

// checkout is CHECKOUT DATANODE SLAVE STATUS: whether every datanode slave
// in the cluster runs as a standby.
func (m *Manager) checkout(e *req) error {
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	var slaves []cluster.Node
	for _, n := range s.Nodes {
		if n.Type == cluster.DatanodeSlave && n.InCluster {
			slaves = append(slaves, n)
		}
	}
	cluster.SortForList(slaves)
	rows := make([]map[string]string, len(slaves))
	parallel(len(slaves), func(i int) {
		n := slaves[i]
		row := map[string]string{"nodename": n.Name, "nodetype": string(n.Type), "status": "f"}
		rows[i] = row
		mem, err := fleet.At(s, n)
		if err != nil {
			row["description"] = err.Error()
			return
		}
		st, err := m.fleet.SQLStatus(e.ctx, mem, 3*time.Second)
		var ce *fleet.ConnectError
		switch {
		case errors.As(err, &ce):
			row["description"] = "not running"
		case err != nil:
			row["description"] = err.Error()
		case !st.Recovery:
			row["description"] = "runs as a primary, not as a standby"
		default:
			row["status"], row["description"] = "t", "running as a standby"
		}
	})
	return writeTable(e.w, cleanColumns, rows)
}

// flushReadonly is FLUSH READONLY SLAVE: refresh every coordinator's
// servers (a read-only coordinator's point at datanode slaves).
func (m *Manager) flushReadonly(e *req) error {
	s, err := m.state(e.ctx)
	if err != nil {
		return err
	}
	m.refreshCoordinators(e, s, "", "")
	return e.w.Complete("FLUSH READONLY SLAVE")
}
