package pgwire

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgproto3"
)

// notifyHandler is fakeHandler with "listen": from then on the session
// has one notification queued before each ReadyForQuery.
type notifyHandler struct{ fakeHandler }

func (h notifyHandler) Query(ctx context.Context, s *Session, q string, w ResultWriter) error {
	if q == "listen" {
		s.Notifications = func() []Notification { return []Notification{{PID: 7, Channel: "doctor", Payload: "{}"}} }
		return w.Complete("LISTEN")
	}
	return h.fakeHandler.Query(ctx, s, q, w)
}

// Notifications the Handler queued go out before ReadyForQuery, after a
// simple query and at an extended-protocol Sync, as PostgreSQL sends
// them at the end of a transaction.
func TestNotificationsBeforeReady(t *testing.T) {
	ts := startServer(t, notifyHandler{}, Options{})
	rc := dialRaw(t, ts.addr)
	rc.startup(map[string]string{"user": "dba"})
	if got := rc.send(&pgproto3.Query{String: "cmd"}); cmp.Diff([]string{"C ADD NODE", "Z I"}, got) != "" {
		t.Errorf("before LISTEN: %q", got)
	}
	got := rc.send(&pgproto3.Query{String: "listen"})
	if diff := cmp.Diff([]string{"C LISTEN", "NotificationResponse", "Z I"}, got); diff != "" {
		t.Errorf("LISTEN (-want +got):\n%s", diff)
	}
	got = rc.send(&pgproto3.Sync{})
	if diff := cmp.Diff([]string{"NotificationResponse", "Z I"}, got); diff != "" {
		t.Errorf("Sync (-want +got):\n%s", diff)
	}
}
