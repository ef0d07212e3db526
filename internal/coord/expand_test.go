package coord

import (
	"strings"
	"testing"
)

func TestPartitionSlot(t *testing.T) {
	moving := map[int]bool{1: true, 3: true}
	tests := []struct {
		name string
		slot int
		ok   bool
	}{
		{"t_1", 1, true}, {"my_table_3", 3, true}, {"t_2", 0, false}, {"t", 0, false}, {"t_x", 0, false},
	}
	for _, tt := range tests {
		if k, ok := PartitionSlot(tt.name, moving); k != tt.slot || ok != tt.ok {
			t.Errorf("PartitionSlot(%q) = %d, %v", tt.name, k, ok)
		}
	}
}

func TestRepoint(t *testing.T) {
	got := Repoint("dn2", "10.0.0.3", 5433, "pg", []Partition{{Parent: "public.t", Name: "t_1", Schema: "public", Slot: 1}}, "1,3")
	for _, want := range []string{
		EnsureServer("dn2", "10.0.0.3", 5433, "pg"),
		`ALTER TABLE public.t DETACH PARTITION "public"."t_1";`,
		`DROP FOREIGN TABLE "public"."t_1";`,
		`CREATE FOREIGN TABLE "public"."t_1" PARTITION OF public.t FOR VALUES WITH (MODULUS 64, REMAINDER 1) SERVER "dn2" OPTIONS (schema_name 'public', table_name 't_1');`,
		"UPDATE adb.slot SET node = 'dn2' WHERE slot IN (1,3);",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Repoint lacks %q:\n%s", want, got)
		}
	}
}

func TestShards(t *testing.T) {
	s := Shard(Table{Schema: "public", Name: `o"t`}, 7)
	if s != `"public"."o""t_7"` {
		t.Errorf("Shard = %s", s)
	}
	if q := ShardExists(s); q != `SELECT to_regclass('"public"."o""t_7"') IS NOT NULL` {
		t.Errorf("ShardExists = %s", q)
	}
	if q := SlotsOf("dn'1"); !strings.Contains(q, "node = 'dn''1'") {
		t.Errorf("SlotsOf = %s", q)
	}
	if q := Partitions("dn1"); !strings.Contains(q, "s.srvname = 'dn1'") {
		t.Errorf("Partitions = %s", q)
	}
	if q := LockTable("public.t"); q != "LOCK TABLE public.t IN EXCLUSIVE MODE" {
		t.Errorf("LockTable = %s", q)
	}
}

func TestHoldGID(t *testing.T) {
	gid := HoldGID(`d'n`)
	for got, want := range map[string]string{
		PrepareHold(gid):       `PREPARE TRANSACTION 'adbmgr_expand:d''n'`,
		FinishHold(gid, true):  `COMMIT PREPARED 'adbmgr_expand:d''n'`,
		FinishHold(gid, false): `ROLLBACK PREPARED 'adbmgr_expand:d''n'`,
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if q := HoldPrepared(gid); !strings.Contains(q, `gid = 'adbmgr_expand:d''n'`) {
		t.Errorf("HoldPrepared = %s", q)
	}
}
