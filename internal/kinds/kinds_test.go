package kinds

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
)

func TestType(t *testing.T) {
	for _, tt := range []struct {
		k    parser.NodeKind
		want cluster.NodeType
	}{
		{parser.NodeKind{Family: parser.Gtmcoord, Role: parser.Master}, cluster.GtmcoordMaster},
		{parser.NodeKind{Family: parser.Gtmcoord, Role: parser.Slave}, cluster.GtmcoordSlave},
		{parser.NodeKind{Family: parser.Coordinator, Role: parser.Master}, cluster.CoordinatorMaster},
		{parser.NodeKind{Family: parser.Coordinator, Role: parser.Slave}, cluster.CoordinatorSlave},
		{parser.NodeKind{Family: parser.Datanode, Role: parser.Master}, cluster.DatanodeMaster},
		{parser.NodeKind{Family: parser.Datanode, Role: parser.Slave}, cluster.DatanodeSlave},
		{parser.NodeKind{Family: parser.FamilyNone}, cluster.DatanodeMaster},
	} {
		if got := Type(tt.k); got != tt.want {
			t.Errorf("Type(%+v) = %s, want %s", tt.k, got, tt.want)
		}
	}
}
