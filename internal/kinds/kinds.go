// Package kinds maps the statements' vocabulary (parser: a family keyword
// and a role) to the catalog's (cluster: node families and types), once.
package kinds

import (
	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
)

// Family is the node family a statement's family keyword names; no
// keyword means datanode, as in AntDB's grammar defaults.
func Family(f parser.Family) cluster.Family {
	switch f {
	case parser.Gtmcoord:
		return cluster.Gtmcoord
	case parser.Coordinator:
		return cluster.Coordinator
	}
	return cluster.Datanode
}

// Type is the node type a statement's kind names: a master unless the
// role is SLAVE.
func Type(k parser.NodeKind) cluster.NodeType {
	return cluster.TypeOf(Family(k.Family), k.Role != parser.Slave)
}
