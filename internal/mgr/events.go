package mgr

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"weak"

	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// Events: LISTEN channel makes a session receive the manager's
// notifications on that channel as PostgreSQL's NotificationResponse,
// sent before its next ReadyForQuery (psql prints them after its next
// command). The doctor's actions go to channel "doctor", one notification
// per journal row it writes, the payload JSON:
//
//	{"id":12,"command":"DOCTOR RESTART dn1","status":"done","step":"end","detail":""}
//
// Any channel name can be listened to, as in PostgreSQL; only "doctor"
// carries anything today.
const doctorChannel = "doctor"

// maxQueued bounds what a session that never sends another command
// keeps queued: the oldest notifications go first.
const maxQueued = 1000

// maxDetail bounds the detail a notification carries.
const maxDetail = 2000

// listeners are the sessions that asked for notifications. A session is
// held by a weak pointer: one that ended is dropped at the next publish
// or LISTEN, without a hook at the session's end.
type listeners struct {
	mu    sync.Mutex
	boxes map[weak.Pointer[pgwire.Session]]*mailbox
}

// mailbox is one session's channels and queued notifications.
type mailbox struct {
	mu       sync.Mutex
	channels map[string]bool
	queue    []pgwire.Notification
}

func (b *mailbox) drain() []pgwire.Notification {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queue
	b.queue = nil
	return q
}

// box returns s's mailbox, made (and hooked to the session) if needed;
// nil when create is false and there is none.
func (l *listeners) box(s *pgwire.Session, create bool) *mailbox {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked()
	k := weak.Make(s)
	if b, ok := l.boxes[k]; ok || !create {
		return b
	}
	if l.boxes == nil {
		l.boxes = map[weak.Pointer[pgwire.Session]]*mailbox{}
	}
	b := &mailbox{channels: map[string]bool{}}
	l.boxes[k] = b
	s.Notifications = b.drain
	return b
}

func (l *listeners) pruneLocked() {
	for k := range l.boxes {
		if k.Value() == nil {
			delete(l.boxes, k)
		}
	}
}

// publish queues payload on channel for every session listening to it.
func (l *listeners) publish(channel, payload string) {
	n := pgwire.Notification{PID: uint32(os.Getpid()), Channel: channel, Payload: payload}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked()
	for _, b := range l.boxes {
		b.mu.Lock()
		if b.channels[channel] {
			if len(b.queue) >= maxQueued {
				b.queue = b.queue[1:]
			}
			b.queue = append(b.queue, n)
		}
		b.mu.Unlock()
	}
}

// listen is LISTEN channel, UNLISTEN channel and UNLISTEN *. As in
// PostgreSQL, channel names are identifiers (folded to lower case unless
// quoted), and UNLISTEN of a channel not listened to is no error.
func (m *Manager) listen(e *req, st *parser.Listen) error {
	b := m.events.box(e.sess, !st.Unlisten)
	if b != nil {
		b.mu.Lock()
		switch {
		case st.All:
			clear(b.channels)
		case st.Unlisten:
			delete(b.channels, st.Channel.Name)
		default:
			b.channels[st.Channel.Name] = true
		}
		b.mu.Unlock()
	}
	return e.w.Complete(st.Command())
}

// journaled tells the sessions listening on "doctor", and the metrics, of
// a journal row the doctor wrote.
func (m *Manager) journaled(id int64, command, status, step, detail string) {
	if !strings.HasPrefix(command, "DOCTOR ") {
		return
	}
	m.observeDoctor(command, status)
	if len(detail) > maxDetail {
		// PostgreSQL caps a payload at 8000 bytes; a tool's long output
		// stays in the journal.
		detail = strings.ToValidUTF8(detail[:maxDetail], "") + "…"
	}
	payload, err := json.Marshal(struct {
		ID      int64  `json:"id"`
		Command string `json:"command"`
		Status  string `json:"status"`
		Step    string `json:"step"`
		Detail  string `json:"detail"`
	}{id, command, status, step, detail})
	if err != nil {
		return
	}
	m.events.publish(doctorChannel, string(payload))
}
