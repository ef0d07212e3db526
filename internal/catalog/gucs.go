package catalog

import (
	_ "embed"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// pg15Settings is pg_settings of a stock PostgreSQL 15 server (name,
// context, vartype, unit, min, max, enum values, boot value), so that SET
// values can be checked — units and enum members included, which
// `postgres --describe-config` does not print — before any node runs.
// Regenerate with:
//
//	psql -At -F $'\t' -c "select name, context, vartype, coalesce(unit,''), coalesce(min_val,''),
//	  coalesce(max_val,''), coalesce(array_to_string(enumvals, ','),''), coalesce(boot_val,'')
//	  from pg_settings order by name"
//
//go:embed pg15_settings.tsv
var pg15Settings string

// DefaultGUCs returns PostgreSQL 15's parameters.
func DefaultGUCs() []cluster.GUC {
	var out []cluster.GUC
	for _, line := range strings.Split(strings.TrimSpace(pg15Settings), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			continue
		}
		g := cluster.GUC{Name: f[0], Context: f[1], VarType: f[2], Unit: f[3], Min: f[4], Max: f[5], Default: f[7]}
		if f[6] != "" {
			g.EnumValues = strings.Split(f[6], ",")
		}
		out = append(out, g)
	}
	return out
}
