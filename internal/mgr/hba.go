package mgr

import (
	"fmt"
	"net"
	"strings"

	"github.com/adbmgr/adbmgr/api/agentpb"
)

// parseHBALine reads an ADD HBA line: "type database user address method",
// where address is a CIDR, or an IP and a netmask as two fields (AntDB's
// "host db user ip mask method"); "local database user method" has none.
func parseHBALine(line string) (*agentpb.HBALine, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil, fmt.Errorf("empty pg_hba.conf line")
	}
	typ := strings.ToLower(f[0])
	switch typ {
	case "local":
		if len(f) != 4 {
			return nil, fmt.Errorf(`a "local" line is "local database user method"`)
		}
		return &agentpb.HBALine{Type: typ, Database: f[1], User: f[2], Method: f[3]}, nil
	case "host", "hostssl", "hostnossl":
	default:
		return nil, fmt.Errorf(`unknown connection type %q: use local, host, hostssl or hostnossl`, f[0])
	}
	switch len(f) {
	case 5:
		if _, _, err := net.ParseCIDR(f[3]); err != nil {
			return nil, fmt.Errorf("invalid address %q: give a CIDR such as 10.0.0.0/8", f[3])
		}
		return &agentpb.HBALine{Type: typ, Database: f[1], User: f[2], Address: f[3], Method: f[4]}, nil
	case 6:
		ip, mask := net.ParseIP(f[3]), net.ParseIP(f[4])
		if ip == nil || mask == nil {
			return nil, fmt.Errorf("invalid address %q and mask %q", f[3], f[4])
		}
		m := net.IPMask(mask.To4())
		if ip.To4() == nil {
			m = net.IPMask(mask.To16())
		}
		ones, bits := m.Size()
		if bits == 0 {
			return nil, fmt.Errorf("invalid netmask %q", f[4])
		}
		cidr := (&net.IPNet{IP: ip.Mask(m), Mask: net.CIDRMask(ones, bits)}).String()
		return &agentpb.HBALine{Type: typ, Database: f[1], User: f[2], Address: cidr, Method: f[5]}, nil
	}
	return nil, fmt.Errorf(`a "%s" line is "%s database user address method"`, typ, typ)
}
