// Package version holds the build's version, shared by adbmgr and
// adbagent so that the manager can tell an agent of another build (MONITOR
// AGENT) from its own.
package version

// Version is set at build time for both binaries:
//
//	-ldflags "-X github.com/adbmgr/adbmgr/internal/version.Version=…"
var Version = "0.1.0-dev"
