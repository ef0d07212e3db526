package params

import "github.com/adbmgr/adbmgr/internal/cluster"

// testGUCs are PostgreSQL 15's definitions as pg_settings shows them (name,
// context, vartype, boot_val, min_val, max_val, enumvals, unit), copied from
// a real server so that the tests check against what FLUSH PARAM stores.
func testGUCs() map[string]cluster.GUC {
	list := []cluster.GUC{
		{Name: "archive_command", Context: "sighup", VarType: "string"},
		{Name: "archive_mode", Context: "postmaster", VarType: "enum", Default: "off", EnumValues: []string{"always", "on", "off"}},
		{Name: "autovacuum_naptime", Context: "sighup", VarType: "integer", Default: "60", Min: "1", Max: "2147483", Unit: "s"},
		{Name: "block_size", Context: "internal", VarType: "integer", Default: "8192", Min: "8192", Max: "8192"},
		{Name: "checkpoint_completion_target", Context: "sighup", VarType: "real", Default: "0.9", Min: "0", Max: "1"},
		{Name: "checkpoint_timeout", Context: "sighup", VarType: "integer", Default: "300", Min: "30", Max: "86400", Unit: "s"},
		{Name: "cluster_name", Context: "postmaster", VarType: "string"},
		{Name: "DateStyle", Context: "user", VarType: "string", Default: "ISO, MDY"},
		{Name: "default_transaction_isolation", Context: "user", VarType: "enum", Default: "read committed",
			EnumValues: []string{"serializable", "repeatable read", "read committed", "read uncommitted"}},
		{Name: "full_page_writes", Context: "sighup", VarType: "bool", Default: "on"},
		{Name: "hot_standby", Context: "postmaster", VarType: "bool", Default: "on"},
		{Name: "ignore_system_indexes", Context: "backend", VarType: "bool", Default: "off"},
		{Name: "listen_addresses", Context: "postmaster", VarType: "string", Default: "localhost"},
		{Name: "log_connections", Context: "superuser-backend", VarType: "bool", Default: "off"},
		{Name: "log_line_prefix", Context: "sighup", VarType: "string", Default: "%m [%p] "},
		{Name: "log_min_duration_statement", Context: "superuser", VarType: "integer", Default: "-1", Min: "-1", Max: "2147483647", Unit: "ms"},
		{Name: "log_rotation_age", Context: "sighup", VarType: "integer", Default: "1440", Min: "0", Max: "35791394", Unit: "min"},
		{Name: "max_connections", Context: "postmaster", VarType: "integer", Default: "100", Min: "1", Max: "262143"},
		{Name: "max_wal_size", Context: "sighup", VarType: "integer", Default: "1024", Min: "2", Max: "2147483647", Unit: "MB"},
		{Name: "port", Context: "postmaster", VarType: "integer", Default: "5432", Min: "1", Max: "65535"},
		{Name: "seq_page_cost", Context: "user", VarType: "real", Default: "1", Min: "0", Max: "1.79769e+308"},
		{Name: "shared_buffers", Context: "postmaster", VarType: "integer", Default: "16384", Min: "16", Max: "1073741823", Unit: "8kB"},
		{Name: "synchronous_commit", Context: "user", VarType: "enum", Default: "on",
			EnumValues: []string{"local", "remote_write", "remote_apply", "on", "off"}},
		{Name: "synchronous_standby_names", Context: "sighup", VarType: "string"},
		{Name: "temp_file_limit", Context: "superuser", VarType: "integer", Default: "-1", Min: "-1", Max: "2147483647", Unit: "kB"},
		{Name: "vacuum_cost_delay", Context: "user", VarType: "real", Default: "0", Min: "0", Max: "100", Unit: "ms"},
		{Name: "wal_buffers", Context: "postmaster", VarType: "integer", Default: "-1", Min: "-1", Max: "262143", Unit: "8kB"},
		{Name: "wal_keep_size", Context: "sighup", VarType: "integer", Default: "0", Min: "0", Max: "2147483647", Unit: "MB"},
		{Name: "wal_level", Context: "postmaster", VarType: "enum", Default: "replica", EnumValues: []string{"minimal", "replica", "logical"}},
		{Name: "wal_log_hints", Context: "postmaster", VarType: "bool", Default: "off"},
		{Name: "wal_sender_timeout", Context: "user", VarType: "integer", Default: "60000", Min: "0", Max: "2147483647", Unit: "ms"},
		{Name: "work_mem", Context: "user", VarType: "integer", Default: "4096", Min: "64", Max: "2147483647", Unit: "kB"},
	}
	m := make(map[string]cluster.GUC, len(list))
	for _, g := range list {
		m[g.Name] = g
	}
	return m
}
