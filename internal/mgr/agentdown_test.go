package mgr

import (
	"net"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// agentDown says "not running" for a host that refuses the agent's port.
// A host that does not answer at all ("unreachable") is tested end to end
// (TestClusterOnSSHHosts cuts a namespace host's link): no address is
// reliably silent from every test machine.
func TestAgentDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: refused
	if got := agentDown(cluster.Host{Name: "h1", Address: "127.0.0.1", AgentPort: port}); got != "not running" {
		t.Errorf("refused port: %q, want not running", got)
	}
}
