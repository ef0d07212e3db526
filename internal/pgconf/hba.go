package pgconf

import (
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Separator is the line AntDB keeps in pg_hba.conf: rules the manager
// generates go above it, rules users add with ADD HBA go below it (at the
// end). pg_hba.conf is matched first rule first, so this order lets the
// manager's replication and node-to-node rules win over users' rules.
const Separator = "#DONOT REMOVE THIS LINE"

// maxFieldLen bounds a database or user field; PostgreSQL names are at most
// 63 bytes, a comma list of them a little more.
const maxFieldLen = 1024

// Rule is one pg_hba.conf rule without options: the only shape the agent
// writes.
type Rule struct {
	Type     string // local, host, hostssl, hostnossl
	Database string
	User     string
	Address  string // a CIDR; empty for local
	Method   string
}

// Methods are the authentication methods a Rule may use. The others need
// options (ldap, radius, pam, …) that a Rule cannot carry.
var Methods = []string{"trust", "reject", "md5", "scram-sha-256", "password", "peer", "ident", "cert"}

// Validate checks that r can be written as one line that PostgreSQL reads
// back as exactly this rule and that does not stop the server from loading
// pg_hba.conf: an invalid line makes a reload ignore the whole file and a
// restart fail, so a bad request must never reach the file.
func (r Rule) Validate() error {
	switch r.Type {
	case "local":
		if r.Address != "" {
			return fmt.Errorf("%w: a local rule has no address (got %q)", ErrInvalid, r.Address)
		}
	case "host", "hostssl", "hostnossl":
		if _, _, err := net.ParseCIDR(r.Address); err != nil {
			return fmt.Errorf("%w: address %q is not a CIDR (like 10.0.0.1/32)", ErrInvalid, r.Address)
		}
	default:
		return fmt.Errorf("%w: connection type %q is not local, host, hostssl or hostnossl", ErrInvalid, r.Type)
	}
	if err := validateNames("database", r.Database); err != nil {
		return err
	}
	if err := validateNames("user", r.User); err != nil {
		return err
	}
	known := false
	for _, m := range Methods {
		known = known || r.Method == m
	}
	if !known {
		return fmt.Errorf("%w: authentication method %q is not one of %s", ErrInvalid, r.Method, strings.Join(Methods, ", "))
	}
	// PostgreSQL refuses these combinations when it loads the file.
	if r.Method == "peer" && r.Type != "local" {
		return fmt.Errorf("%w: peer authentication is only supported on local sockets", ErrInvalid)
	}
	if r.Method == "cert" && r.Type != "hostssl" {
		return fmt.Errorf("%w: cert authentication is only supported on hostssl connections", ErrInvalid)
	}
	return nil
}

// validateNames checks a database or user field: one name or a comma list
// of names, none starting with @ (which makes PostgreSQL read a file), no
// whitespace, quotes, backslash, # or control characters (which would split
// the line, start a comment or change quoting).
func validateNames(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s field", ErrInvalid, what)
	}
	if len(s) > maxFieldLen {
		return fmt.Errorf("%w: %s field longer than %d bytes", ErrInvalid, what, maxFieldLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s field %q is not valid UTF-8", ErrInvalid, what, s)
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) || c == '"' || c == '\'' || c == '\\' || c == '#' || c == 0xFEFF {
			return fmt.Errorf("%w: %s field %q contains %q", ErrInvalid, what, s, c)
		}
	}
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			return fmt.Errorf("%w: %s field %q has an empty list item", ErrInvalid, what, s)
		}
		if item[0] == '@' {
			return fmt.Errorf("%w: %s field %q: @file inclusion is not allowed", ErrInvalid, what, s)
		}
	}
	return nil
}

// String renders r as a pg_hba.conf line, aligned like initdb's sample.
func (r Rule) String() string {
	return strings.TrimRight(fmt.Sprintf("%-9s %-15s %-15s %-23s %s", r.Type, r.Database, r.User, r.Address, r.Method), " ")
}

// hbaFields splits a pg_hba.conf line into its fields, the way PostgreSQL's
// tokenizer does for the cases that matter here: whitespace separates,
// double quotes protect (they are kept, so "all" stays distinct from the
// keyword all), # outside quotes starts a comment.
func hbaFields(line string) []string {
	var fields []string
	var cur strings.Builder
	inQuote, inField := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			inField = true
			cur.WriteByte(c)
		case inQuote:
			cur.WriteByte(c)
		case c == '#':
			i = len(line)
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			inField = true
			cur.WriteByte(c)
		}
	}
	if inField {
		fields = append(fields, cur.String())
	}
	return fields
}

// canonicalAddress maps "10.0.0.1/32" and "10.0.0.1 255.255.255.255" to
// one form, so a rule is recognised whichever way the file spells it; PostgreSQL
// masks the address with the prefix, so 10.0.0.1/24 and 10.0.0.0/24 are the
// same rule too.
func canonicalAddress(addr, mask string) string {
	if mask == "" {
		if _, n, err := net.ParseCIDR(addr); err == nil {
			return n.String()
		}
		return addr
	}
	ip, m := net.ParseIP(addr), net.ParseIP(mask)
	if ip == nil || m == nil {
		return addr + " " + mask
	}
	if ip4, m4 := ip.To4(), m.To4(); ip4 != nil && m4 != nil {
		ip, m = ip4, m4
	}
	if len(ip) != len(m) {
		return addr + " " + mask
	}
	mm := net.IPMask(m)
	if ones, bits := mm.Size(); ones == 0 && bits == 0 {
		return addr + " " + mask
	}
	return (&net.IPNet{IP: ip.Mask(mm), Mask: mm}).String()
}

// key identifies a rule for comparison; lines with options never equal a
// Rule.
func (r Rule) key() string {
	return r.Type + "\x00" + r.Database + "\x00" + r.User + "\x00" + canonicalAddress(r.Address, "") + "\x00" + r.Method
}

// lineKey returns the comparison key of a rule line, or "" when the line is
// not a rule a Rule could equal (comment, blank, options, other shapes).
func lineKey(line string) string {
	f := hbaFields(line)
	if len(f) < 4 {
		return ""
	}
	switch f[0] {
	case "local":
		if len(f) == 4 {
			return Rule{Type: f[0], Database: f[1], User: f[2], Method: f[3]}.key()
		}
	case "host", "hostssl", "hostnossl":
		switch len(f) {
		case 5:
			return f[0] + "\x00" + f[1] + "\x00" + f[2] + "\x00" + canonicalAddress(f[3], "") + "\x00" + f[4]
		case 6:
			return f[0] + "\x00" + f[1] + "\x00" + f[2] + "\x00" + canonicalAddress(f[3], f[4]) + "\x00" + f[5]
		}
	}
	return ""
}

// HBARules returns the rule lines of pg_hba.conf content, trimmed, without
// comments-only and blank lines.
func HBARules(content []byte) []string {
	var out []string
	for _, line := range splitLines(content) {
		if len(hbaFields(line)) > 0 {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// HBAEdit is a set of changes to pg_hba.conf.
type HBAEdit struct {
	// AddManaged rules go just above the Separator (at the end when it is
	// absent), each once.
	AddManaged []Rule
	// AddTail rules go at the end, each once.
	AddTail []Rule
	// Remove deletes every line equal to one of these. A rule that is also
	// added by the same edit is not removed: "delete then add" of an
	// unchanged rule (ALTER HBA to the same value) must be a no-op, or
	// replaying it would move the line every time.
	Remove []Rule
	// EnsureSeparator appends the Separator when it is missing.
	EnsureSeparator bool
}

// Validate checks every rule of e.
func (e HBAEdit) Validate() error {
	for _, list := range [][]Rule{e.AddManaged, e.AddTail, e.Remove} {
		for _, r := range list {
			if err := r.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// EditHBA applies e to pg_hba.conf content. Existing lines, comments and
// their order are kept; a rule is added only when no line equals it
// anywhere in the file (comparing fields, so spacing and the
// address-and-mask spelling do not matter). changed is false, and out
// equals content, when nothing had to change.
func EditHBA(content []byte, e HBAEdit) (out []byte, changed bool, err error) {
	if err := e.Validate(); err != nil {
		return nil, false, err
	}
	adding := map[string]bool{}
	for _, r := range e.AddManaged {
		adding[r.key()] = true
	}
	for _, r := range e.AddTail {
		adding[r.key()] = true
	}
	removing := map[string]bool{}
	for _, r := range e.Remove {
		if k := r.key(); !adding[k] {
			removing[k] = true
		}
	}

	lines := splitLines(content)
	kept := make([]string, 0, len(lines)+len(e.AddManaged)+len(e.AddTail)+1)
	present := map[string]bool{}
	sep := -1
	for _, line := range lines {
		k := lineKey(line)
		if k != "" && removing[k] {
			changed = true
			continue
		}
		if k != "" {
			present[k] = true
		}
		if sep < 0 && strings.TrimSpace(line) == Separator {
			sep = len(kept)
		}
		kept = append(kept, line)
	}

	var managed, tail []string
	for _, r := range e.AddManaged {
		if k := r.key(); !present[k] {
			present[k] = true
			managed = append(managed, r.String())
		}
	}
	for _, r := range e.AddTail {
		if k := r.key(); !present[k] {
			present[k] = true
			tail = append(tail, r.String())
		}
	}
	if len(managed) > 0 || len(tail) > 0 || (sep < 0 && e.EnsureSeparator) {
		changed = true
	}
	if !changed {
		return content, false, nil
	}

	var result []string
	if sep >= 0 {
		result = append(result, kept[:sep]...)
		result = append(result, managed...)
		result = append(result, kept[sep:]...)
	} else {
		result = append(result, kept...)
		result = append(result, managed...)
		if e.EnsureSeparator {
			result = append(result, Separator)
		}
	}
	result = append(result, tail...)
	return joinLines(result), true, nil
}

// EditHBAFile applies EditHBA to the file at path, which must exist (initdb
// writes it). It returns the rule lines after the edit.
func EditHBAFile(path string, e HBAEdit) (rules []string, changed bool, err error) {
	if err := e.Validate(); err != nil {
		return nil, false, err
	}
	var after []byte
	changed, err = editFile(path, false, nil, 0o600, NoOwner, func(b []byte) ([]byte, bool, error) {
		out, changed, err := EditHBA(b, e)
		after = out
		return out, changed, err
	})
	if err != nil {
		return nil, false, err
	}
	return HBARules(after), changed, nil
}

// ReadHBAFile returns the rule lines of the pg_hba.conf at path.
func ReadHBAFile(path string) ([]string, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return HBARules(b), nil
}
