package params

import (
	"fmt"
	"slices"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// level is how wide a catalog row is.
type level int

const (
	levelFamily level = iota // {*, "datanode"}
	levelType                // {*, "datanode master"}
	levelNode                // {"dn1", "datanode master"}
)

// rowFamily returns the family a row's Type belongs to and whether the Type
// is the family itself. ok is false for a Type this version does not know.
func rowFamily(typ string) (f cluster.Family, isFamily, ok bool) {
	switch cluster.Family(typ) {
	case cluster.Gtmcoord, cluster.Coordinator, cluster.Datanode:
		return cluster.Family(typ), true, true
	}
	switch t := cluster.NodeType(typ); t {
	case cluster.GtmcoordMaster, cluster.GtmcoordSlave, cluster.CoordinatorMaster,
		cluster.CoordinatorSlave, cluster.DatanodeMaster, cluster.DatanodeSlave:
		return t.Family(), false, true
	}
	return "", false, false
}

func rowLevel(p cluster.Param) level {
	_, isFamily, _ := rowFamily(p.Type)
	switch {
	case isFamily:
		return levelFamily
	case p.Node == "*":
		return levelType
	}
	return levelNode
}

type rowKey struct{ node, typ, key string }

func keyOf(p cluster.Param) rowKey { return rowKey{p.Node, p.Type, p.Key} }

// PlanSet computes the catalog rows of SET (reset false) or RESET (reset
// true) over the existing rows. The rules, AntDB's (reference §3.3) made
// uniform:
//
//   - SET … ALL stores one row with Node "*" and Type the family (SET
//     DATANODE ALL) or the node type (SET DATANODE MASTER ALL), and deletes
//     the narrower rows of the key it covers: per-node rows of the type, and
//     for a family row also the type rows. AntDB kept type rows under a new
//     family value, so SET DATANODE ALL silently did not reach masters that
//     had a SET DATANODE MASTER ALL value; the statement says "all
//     datanodes", so here it does.
//   - A row equal to what its nodes would inherit from a wider row is not
//     stored (an existing one is deleted): SET of a node to the family value
//     leaves no node row.
//   - RESET deletes the rows of the key at the target's level and below.
//     Where a wider row would then apply, a row holding the server's default
//     is stored so that the reset nodes really get the default, not the
//     wider value; when no valid default is known, "--" is stored instead
//     (remove the line: PostgreSQL then uses its built-in default, which is
//     the same thing).
//   - RESET … FORCE stores "--" at the target's level: the key is removed
//     from postgresql.conf and any wider value no longer applies.
//
// Keys are checked with Check (SET) or for existence (RESET) unless force;
// a statement naming a key twice is refused. Named nodes must exist with the
// target's type. The plan's notices say which parameters need a restart.
// Applying the plan (deletes first, then puts, as the catalog does) and
// pushing Updates to running nodes is the caller's job.
func PlanSet(s *cluster.State, existing []cluster.Param, t Target, settings []Setting,
	gucs map[string]cluster.GUC, force, reset bool) (cluster.Plan, error) {
	var plan cluster.Plan
	nodes, err := Affected(s, t)
	if err != nil {
		return plan, err
	}
	typ := t.paramType()
	seenKey := map[string]bool{}
	seenNotice := map[string]bool{}
	deleted := map[rowKey]bool{}
	del := func(p cluster.Param) {
		if !deleted[keyOf(p)] {
			deleted[keyOf(p)] = true
			plan.DeleteParams = append(plan.DeleteParams, p)
		}
	}
	for _, st := range settings {
		var key, value string
		if reset && !Writable(canonicalKey(st.Key)) {
			// A row the agent refuses, stored before SET checked names:
			// RESET is the way out, so it deletes the rows it covers and
			// stores nothing (not even "--", which the agent would refuse
			// to remove as well).
			key = canonicalKey(st.Key)
			if seenKey[key] {
				return cluster.Plan{}, pgerror.New(pgerror.SyntaxError, "conflicting or redundant options").
					WithDetail(`Parameter "%s" is given more than once.`, key)
			}
			seenKey[key] = true
			rows, anywhere := unwritableRows(existing, t, key)
			if len(rows) == 0 {
				if !anywhere {
					return cluster.Plan{}, CheckName(key)
				}
				return cluster.Plan{}, pgerror.New(pgerror.UndefinedObject, `parameter "%s" is not stored at this level`, key).
					WithHint("LIST PARAM shows its rows; RESET the level that holds it (a SET DATANODE ALL row with RESET DATANODE ALL).")
			}
			for _, p := range rows {
				del(p)
			}
			plan.Notices = append(plan.Notices, cluster.Notice{Severity: "NOTICE",
				Message: fmt.Sprintf(`removed parameter "%s" from the catalog; it was never written to postgresql.conf`, key)})
			continue
		}
		if reset {
			var g cluster.GUC
			var known bool
			// A name SET … FORCE stored is known to the catalog, if not to
			// the server: RESET takes it out without FORCE too.
			key, g, known, err = checkKey(gucs, st.Key, force || storedKey(existing, canonicalKey(st.Key)))
			if err != nil {
				return cluster.Plan{}, err
			}
			value = Removed
			if !force && known {
				value = resetValue(gucs, key, g)
			}
		} else {
			key = canonicalKey(st.Key)
			if value, err = Check(gucs, st, force); err != nil {
				return cluster.Plan{}, err
			}
		}
		if seenKey[key] {
			return cluster.Plan{}, pgerror.New(pgerror.SyntaxError, "conflicting or redundant options").
				WithDetail(`Parameter "%s" is given more than once.`, key)
		}
		seenKey[key] = true
		if _, msg := Effect(gucs, key); msg != "" && !seenNotice[msg] {
			seenNotice[msg] = true
			plan.Notices = append(plan.Notices, cluster.Notice{Severity: "NOTICE", Message: msg})
		}

		var family, typeRow *cluster.Param
		for i, p := range existing {
			if p.Key != key || p.Node != "*" {
				continue
			}
			if p.Type == string(t.Family) {
				family = &existing[i]
			} else if t.Role != "" && p.Type == typ {
				typeRow = &existing[i]
			}
		}

		switch {
		case t.Role == "": // family-wide: nothing is wider
			keepFamilyRow := !reset || force
			for _, p := range existing {
				f, isFamily, ok := rowFamily(p.Type)
				if ok && f == t.Family && p.Key == key && !(isFamily && keepFamilyRow) {
					del(p)
				}
			}
			if keepFamilyRow {
				plan.PutParams = append(plan.PutParams, cluster.Param{Node: "*", Type: typ, Key: key, Value: value})
			}

		case t.All: // type-wide: the family row is wider
			for _, p := range existing {
				if p.Key == key && p.Type == typ && p.Node != "*" {
					del(p)
				}
			}
			if stored(value, family, reset, force) {
				plan.PutParams = append(plan.PutParams, cluster.Param{Node: "*", Type: typ, Key: key, Value: value})
			} else if typeRow != nil {
				del(*typeRow)
			}

		default: // named nodes: the type row, else the family row, is wider
			inherited := family
			if typeRow != nil {
				inherited = typeRow
			}
			for _, n := range nodes {
				if stored(value, inherited, reset, force) {
					plan.PutParams = append(plan.PutParams, cluster.Param{Node: n.Name, Type: typ, Key: key, Value: value})
					continue
				}
				for _, p := range existing {
					if p.Key == key && p.Node == n.Name && p.Type == typ {
						del(p)
					}
				}
			}
		}
	}
	return plan, nil
}

// unwritableRows returns the rows of an unwritable key (compared
// case-insensitively: such rows were not necessarily stored lower-cased)
// that target t covers: for a family target every row of the family, for a
// type target the type's rows, for named nodes their own rows. anywhere
// reports whether the catalog holds the key at all.
func unwritableRows(existing []cluster.Param, t Target, key string) (rows []cluster.Param, anywhere bool) {
	typ := t.paramType()
	for _, p := range existing {
		if canonicalKey(p.Key) != key {
			continue
		}
		anywhere = true
		f, _, ok := rowFamily(p.Type)
		switch {
		case !ok || f != t.Family:
		case t.Role == "":
			rows = append(rows, p)
		case p.Type != typ:
		case t.All || slices.Contains(t.Names, p.Node):
			rows = append(rows, p)
		}
	}
	return rows, anywhere
}

// stored decides whether a row holding value is needed below a wider row
// (inherited, nil when there is none): not when the nodes would get the same
// from the wider row, and, for a plain RESET, not when there is no wider row
// (no row is the default) or the wider row already removes the line.
func stored(value string, inherited *cluster.Param, reset, force bool) bool {
	if inherited == nil {
		return !reset || force
	}
	if reset && !force && inherited.Value == Removed {
		return false
	}
	return inherited.Value != value
}

// resetValue is what a non-FORCE RESET stores where a wider row applies:
// the server's default, if the definition has one that passes its own
// check, else "--". (A definition read from postgres --describe-config has
// no real defaults — it prints 0 and FALSE — and the range check catches
// some of that; see the package report.)
func resetValue(gucs map[string]cluster.GUC, key string, g cluster.GUC) string {
	if g.Default == "" && g.VarType != "string" {
		return Removed
	}
	v, err := Check(gucs, Setting{Key: key, Value: g.Default, HasValue: true}, false)
	if err != nil {
		return Removed
	}
	return v
}

// Apply returns the rows after a plan's parameter changes, as the catalog
// applies them: deletes first, then puts (insert or replace by node, type
// and key). The executor uses it to compute Updates without reading the
// catalog back.
func Apply(existing []cluster.Param, plan cluster.Plan) []cluster.Param {
	gone := map[rowKey]bool{}
	for _, p := range plan.DeleteParams {
		gone[keyOf(p)] = true
	}
	out := make([]cluster.Param, 0, len(existing)+len(plan.PutParams))
	index := map[rowKey]int{}
	for _, p := range existing {
		if !gone[keyOf(p)] {
			index[keyOf(p)] = len(out)
			out = append(out, p)
		}
	}
	for _, p := range plan.PutParams {
		if i, ok := index[keyOf(p)]; ok {
			out[i] = p
			continue
		}
		index[keyOf(p)] = len(out)
		out = append(out, p)
	}
	return out
}

// Retype moves node name's own rows to its new type, for failover and
// switchover: node rows are keyed by type, and cluster.Param.Applies
// ignores a row whose type is no longer the node's, so without this a
// promoted slave would silently lose its per-node settings.
func Retype(existing []cluster.Param, name string, to cluster.NodeType) cluster.Plan {
	var plan cluster.Plan
	for _, p := range existing {
		if p.Node != name || p.Type == string(to) {
			continue
		}
		plan.DeleteParams = append(plan.DeleteParams, p)
		p.Type = string(to)
		plan.PutParams = append(plan.PutParams, p)
	}
	return plan
}

// storedKey reports whether some catalog row holds key.
func storedKey(existing []cluster.Param, key string) bool {
	for _, p := range existing {
		if canonicalKey(p.Key) == key {
			return true
		}
	}
	return false
}
