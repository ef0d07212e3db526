package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoSSH: the agent never speaks SSH; only the manager links
// internal/deploy (Tailscale's deptest, in small).
func TestNoSSH(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"golang.org/x/crypto/ssh", "github.com/pkg/sftp", "github.com/adbmgr/adbmgr/internal/deploy"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("adbagent links %s", dep)
			}
		}
	}
}
