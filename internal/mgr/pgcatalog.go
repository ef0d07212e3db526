package mgr

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/catalog"
)

// A small pg_catalog for psql's \d, \l, \du and drivers' metadata probes:
// each table a query names is prepended to it as a common table
// expression (WITH pg_class(…) AS (VALUES …)), built from the catalog's
// views (relations of schema public, one database) and the manager's
// users (roles). Only the columns psql 15's describe.c and the common
// drivers read are there; a query naming another pg_catalog table gets
// 42P01, one naming another column 42703, as PostgreSQL would answer
// about something that is not there.
//
// The catalog views are shown as tables (relkind 'r') of schema public:
// to a DBA they are the manager's tables, as mgr_host and mgr_node are in
// AntDB, and \dt, the command one types to see tables, lists them. That
// they are read-only is said by the refusal of any write.

// Fixed object ids, PostgreSQL's own where it has one.
const (
	oidBootstrapRole = 10
	oidPgCatalog     = 11
	oidPublic        = 2200
	oidDatabase      = 5
	oidFirstView     = 16384
	oidFirstRole     = 16384 + 1000
	oidDefaultColl   = 100
	oidTypeBool      = 16
	oidTypeInt8      = 20
	oidTypeText      = 25
)

// pgTable is one emulated table: its columns and its rows as SQL
// literals.
type pgTable struct {
	cols []string
	rows func(d *pgData) [][]string
}

// pgData is what the emulated tables are built from, read once per query.
type pgData struct {
	database string
	views    []pgView
	users    []catalog.User
	settings [][2]string
	changed  map[string]string
}

type pgView struct {
	name string
	cols []catalog.Column
}

func lit(s string) string { return quoteLiteral(s) }
func num(n int) string    { return strconv.Itoa(n) }
func boolLit(b bool) string {
	if b {
		return "'t'"
	}
	return "'f'"
}

// empty tables list their columns only.
func empty(cols ...string) pgTable { return pgTable{cols: cols} }

var pgTables = map[string]pgTable{
	"pg_namespace": {cols: []string{"oid", "nspname", "nspowner", "nspacl"}, rows: func(*pgData) [][]string {
		return [][]string{{num(oidPgCatalog), "'pg_catalog'", num(oidBootstrapRole), "NULL"}, {num(oidPublic), "'public'", num(oidBootstrapRole), "NULL"}}
	}},
	"pg_am": {cols: []string{"oid", "amname", "amtype"}, rows: func(*pgData) [][]string {
		return [][]string{{"2", "'heap'", "'t'"}, {"403", "'btree'", "'i'"}}
	}},
	"pg_database": {cols: []string{"oid", "datname", "datdba", "encoding", "datlocprovider", "datistemplate", "datallowconn",
		"datconnlimit", "dattablespace", "datcollate", "datctype", "daticulocale", "datcollversion", "datacl"},
		rows: func(d *pgData) [][]string {
			return [][]string{{num(oidDatabase), lit(d.database), num(oidBootstrapRole), "6", "'c'", "'f'", "'t'", "-1", "1663", "'C'", "'C'", "NULL", "NULL", "NULL"}}
		}},
	"pg_class": {cols: []string{"oid", "relname", "relnamespace", "reltype", "relowner", "relam", "reltablespace", "reltoastrelid",
		"relhasindex", "relpersistence", "relkind", "relnatts", "relchecks", "relhasrules", "relhastriggers", "relrowsecurity",
		"relforcerowsecurity", "relispartition", "relreplident", "reloftype", "relpages", "reltuples", "relacl", "reloptions", "relpartbound"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for i, v := range d.views {
				out = append(out, []string{num(oidFirstView + i), lit(v.name), num(oidPublic), "0", num(oidBootstrapRole), "0", "0", "0",
					"'f'", "'p'", "'r'", num(len(v.cols)), "0", "'f'", "'f'", "'f'", "'f'", "'f'", "'d'", "0", "0", "-1", "NULL", "NULL", "NULL"})
			}
			return out
		}},
	"pg_attribute": {cols: []string{"attrelid", "attname", "atttypid", "atttypmod", "attnum", "attlen", "attnotnull", "atthasdef",
		"attisdropped", "attcollation", "attidentity", "attgenerated", "attstattarget", "attacl", "attstorage", "attcompression",
		"attoptions", "attfdwoptions"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for i, v := range d.views {
				for j, c := range v.cols {
					typ, coll, length, storage := oidTypeText, oidDefaultColl, -1, "'x'"
					if c.Integer {
						typ, coll, length, storage = oidTypeInt8, 0, 8, "'p'"
					}
					out = append(out, []string{num(oidFirstView + i), lit(c.Name), num(typ), "-1", num(j + 1), num(length),
						"'f'", "'f'", "'f'", num(coll), "''", "''", "-1", "NULL", storage, "''", "NULL", "NULL"})
				}
			}
			return out
		}},
	"pg_type": {cols: []string{"oid", "typname", "typnamespace", "typlen", "typtype", "typcollation", "typarray", "typowner",
		"typcategory", "typrelid", "typelem", "typbasetype", "typtypmod", "typnotnull", "typdefault", "typacl"}, rows: func(*pgData) [][]string {
		return [][]string{
			{num(oidTypeBool), "'bool'", num(oidPgCatalog), "1", "'b'", "0", "1000", num(oidBootstrapRole), "'B'", "0", "0", "0", "-1", "'f'", "NULL", "NULL"},
			{num(oidTypeInt8), "'int8'", num(oidPgCatalog), "8", "'b'", "0", "1016", num(oidBootstrapRole), "'N'", "0", "0", "0", "-1", "'f'", "NULL", "NULL"},
			{num(oidTypeText), "'text'", num(oidPgCatalog), "-1", "'b'", num(oidDefaultColl), "1009", num(oidBootstrapRole), "'S'", "0", "0", "0", "-1", "'f'", "NULL", "NULL"},
		}
	}},
	"pg_tablespace": {cols: []string{"oid", "spcname", "spcowner", "spcacl", "spcoptions"}, rows: func(*pgData) [][]string {
		return [][]string{{"1663", "'pg_default'", num(oidBootstrapRole), "NULL", "NULL"}, {"1664", "'pg_global'", num(oidBootstrapRole), "NULL", "NULL"}}
	}},
	"pg_collation": {cols: []string{"oid", "collname", "collnamespace", "collprovider"}, rows: func(*pgData) [][]string {
		return [][]string{{num(oidDefaultColl), "'default'", num(oidPgCatalog), "'d'"}}
	}},
	"pg_roles": {cols: []string{"oid", "rolname", "rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolcanlogin",
		"rolreplication", "rolconnlimit", "rolpassword", "rolvaliduntil", "rolbypassrls", "rolconfig"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for i, u := range d.users {
				out = append(out, []string{num(roleOID(d.users, i)), lit(u.Name), boolLit(u.Superuser), "'t'", boolLit(u.Superuser), "'f'", "'t'",
					"'f'", "-1", "'********'", "NULL", boolLit(u.Superuser), "NULL"})
			}
			return out
		}},
	"pg_user": {cols: []string{"usename", "usesysid", "usecreatedb", "usesuper", "userepl", "usebypassrls", "passwd", "valuntil", "useconfig"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for i, u := range d.users {
				out = append(out, []string{lit(u.Name), num(roleOID(d.users, i)), "'f'", boolLit(u.Superuser), "'f'", boolLit(u.Superuser), "'********'", "NULL", "NULL"})
			}
			return out
		}},
	"pg_tables": {cols: []string{"schemaname", "tablename", "tableowner", "tablespace", "hasindexes", "hasrules", "hastriggers", "rowsecurity"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for _, v := range d.views {
				out = append(out, []string{"'public'", lit(v.name), lit(ownerName(d)), "NULL", "'f'", "'f'", "'f'", "'f'"})
			}
			return out
		}},
	"pg_settings": {cols: []string{"name", "setting", "unit", "category", "short_desc", "context", "vartype", "source", "boot_val", "reset_val"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for _, s := range d.settings {
				source := "'default'"
				if _, ok := d.changed[s[0]]; ok {
					source = "'session'"
				}
				boot := "NULL"
				if v, ok := defaultParams[s[0]]; ok {
					boot = lit(v)
				}
				out = append(out, []string{lit(s[0]), lit(s[1]), "NULL", "'adbmgr'", "''", "'user'", "'string'", source, boot, boot})
			}
			return out
		}},
	"information_schema_schemata": {cols: []string{"catalog_name", "schema_name", "schema_owner"}, rows: func(d *pgData) [][]string {
		return [][]string{{lit(d.database), "'pg_catalog'", lit(ownerName(d))}, {lit(d.database), "'public'", lit(ownerName(d))}}
	}},
	"information_schema_tables": {cols: []string{"table_catalog", "table_schema", "table_name", "table_type", "is_insertable_into"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for _, v := range d.views {
				out = append(out, []string{lit(d.database), "'public'", lit(v.name), "'BASE TABLE'", "'NO'"})
			}
			return out
		}},
	"information_schema_columns": {cols: []string{"table_catalog", "table_schema", "table_name", "column_name", "ordinal_position",
		"data_type", "is_nullable", "column_default"},
		rows: func(d *pgData) [][]string {
			var out [][]string
			for _, v := range d.views {
				for j, c := range v.cols {
					typ := "'text'"
					if c.Integer {
						typ = "'bigint'"
					}
					out = append(out, []string{lit(d.database), "'public'", lit(v.name), lit(c.Name), num(j + 1), typ, "'YES'", "NULL"})
				}
			}
			return out
		}},
	// What psql's \d and \d+ read and the catalog never has.
	"pg_db_role_setting":       empty("setdatabase", "setrole", "setconfig"),
	"pg_attrdef":               empty("oid", "adrelid", "adnum", "adbin"),
	"pg_auth_members":          empty("roleid", "member", "grantor", "admin_option"),
	"pg_index":                 empty("indexrelid", "indrelid", "indisunique", "indisprimary", "indisclustered", "indisvalid", "indkey"),
	"pg_proc":                  empty("oid", "proname", "pronamespace", "proowner", "prokind", "prorettype", "proargtypes"),
	"pg_inherits":              empty("inhrelid", "inhparent", "inhseqno", "inhdetachpending"),
	"pg_constraint":            empty("oid", "conname", "connamespace", "contype", "conrelid", "conindid", "confrelid", "conparentid"),
	"pg_trigger":               empty("oid", "tgrelid", "tgname", "tgfoid", "tgisinternal", "tgenabled"),
	"pg_rewrite":               empty("oid", "rulename", "ev_class", "ev_type", "ev_enabled", "is_instead"),
	"pg_description":           empty("objoid", "classoid", "objsubid", "description"),
	"pg_policy":                empty("oid", "polname", "polrelid", "polcmd", "polpermissive", "polroles", "polqual", "polwithcheck"),
	"pg_statistic_ext":         empty("oid", "stxrelid", "stxname", "stxnamespace", "stxowner", "stxstattarget", "stxkeys", "stxkind"),
	"pg_publication":           empty("oid", "pubname", "pubowner", "puballtables", "pubinsert", "pubupdate", "pubdelete", "pubtruncate", "pubviaroot"),
	"pg_publication_rel":       empty("oid", "prpubid", "prrelid", "prqual", "prattrs"),
	"pg_publication_namespace": empty("oid", "pnpubid", "pnnspid"),
	"pg_extension":             empty("oid", "extname", "extowner", "extnamespace", "extversion"),
	"pg_foreign_table":         empty("ftrelid", "ftserver", "ftoptions"),
	"pg_matviews":              empty("schemaname", "matviewname", "matviewowner", "definition"),
	"pg_views":                 empty("schemaname", "viewname", "viewowner", "definition"),
	"information_schema_views": empty("table_catalog", "table_schema", "table_name", "view_definition"),
	"pg_indexes":               empty("schemaname", "tablename", "indexname", "tablespace", "indexdef"),
	"pg_sequence":              empty("seqrelid", "seqtypid", "seqstart", "seqincrement", "seqmax", "seqmin", "seqcache", "seqcycle"),
}

// roleOID is the first superuser's PostgreSQL bootstrap id (10), owner of
// everything, and a fixed id for every other user.
func roleOID(users []catalog.User, i int) int {
	if i == ownerIndex(users) {
		return oidBootstrapRole
	}
	return oidFirstRole + i
}

func ownerIndex(users []catalog.User) int {
	for i, u := range users {
		if u.Superuser {
			return i
		}
	}
	return 0
}

func ownerName(d *pgData) string {
	if len(d.users) == 0 {
		return "postgres"
	}
	return d.users[ownerIndex(d.users)].Name
}

// pgTablesNamed returns the emulated tables the translated query names, in
// a fixed order.
func pgTablesNamed(q string) []string {
	seen := map[string]bool{}
	toks := lexSQL(q)
	for i, tk := range toks {
		if tk.kind != tkIdent {
			continue
		}
		if _, ok := pgTables[tk.low]; !ok {
			continue
		}
		j := i - 1
		for j >= 0 && toks[j].kind == tkSpace {
			j--
		}
		if j >= 0 && toks[j].text == "." {
			continue // a column of that name
		}
		seen[tk.low] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// withPgCatalog prepends the emulated tables q names to it.
func withPgCatalog(q string, names []string, d *pgData) string {
	if len(names) == 0 {
		return q
	}
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		t := pgTables[n]
		fmt.Fprintf(&b, "%s(%s) AS (", n, strings.Join(t.cols, ", "))
		var rows [][]string
		if t.rows != nil {
			rows = t.rows(d)
		}
		if len(rows) == 0 {
			nulls := make([]string, len(t.cols))
			for i := range nulls {
				nulls[i] = "NULL"
			}
			fmt.Fprintf(&b, "SELECT %s WHERE 0)", strings.Join(nulls, ", "))
			continue
		}
		b.WriteString("VALUES ")
		for i, r := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + strings.Join(r, ", ") + ")")
		}
		b.WriteString(")")
	}
	// The query's own WITH [RECURSIVE] list continues the emulated one.
	toks := lexSQL(q)
	i := 0
	for i < len(toks) && toks[i].kind == tkSpace {
		i++
	}
	if i < len(toks) && toks[i].low == "with" {
		rest := toks[i+1:]
		recursive := ""
		j := 0
		for j < len(rest) && rest[j].kind == tkSpace {
			j++
		}
		if j < len(rest) && rest[j].low == "recursive" {
			recursive = "RECURSIVE "
			rest = rest[j+1:]
		}
		var tail strings.Builder
		for _, t := range rest {
			tail.WriteString(t.text)
		}
		return "WITH " + recursive + b.String() + "," + tail.String()
	}
	return "WITH " + b.String() + "\n" + q
}

// pgData reads what the emulated tables show: the catalog's views with
// their columns, the users, the session's settings.
func (m *Manager) pgData(ctx context.Context, e *sqlEnv, names []string) (*pgData, error) {
	d := &pgData{database: e.database}
	need := func(tables ...string) bool {
		for _, n := range names {
			for _, t := range tables {
				if n == t {
					return true
				}
			}
		}
		return false
	}
	if need("pg_class", "pg_attribute", "pg_tables", "information_schema_tables", "information_schema_columns") {
		res, err := m.cat.Query(ctx, "SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
		if err != nil {
			return nil, err
		}
		for _, r := range res.Rows {
			if r[0] == nil {
				continue
			}
			v := pgView{name: *r[0]}
			cols, err := m.cat.Query(ctx, `SELECT * FROM "`+strings.ReplaceAll(v.name, `"`, `""`)+`" LIMIT 0`)
			if err != nil {
				return nil, err
			}
			v.cols = cols.Columns
			d.views = append(d.views, v)
		}
	}
	if len(names) > 0 {
		// Every owner is a user: any catalog table needs them.
		users, err := m.cat.Users(ctx)
		if err != nil {
			return nil, err
		}
		d.users = users
	}
	if need("pg_settings") {
		d.settings, d.changed = e.all(), e.changed
	}
	return d, nil
}
