package pgwire

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
)

// Authentication methods, named as in pg_hba.conf.
const (
	AuthTrust  = "trust"
	AuthPeer   = "peer"
	AuthSCRAM  = "scram-sha-256"
	AuthReject = "reject"
)

// HBARule is one line of the manager's client authentication file
// (DIR/mgr_hba.conf), a subset of PostgreSQL's pg_hba.conf: the first rule
// whose connection type, database, user and address match a connection
// decides how it authenticates, and a connection no rule matches is refused.
//
//	local    DATABASE USER         METHOD   (peer, trust, reject)
//	host     DATABASE USER ADDRESS METHOD   (scram-sha-256, trust, reject)
//	hostssl  …  (TLS connections only)   hostnossl  … (plaintext only)
//
// DATABASE and USER are "all" or a comma-separated list of names; ADDRESS is
// "all" or a CIDR (or an address alone, meaning /32 or /128).
type HBARule struct {
	Type      string   // local, host, hostssl, hostnossl
	Databases []string // nil: all
	Users     []string // nil: all
	Net       *net.IPNet
	Method    string
	Line      int
}

// ParseHBA reads a client authentication file. Errors name the line.
func ParseHBA(data []byte) ([]HBARule, error) {
	var rules []HBARule
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		r, err := parseHBALine(f)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		r.Line = n
		rules = append(rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return rules, nil
}

func parseHBALine(f []string) (HBARule, error) {
	r := HBARule{Type: f[0]}
	want := 5
	switch r.Type {
	case "local":
		want = 4
	case "host", "hostssl", "hostnossl":
	default:
		return r, fmt.Errorf("invalid connection type %q (local, host, hostssl, hostnossl)", r.Type)
	}
	if len(f) != want {
		return r, fmt.Errorf("%s rule needs %d fields, has %d", r.Type, want, len(f))
	}
	r.Databases = hbaNames(f[1])
	r.Users = hbaNames(f[2])
	if want == 5 && f[3] != "all" {
		addr := f[3]
		if !strings.Contains(addr, "/") {
			if ip := net.ParseIP(addr); ip != nil && ip.To4() != nil {
				addr += "/32"
			} else {
				addr += "/128"
			}
		}
		_, ipnet, err := net.ParseCIDR(addr)
		if err != nil {
			return r, fmt.Errorf("invalid address %q: give a CIDR such as 127.0.0.1/32, or all", f[3])
		}
		r.Net = ipnet
	}
	r.Method = f[want-1]
	switch r.Method {
	case AuthTrust, AuthReject:
	case AuthPeer:
		if r.Type != "local" {
			return r, fmt.Errorf("peer authentication is only supported on local sockets")
		}
	case AuthSCRAM:
		if r.Type == "local" {
			// PostgreSQL allows it; we do too.
			break
		}
	default:
		return r, fmt.Errorf("invalid authentication method %q (trust, peer, scram-sha-256, reject)", r.Method)
	}
	return r, nil
}

func hbaNames(s string) []string {
	if s == "all" {
		return nil
	}
	return strings.Split(s, ",")
}

// matches reports whether r applies to a connection.
func (r HBARule) matches(local, tls bool, ip net.IP, user, db string) bool {
	switch r.Type {
	case "local":
		if !local {
			return false
		}
	case "host":
		if local {
			return false
		}
	case "hostssl":
		if local || !tls {
			return false
		}
	case "hostnossl":
		if local || tls {
			return false
		}
	}
	if !local && r.Net != nil && (ip == nil || !r.Net.Contains(ip)) {
		return false
	}
	return hbaListed(r.Users, user) && hbaListed(r.Databases, db)
}

func hbaListed(names []string, s string) bool {
	if names == nil {
		return true
	}
	for _, n := range names {
		if n == s {
			return true
		}
	}
	return false
}

// DefaultHBA is the file `adbmgr init` writes for its --auth-local and
// --auth-host choices: local socket connections with localMethod, TCP from
// loopback addresses with hostMethod. Other addresses match no rule until a
// DBA adds one (hostssl … scram-sha-256 is the advice).
func DefaultHBA(localMethod, hostMethod string) string {
	return fmt.Sprintf(`# adbmgr client authentication: the first matching line decides.
# TYPE     DATABASE  USER  ADDRESS        METHOD
local      all       all                  %s
host       all       all   127.0.0.1/32   %s
host       all       all   ::1/128        %s
# To let other machines in, over TLS, with a password:
# hostssl  all       all   10.0.0.0/8     scram-sha-256
`, localMethod, hostMethod, hostMethod)
}

// TrustRules lists the rules that let clients in without a password: all of
// them, or (remoteOnly) those that could match a TCP client on a non-loopback
// address.
func TrustRules(rules []HBARule, remoteOnly bool) []HBARule {
	var out []HBARule
	for _, r := range rules {
		if r.Method != AuthTrust {
			continue
		}
		if remoteOnly {
			if r.Type == "local" {
				continue
			}
			if r.Net != nil {
				if ones, _ := r.Net.Mask.Size(); r.Net.IP.IsLoopback() && ones >= 8 {
					continue
				}
			}
		}
		out = append(out, r)
	}
	return out
}
