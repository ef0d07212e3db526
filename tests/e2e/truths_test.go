package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSmallTruths: what the manager says matches what is: LIST HOST shows
// an SSH port only for SSH hosts; DROP of an initialized gtmcoord or
// datanode master does not send the DBA to REMOVE, which refuses those
// masters; CLEAN ZONE's refusal names CLEAN ZONE; a typo after FAILOVER …
// TO is a plain error at the name, with no switching WARNING, and nothing
// is switched.
func TestSmallTruths(t *testing.T) {
	c := newTestCluster(t, 2)
	c.M.MustExec(t, "ADD HOST hs (protocol=ssh, address='127.0.0.9', port=2222);")
	rows, _ := c.mustRows(t, time.Minute, "LIST HOST (name, port, protocol)")
	ports := map[string]string{}
	for _, r := range rows {
		ports[r[0]] = r[1]
	}
	if ports["h1"] != "" || ports["h2"] != "" || ports["hs"] != "2222" {
		t.Errorf("LIST HOST ports %q: want none for the local hosts, 2222 for hs", ports)
	}
	c.M.MustExec(t, "DROP HOST hs;")

	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h2", "")
	c.addNode(t, "datanode slave", "dn1s", "dn1", "h1", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")
	c.mustRows(t, 5*time.Minute, "INIT ALL")

	for _, tc := range []struct{ sql, want, not string }{
		{"DROP DATANODE MASTER dn1", "CLEAN ALL", "REMOVE"},
		{"DROP GTMCOORD MASTER gc", "CLEAN ALL", "REMOVE"},
		{"DROP DATANODE SLAVE dn1s", "REMOVE it from the cluster", ""},
		{"CLEAN ZONE local", "please stop it before clean zone", "clean all"},
		{"FAILOVER DATANODE dn1 TO dn1z", `42704: node "dn1z" does not exist`, "WARNING"},
		{"FAILOVER DATANODE dn1 TO gc FORCE", `"gc" is not a slave of dn1`, "WARNING"},
	} {
		_, stderr, err := c.psqlRows(time.Minute, tc.sql)
		if err == nil || !strings.Contains(stderr, tc.want) || tc.not != "" && strings.Contains(stderr, tc.not) {
			t.Errorf("%s: %v, want an error with %q and without %q:\n%s", tc.sql, err, tc.want, tc.not, stderr)
		}
		if strings.HasPrefix(tc.sql, "FAILOVER") && !strings.Contains(stderr, "dn1s") {
			t.Errorf("%s: the hint does not name dn1s:\n%s", tc.sql, stderr)
		}
	}
	// Nothing was switched: dn1 is still the master.
	if rows, _ := c.mustRows(t, time.Minute, "LIST NODE (name, type)"); !slices.ContainsFunc(rows, func(r []string) bool { return slices.Equal(r, []string{"dn1", "datanode master"}) }) {
		t.Errorf("dn1 after the refused FAILOVERs: %q", rows)
	}
}
