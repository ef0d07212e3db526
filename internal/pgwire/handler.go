package pgwire

import "context"

// Type OIDs the manager uses in RowDescription. Values are given as text;
// when an extended-protocol client asks for binary results (pgx does for
// bool, int4 and int8) pgwire converts them, for these OIDs only.
const (
	OIDBool = 16
	OIDName = 19
	OIDInt8 = 20
	OIDInt4 = 23
	OIDText = 25
)

// Column describes one result column.
type Column struct {
	Name    string
	TypeOID uint32
}

// ResultWriter receives the results of the statements of one query. The
// writer is only valid during the Handler call it was passed to. Its methods
// are safe for concurrent use, so parallel steps may send notices; once the
// connection has failed, they return the write error.
type ResultWriter interface {
	// Notice sends a NoticeResponse at once (flushed), so progress of long
	// commands reaches psql while they run. severity is NOTICE, WARNING, INFO.
	Notice(severity, message string)
	// Columns starts a result set (RowDescription). In the extended protocol
	// the description was already sent by Describe and this is a no-op.
	Columns(cols []Column) error
	// Row sends one DataRow; a nil element is SQL NULL.
	Row(values []*string) error
	// Complete ends one statement with its command tag ("ADD NODE", "SELECT 3").
	Complete(tag string) error
	// EmptyQuery answers a query string with no statement in it.
	EmptyQuery() error
}

// Session is one client connection's state, shared with the Handler.
type Session struct {
	User        string
	Database    string
	Application string
	RemoteAddr  string
	ProcessID   uint32
	// AuthMethod is how the session logged in (trust, peer, scram-sha-256).
	AuthMethod string
	// TLS is set when the connection is encrypted.
	TLS bool
	// Superuser is the user's superuser flag at login (is_superuser).
	Superuser bool
	// Params holds run-time parameters set by the client with SET, and the
	// startup packet's options; the Handler owns it after startup.
	Params map[string]string
	// InBlock is set between BEGIN and COMMIT or ROLLBACK. The manager
	// keeps no transaction (each command commits when it runs), only the
	// block's READ ONLY mode; ReadyForQuery still says idle.
	InBlock bool
	// Deallocate drops the session's prepared statement name, or all of
	// them and every portal when all is set (DEALLOCATE, DISCARD ALL); it
	// reports whether there was such a statement. The Handler calls it
	// only while it runs a statement of this session.
	Deallocate func(name string, all bool) bool
	// Notifications, when the Handler sets it, returns the asynchronous
	// notifications queued for the session since its last call (LISTEN);
	// they are sent before each ReadyForQuery, as PostgreSQL sends them
	// at the end of a transaction.
	Notifications func() []Notification
}

// Notification is an asynchronous notification (NotificationResponse):
// PID is the process ID of the backend that sent it.
type Notification struct {
	PID     uint32
	Channel string
	Payload string
}

// Handler executes queries; it knows the commands, pgwire knows the protocol.
type Handler interface {
	// Query runs a query string, which may hold several ';'-separated
	// statements, writing each statement's result to w. A returned error
	// (ideally a *pgerror.Error) is sent as ErrorResponse and ends the query;
	// results already written stay written, as in PostgreSQL. ctx is cancelled
	// by a CancelRequest for this session or by server shutdown.
	Query(ctx context.Context, s *Session, query string, w ResultWriter) error
	// Describe returns the result columns a single-statement query would
	// produce, without side effects (nil: the statement returns no rows).
	// Used by the extended protocol: it is called at Parse, so it should
	// fail as PostgreSQL's parser would, including for a string holding
	// several statements (42601 "cannot insert multiple commands into a
	// prepared statement"). Query must then produce exactly these columns.
	Describe(ctx context.Context, s *Session, query string) ([]Column, error)
}
