package params

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgconf"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

// outcome is what a test compares: the canonical value, or the error's
// SQLSTATE, message and hint.
type outcome struct {
	Value         string
	Code, Message string
	Hint          string
}

func outcomeOf(t *testing.T, v string, err error) outcome {
	t.Helper()
	if err == nil {
		return outcome{Value: v}
	}
	pe, ok := pgerror.As(err)
	if !ok {
		t.Fatalf("error %v is not a *pgerror.Error", err)
	}
	return outcome{Code: pe.Code, Message: pe.Message, Hint: pe.Hint}
}

func ok(v string) outcome { return outcome{Value: v} }

func fail(code, msg, hint string) outcome { return outcome{Code: code, Message: msg, Hint: hint} }

func invalid(key, value, hint string) outcome {
	return fail(pgerror.InvalidParameterValue, `invalid value for parameter "`+key+`": "`+value+`"`, hint)
}

// The expected texts below were checked against a PostgreSQL 15 server (SET
// and ALTER SYSTEM SET of the same values), so Check refuses exactly what
// the server refuses and with the same words.
func TestCheck(t *testing.T) {
	gucs := testGUCs()
	tests := []struct {
		name       string
		key, value string
		force      bool
		want       outcome
	}{
		// bool: parse_bool's spellings and prefixes, canonical on/off.
		{"bool on", "wal_log_hints", "on", false, ok("on")},
		{"bool ON", "wal_log_hints", "ON", false, ok("on")},
		{"bool true", "full_page_writes", "true", false, ok("on")},
		{"bool prefix tr", "full_page_writes", "tr", false, ok("on")},
		{"bool t", "full_page_writes", "t", false, ok("on")},
		{"bool yes", "full_page_writes", "yes", false, ok("on")},
		{"bool y", "full_page_writes", "y", false, ok("on")},
		{"bool 1", "full_page_writes", "1", false, ok("on")},
		{"bool off", "full_page_writes", "off", false, ok("off")},
		{"bool of", "full_page_writes", "Of", false, ok("off")},
		{"bool false", "full_page_writes", "FALSE", false, ok("off")},
		{"bool f", "full_page_writes", "f", false, ok("off")},
		{"bool no", "full_page_writes", "no", false, ok("off")},
		{"bool n", "full_page_writes", "n", false, ok("off")},
		{"bool 0", "full_page_writes", "0", false, ok("off")},
		{"bool quoted with spaces", "full_page_writes", " on ", false, ok("on")},
		{"bool o is ambiguous", "full_page_writes", "o", false,
			fail(pgerror.InvalidParameterValue, `parameter "full_page_writes" requires a Boolean value`, "")},
		{"bool truex", "full_page_writes", "truex", false,
			fail(pgerror.InvalidParameterValue, `parameter "full_page_writes" requires a Boolean value`, "")},
		{"bool 2", "full_page_writes", "2", false,
			fail(pgerror.InvalidParameterValue, `parameter "full_page_writes" requires a Boolean value`, "")},
		{"bool empty", "full_page_writes", "", false,
			fail(pgerror.InvalidParameterValue, `parameter "full_page_writes" requires a Boolean value`, "")},

		// integer with units: the value is kept as written, the space
		// before the unit dropped; the range is checked in base units.
		{"shared_buffers 128MB", "shared_buffers", "128MB", false, ok("128MB")},
		{"shared_buffers 128 MB", "shared_buffers", "128 MB", false, ok("128MB")},
		{"shared_buffers 1.5GB", "shared_buffers", "1.5GB", false, ok("1.5GB")},
		{"shared_buffers pages", "shared_buffers", "16384", false, ok("16384")},
		{"shared_buffers 127kB rounds to 16", "shared_buffers", "127kB", false, ok("127kB")},
		{"shared_buffers below min", "shared_buffers", "15", false,
			fail(pgerror.InvalidParameterValue, `15 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)`, "")},
		{"shared_buffers 4kB rounds to 0 pages", "shared_buffers", "4kB", false,
			fail(pgerror.InvalidParameterValue, `0 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)`, "")},
		{"shared_buffers 12kB rounds to 2 pages", "shared_buffers", "12kB", false,
			fail(pgerror.InvalidParameterValue, `2 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)`, "")},
		{"shared_buffers 8TB above max", "shared_buffers", "8TB", false,
			fail(pgerror.InvalidParameterValue, `1073741824 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)`, "")},
		{"shared_buffers time unit", "shared_buffers", "1min", false, invalid("shared_buffers", "1min", memoryHint)},
		{"units are case-sensitive", "work_mem", "1mb", false, invalid("work_mem", "1mb", memoryHint)},
		{"garbage after unit", "work_mem", "1MB x", false, invalid("work_mem", "1MB x", memoryHint)},
		{"work_mem 1000 kB", "work_mem", "1000 kB", false, ok("1000kB")},
		{"work_mem bytes", "work_mem", "100000B", false, ok("100000B")},
		{"work_mem 1B is 0 kB", "work_mem", "1B", false,
			fail(pgerror.InvalidParameterValue, `0 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)`, "")},
		{"work_mem 63", "work_mem", "63", false,
			fail(pgerror.InvalidParameterValue, `63 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)`, "")},
		{"work_mem exceeds int", "work_mem", "3TB", false, invalid("work_mem", "3TB", "Value exceeds integer range.")},
		{"work_mem exceeds long", "work_mem", "99999999999999999999kB", false,
			invalid("work_mem", "99999999999999999999kB", "Value exceeds integer range.")},
		{"hex", "work_mem", "0x100", false, ok("0x100")},
		{"octal 010 is 8", "work_mem", "010", false,
			fail(pgerror.InvalidParameterValue, `8 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)`, "")},
		{"08 is not octal", "work_mem", "08", false, invalid("work_mem", "08", memoryHint)},
		{"exponent", "work_mem", "1e3", false, ok("1e3")},
		{"leading point", "work_mem", ".5MB", false, ok(".5MB")},
		{"space before a leading point", "work_mem", " .5MB", false, invalid("work_mem", " .5MB", "")},
		{"sign", "work_mem", "+5MB", false, ok("+5MB")},
		{"sign and space", "work_mem", "- 5", false, invalid("work_mem", "- 5", "")},
		{"inf is not an integer", "work_mem", "inf", false, invalid("work_mem", "inf", "")},
		{"nan", "work_mem", "nan", false, invalid("work_mem", "nan", "")},
		{"blank", "work_mem", "  ", false, invalid("work_mem", "  ", "")},
		{"wal_keep_size 102400 MB", "wal_keep_size", "102400", false, ok("102400")},
		{"wal_keep_size 100GB", "wal_keep_size", "100GB", false, ok("100GB")},
		{"wal_keep_size negative", "wal_keep_size", "-1", false,
			fail(pgerror.InvalidParameterValue, `-1 MB is outside the valid range for parameter "wal_keep_size" (0 .. 2147483647)`, "")},
		{"wal_buffers -1 is auto", "wal_buffers", "-1", false, ok("-1")},
		{"max_connections has no unit", "max_connections", "100MB", false, invalid("max_connections", "100MB", "")},
		{"max_connections 0", "max_connections", "0", false,
			fail(pgerror.InvalidParameterValue, `0 is outside the valid range for parameter "max_connections" (1 .. 262143)`, "")},

		// integer time units.
		{"wal_sender_timeout 0", "wal_sender_timeout", "0", false, ok("0")},
		{"wal_sender_timeout 60s", "wal_sender_timeout", "60s", false, ok("60s")},
		{"wal_sender_timeout 1min", "wal_sender_timeout", "1min", false, ok("1min")},
		{"wal_sender_timeout memory unit", "wal_sender_timeout", "1MB", false, invalid("wal_sender_timeout", "1MB", timeHint)},
		{"log_min_duration_statement -1", "log_min_duration_statement", "-1", false, ok("-1")},
		{"log_min_duration_statement 250ms", "log_min_duration_statement", "250ms", false, ok("250ms")},
		{"checkpoint_timeout 29s", "checkpoint_timeout", "29s", false,
			fail(pgerror.InvalidParameterValue, `29 s is outside the valid range for parameter "checkpoint_timeout" (30 .. 86400)`, "")},
		{"checkpoint_timeout 1500ms rounds to 2 s", "checkpoint_timeout", "1500ms", false,
			fail(pgerror.InvalidParameterValue, `2 s is outside the valid range for parameter "checkpoint_timeout" (30 .. 86400)`, "")},
		{"checkpoint_timeout 1d", "checkpoint_timeout", "1d", false, ok("1d")},
		{"checkpoint_timeout 2d", "checkpoint_timeout", "2d", false,
			fail(pgerror.InvalidParameterValue, `172800 s is outside the valid range for parameter "checkpoint_timeout" (30 .. 86400)`, "")},
		{"log_rotation_age 1h", "log_rotation_age", "1h", false, ok("1h")},
		{"log_rotation_age 90s", "log_rotation_age", "90s", false, ok("90s")},
		{"log_rotation_age 25000d", "log_rotation_age", "25000d", false,
			fail(pgerror.InvalidParameterValue, `36000000 min is outside the valid range for parameter "log_rotation_age" (0 .. 35791394)`, "")},

		// real.
		{"real", "checkpoint_completion_target", "0.9", false, ok("0.9")},
		{"real above max", "checkpoint_completion_target", "1.1", false,
			fail(pgerror.InvalidParameterValue, `1.1 is outside the valid range for parameter "checkpoint_completion_target" (0 .. 1)`, "")},
		{"real not a number", "checkpoint_completion_target", "high", false, invalid("checkpoint_completion_target", "high", "")},
		{"real with unit", "vacuum_cost_delay", "1500us", false, ok("1500us")},
		{"real unit out of range", "vacuum_cost_delay", "1h", false,
			fail(pgerror.InvalidParameterValue, `3.6e+06 ms is outside the valid range for parameter "vacuum_cost_delay" (0 .. 100)`, "")},
		{"real infinity", "vacuum_cost_delay", "inf", false,
			fail(pgerror.InvalidParameterValue, `Infinity ms is outside the valid range for parameter "vacuum_cost_delay" (0 .. 100)`, "")},
		{"real overflow", "seq_page_cost", "1e309", false, invalid("seq_page_cost", "1e309", "")},
		{"real underflow", "seq_page_cost", "1e-400", false, invalid("seq_page_cost", "1e-400", "")},
		{"real DBL_MAX is in range", "seq_page_cost", "1.7976931348623157e308", false, ok("1.7976931348623157e308")},
		{"real hex", "seq_page_cost", "0x10", false, ok("0x10")},
		{"real without unit rejects one", "seq_page_cost", "1ms", false, invalid("seq_page_cost", "1ms", "")},

		// enum: case-insensitive, stored in the server's spelling.
		{"enum on", "archive_mode", "on", false, ok("on")},
		{"enum ALWAYS", "archive_mode", "ALWAYS", false, ok("always")},
		{"enum hidden boolean spelling", "archive_mode", "yes", false, ok("on")},
		{"enum hidden 0", "synchronous_commit", "0", false, ok("off")},
		{"enum with a space", "default_transaction_isolation", "Repeatable Read", false, ok("repeatable read")},
		{"enum invalid", "archive_mode", "sometimes", false,
			invalid("archive_mode", "sometimes", "Available values: always, on, off.")},
		{"enum without on/off takes no booleans", "wal_level", "1", false,
			invalid("wal_level", "1", "Available values: minimal, replica, logical.")},

		// string: anything that fits on a line.
		{"string with %p", "archive_command", "rsync -a %p /data2/antdb/data/arch/dm0/%f", false,
			ok("rsync -a %p /data2/antdb/data/arch/dm0/%f")},
		{"string keeps spaces", "log_line_prefix", "%m [%p] ", false, ok("%m [%p] ")},
		{"string with quotes", "archive_command", `test ! -f '/a b/%f' && cp %p '/a b/%f'`, false,
			ok(`test ! -f '/a b/%f' && cp %p '/a b/%f'`)},
		{"string empty", "archive_command", "", false, ok("")},
		{"string newline", "archive_command", "a\nb", false,
			fail(pgerror.InvalidParameterValue, `invalid value for parameter "archive_command": postgresql.conf values cannot contain a newline or NUL byte`, "")},
		{"string NUL even with force", "archive_command", "a\x00b", true,
			fail(pgerror.InvalidParameterValue, `invalid value for parameter "archive_command": postgresql.conf values cannot contain a newline or NUL byte`, "")},
		{"mixed-case name", "datestyle", "ISO, DMY", false, ok("ISO, DMY")},
		{"key is lower-cased", "Work_Mem", "4MB", false, ok("4MB")},

		// keys.
		{"unknown", "no_such_param", "1", false,
			fail(pgerror.UndefinedObject, `unrecognized configuration parameter "no_such_param"`, "")},
		{"unknown with force", "pg_stat_statements.max", "10000", true, ok("10000")},
		{"bad name with force", "a b", "1", true,
			fail(pgerror.InvalidName, `invalid configuration parameter name "a b"`, "")},
		// Names the agent refuses (pgconf.ValidKey), refused even with FORCE.
		{"two dots with force", "a.b.c", "1", true, fail(pgerror.InvalidName, `invalid configuration parameter name "a.b.c"`, "")},
		{"empty part with force", "a.", "1", true, fail(pgerror.InvalidName, `invalid configuration parameter name "a."`, "")},
		{"leading digit with force", "1a", "1", true, fail(pgerror.InvalidName, `invalid configuration parameter name "1a"`, "")},
		{"non-ASCII with force", "ключ", "1", true, fail(pgerror.InvalidName, `invalid configuration parameter name "ключ"`, "")},
		{"too long with force", "x" + strings.Repeat("y", 256), "1", true,
			fail(pgerror.InvalidName, `invalid configuration parameter name "x`+strings.Repeat("y", 256)+`"`, "")},
		{"include with force", "include", "/etc/x.conf", true,
			fail(pgerror.InvalidName, `"include" is a configuration file directive, not a parameter`, "")},
		{"INCLUDE_DIR with force", "INCLUDE_DIR", "/etc", true,
			fail(pgerror.InvalidName, `"include_dir" is a configuration file directive, not a parameter`, "")},
		{"include_if_exists", "include_if_exists", "x", false,
			fail(pgerror.InvalidName, `"include_if_exists" is a configuration file directive, not a parameter`, "")},
		{"qualified name with force", "Auto_Explain.log_min_duration", "10", true, ok("10")},
		{"value at the bound with force", "x.y", strings.Repeat("v", pgconf.MaxValueLen), true, ok(strings.Repeat("v", pgconf.MaxValueLen))},
		{"value too long with force", "x.y", strings.Repeat("v", pgconf.MaxValueLen+1), true, fail(pgerror.InvalidParameterValue,
			`invalid value for parameter "x.y": longer than 65536 bytes`, "")},
		{"NUL with force", "x.y", "a\x00b", true, fail(pgerror.InvalidParameterValue,
			`invalid value for parameter "x.y": postgresql.conf values cannot contain a newline or NUL byte`, "")},
		{"internal", "block_size", "8192", false,
			fail(cantChangeRuntimeParam, `parameter "block_size" cannot be changed`, "")},
		{"internal with force", "block_size", "8192", true, ok("8192")},
		{"reserved --", "archive_command", "--", false, invalid("archive_command", "--",
			`"--" is how adbmgr records RESET … FORCE; use RESET … FORCE to remove the parameter from postgresql.conf.`)},

		// The manager's own keys, refused even with FORCE.
		{"port", "port", "5433", false, fail(pgerror.InsufficientPrivilege,
			`permission denied: "port" should be modified in "node" table before init all`, managedHints["port"])},
		{"PORT with force", "PORT", "5433", true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "port" should be modified in "node" table before init all`, managedHints["port"])},
		{"synchronous_standby_names", "synchronous_standby_names", "*", true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "synchronous_standby_names" is managed by adbmgr`, managedHints["synchronous_standby_names"])},
		{"listen_addresses", "listen_addresses", "*", true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "listen_addresses" is managed by adbmgr`, managedHints["listen_addresses"])},
		{"unix_socket_directories", "unix_socket_directories", "/tmp", true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "unix_socket_directories" is managed by adbmgr`, "")},
		{"primary_conninfo", "primary_conninfo", "host=x", true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "primary_conninfo" is managed by adbmgr`, "")},
		{"primary_slot_name", "primary_slot_name", "s", false, fail(pgerror.InsufficientPrivilege,
			`permission denied: "primary_slot_name" is managed by adbmgr`, "")},
		{"hba_file", "hba_file", "/etc/hba", true, fail(pgerror.InsufficientPrivilege,
			`permission denied: "hba_file" is managed by adbmgr`, "")},

		// Values the manager cannot work with: refused unless FORCE.
		{"hot_standby off", "hot_standby", "false", false, fail(pgerror.InvalidParameterValue,
			`invalid value for parameter "hot_standby": "false"`, "Add FORCE to set it anyway.")},
		{"hot_standby off with force", "hot_standby", "off", true, ok("off")},
		{"hot_standby on", "hot_standby", "on", false, ok("on")},
		{"wal_level minimal", "wal_level", "Minimal", false, fail(pgerror.InvalidParameterValue,
			`invalid value for parameter "wal_level": "Minimal"`, "Add FORCE to set it anyway.")},
		{"wal_level logical", "wal_level", "logical", false, ok("logical")},

		// FORCE keeps the value verbatim.
		{"force skips type check", "wal_log_hints", "maybe", true, ok("maybe")},
		{"force skips range check", "work_mem", "1", true, ok("1")},
		{"force keeps case", "archive_mode", "ON", true, ok("ON")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Check(gucs, Setting{Key: tt.key, Value: tt.value, HasValue: true}, tt.force)
			if diff := cmp.Diff(tt.want, outcomeOf(t, v, err)); diff != "" {
				t.Errorf("Check(%q = %q, force %v) (-want +got):\n%s", tt.key, tt.value, tt.force, diff)
			}
		})
	}
}

func TestCheckNeedsValue(t *testing.T) {
	_, err := Check(testGUCs(), Setting{Key: "work_mem"}, false)
	want := fail(pgerror.SyntaxError, `parameter "work_mem" requires a value`, "")
	if diff := cmp.Diff(want, outcomeOf(t, "", err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Without metadata (no unit, no enum members — what postgres
// --describe-config gives) Check still accepts plain values and does not
// invent a refusal for enums.
func TestCheckWithoutMetadata(t *testing.T) {
	gucs := testGUCs()
	g := gucs["archive_mode"]
	g.EnumValues = nil
	gucs["archive_mode"] = g
	v, err := Check(gucs, Setting{Key: "archive_mode", Value: "on", HasValue: true}, false)
	if diff := cmp.Diff(ok("on"), outcomeOf(t, v, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEffect(t *testing.T) {
	gucs := testGUCs()
	tests := []struct {
		key    string
		action Action
		notice string
	}{
		{"wal_log_hints", Restart, `parameter "wal_log_hints" cannot be changed without restarting the server`},
		{"archive_mode", Restart, `parameter "archive_mode" cannot be changed without restarting the server`},
		{"full_page_writes", Reload, ""},
		{"wal_sender_timeout", Reload, ""},
		{"log_min_duration_statement", Reload, ""},
		{"block_size", None, `parameter "block_size" cannot be changed`},
		{"ignore_system_indexes", Reload, `parameter "ignore_system_indexes" cannot be set after connection start`},
		{"log_connections", Reload, `parameter "log_connections" cannot be set after connection start`},
		{"DateStyle", Reload, ""},
		{"pg_stat_statements.max", Reload, ""},
	}
	for _, tt := range tests {
		action, notice := Effect(gucs, tt.key)
		if action != tt.action || notice != tt.notice {
			t.Errorf("Effect(%q) = %q, %q; want %q, %q", tt.key, action, notice, tt.action, tt.notice)
		}
	}
}

// FuzzCheck: whatever the input, Check does not panic and never returns a
// value postgresql.conf cannot hold.
func FuzzCheck(f *testing.F) {
	gucs := testGUCs()
	for _, s := range []string{"128MB", "1.5GB", "0x1F", "on", "rsync %p", ".5e3kB", "inf", "-0", "1e-400"} {
		f.Add("shared_buffers", s, false)
		f.Add("seq_page_cost", s, true)
	}
	f.Fuzz(func(t *testing.T, key, value string, force bool) {
		v, err := Check(gucs, Setting{Key: key, Value: value, HasValue: true}, force)
		if err != nil {
			if _, ok := pgerror.As(err); !ok {
				t.Fatalf("error %v is not a *pgerror.Error", err)
			}
			return
		}
		for _, c := range v {
			if c == '\n' || c == '\r' || c == 0 {
				t.Fatalf("Check(%q, %q) = %q holds a line break or NUL", key, value, v)
			}
		}
		if v == Removed {
			t.Fatalf("Check(%q, %q) returned the reserved %q", key, value, Removed)
		}
		// What SET accepts, the agent writes.
		if err := pgconf.ValidKey(canonicalKey(key)); err != nil {
			t.Fatalf("Check accepted %q, which the agent refuses: %v", key, err)
		}
		if _, err := pgconf.QuoteValue(v); err != nil {
			t.Fatalf("Check accepted %q = %q, which the agent refuses: %v", key, v, err)
		}
	})
}

// The review's attack: log_filename pointed at pg_hba.conf let a client's
// user name become a trust line. Nobody may point the log at the node's
// own files, FORCE or not; TLS and password storage are adbmgr's.
func TestCheckLogPathsAndTLS(t *testing.T) {
	gucs := testGUCs()
	for _, tc := range []struct {
		key, value string
		code       string // "" accepted
	}{
		{"log_filename", "'../pg_hba.conf'", pgerror.InvalidParameterValue},
		{"log_filename", "pg_hba.conf", pgerror.InvalidParameterValue},
		{"log_filename", "postgresql.auto.conf", pgerror.InvalidParameterValue},
		{"log_filename", "standby.signal", pgerror.InvalidParameterValue},
		{"log_filename", "PG_VERSION", pgerror.InvalidParameterValue},
		{"log_filename", "/etc/passwd", pgerror.InvalidParameterValue},
		{"log_filename", "'postgresql-%Y-%m-%d.log'", ""},
		{"log_directory", ".", pgerror.InvalidParameterValue},
		{"log_directory", "'global'", pgerror.InvalidParameterValue},
		{"log_directory", "pg_wal", pgerror.InvalidParameterValue},
		{"log_directory", "log/../..", pgerror.InvalidParameterValue},
		{"log_directory", "'/var/log/postgresql'", ""},
		{"log_directory", "log", ""},
		{"ssl", "off", pgerror.InsufficientPrivilege},
		{"SSL_Ciphers", "NULL", pgerror.InsufficientPrivilege},
		{"ssl_min_protocol_version", "TLSv1", pgerror.InsufficientPrivilege},
		{"password_encryption", "md5", pgerror.InsufficientPrivilege},
	} {
		for _, force := range []bool{false, true} {
			if strings.HasPrefix(tc.key, "log_") && !force {
				continue // not in testGUCs: unknown without FORCE
			}
			_, err := Check(gucs, Setting{Key: tc.key, Value: tc.value, HasValue: true}, force)
			if tc.code == "" {
				if err != nil && force {
					t.Errorf("%s = %s (force): %v", tc.key, tc.value, err)
				}
				continue
			}
			pe, ok := pgerror.As(err)
			if !ok || pe.Code != tc.code {
				t.Errorf("%s = %s (force %v): %v, want %s", tc.key, tc.value, force, err, tc.code)
			}
		}
	}
}
