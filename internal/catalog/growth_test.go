package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// createAt makes a catalog of schema version v in dir, as an older adbmgr
// left it, and runs fill on it.
func createAt(t *testing.T, dir string, v int, fill func(db *sql.DB)) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, m := range migrations[:v] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		t.Fatal(err)
	}
	fill(db)
}

func state(t *testing.T, c *SQLite) (exps []cluster.Expansion, copies []cluster.CoordinatorCopy, settings map[string]string) {
	t.Helper()
	ctx := context.Background()
	if err := c.View(ctx, func(tx ReadTx) (err error) {
		if exps, err = tx.Expansions(); err != nil {
			return err
		}
		copies, err = tx.CoordinatorCopies()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	settings, err := c.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return exps, copies, settings
}

var ignoreTimes = cmpopts.IgnoreFields(cluster.Expansion{}, "Started", "Updated")

// A manager upgraded in the middle of an expansion or a coordinator copy
// keeps it: version 4's mgr_setting keys become rows of the typed tables.
func TestMigrateGrowthSettings(t *testing.T) {
	dir := t.TempDir()
	createAt(t, dir, 4, func(db *sql.DB) {
		for _, q := range []string{
			`INSERT INTO mgr_host (name, user, port, protocol, agentport, address, adbhome, pghome) VALUES ('h1', 'pg', 22, 'local', 5430, '127.0.0.2', '/opt', '/usr')`,
			`INSERT INTO mgr_node (name, host, type, port, path) VALUES ('dn1', 'h1', 'datanode master', 1, '/d1'), ('dn2', 'h1', 'datanode master', 2, '/d2'),
				('dn3', 'h1', 'datanode master', 3, '/d3'), ('dn4', 'h1', 'datanode master', 4, '/d4'), ('dn5', 'h1', 'datanode master', 5, '/d5'),
				('cn1', 'h1', 'coordinator master', 6, '/c1'), ('cn2', 'h1', 'coordinator master', 7, '/c2')`,
			`INSERT INTO mgr_setting (key, value) VALUES
				('expand.pending.dn3', 'dn1'),
				('expand.clean.dn4', 'dn2:1,3,5'),
				('expand.pending.dn5', 'dn2'), ('expand.clean.dn5', 'dn2:7,9'),
				('expand.pending.gone', 'dn1'),
				('expand.clean.dn1', 'gone:2'),
				('append.coordinator.cn2', 'cn1'),
				('append.coordinator.cn9', 'cn1'),
				('doctor.enable', 'on')`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	})
	c, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exps, copies, settings := state(t, c)
	want := []cluster.Expansion{
		{Dst: "dn3", Src: "dn1", Phase: cluster.ExpansionCopied},
		{Dst: "dn4", Src: "dn2", Phase: cluster.ExpansionActivated, Slots: []int{1, 3, 5}},
		// Killed between ACTIVATE's two writes: the later phase wins.
		{Dst: "dn5", Src: "dn2", Phase: cluster.ExpansionActivated, Slots: []int{7, 9}},
	}
	if diff := cmp.Diff(want, exps, ignoreTimes); diff != "" {
		t.Errorf("expansions (-want +got):\n%s", diff)
	}
	for _, x := range exps {
		if x.Started == "" || x.Updated == "" {
			t.Errorf("expansion of %s without times: %+v", x.Dst, x)
		}
	}
	if diff := cmp.Diff([]cluster.CoordinatorCopy{{Node: "cn2", Source: "cn1"}}, copies, cmpopts.IgnoreFields(cluster.CoordinatorCopy{}, "Started")); diff != "" {
		t.Errorf("coordinator copies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"doctor.enable": "on"}, settings); diff != "" {
		t.Errorf("settings left (-want +got):\n%s", diff)
	}
}

// The rows go through plans like every other row; a dropped node takes its
// expansions and copies with it.
func TestGrowthRows(t *testing.T) {
	c := open(t)
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"dn1", "dn2", "dn3", "cn1", "cn2"} {
		n := node(name, "h1", 5432+i, "/d/"+name)
		if name[0] == 'c' {
			n.Type = cluster.CoordinatorMaster
		}
		if err := apply(t, c, cluster.Plan{InsertNode: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(t, c, cluster.Plan{
		PutExpansions:        []cluster.Expansion{{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionCopied}, {Dst: "dn3", Src: "dn1", Phase: cluster.ExpansionCopied}},
		PutCoordinatorCopies: []cluster.CoordinatorCopy{{Node: "cn2", Source: "cn1"}},
	}); err != nil {
		t.Fatal(err)
	}
	before, _, _ := state(t, c)
	if err := apply(t, c, cluster.Plan{PutExpansions: []cluster.Expansion{{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated, Slots: []int{1, 3}}}}); err != nil {
		t.Fatal(err)
	}
	exps, copies, _ := state(t, c)
	want := []cluster.Expansion{
		{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated, Slots: []int{1, 3}},
		{Dst: "dn3", Src: "dn1", Phase: cluster.ExpansionCopied},
	}
	if diff := cmp.Diff(want, exps, ignoreTimes); diff != "" {
		t.Errorf("expansions (-want +got):\n%s", diff)
	}
	if exps[0].Started != before[0].Started {
		t.Errorf("activation changed the start time: %s, was %s", exps[0].Started, before[0].Started)
	}
	if len(copies) != 1 {
		t.Errorf("copies = %+v", copies)
	}

	for name, p := range map[string]cluster.Plan{
		"unknown node":          {PutExpansions: []cluster.Expansion{{Dst: "nope", Src: "dn1", Phase: cluster.ExpansionCopied}}},
		"src is dst":            {PutExpansions: []cluster.Expansion{{Dst: "dn1", Src: "dn1", Phase: cluster.ExpansionCopied}}},
		"unknown phase":         {PutExpansions: []cluster.Expansion{{Dst: "dn3", Src: "dn1", Phase: "moving"}}},
		"slots before ACTIVATE": {PutExpansions: []cluster.Expansion{{Dst: "dn3", Src: "dn1", Phase: cluster.ExpansionCopied, Slots: []int{1}}}},
		"unknown source":        {PutCoordinatorCopies: []cluster.CoordinatorCopy{{Node: "cn2", Source: "nope"}}},
	} {
		if err := apply(t, c, p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if _, ok := pgerror.As(err); !ok {
			t.Errorf("%s: error %v is not a user-facing error", name, err)
		}
	}

	if err := apply(t, c, cluster.Plan{DeleteNodes: []string{"dn3", "cn2"}}); err != nil {
		t.Fatal(err)
	}
	exps, copies, _ = state(t, c)
	if len(exps) != 1 || exps[0].Dst != "dn2" || len(copies) != 0 {
		t.Errorf("after DROP of dn3 and cn2: expansions %+v, copies %+v", exps, copies)
	}
	if err := apply(t, c, cluster.Plan{DeleteExpansions: []string{"dn2"}}); err != nil {
		t.Fatal(err)
	}
	if exps, _, _ = state(t, c); len(exps) != 0 {
		t.Errorf("after delete: %+v", exps)
	}
}

// A state change and its journal entry commit together, or not at all.
func TestJournalInTransaction(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	id, err := c.Journal(ctx, 0, "EXPAND ACTIVATE", "running", "start", "")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = c.Update(ctx, func(tx Tx) error {
		if _, err := tx.Journal(id, "EXPAND ACTIVATE", "done", "end", "rolled back"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	r, err := c.Query(ctx, "SELECT status, step FROM journal")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(*r.Rows[0][0], " ", *r.Rows[0][1]); got != "running start" {
		t.Errorf("journal after a rolled-back change: %s", got)
	}
	if err := c.Update(ctx, func(tx Tx) error {
		_, err := tx.Journal(id, "EXPAND ACTIVATE", "done", "end", "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r, err = c.Query(ctx, "SELECT status FROM journal"); err != nil || *r.Rows[0][0] != "done" {
		t.Errorf("journal after a committed change: %v %v", r, err)
	}
}

// Users read expansions through their view, never the table.
func TestExpansionView(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	if err := apply(t, c, cluster.Plan{InsertHost: host("h1", "127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"dn1", "dn2"} {
		if err := apply(t, c, cluster.Plan{InsertNode: node(name, "h1", 5432+i, "/d/"+name)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(t, c, cluster.Plan{PutExpansions: []cluster.Expansion{{Dst: "dn2", Src: "dn1", Phase: cluster.ExpansionActivated, Slots: []int{1, 3}}}}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Query(ctx, "SELECT src, dst, phase, slots FROM expansion")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 1 || fmt.Sprint(*r.Rows[0][0], *r.Rows[0][1], *r.Rows[0][2], *r.Rows[0][3]) != "dn1dn2activated1,3" {
		t.Errorf("expansion view: %v", r.Rows)
	}
	for _, q := range []string{"SELECT * FROM mgr_expansion", "SELECT * FROM mgr_append"} {
		_, err := c.Query(ctx, q)
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.InsufficientPrivilege {
			t.Errorf("%s: %v, want 42501", q, err)
		}
	}
}
