package catalog

import (
	"fmt"
	"time"

	"github.com/adbmgr/adbmgr/internal/cluster"
)

// The rows of commands that grow the cluster across statements (schema
// version 5): expansions (EXPAND DATANODE MASTER … until EXPAND CLEAN)
// and coordinator copies (APPEND COORDINATOR … FOR … until APPEND
// ACTIVATE).

func (t *tx) Expansions() ([]cluster.Expansion, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT dst, src, phase, slots, started, updated FROM mgr_expansion ORDER BY dst`)
	if err != nil {
		return nil, fmt.Errorf("read expansions: %w", err)
	}
	defer rows.Close()
	var out []cluster.Expansion
	for rows.Next() {
		var x cluster.Expansion
		var phase, slots string
		if err := rows.Scan(&x.Dst, &x.Src, &phase, &slots, &x.Started, &x.Updated); err != nil {
			return nil, err
		}
		x.Phase = cluster.ExpansionPhase(phase)
		if x.Slots, err = cluster.ParseSlots(slots); err != nil {
			return nil, fmt.Errorf("expansion of %s: slots %q: %w", x.Dst, slots, err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func (t *tx) CoordinatorCopies() ([]cluster.CoordinatorCopy, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT node, source, started FROM mgr_append ORDER BY node`)
	if err != nil {
		return nil, fmt.Errorf("read coordinator copies: %w", err)
	}
	defer rows.Close()
	var out []cluster.CoordinatorCopy
	for rows.Next() {
		var c cluster.CoordinatorCopy
		if err := rows.Scan(&c.Node, &c.Source, &c.Started); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// applyGrowth writes a plan's expansion and coordinator copy rows. An
// expansion keeps its start time when it moves to its next phase.
func (t *tx) applyGrowth(p cluster.Plan) error {
	now := time.Now().UTC().Format(time.RFC3339)
	for _, dst := range p.DeleteExpansions {
		if err := t.exec(`DELETE FROM mgr_expansion WHERE dst = ?`, dst); err != nil {
			return err
		}
	}
	for _, x := range p.PutExpansions {
		if err := t.exec(`INSERT INTO mgr_expansion (dst, src, phase, slots, started, updated) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (dst) DO UPDATE SET src = excluded.src, phase = excluded.phase, slots = excluded.slots, updated = excluded.updated,
				started = CASE WHEN mgr_expansion.src = excluded.src THEN mgr_expansion.started ELSE excluded.started END`,
			x.Dst, x.Src, string(x.Phase), cluster.SlotList(x.Slots), now, now); err != nil {
			return err
		}
	}
	for _, name := range p.DeleteCoordinatorCopies {
		if err := t.exec(`DELETE FROM mgr_append WHERE node = ?`, name); err != nil {
			return err
		}
	}
	for _, c := range p.PutCoordinatorCopies {
		if err := t.exec(`INSERT INTO mgr_append (node, source, started) VALUES (?, ?, ?)
			ON CONFLICT (node) DO UPDATE SET source = excluded.source, started = excluded.started`, c.Node, c.Source, now); err != nil {
			return err
		}
	}
	return nil
}
