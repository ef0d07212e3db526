package pgwire

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// maxMessageLen caps a frontend message body. Manager commands are short;
// the cap keeps a garbage length word from making us allocate gigabytes.
const maxMessageLen = 16 << 20

// maxPreparedBytes caps the query text a session's prepared statements
// hold, so that Options.MaxPrepared statements of maxMessageLen each cannot
// add up to gigabytes. One statement of the largest size still fits.
const maxPreparedBytes = maxMessageLen

// errSessionEnd tells the message loop to close the connection; whatever
// the client needed to hear has been sent.
var errSessionEnd = errors.New("pgwire: session ended")

// conn is one client connection: the protocol state of a PostgreSQL backend.
// Only its own goroutine touches it, except cancelQuery and secretMatches,
// which CancelRequest connections call.
type conn struct {
	srv  *Server
	nc   net.Conn
	be   *pgproto3.Backend
	log  *slog.Logger
	ctx  context.Context // the session's life; Serve cancels it on shutdown
	sess Session
	pend *pendingConn // admission state, under srv.mu

	secret [4]byte // protocol 3.0 cancel keys are exactly 4 bytes
	tls    bool    // nc is the TLS connection over the client's socket
	// tlsCert is the DER of the certificate the TLS handshake presented.
	tlsCert []byte
	// superuser is reported as is_superuser at startup.
	superuser bool

	qmu     sync.Mutex
	qcancel context.CancelCauseFunc // the running query's, nil when idle

	stmts     map[string]*statement
	stmtBytes int // query text held by stmts, bounded by maxPreparedBytes
	portals   map[string]*portal
	// ignoreTillSync is set by an error in an extended-protocol message:
	// the client has pipelined the rest of the batch, which must be skipped
	// up to Sync, as PostgreSQL does.
	ignoreTillSync bool
}

// statement is a prepared statement: the query text and the result columns
// the Handler described when it was parsed.
type statement struct {
	query string
	cols  []Column
}

// portal is a bound statement with the result format of each column.
type portal struct {
	stmt    *statement
	formats []int16 // one per column
	done    bool
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	// Admission first, before anything is allocated for the connection:
	// it may close older connections in the handshake, or this one's fate
	// may be a refusal.
	p := s.admit(nc)
	c := &conn{
		srv:     s,
		nc:      nc,
		be:      pgproto3.NewBackend(nc, nc),
		log:     s.log.With("remote", nc.RemoteAddr().String()),
		ctx:     ctx,
		pend:    p,
		stmts:   make(map[string]*statement),
		portals: make(map[string]*portal),
	}
	defer nc.Close()
	// A bug or a malformed message must cost one connection, never the
	// server. This runs before nc.Close, so the client still hears why.
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("pgwire: session panicked; closing its connection", "panic", r, "stack", string(debug.Stack()))
			c.sendFatal(pgerror.New(pgerror.Internal, "internal error: %v", r))
		}
	}()
	c.be.SetMaxBodyLen(maxMessageLen)
	// An idle session is blocked in Read; expiring the deadline wakes it so
	// that it can notice the shutdown and say goodbye.
	stop := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Now()) })
	defer stop()

	// The connection counts as in the handshake until register makes it a
	// session, and as one until it closes, refusals and panics included.
	defer s.leave(c)
	if p.refuse {
		c.refuseStartup()
		return
	}
	if !c.startup() {
		return
	}
	c.serve()
	c.log.Debug("pgwire: session ended")
}

// refuseStartup answers the startup packet of a client that arrived when
// every session was taken, as PostgreSQL does. A CancelRequest is still
// served: cancelling is how a DBA frees a session.
func (c *conn) refuseStartup() {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.StartupTimeout))
	if c.ctx.Err() != nil {
		return
	}
	if c.receiveStartup() == nil {
		return
	}
	c.log.Warn("pgwire: refused a client: too many sessions", "max_sessions", c.srv.opts.MaxSessions)
	c.sendFatal(fatal(codeTooManyConnections, "sorry, too many clients already"))
}

// serve is the message loop of an established session.
func (c *conn) serve() {
	for {
		msg, err := c.be.Receive()
		if err != nil {
			switch {
			case c.ctx.Err() != nil:
				c.terminate()
			case isDisconnect(err):
			default:
				// The stream cannot be trusted past a message we could not
				// decode; PostgreSQL also gives up on the connection.
				c.log.Warn("pgwire: bad frontend message; closing connection", "err", err)
				c.sendFatal(pgerror.New(pgerror.ProtocolViolation, "invalid frontend message: %v", err))
			}
			return
		}
		if c.ignoreTillSync {
			switch msg.(type) {
			case *pgproto3.Sync, *pgproto3.Terminate:
			default:
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			err = c.simpleQuery(m.String)
		case *pgproto3.Parse:
			err = c.parse(m)
		case *pgproto3.Bind:
			err = c.bind(m)
		case *pgproto3.Describe:
			err = c.describe(m)
		case *pgproto3.Execute:
			err = c.execute(m)
		case *pgproto3.Close:
			err = c.closeObject(m)
		case *pgproto3.Sync:
			err = c.sync()
		case *pgproto3.Flush:
			err = c.be.Flush()
		case *pgproto3.Terminate:
			return
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// We never start a COPY, so these are leftovers of a client's
			// failed one; PostgreSQL ignores them for that reason.
		case *pgproto3.FunctionCall:
			// The fastpath interface is a complete command, answered with
			// ReadyForQuery like a simple query.
			c.sendError(pgerror.New(pgerror.FeatureNotSupported, "function call protocol is not supported by adbmgr"))
			c.ready()
			err = c.be.Flush()
		default:
			// Password, SASL and GSS responses outside authentication.
			c.sendFatal(pgerror.New(pgerror.ProtocolViolation, "unexpected frontend message %T", msg))
			return
		}
		if err != nil {
			if errors.Is(err, errClientGone) {
				c.log.Debug("pgwire: client left during a query; the query was cancelled")
			} else if !errors.Is(err, errSessionEnd) && !isDisconnect(err) {
				c.log.Debug("pgwire: closing connection", "err", err)
			}
			return
		}
	}
}

// runQuery runs fn with a query context that a CancelRequest can cancel,
// and that ends when the client leaves meanwhile, and translates its error
// for the client. It returns errClientGone if the client left.
func (c *conn) runQuery(fn func(ctx context.Context) error) error {
	qctx, cancel := context.WithCancelCause(c.ctx)
	c.qmu.Lock()
	c.qcancel = cancel
	c.qmu.Unlock()
	defer func() {
		c.qmu.Lock()
		c.qcancel = nil
		c.qmu.Unlock()
		cancel(nil)
	}()
	stopWatch := c.watchPeer(cancel)
	err := fn(qctx)
	stopWatch()
	if context.Cause(qctx) == errClientGone {
		return errClientGone
	}
	return queryError(qctx, err)
}

// cancelQuery cancels the running query, if any. A cancel that arrives
// between queries is dropped, as in PostgreSQL: it must not hit the next one.
func (c *conn) cancelQuery() {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.qcancel != nil {
		c.qcancel(errCancelRequest)
	}
}

func (c *conn) secretMatches(secret []byte) bool {
	return subtle.ConstantTimeCompare(c.secret[:], secret) == 1
}

// simpleQuery answers a Query message: the Handler runs every statement in
// it, then ReadyForQuery.
func (c *conn) simpleQuery(query string) error {
	// A simple query ends the unnamed statement and portal, as in PostgreSQL.
	c.setStatement("", nil)
	delete(c.portals, "")
	w := &resultWriter{c: c}
	err := c.runQuery(func(ctx context.Context) error {
		defer w.finish()
		return c.srv.h.Query(ctx, &c.sess, query, w)
	})
	if c.ctx.Err() != nil {
		return c.terminate()
	}
	if err := w.failed(err); err != nil {
		return err
	}
	if err == nil {
		err = w.end()
	}
	if err != nil {
		if isFatal(err) {
			c.sendFatal(err)
			return errSessionEnd
		}
		c.sendError(err)
	}
	c.ready()
	return c.be.Flush()
}

// extendedError reports an error in an extended-protocol message and skips
// the rest of the client's batch.
func (c *conn) extendedError(err error) error {
	if c.ctx.Err() != nil {
		return c.terminate()
	}
	if errors.Is(err, errClientGone) {
		return err
	}
	if isFatal(err) {
		c.sendFatal(err)
		return errSessionEnd
	}
	c.sendError(err)
	c.ignoreTillSync = true
	return nil
}

// parse answers Parse. The Handler describes the statement now, so that
// syntax errors and multi-statement strings fail at Parse as in PostgreSQL,
// and Describe can answer without asking again.
func (c *conn) parse(m *pgproto3.Parse) error {
	if m.Name != "" {
		if _, dup := c.stmts[m.Name]; dup {
			return c.extendedError(pgerror.New(codeDuplicatePreparedStatement, "prepared statement \"%s\" already exists", m.Name))
		}
		named := len(c.stmts)
		if _, ok := c.stmts[""]; ok {
			named--
		}
		if named >= c.srv.opts.MaxPrepared {
			return c.extendedError(pgerror.New(codeConfigurationLimitExceeded, "too many prepared statements in this session (at most %d)", c.srv.opts.MaxPrepared).
				WithHint("Close prepared statements that are no longer needed (DEALLOCATE)."))
		}
	}
	held := c.stmtBytes
	if old, ok := c.stmts[m.Name]; ok {
		held -= len(old.query) // the unnamed statement is replaced
	}
	if held+len(m.Query) > maxPreparedBytes {
		return c.extendedError(pgerror.New(codeConfigurationLimitExceeded, "prepared statements of this session would hold more than %d MB of query text", maxPreparedBytes>>20).
			WithHint("Close prepared statements that are no longer needed (DEALLOCATE)."))
	}
	query := m.Query
	var cols []Column
	err := c.runQuery(func(ctx context.Context) error {
		var err error
		cols, err = c.srv.h.Describe(ctx, &c.sess, query)
		return err
	})
	if err != nil {
		return c.extendedError(err)
	}
	c.setStatement(m.Name, &statement{query: query, cols: cols})
	c.be.Send(&pgproto3.ParseComplete{})
	return nil
}

// deallocate implements Session.Deallocate.
func (c *conn) deallocate(name string, all bool) bool {
	if all {
		found := len(c.stmts) > 0
		for n := range c.stmts {
			c.setStatement(n, nil)
		}
		clear(c.portals)
		return found
	}
	if _, ok := c.stmts[name]; !ok {
		return false
	}
	c.setStatement(name, nil)
	return true
}

// setStatement stores (or, with nil, removes) a prepared statement and
// keeps the count of the query text held.
func (c *conn) setStatement(name string, st *statement) {
	if old, ok := c.stmts[name]; ok {
		c.stmtBytes -= len(old.query)
		delete(c.stmts, name)
	}
	if st != nil {
		c.stmts[name] = st
		c.stmtBytes += len(st.query)
	}
}

func (c *conn) bind(m *pgproto3.Bind) error {
	st, ok := c.stmts[m.PreparedStatement]
	if !ok {
		return c.extendedError(pgerror.New(codeInvalidStatementName, "prepared statement \"%s\" does not exist", m.PreparedStatement))
	}
	if len(m.Parameters) > 0 {
		return c.extendedError(pgerror.New(pgerror.FeatureNotSupported, "bind parameters are not supported by adbmgr").
			WithHint("Write the values into the statement text, or use the simple query protocol."))
	}
	formats, err := resultFormats(m.ResultFormatCodes, st.cols)
	if err != nil {
		return c.extendedError(err)
	}
	if m.DestinationPortal != "" {
		if _, dup := c.portals[m.DestinationPortal]; dup {
			return c.extendedError(pgerror.New(codeDuplicateCursor, "cursor \"%s\" already exists", m.DestinationPortal))
		}
		if len(c.portals) >= c.srv.opts.MaxPrepared {
			return c.extendedError(pgerror.New(codeConfigurationLimitExceeded, "too many portals in this session (at most %d)", c.srv.opts.MaxPrepared).
				WithHint("Close portals that are no longer needed, or end the batch with Sync."))
		}
	}
	c.portals[m.DestinationPortal] = &portal{stmt: st, formats: formats}
	c.be.Send(&pgproto3.BindComplete{})
	return nil
}

// resultFormats expands Bind's result format codes to one per column. Text
// is native here; binary is offered for the few types the manager returns,
// because pgx asks for binary bool and integers by default.
func resultFormats(codes []int16, cols []Column) ([]int16, error) {
	for _, f := range codes {
		if f != 0 && f != 1 {
			return nil, pgerror.New(pgerror.InvalidParameterValue, "unsupported format code: %d", f)
		}
	}
	formats := make([]int16, len(cols))
	switch len(codes) {
	case 0:
	case 1:
		for i := range formats {
			formats[i] = codes[0]
		}
	case len(cols):
		copy(formats, codes)
	default:
		return nil, pgerror.New(pgerror.ProtocolViolation, "bind message has %d result formats but query has %d columns", len(codes), len(cols))
	}
	for i, f := range formats {
		if f == 1 && !binarySupported(cols[i].TypeOID) {
			return nil, pgerror.New(pgerror.FeatureNotSupported, "binary result format is not supported for column \"%s\" (type OID %d)", cols[i].Name, cols[i].TypeOID)
		}
	}
	return formats, nil
}

func (c *conn) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		st, ok := c.stmts[m.Name]
		if !ok {
			return c.extendedError(pgerror.New(codeInvalidStatementName, "prepared statement \"%s\" does not exist", m.Name))
		}
		// No statement takes parameters, so the list is always empty.
		c.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: []uint32{}})
		c.sendRowDescription(st.cols, nil)
	case 'P':
		p, ok := c.portals[m.Name]
		if !ok {
			return c.extendedError(pgerror.New(codeInvalidCursorName, "portal \"%s\" does not exist", m.Name))
		}
		c.sendRowDescription(p.stmt.cols, p.formats)
	default:
		return c.extendedError(pgerror.New(pgerror.ProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType))
	}
	return nil
}

// sendRowDescription sends RowDescription, or NoData for a statement that
// returns no rows.
func (c *conn) sendRowDescription(cols []Column, formats []int16) {
	if cols == nil {
		c.be.Send(&pgproto3.NoData{})
		return
	}
	c.be.Send(rowDescription(cols, formats))
}

// execute answers Execute. MaxRows is ignored and every row is sent: the
// manager's results are small, and clients accept CommandComplete in place
// of PortalSuspended.
func (c *conn) execute(m *pgproto3.Execute) error {
	p, ok := c.portals[m.Portal]
	if !ok {
		return c.extendedError(pgerror.New(codeInvalidCursorName, "portal \"%s\" does not exist", m.Portal))
	}
	if p.done {
		// Running a command twice because a client re-sent Execute would
		// repeat its side effects.
		return c.extendedError(pgerror.New(pgerror.ObjectNotInPrereqState, "portal \"%s\" cannot be run", m.Portal))
	}
	p.done = true
	w := &resultWriter{c: c, portal: p}
	err := c.runQuery(func(ctx context.Context) error {
		defer w.finish()
		return c.srv.h.Query(ctx, &c.sess, p.stmt.query, w)
	})
	if c.ctx.Err() != nil {
		return c.terminate()
	}
	if err := w.failed(err); err != nil {
		return err
	}
	if err == nil {
		err = w.end()
	}
	if err != nil {
		return c.extendedError(err)
	}
	return nil
}

func (c *conn) closeObject(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		c.setStatement(m.Name, nil)
	case 'P':
		delete(c.portals, m.Name)
	default:
		return c.extendedError(pgerror.New(pgerror.ProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType))
	}
	c.be.Send(&pgproto3.CloseComplete{})
	return nil
}

// sync ends an extended-protocol batch. Portals live only until the end of
// the (implicit) transaction, so they go here, as in PostgreSQL.
func (c *conn) sync() error {
	c.ignoreTillSync = false
	clear(c.portals)
	c.ready()
	return c.be.Flush()
}

// ready queues ReadyForQuery, after the notifications queued for the
// session meanwhile: PostgreSQL sends them at the end of a transaction,
// and psql prints them when its command is done.
func (c *conn) ready() {
	if c.sess.Notifications != nil {
		for _, n := range c.sess.Notifications() {
			c.be.Send(&pgproto3.NotificationResponse{PID: n.PID, Channel: n.Channel, Payload: n.Payload})
		}
	}
	c.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
}

// sendError queues an ErrorResponse.
func (c *conn) sendError(err error) {
	c.be.Send(errorResponse(err))
}

// sendFatal sends a FATAL error and flushes it; the caller then closes the
// connection. Failures are ignored: the client may already be gone.
func (c *conn) sendFatal(err error) {
	er := errorResponse(err)
	er.Severity, er.SeverityUnlocalized = "FATAL", "FATAL"
	// Don't wait for a client that stopped reading.
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.be.Send(er)
	c.be.Flush()
}

// terminate says goodbye on server shutdown with PostgreSQL's message for
// it, which tells psql that reconnecting later may help.
func (c *conn) terminate() error {
	c.sendFatal(fatal(codeAdminShutdown, "terminating connection due to administrator command"))
	return errSessionEnd
}

// rowDescription describes cols, all in text format unless formats says
// otherwise.
func rowDescription(cols []Column, formats []int16) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, col := range cols {
		fields[i] = pgproto3.FieldDescription{
			Name:         []byte(col.Name),
			DataTypeOID:  col.TypeOID,
			DataTypeSize: typeSize(col.TypeOID),
			TypeModifier: -1,
		}
		if formats != nil {
			fields[i].Format = formats[i]
		}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// typeSize is pg_type.typlen, which clients use to size buffers.
func typeSize(oid uint32) int16 {
	switch oid {
	case OIDBool:
		return 1
	case OIDInt4:
		return 4
	case OIDInt8:
		return 8
	case OIDName:
		return 64
	}
	return -1
}
