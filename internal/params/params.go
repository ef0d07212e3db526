// Package params decides SET/RESET {GTMCOORD|COORDINATOR|DATANODE} …: it
// checks values against the server's parameter definitions the way
// PostgreSQL's guc.c does (so a value that passes here does not stop a node
// from starting), computes the parameter catalog rows a statement leaves
// behind (AntDB's mgr_updateparm maintenance rules, reference §2.4 and §3.3),
// and derives what each node's postgresql.conf must say. It does no I/O: the
// executor reads the catalog, calls these functions and applies the Plan.
//
// The catalog holds three levels of rows for a key, from wide to narrow:
//
//	{Node "*", Type "datanode"}         SET DATANODE ALL (…)           family row
//	{Node "*", Type "datanode master"}  SET DATANODE MASTER ALL (…)    type row
//	{Node "dn1", Type "datanode master"} SET DATANODE MASTER dn1 (…)   node row
//
// A node gets the narrowest row that applies to it. The value "--" (written
// by RESET … FORCE) means "remove the key from postgresql.conf".
package params

import (
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// Removed is the value recorded by RESET … FORCE: the key is deleted from
// postgresql.conf instead of being written (AntDB's "--").
const Removed = "--"

// cantChangeRuntimeParam is PostgreSQL's SQLSTATE for "parameter cannot be
// changed" (55P02); pgerror does not list it.
const cantChangeRuntimeParam = "55P02"

// Target is what a SET/RESET statement names.
type Target struct {
	Family cluster.Family // gtmcoord, coordinator or datanode
	Role   string         // "" (SET DATANODE ALL), "master" or "slave"
	All    bool           // ALL of the family (Role "") or of the type
	Names  []string       // named nodes of the type (Role set, All false)
}

// Setting is one "key = value" of a statement; RESET has no values.
type Setting struct {
	Key      string
	Value    string
	HasValue bool
}

// paramType is the catalog Type of rows the target writes: the family for
// SET DATANODE ALL, the node type otherwise.
func (t Target) paramType() string {
	if t.Role == "" {
		return string(t.Family)
	}
	return string(cluster.TypeOf(t.Family, t.Role == "master"))
}

// nodeType is the node type a Role-qualified target acts on.
func (t Target) nodeType() cluster.NodeType {
	return cluster.TypeOf(t.Family, t.Role == "master")
}

// validate refuses target shapes the grammar cannot produce; the parser is
// the real gate, this keeps a programming error from writing odd rows.
func (t Target) validate() error {
	switch t.Family {
	case cluster.Gtmcoord, cluster.Coordinator, cluster.Datanode:
	default:
		return pgerror.New(pgerror.Internal, "invalid parameter target family %q", t.Family)
	}
	switch t.Role {
	case "":
		if !t.All || len(t.Names) > 0 {
			return pgerror.New(pgerror.Internal, "a %s-wide parameter target must be ALL", t.Family)
		}
	case "master", "slave":
		if t.All == (len(t.Names) > 0) {
			return pgerror.New(pgerror.Internal, "a parameter target is either ALL or named nodes")
		}
	default:
		return pgerror.New(pgerror.Internal, "invalid parameter target role %q", t.Role)
	}
	return nil
}

// Affected returns the nodes of s a SET/RESET target touches, initialized
// or not, in catalog order. A named node must exist with the target's type,
// as AntDB requires (`datanode master "x" does not exist`).
func Affected(s *cluster.State, t Target) ([]cluster.Node, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	var out []cluster.Node
	if t.All {
		for _, n := range s.Nodes {
			if (t.Role == "" && n.Type.Family() == t.Family) || (t.Role != "" && n.Type == t.nodeType()) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	seen := map[string]bool{}
	for _, name := range t.Names {
		n, ok := s.Node(name)
		if !ok || n.Type != t.nodeType() {
			return nil, pgerror.New(pgerror.UndefinedObject, `%s "%s" does not exist`, t.nodeType(), name)
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// Action is what a changed parameter needs on a running node.
type Action string

const (
	// Reload: rewrite postgresql.conf and signal the postmaster (pg_ctl
	// reload). Also used for backend-context parameters, which a reload
	// hands to new sessions.
	Reload Action = "reload"
	// Restart: rewrite postgresql.conf; the value takes effect at the next
	// restart, which the user does (AntDB only warns).
	Restart Action = "restart"
	// None: internal parameters, fixed when the server was built or
	// initdb ran; writing them changes nothing.
	None Action = "none"
)

// Effect says what applying key to a running node needs, from its context,
// and the NOTICE AntDB shows for it ("" when there is nothing to say).
// Unknown keys (set with FORCE, e.g. an extension's parameter whose library
// is not loaded) get a reload, which applies whatever the server can apply.
func Effect(gucs map[string]cluster.GUC, key string) (Action, string) {
	key = canonicalKey(key)
	g, ok := lookup(gucs, key)
	if !ok {
		return Reload, ""
	}
	switch g.Context {
	case "postmaster":
		return Restart, `parameter "` + key + `" cannot be changed without restarting the server`
	case "internal":
		return None, `parameter "` + key + `" cannot be changed`
	case "backend", "superuser-backend":
		return Reload, `parameter "` + key + `" cannot be set after connection start`
	}
	return Reload, ""
}

// lookup finds a GUC by name. Names are case-insensitive in PostgreSQL and
// pg_settings spells a few in mixed case (DateStyle, TimeZone), while the
// catalog keys are lower case.
func lookup(gucs map[string]cluster.GUC, key string) (cluster.GUC, bool) {
	if g, ok := gucs[key]; ok {
		return g, true
	}
	for name, g := range gucs {
		if strings.EqualFold(name, key) {
			return g, true
		}
	}
	return cluster.GUC{}, false
}
