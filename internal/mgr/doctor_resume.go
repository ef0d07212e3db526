package mgr

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/adbmgr/adbmgr/internal/doctor"
	"github.com/adbmgr/adbmgr/internal/switches"
)

// The doctor's own actions cut short by the manager's end (kill -9, a
// crash: their journal entries interrupted) are finished when the doctor
// runs again, before its first round: on restart the catalog matches the
// nodes' real roles, and the journal says what was interrupted and what
// was finished.

// resumeLoop runs resume until it succeeds (a DBA's command holding the
// cluster lock makes it wait), every interval; false when ctx ended first.
func (d doctorHands) resumeLoop(ctx context.Context, interval time.Duration) bool {
	for {
		err := d.resume(ctx)
		if err == nil {
			return true
		}
		d.m.log.Warn("doctor: cannot finish the actions the manager's end interrupted yet; trying again", "error", err)
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// resume finishes each interrupted DOCTOR entry (resumeOne) and closes it:
// done or failed, its detail saying at which step it was interrupted and
// what was finished. It fails only when it must be tried again: the
// journal cannot be read, or the cluster lock is held.
func (d doctorHands) resume(ctx context.Context) error {
	res, err := d.m.cat.Query(ctx, `SELECT id, command, step FROM journal WHERE status = 'interrupted' AND command LIKE 'DOCTOR %' ORDER BY id`)
	if err != nil {
		return err
	}
	for _, row := range res.Rows {
		if len(row) != 3 || row[0] == nil || row[1] == nil || row[2] == nil {
			continue
		}
		id, err := strconv.ParseInt(*row[0], 10, 64)
		f := strings.Fields(*row[1])
		if err != nil || len(f) != 3 {
			continue
		}
		unlock, err := d.lock(ctx, "resume", "")
		if err != nil {
			return err
		}
		d.m.log.Warn("doctor: finishing an action the manager's end interrupted", "action", *row[1], "step", *row[2])
		detail, err := d.resumeOne(ctx, doctor.ActionKind(strings.ToLower(f[1])), f[2])
		unlock()
		status := "done"
		if err != nil {
			status, detail = "failed", err.Error()
		}
		j := &switches.Journal{ID: id, Command: *row[1]}
		at := ""
		if *row[2] != "start" {
			at = fmt.Sprintf(" at step %q", *row[2])
		}
		detail = fmt.Sprintf("interrupted%s by the manager's end; finished after the restart: %s", at, detail)
		if err := (switchCatalog{d.m}).Commit(ctx, j, switches.Step{Status: status, Name: "end", Detail: detail}, nil); err != nil {
			return err
		}
	}
	return nil
}

// resumeOne finishes the interrupted action act on node, under the cluster
// lock: a failover is finished or found not to have switched
// (switches.ResumeFailover); after a rewind, an isolation or a rejoin the
// refresh that follows their catalog step — the master's sync names, the
// coordinators' node lists — is done again (a rewind that did not reach
// its catalog step is done again by the doctor: the node still waits).
// Other actions write their journal entry only when they end.
func (d doctorHands) resumeOne(ctx context.Context, act doctor.ActionKind, node string) (string, error) {
	s, err := d.m.state(ctx)
	if err != nil {
		return "", err
	}
	n, ok := s.Node(node)
	switch {
	case !ok:
		return "the node no longer exists", nil
	case act == doctor.Failover:
		res, err := d.m.switches().ResumeFailover(ctx, d.failover(n), logProgress{d.m.log})
		if err != nil {
			return "", err
		}
		return res.Description + " (" + res.Node + ")", nil
	case act == doctor.Rewind, act == doctor.Isolate, act == doctor.Rejoin:
		if err := d.refresh(ctx, node); err != nil {
			return "", err
		}
		if doctor.Waiting(n.CureStatus) && act == doctor.Rewind {
			return "it still waits; the doctor rewinds it again", nil
		}
		return "its master's sync names and the coordinators written again", nil
	}
	return "nothing to finish", nil
}
