// Package deploy is the manager's side of hosts with protocol ssh: the
// manager's own SSH key, the known host keys (recorded on first contact,
// refused when they change), SSH sessions with timeouts, SFTP uploads that
// are verified and atomic, and the shell quoting for the few commands the
// manager runs there. Only adbmgr links it: the agent never speaks SSH.
package deploy
