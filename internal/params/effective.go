package params

import (
	"cmp"
	"slices"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgconf"
)

// Effective returns what node n's postgresql.conf must say according to the
// catalog rows: family rows, then type rows, then the node's own rows, the
// narrower winning; a "--" value puts the key in remove instead of set.
// remove is sorted. Keys the manager owns never come out of here, even if
// an old catalog holds them, so the manager's per-node values (port, socket
// directory…) cannot be overridden. Nor do rows the agent would refuse (a
// name such as "a.b.c" or include_dir, a value with a NUL byte), which a
// catalog from before SET checked them may hold: one of them would make
// every INIT of the family fail; Unwritable lists them so that the caller
// can warn, and RESET removes them.
func Effective(n cluster.Node, all []cluster.Param) (set map[string]string, remove []string) {
	final := map[string]string{}
	for _, lv := range []level{levelFamily, levelType, levelNode} {
		for _, p := range all {
			if rowLevel(p) == lv && p.Applies(n) && !IsManaged(p.Key) && writableRow(p) {
				final[canonicalKey(p.Key)] = p.Value
			}
		}
	}
	set = map[string]string{}
	for k, v := range final {
		if v == Removed {
			remove = append(remove, k)
		} else {
			set[k] = v
		}
	}
	slices.Sort(remove)
	return set, remove
}

// Updates is what SET/RESET of keys means for running node n once the plan
// is applied (all is Apply's result): keys with a value are set; keys with
// "--" or with no row left are removed from postgresql.conf, so PostgreSQL
// uses its built-in default. AntDB wrote mgr_parm's default instead; the
// outcome is the same without trusting a default read from the server's
// metadata. remove is sorted; keys not in keys are left alone.
func Updates(n cluster.Node, all []cluster.Param, keys []string) (set map[string]string, remove []string) {
	eff, _ := Effective(n, all)
	set = map[string]string{}
	for _, k := range keys {
		k = canonicalKey(k)
		if !Writable(k) {
			continue // never written, so nothing to remove (RESET of a bad row)
		}
		if v, ok := eff[k]; ok {
			set[k] = v
		} else if !slices.Contains(remove, k) {
			remove = append(remove, k)
		}
	}
	slices.Sort(remove)
	return set, remove
}

// writableRow: the agent accepts the row's name and, unless it is "--",
// its value.
func writableRow(p cluster.Param) bool {
	return Writable(p.Key) && (p.Value == Removed || pgconf.ValidValue(p.Value) == nil)
}

// Unwritable returns the rows that apply to node n and that Effective
// leaves out because the agent would refuse them.
func Unwritable(n cluster.Node, all []cluster.Param) []cluster.Param {
	var out []cluster.Param
	for _, p := range all {
		if p.Applies(n) && !IsManaged(p.Key) && !writableRow(p) {
			out = append(out, p)
		}
	}
	return out
}

// TypeLabel is a row's nodetype column in LIST PARAM: the node type, or for
// a family row "datanode master|slave", as AntDB renders its G/C/D types.
func TypeLabel(p cluster.Param) string {
	if _, isFamily, ok := rowFamily(p.Type); ok && isFamily {
		return p.Type + " master|slave"
	}
	return p.Type
}

// List returns the rows LIST PARAM shows, sorted by family (gtmcoord,
// coordinator, datanode), family rows before master rows before slave
// rows, "*" before node names, then key. t nil lists everything; a family
// target (SET DATANODE ALL's shape) lists the family's rows; a type target
// (DATANODE MASTER ALL) the rows that apply to that type; a named node its
// own rows plus the wider rows that apply to it. pattern, if not empty,
// keeps keys containing it (case-insensitive).
func List(all []cluster.Param, t *Target, pattern string) []cluster.Param {
	pattern = strings.ToLower(pattern)
	var out []cluster.Param
	for _, p := range all {
		f, isFamily, ok := rowFamily(p.Type)
		if !ok || !strings.Contains(p.Key, pattern) {
			continue
		}
		if t != nil {
			if f != t.Family {
				continue
			}
			switch {
			case t.Role == "":
			case isFamily:
			case p.Type != t.paramType():
				continue
			case !t.All && p.Node != "*" && !slices.Contains(t.Names, p.Node):
				continue
			}
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b cluster.Param) int {
		if c := cmp.Compare(listOrder(a), listOrder(b)); c != 0 {
			return c
		}
		if c := boolCmp(a.Node != "*", b.Node != "*"); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// listOrder ranks a row's Type for LIST PARAM.
func listOrder(p cluster.Param) int {
	f, isFamily, _ := rowFamily(p.Type)
	base := map[cluster.Family]int{cluster.Gtmcoord: 0, cluster.Coordinator: 3, cluster.Datanode: 6}[f]
	switch {
	case isFamily:
		return base
	case cluster.NodeType(p.Type).IsMaster():
		return base + 1
	}
	return base + 2
}
