package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// systemPG is the PostgreSQL installation the tests' hosts use.
const systemPG = "/usr/lib/postgresql/15"

// pgWithoutNodeLib makes a PostgreSQL installation in dir that lacks
// adbmgr's node library: a copy of the system's bin (a copy, not links:
// PostgreSQL finds its $libdir beside the binary it resolves to) and a lib
// of links to the system's libraries but adb.so. Its share directory is
// the system's, where Debian's binaries look when their own path is not
// the one they were built for.
func pgWithoutNodeLib(t *testing.T, dir string) string {
	t.Helper()
	pg := filepath.Join(dir, "pg")
	for _, d := range []string{pg, pg + "/bin", pg + "/lib"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bins, err := os.ReadDir(systemPG + "/bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bins {
		b, err := os.ReadFile(filepath.Join(systemPG, "bin", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pg, "bin", e.Name()), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	libs, err := os.ReadDir(systemPG + "/lib")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range libs {
		if e.Name() == "adb.so" {
			continue
		}
		if err := os.Symlink(filepath.Join(systemPG, "lib", e.Name()), filepath.Join(pg, "lib", e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return pg
}

// TestNodeLibraryMissing: a host whose PostgreSQL lacks adb.so gets the
// agent's clear refusal, naming the host and the file, instead of a node
// that dies at start with "could not access file" in its log: in INIT
// ALL's row of the node's start, and as 58P01 with the install hint from
// APPEND. The node keeps what INIT did (initialised, not in the cluster,
// the other nodes unaffected); once the library is there INIT ALL starts
// it and the cluster uses it.
func TestNodeLibraryMissing(t *testing.T) {
	if _, err := os.Stat(systemPG + "/lib/adb.so"); err != nil {
		t.Fatalf("the system's adb.so is needed (make ext-install): %v", err)
	}
	// The nodes load adb.so from $libdir, not a developer's build.
	t.Setenv("ADBMGR_NODE_LIBDIR", "")
	c := newTestCluster(t, 1)
	pg := pgWithoutNodeLib(t, c.Dir)
	h := hostSpec{Name: "hp", Addr: "127.0.0.24"}
	h.AgentPort = freePortOn(t, h.Addr)
	c.Hosts = append(c.Hosts, h)
	c.M.MustExec(t, "ADD HOST hp (address='"+h.Addr+"', protocol=local, agentport="+strconv.Itoa(h.AgentPort)+", pghome='"+pg+"');")
	c.addNode(t, "gtmcoord master", "gc", "", "h1", "")
	c.addNode(t, "coordinator master", "cn1", "", "h1", "")
	c.addNode(t, "datanode master", "dn1", "", "h1", "")
	dn2 := c.addNode(t, "datanode master", "dn2", "", "hp", "")
	c.mustRows(t, time.Minute, "START AGENT ALL")

	lib := pg + "/lib/adb.so"
	refusal := `host "hp": node ` + dn2.Path + ` preloads the library "adb" (shared_preload_libraries), but ` + lib + ` does not exist`
	rows, notices := c.mustRows(t, 5*time.Minute, "INIT ALL")
	var failed []string
	for _, r := range failedRows(opRows(t, rows)) {
		failed = append(failed, r.Op+" "+r.Node)
		t.Logf("INIT ALL: %s %s: %s", r.Op, r.Node, r.Desc)
		const hint = "HINT: Install adbmgr's node library on that host: make ext-install, or the adbmgr package."
		if r.Node == "dn2" && (!strings.Contains(r.Desc, refusal) || !strings.HasSuffix(r.Desc, hint)) {
			t.Errorf("INIT ALL's row of dn2: want %q … %q, got %q", refusal, hint, r.Desc)
		}
	}
	if fmt.Sprint(failed) != "[start datanode master dn2]" {
		t.Fatalf("INIT ALL: want only dn2's start to fail, got %q\n%s", failed, notices)
	}
	if got := c.listNode(t); got["dn2"] != [4]string{"", "t", "f", ""} || got["dn1"] != [4]string{"", "t", "t", ""} {
		t.Errorf("LIST NODE after INIT ALL: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dn2.Path, "postmaster.pid")); err == nil {
		t.Error("dn2 was started")
	}
	if v := c.nodeValue(t, c.node("cn1"), "SELECT count(*) FROM pg_foreign_server WHERE srvname = 'dn2'"); v != "0" {
		t.Errorf("cn1 has a foreign server for dn2, which is not in the cluster")
	}

	// APPEND's error: the SQLSTATE and the hint.
	c.addNode(t, "datanode slave", "dn1s", "dn1", "hp", "")
	_, stderr, err := c.psqlRows(3*time.Minute, "APPEND DATANODE SLAVE dn1s")
	if err == nil {
		t.Fatal("APPEND DATANODE SLAVE dn1s on hp succeeded")
	}
	t.Logf("APPEND DATANODE SLAVE dn1s:\n%s\nleft dn1s (sync, initialized, incluster, master): %v", stderr, c.listNode(t)["dn1s"])
	// dn1 does not wait for the slave that did not start.
	if rows := c.mustNodeSQL(t, c.node("dn1"), "SHOW synchronous_standby_names"); len(rows) > 0 && rows[0][0] != "" {
		t.Errorf("dn1 waits for %q after the failed APPEND", rows[0][0])
	}
	wantRefused(t, "APPEND", stderr, "58P01", `host "hp": node `+c.node("dn1s").Path+` preloads the library "adb"`, lib,
		"HINT:  Install adbmgr's node library on that host: make ext-install, or the adbmgr package.")

	// Installed: INIT ALL starts dn2 and the cluster uses it.
	if err := os.Symlink(systemPG+"/lib/adb.so", lib); err != nil {
		t.Fatal(err)
	}
	rows, notices = c.mustRows(t, 5*time.Minute, "INIT ALL")
	if bad := failedRows(opRows(t, rows)); len(bad) > 0 {
		t.Fatalf("INIT ALL with the library: %q\n%s", bad, notices)
	}
	if v := c.nodeValue(t, dn2, "SHOW shared_preload_libraries"); v != "adb" {
		t.Errorf("dn2's shared_preload_libraries = %q", v)
	}
	cn1 := c.node("cn1")
	c.mustNodeSQL(t, cn1, "CREATE TABLE t (id int NOT NULL); SELECT adb.create_distributed_table('t', 'id'); INSERT INTO t SELECT generate_series(1, 100)")
	if v := c.nodeValue(t, cn1, "SELECT count(*) FROM t"); v != "100" {
		t.Errorf("count(*) through cn1 = %s", v)
	}
	t.Logf("after the second INIT ALL: shards of t on dn2: %s; dn1s: %v",
		c.nodeValue(t, dn2, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'"), c.listNode(t)["dn1s"])
}
