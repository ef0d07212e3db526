package mgr

import (
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// options indexes a statement's option list by name, refusing unknown and
// repeated names, and remembers where each was written so that a refusal
// caused by an option points at it.
type options struct {
	q     string
	byKey map[string]parser.Option
}

// maxPath is PostgreSQL's MAXPGPATH less room for the file names inside.
const maxPath = 1000

func parseOptions(q string, list []parser.Option, valid []string, what string) (*options, error) {
	o := &options{q: q, byKey: map[string]parser.Option{}}
	for _, opt := range list {
		name := opt.Name.Name
		if !contains(valid, name) {
			return nil, pgerror.New(pgerror.SyntaxError, `option "%s" is not recognized`, name).
				WithHint("%s options are %s.", what, strings.Join(valid, ", ")).At(q, opt.Name.Pos)
		}
		if _, dup := o.byKey[name]; dup {
			return nil, pgerror.New(pgerror.SyntaxError, `conflicting or redundant options: "%s" is given twice`, name).At(q, opt.Name.Pos)
		}
		if opt.Kind == parser.ValueNone {
			return nil, pgerror.New(pgerror.SyntaxError, `option "%s" needs a value`, name).At(q, opt.Name.Pos)
		}
		o.byKey[name] = opt
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// pos returns where option name was written (its value), or -1.
func (o *options) pos(name string) int {
	if opt, ok := o.byKey[name]; ok {
		return opt.ValuePos
	}
	return -1
}

func (o *options) invalid(opt parser.Option, hint string) error {
	return pgerror.New(pgerror.InvalidParameterValue, `invalid value for option "%s": "%s"`, opt.Name.Name, opt.Value).
		WithHint("%s", hint).At(o.q, opt.ValuePos)
}

func (o *options) str(name string, check func(string) string) (*string, error) {
	opt, ok := o.byKey[name]
	if !ok {
		return nil, nil
	}
	v := opt.Value
	if check != nil {
		if hint := check(v); hint != "" {
			return nil, o.invalid(opt, hint)
		}
	}
	return &v, nil
}

func (o *options) port(name string) (*int, error) {
	opt, ok := o.byKey[name]
	if !ok {
		return nil, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(opt.Value))
	if err != nil || n < 1 || n > 65535 {
		return nil, o.invalid(opt, "A port is an integer between 1 and 65535.")
	}
	return &n, nil
}

func (o *options) boolean(name string) (*bool, error) {
	opt, ok := o.byKey[name]
	if !ok {
		return nil, nil
	}
	var b bool
	switch strings.ToLower(opt.Value) {
	case "t", "true", "on", "yes", "y", "1":
		b = true
	case "f", "false", "off", "no", "n", "0":
	default:
		return nil, o.invalid(opt, "Use true or false.")
	}
	return &b, nil
}

// syncState reads SYNC_STATE or its alias SYNC: on/t/true mean sync,
// off/f/false mean async (the spec's forms), or a state by name.
func (o *options) syncState() (*string, error) {
	name := "sync_state"
	opt, ok := o.byKey[name]
	if alias, ok2 := o.byKey["sync"]; ok2 {
		if ok {
			return nil, pgerror.New(pgerror.SyntaxError, `conflicting or redundant options: "sync" is an alias of "sync_state"`).At(o.q, alias.Name.Pos)
		}
		opt, ok, name = alias, true, "sync"
	}
	if !ok {
		return nil, nil
	}
	var s string
	switch strings.ToLower(opt.Value) {
	case "on", "t", "true", "sync":
		s = cluster.Sync
	case "off", "f", "false", "async":
		s = cluster.Async
	case "potential":
		s = cluster.Potential
	default:
		return nil, o.invalid(opt, "Use sync, potential or async (on, t, true mean sync; off, f, false mean async).")
	}
	if name == "sync" {
		o.byKey["sync_state"] = opt
	}
	return &s, nil
}

// fieldPos returns the position a rule error about field should point at.
func (o *options) fieldPos(err error, def int) int {
	if f := cluster.ErrorField(err); f != "" {
		if p := o.pos(f); p >= 0 {
			return p
		}
	}
	return def
}

func absPath(v string) string {
	switch {
	case !strings.HasPrefix(v, "/"):
		return "The path must be absolute."
	case len(v) > maxPath:
		return "The path is too long."
	case strings.ContainsRune(v, 0) || strings.ContainsAny(v, "\n\r"):
		return "The path contains a control character."
	case path.Clean(v) == "/":
		return "The root directory cannot be a data directory."
	}
	return ""
}

// homePath checks ADBHOME and PGHOME, which name installations whose
// programs the agent runs (as root, for the agent itself). The value is
// stored cleaned (homeClean), so a ".." is refused rather than resolved:
// "/opt/adb/../../tmp/evil" is not a way to write /tmp/evil that a DBA
// reading LIST HOST should have to decode.
func homePath(v string) string {
	switch {
	case !strings.HasPrefix(v, "/"):
		return "The path must be absolute."
	case len(v) > maxPath:
		return "The path is too long."
	case strings.ContainsFunc(v, unicode.IsControl):
		return "The path contains a control character."
	case slices.Contains(strings.Split(v, "/"), ".."):
		return `The path must not contain "..".`
	case path.Clean(v) == "/":
		return "The root directory cannot be an installation directory."
	}
	return ""
}

// homeClean stores a path that passed homePath in its clean form, without
// "//", "/./" or a trailing "/", as the agent requires.
func homeClean(v *string) *string {
	if v == nil {
		return nil
	}
	c := path.Clean(*v)
	return &c
}

func ipAddress(v string) string {
	ip := net.ParseIP(v)
	switch {
	case ip == nil:
		return "The address must be an IPv4 or IPv6 address literal."
	// Nodes listen on the host's address and the agent on address:agentport:
	// 0.0.0.0 or :: would expose them on every interface, and the other
	// hosts could not reach a host by it anyway.
	case ip.IsUnspecified():
		return "The address must be the host's own address, not an unspecified one (0.0.0.0 or ::, which mean every interface)."
	case ip.IsMulticast(), ip.Equal(net.IPv4bcast):
		return "The address must be a unicast address of the host, not a multicast or broadcast one."
	}
	return ""
}

func nonEmpty(v string) string {
	if strings.TrimSpace(v) == "" {
		return "The value must not be empty."
	}
	return ""
}

var (
	nodeNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
	zoneRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
)

// checkNodeName refuses names PostgreSQL would not take as a replication
// slot or application name, which every slave's name becomes at INIT.
func checkNodeName(q string, id parser.Ident) error {
	if !nodeNameRE.MatchString(id.Name) {
		return pgerror.New(pgerror.InvalidName, `invalid node name "%s"`, id.Name).
			WithHint("A node name is 1 to 63 lower-case letters, digits and underscores, not starting with a digit: it becomes a replication slot name.").
			At(q, id.Pos)
	}
	return nil
}

func checkHostName(q string, id parser.Ident) error {
	if !hostNameRE.MatchString(id.Name) {
		return pgerror.New(pgerror.InvalidName, `invalid host name "%s"`, id.Name).
			WithHint("A host name is 1 to 63 letters, digits, '_', '.' and '-'.").At(q, id.Pos)
	}
	return nil
}

func zoneName(v string) string {
	if !zoneRE.MatchString(v) {
		return "A zone name is 1 to 63 letters, digits, '_', '.' and '-'."
	}
	return ""
}
