package params

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgconf"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// managed lists the keys the manager derives per node and owns: SET refuses
// them even with FORCE, because a catalog row would either be overwritten by
// the manager or silently break what the manager relies on. The value is the
// error's detail (port has AntDB's own message).
var managed = map[string]string{
	"port": "",
	"synchronous_standby_names": "adbmgr computes it on each master from the sync_state of its slaves " +
		"and rewrites it at every append, failover and switchover.",
	// PostgreSQL 12+ reads the recovery settings adbmgr writes into each
	// slave's postgresql.auto.conf, which overrides postgresql.conf, and
	// rewrites them at failover, switchover and rewind.
	"primary_conninfo":         "adbmgr writes it for each slave (its parent's address) and rewrites it at failover, switchover and rewind.",
	"primary_slot_name":        "adbmgr creates a replication slot per slave and names it here.",
	"recovery_target_timeline": "adbmgr writes \"latest\" for each slave so that slaves follow a promoted master.",
	"listen_addresses":         "adbmgr sets it to the address of the node's host, where adbmgr and the other nodes connect.",
	"unix_socket_directories":  "adbmgr gives each node a socket directory of its own (<adbhome>/run/<node>-<hash>) and looks for it there (pg_ctl, status checks).",
	"data_directory":           "adbmgr keeps each node's files in its data directory (the node's path) and edits them there.",
	"config_file":              "adbmgr keeps each node's files in its data directory (the node's path) and edits them there.",
	"hba_file":                 "adbmgr keeps each node's files in its data directory (the node's path) and edits them there.",
	"ident_file":               "adbmgr keeps each node's files in its data directory (the node's path) and edits them there.",
	// Nodes trust nobody: replication, coordinators and the manager reach
	// them over TLS with SCRAM. Turning TLS off or weakening it, or storing
	// passwords as MD5, would cut those connections (and MONITOR would show
	// running nodes as down) or weaken every credential.
	"ssl":                                    tlsManaged,
	"ssl_cert_file":                          tlsManaged,
	"ssl_key_file":                           tlsManaged,
	"ssl_ca_file":                            tlsManaged,
	"ssl_crl_file":                           tlsManaged,
	"ssl_crl_dir":                            tlsManaged,
	"ssl_ciphers":                            tlsManaged,
	"ssl_min_protocol_version":               tlsManaged,
	"ssl_max_protocol_version":               tlsManaged,
	"ssl_dh_params_file":                     tlsManaged,
	"ssl_ecdh_curve":                         tlsManaged,
	"ssl_passphrase_command":                 tlsManaged,
	"ssl_passphrase_command_supports_reload": tlsManaged,
	"password_encryption": "adbmgr keeps the nodes' passwords as SCRAM-SHA-256 verifiers; the nodes' pg_hba.conf " +
		"asks for scram-sha-256, which an MD5-stored password cannot pass.",
}

const tlsManaged = "adbmgr runs every node with TLS (a certificate from its CA); replication, the coordinators " +
	"and the manager connect with sslmode=verify-full."

// managedHints point at the command that does change what the key controls.
var managedHints = map[string]string{
	"port":                      `Use ALTER {GTMCOORD|COORDINATOR|DATANODE} {MASTER|SLAVE} name (port = …); "list node" shows the ports.`,
	"synchronous_standby_names": "Use ALTER {GTMCOORD|COORDINATOR|DATANODE} SLAVE name (sync_state = …).",
	"listen_addresses":          "Use ALTER HOST name (address = …).",
}

// guards refuse values, without FORCE, that the manager cannot work with.
// Keyed by parameter, then by canonical value; the text is the detail.
var guards = map[string]map[string]string{
	"hot_standby": {"off": "adbmgr connects to slaves to follow replication and to choose a failover candidate; " +
		"with hot_standby off a standby refuses connections."},
	"wal_level": {"minimal": "slaves stream WAL from their master; with wal_level minimal PostgreSQL refuses to start " +
		"while max_wal_senders > 0."},
}

// IsManaged reports whether key belongs to the manager and can never be SET.
func IsManaged(key string) bool {
	_, ok := managed[canonicalKey(key)]
	return ok
}

func managedError(key string) error {
	if key == "port" {
		return pgerror.New(pgerror.InsufficientPrivilege,
			`permission denied: "port" should be modified in "node" table before init all`).WithHint("%s", managedHints[key])
	}
	e := pgerror.New(pgerror.InsufficientPrivilege, `permission denied: "%s" is managed by adbmgr`, key).WithDetail("%s", managed[key])
	if h := managedHints[key]; h != "" {
		e = e.WithHint("%s", h)
	}
	return e
}

// canonicalKey is a key as the catalog stores it. PostgreSQL folds
// parameter names to lower case, so "Work_Mem" and work_mem are one key.
func canonicalKey(key string) string { return strings.ToLower(strings.TrimSpace(key)) }

// checkKey validates a key for SET or RESET and returns it lower-cased with
// its definition (ok false when unknown and force allowed it).
func checkKey(gucs map[string]cluster.GUC, key string, force bool) (string, cluster.GUC, bool, error) {
	key = canonicalKey(key)
	if err := CheckName(key); err != nil {
		return key, cluster.GUC{}, false, err
	}
	if _, ok := managed[key]; ok {
		return key, cluster.GUC{}, false, managedError(key)
	}
	g, ok := lookup(gucs, key)
	if !ok && !force {
		return key, g, false, pgerror.New(pgerror.UndefinedObject, `unrecognized configuration parameter "%s"`, key)
	}
	return key, g, ok, nil
}

// CheckName refuses a name the agent would not write into postgresql.conf
// (pgconf.ValidKey, the agent's own rule: guc-file.l's ID or ID.ID, ASCII,
// not an include directive). FORCE skips the lookup in the server's
// parameters, so this is what keeps "a.b.c", "a b" or include_dir out of
// the catalog: stored, they would make every later INIT of the family fail.
func CheckName(key string) error {
	if pgconf.ValidKey(key) == nil {
		return nil
	}
	if pgconf.IsDirective(key) {
		return pgerror.New(pgerror.InvalidName, `"%s" is a configuration file directive, not a parameter`, key).
			WithDetail("Written into postgresql.conf it would make PostgreSQL read another file.")
	}
	return pgerror.New(pgerror.InvalidName, `invalid configuration parameter name "%s"`, key).
		WithDetail("A name in postgresql.conf is a simple identifier (ASCII letters, digits, _), " +
			"or two separated by one dot (plugin.name), of at most 256 bytes.")
}

// Writable reports whether a catalog row for key can reach postgresql.conf:
// the agent accepts the name. Rows stored before SET checked names are
// skipped where files are written (Effective, Updates) so that they cannot
// stop INIT, and RESET deletes them.
func Writable(key string) bool { return pgconf.ValidKey(key) == nil }

// Check validates one SET value against the server's definition (unless
// force) and returns the canonical value to store and write: unquoted (the
// postgresql.conf writer quotes every value, which PostgreSQL accepts for
// every type), booleans as on/off, enums in the server's spelling, numbers
// as written with the space before a unit removed ("1000 kB" → "1000kB").
// The rules are guc.c's parse_bool, parse_int, parse_real and enum lookup,
// so a value accepted here does not make the node fail to start.
//
// With force only the key's form, the manager's own keys, and characters
// postgresql.conf cannot hold are checked; the value is kept verbatim.
func Check(gucs map[string]cluster.GUC, s Setting, force bool) (string, error) {
	key, g, known, err := checkKey(gucs, s.Key, force)
	if err != nil {
		return "", err
	}
	if !s.HasValue {
		return "", pgerror.New(pgerror.SyntaxError, `parameter "%s" requires a value`, key)
	}
	v := s.Value
	if strings.ContainsAny(v, "\x00\n\r") {
		// A configuration line ends at a newline; NUL ends a C string.
		return "", pgerror.New(pgerror.InvalidParameterValue,
			`invalid value for parameter "%s": postgresql.conf values cannot contain a newline or NUL byte`, key)
	}
	if err := pgconf.ValidValue(v); err != nil {
		// The agent's own rule (a length bound), so that a stored value
		// always reaches the nodes.
		return "", pgerror.New(pgerror.InvalidParameterValue,
			`invalid value for parameter "%s": longer than %d bytes`, key, pgconf.MaxValueLen)
	}
	if v == Removed {
		return "", pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "%s": "%s"`, key, v).
			WithHint(`"--" is how adbmgr records RESET … FORCE; use RESET … FORCE to remove the parameter from postgresql.conf.`)
	}
	if err := checkLogPath(key, v); err != nil {
		return "", err
	}
	if force || !known {
		return v, nil
	}
	if g.Context == "internal" {
		return "", pgerror.New(cantChangeRuntimeParam, `parameter "%s" cannot be changed`, key).
			WithDetail("It is fixed when PostgreSQL is built or the data directory is initialized.")
	}
	out, err := canonical(key, g, v)
	if err != nil {
		return "", err
	}
	if detail, bad := guards[key][out]; bad {
		return "", pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "%s": "%s"`, key, v).
			WithDetail("%s", detail).WithHint("Add FORCE to set it anyway.")
	}
	return out, nil
}

// canonical checks v by g's type and returns the form to store.
func canonical(key string, g cluster.GUC, v string) (string, error) {
	invalid := func(hint string) error {
		e := pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "%s": "%s"`, key, v)
		if hint != "" {
			e = e.WithHint("%s", hint)
		}
		return e
	}
	switch g.VarType {
	case "bool":
		b, ok := parseBool(strings.TrimSpace(v))
		if !ok {
			return "", pgerror.New(pgerror.InvalidParameterValue, `parameter "%s" requires a Boolean value`, key)
		}
		if b {
			return "on", nil
		}
		return "off", nil
	case "integer", "real":
		n, hint, ok := parseNumber(v, g.VarType == "integer", g.Unit)
		if !ok {
			return "", invalid(hint)
		}
		if g.VarType == "integer" {
			r := math.RoundToEven(n.value)
			if r > math.MaxInt32 || r < math.MinInt32 {
				return "", invalid("Value exceeds integer range.")
			}
			lo, errLo := strconv.ParseInt(g.Min, 10, 64)
			hi, errHi := strconv.ParseInt(g.Max, 10, 64)
			if errLo == nil && errHi == nil && (int64(r) < lo || int64(r) > hi) {
				return "", pgerror.New(pgerror.InvalidParameterValue, `%d%s is outside the valid range for parameter "%s" (%d .. %d)`,
					int64(r), unitSuffix(g.Unit), key, lo, hi)
			}
			return n.text, nil
		}
		lo, errLo := parseBound(g.Min)
		hi, errHi := parseBound(g.Max)
		if errLo == nil && errHi == nil && (n.value < lo || n.value > hi) {
			return "", pgerror.New(pgerror.InvalidParameterValue, `%s%s is outside the valid range for parameter "%s" (%s .. %s)`,
				cg(n.value), unitSuffix(g.Unit), key, cg(lo), cg(hi))
		}
		return n.text, nil
	case "enum":
		t := strings.TrimSpace(v)
		if len(g.EnumValues) == 0 {
			// The definition came without its members (postgres
			// --describe-config does not print them): nothing to check
			// against, so keep the value rather than refuse every one.
			return t, nil
		}
		for _, e := range g.EnumValues {
			if strings.EqualFold(e, t) {
				return e, nil
			}
		}
		// Enums with on and off members (archive_mode, synchronous_commit,
		// wal_compression, huge_pages…) also take the boolean spellings
		// true/false/yes/no/1/0 as hidden members pg_settings does not list.
		if slices.Contains(g.EnumValues, "on") && slices.Contains(g.EnumValues, "off") {
			switch strings.ToLower(t) {
			case "true", "yes", "1":
				return "on", nil
			case "false", "no", "0":
				return "off", nil
			}
		}
		return "", invalid("Available values: " + strings.Join(g.EnumValues, ", ") + ".")
	}
	// string, or a type this version does not know: any text.
	return v, nil
}

// parseBound reads a real GUC's min or max. pg_settings prints them with
// %g, so DBL_MAX (seq_page_cost's max) reads back as 1.79769e+308, which
// is less than DBL_MAX; take such a bound for what it stands for.
func parseBound(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil:
		return 0, err
	case s == cg(math.MaxFloat64):
		return math.MaxFloat64, nil
	case s == cg(-math.MaxFloat64):
		return -math.MaxFloat64, nil
	}
	return f, nil
}

// unitSuffix is how PostgreSQL prints a unit after a number in range errors.
func unitSuffix(unit string) string {
	if unit == "" {
		return ""
	}
	return " " + unit
}

// cg formats a float as C's %g does (6 significant digits, trailing zeros
// dropped, exponent of at least two digits), as PostgreSQL's messages do.
func cg(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity" // PostgreSQL's own snprintf spells it so
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// parseBool is PostgreSQL's parse_bool: case-insensitive, any prefix of
// true/false/yes/no, "on", "of"/"off", "1", "0".
func parseBool(s string) (bool, bool) {
	if s == "" {
		return false, false
	}
	lower := strings.ToLower(s)
	prefixOf := func(word string, minLen int) bool {
		return len(lower) >= minLen && len(lower) <= len(word) && word[:len(lower)] == lower
	}
	switch lower[0] {
	case 't':
		return true, prefixOf("true", 1)
	case 'f':
		return false, prefixOf("false", 1)
	case 'y':
		return true, prefixOf("yes", 1)
	case 'n':
		return false, prefixOf("no", 1)
	case 'o':
		// "o" alone is ambiguous; PostgreSQL compares at least two letters.
		if prefixOf("on", 2) {
			return true, true
		}
		return false, prefixOf("off", 2)
	case '1':
		return true, lower == "1"
	case '0':
		return false, lower == "0"
	}
	return false, false
}

const (
	memoryHint = `Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".`
	timeHint   = `Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".`
)

// unitScale is one row of guc.c's conversion tables, largest first: the
// order matters, a fractional value is rounded to the next smaller unit.
type unitScale struct {
	name string
	size float64 // bytes, or microseconds
}

var (
	memoryUnits = []unitScale{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	timeUnits   = []unitScale{{"d", 864e8}, {"h", 36e8}, {"min", 6e7}, {"s", 1e6}, {"ms", 1e3}, {"us", 1}}
)

// baseUnit interprets a GUC's unit as pg_settings shows it ("8kB", "kB",
// "MB", "B", "ms", "s", "min"): which table applies and the size of one
// base unit. ok is false for "" and for units this code does not know,
// which then accept plain numbers only.
func baseUnit(unit string) (table []unitScale, base float64, hint string, ok bool) {
	for _, u := range timeUnits {
		if unit == u.name {
			return timeUnits, u.size, timeHint, true
		}
	}
	digits := strings.TrimRight(unit, "kMGTB")
	name := unit[len(digits):]
	mult := 1.0
	if digits != "" {
		n, err := strconv.Atoi(digits)
		if err != nil || n <= 0 {
			return nil, 0, "", false
		}
		mult = float64(n)
	}
	for _, u := range memoryUnits {
		if name == u.name {
			return memoryUnits, mult * u.size, memoryHint, true
		}
	}
	return nil, 0, "", false
}

// number is a parsed numeric value in the GUC's base unit and its canonical
// text.
type number struct {
	value float64
	text  string
}

// parseNumber is guc.c's parse_int (integer true) or parse_real: a C number
// (strtol with base 0 — so 0x1F and 017 are hex and octal — falling back to
// strtod when it stops at '.', 'e' or 'E'), optional spaces, and an optional
// unit converted to the GUC's base unit, a fractional value being rounded to
// the next smaller unit ("1.5GB" is 1536MB). On failure it returns the hint
// PostgreSQL gives, often none.
func parseNumber(s string, integer bool, unit string) (n number, hint string, ok bool) {
	lead := len(s) - len(strings.TrimLeft(s, cSpace))
	rest := s[lead:]
	var val float64
	var end int
	if integer {
		var overflow bool
		val, end, overflow = cStrtol(rest)
		// strtol leaves its end pointer at the very start of s (before
		// the spaces) when it reads nothing, so ".5MB" is retried as a
		// float and " .5MB" is not.
		stop := byte(0)
		switch {
		case end > 0 && end < len(rest):
			stop = rest[end]
		case end == 0 && len(s) > 0:
			stop = s[0]
		}
		ok = end > 0
		if overflow || (stop != 0 && strings.IndexByte(".eE", stop) >= 0) {
			val, end, ok = cStrtod(rest)
		}
	} else {
		val, end, ok = cStrtod(rest)
	}
	// NaN is a syntax error; infinities fail the range checks.
	if !ok || math.IsNaN(val) {
		return number{}, "", false
	}
	numText := rest[:end]
	unitText := strings.Trim(rest[end:], cSpace)
	if unitText == "" {
		return number{value: val, text: numText}, "", true
	}
	table, base, hint, known := baseUnit(unit)
	if !known {
		return number{}, "", false // this setting does not accept a unit
	}
	for i, u := range table {
		if unitText != u.name {
			continue
		}
		c := val * (u.size / base)
		if i+1 < len(table) {
			next := table[i+1].size / base
			c = math.RoundToEven(c/next) * next
		}
		return number{value: c, text: numText + unitText}, "", true
	}
	return number{}, hint, false // unknown unit, or garbage after it
}

// cSpace is C's isspace in the "C" locale.
const cSpace = " \t\n\v\f\r"

// cStrtol parses the longest prefix of s that strtol(s, &end, 0) would:
// optional sign, then 0x/0X hex, 0 octal or decimal digits. end is 0 when
// nothing was read; overflow is set when the value does not fit a 64-bit
// long (C's ERANGE, after which parse_int retries with strtod).
func cStrtol(s string) (val float64, end int, overflow bool) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	switch {
	case i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && isHex(s[i+2]):
		base, i = 16, i+2
	case i < len(s) && s[i] == '0':
		base = 8 // the leading 0 is itself an octal digit
	}
	start := i
	var v uint64
	for ; i < len(s); i++ {
		d, ok := digit(s[i], base)
		if !ok {
			break
		}
		if v > (math.MaxInt64-d)/base {
			overflow = true
		}
		v = v*base + d
	}
	if i == start {
		return 0, 0, false
	}
	val = float64(v)
	if neg {
		val = -val
	}
	return val, i, overflow
}

// cStrtodHex reads a C hexadecimal float at s[i:] (after the sign):
// 0x, hex digits with an optional point, an optional p exponent.
func cStrtodHex(s string, i int) (float64, int, bool) {
	if !(i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X')) {
		return 0, 0, false
	}
	j := i + 2
	digits := 0
	for j < len(s) && isHex(s[j]) {
		j, digits = j+1, digits+1
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && isHex(s[j]) {
			j, digits = j+1, digits+1
		}
	}
	if digits == 0 {
		return 0, 0, false // strtod reads just the "0"
	}
	mant := s[:j]
	if strings.HasSuffix(mant, ".") {
		mant += "0"
	}
	exp := "p0"
	if j < len(s) && (s[j] == 'p' || s[j] == 'P') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && s[k] >= '0' && s[k] <= '9' {
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			exp, j = s[j:k], k
		}
	}
	f, err := strconv.ParseFloat(mant+exp, 64)
	if err != nil {
		return 0, 0, false
	}
	return f, j, true
}

func isHex(c byte) bool {
	_, ok := digit(c, 16)
	return ok
}

func digit(c byte, base uint64) (uint64, bool) {
	var d uint64
	switch {
	case c >= '0' && c <= '9':
		d = uint64(c - '0')
	case c >= 'a' && c <= 'f':
		d = uint64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		d = uint64(c-'A') + 10
	default:
		return 0, false
	}
	return d, d < base
}

// cStrtod parses the longest prefix of s that strtod would read as a
// decimal or hexadecimal number, infinity or NaN. ok is false when nothing
// was read or the value overflows or underflows (ERANGE).
func cStrtod(s string) (float64, int, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if f, n, ok := cStrtodHex(s, i); ok {
		return f, n, true
	}
	lower := strings.ToLower(s[i:])
	for _, word := range []string{"infinity", "inf", "nan"} {
		if strings.HasPrefix(lower, word) {
			f, _ := strconv.ParseFloat(s[:i+len(word)], 64)
			return f, i + len(word), true
		}
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return 0, 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			i = j
		}
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, 0, false // overflow: C sets ERANGE
	}
	if f == 0 && strings.Trim(strings.SplitN(strings.ToLower(s[:i]), "e", 2)[0], "+-0.") != "" {
		return 0, 0, false // underflow to zero: ERANGE as well
	}
	return f, i, true
}

// checkLogPath keeps the server log out of the data directory's own files,
// even with FORCE: PostgreSQL writes its log, with text a client can choose
// (a user name, a statement), to log_directory/log_filename, and pointing
// that at pg_hba.conf or postgresql.auto.conf lets a client write rules or
// settings — a trust line — or leaves a node that cannot start.
func checkLogPath(key, v string) error {
	val := strings.Trim(strings.TrimSpace(v), "'")
	switch key {
	case "log_filename":
		if strings.Contains(val, "/") || val == "." || val == ".." || val == "" ||
			strings.HasSuffix(val, ".conf") || strings.HasSuffix(val, ".signal") || strings.HasPrefix(val, "PG_") ||
			strings.HasPrefix(val, "postmaster.") {
			return pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "log_filename": "%s"`, v).
				WithDetail("log_filename must be a plain file name (a strftime pattern such as postgresql-%%Y-%%m-%%d.log), not a path or a name of the node's own files.")
		}
	case "log_directory":
		rel := !strings.HasPrefix(val, "/")
		parts := strings.Split(val, "/")
		bad := val == "" || (rel && (parts[0] == "." || parts[0] == "base" || parts[0] == "global" || strings.HasPrefix(parts[0], "pg_")))
		for _, p := range parts {
			bad = bad || p == ".."
		}
		if bad {
			return pgerror.New(pgerror.InvalidParameterValue, `invalid value for parameter "log_directory": "%s"`, v).
				WithDetail("The log directory must not be the data directory itself or one of PostgreSQL's own directories in it (base, global, pg_*), nor contain \"..\".")
		}
	}
	return nil
}
