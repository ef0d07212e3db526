package pgwire

import (
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// flushThreshold is how many bytes of DataRows may pile up before they are
// written: big results stream instead of growing the buffer without bound,
// and a client that went away is noticed by the Handler mid-result.
const flushThreshold = 64 << 10

// errWriterDone guards against a Handler that kept w after returning.
var errWriterDone = errors.New("pgwire: ResultWriter used after the Handler returned")

// resultWriter is the ResultWriter of one Handler.Query call. In the simple
// protocol it describes each result itself; in the extended protocol
// (portal != nil) Describe has told the client the columns already and the
// rows go out in the formats Bind asked for.
//
// Its methods lock, so a Handler may send notices from the goroutines of a
// parallel operation while another goroutine writes rows.
type resultWriter struct {
	c      *conn
	portal *portal

	mu        sync.Mutex
	done      bool  // the Handler returned
	err       error // first write error; sticky, so the Handler stops
	open      bool  // Columns called, Complete not yet
	ncols     int
	completed int // statements answered
	unflushed int
}

var _ ResultWriter = (*resultWriter)(nil)

func (w *resultWriter) Notice(severity, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.err != nil {
		return
	}
	w.c.be.Send(noticeResponse(severity, message))
	w.flushLocked()
}

func (w *resultWriter) Columns(cols []Column) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if w.open {
		return pgerror.New(pgerror.Internal, "internal error: result set started before the previous one was completed")
	}
	if w.portal != nil {
		if n := len(w.portal.stmt.cols); len(cols) != n {
			return pgerror.New(pgerror.Internal, "internal error: statement returned %d columns but was described with %d", len(cols), n)
		}
	} else {
		w.c.be.Send(rowDescription(cols, nil))
	}
	w.open = true
	w.ncols = len(cols)
	return nil
}

func (w *resultWriter) Row(values []*string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if !w.open {
		return pgerror.New(pgerror.Internal, "internal error: row sent before its columns")
	}
	if len(values) != w.ncols {
		return pgerror.New(pgerror.Internal, "internal error: row has %d values for %d columns", len(values), w.ncols)
	}
	row := make([][]byte, len(values))
	size := 0
	for i, v := range values {
		if v == nil {
			continue // SQL NULL
		}
		if w.portal != nil && w.portal.formats[i] == 1 {
			b, err := encodeBinary(w.portal.stmt.cols[i].TypeOID, *v)
			if err != nil {
				return err
			}
			row[i] = b
		} else {
			row[i] = []byte(*v)
		}
		size += len(row[i])
	}
	w.c.be.Send(&pgproto3.DataRow{Values: row})
	w.unflushed += size + 4*len(row) + 7
	if w.unflushed >= flushThreshold {
		w.flushLocked()
	}
	return w.err
}

func (w *resultWriter) Complete(tag string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	w.c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	w.open = false
	w.completed++
	return nil
}

func (w *resultWriter) EmptyQuery() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if w.open {
		return pgerror.New(pgerror.Internal, "internal error: empty query answered inside a result set")
	}
	w.c.be.Send(&pgproto3.EmptyQueryResponse{})
	w.completed++
	return nil
}

// usableLocked returns why nothing may be written now, if anything.
func (w *resultWriter) usableLocked() error {
	switch {
	case w.done:
		return errWriterDone
	case w.err != nil:
		return w.err
	case w.portal != nil && w.completed > 0:
		// An Execute answers exactly one statement; a second result would
		// desynchronise the client. The Handler's Describe should have
		// refused the string at Parse already.
		return pgerror.New(pgerror.SyntaxError, "cannot insert multiple commands into a prepared statement")
	}
	return nil
}

// flushLocked writes what is buffered. Rows go out as the Handler produces
// them, so a client that reads slowly blocks the Handler here (the query
// waits, the manager buffers no more than flushThreshold); one that reads
// nothing for WriteTimeout makes the write fail, which ends the session.
func (w *resultWriter) flushLocked() {
	w.unflushed = 0
	w.c.nc.SetWriteDeadline(time.Now().Add(w.c.srv.opts.WriteTimeout))
	err := w.c.be.Flush()
	w.c.nc.SetWriteDeadline(time.Time{})
	if err != nil && w.err == nil {
		w.err = err
	}
}

// failed returns what ends the session after the Handler returned err: the
// client left, or a write failed part-way through a message, after which
// the stream cannot be trusted.
func (w *resultWriter) failed(err error) error {
	if errors.Is(err, errClientGone) {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// finish retires the writer when the Handler returns.
func (w *resultWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// end checks, after a Handler returned without error, that the client got
// a complete answer. A query that produced nothing at all is answered with
// EmptyQueryResponse, because the protocol requires some answer.
func (w *resultWriter) end() error {
	if w.err != nil {
		return w.err
	}
	if w.open {
		return pgerror.New(pgerror.Internal, "internal error: result set was not completed with a command tag")
	}
	if w.completed == 0 {
		w.c.be.Send(&pgproto3.EmptyQueryResponse{})
	}
	return nil
}

// binarySupported reports whether encodeBinary handles oid.
func binarySupported(oid uint32) bool {
	switch oid {
	case OIDBool, OIDName, OIDText, OIDInt4, OIDInt8:
		return true
	}
	return false
}

// encodeBinary converts a text-format value into PostgreSQL's binary send
// format for oid.
func encodeBinary(oid uint32, v string) ([]byte, error) {
	switch oid {
	case OIDText, OIDName:
		return []byte(v), nil
	case OIDBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, pgerror.New(codeInvalidTextRepresentation, "invalid input syntax for type boolean: \"%s\"", v)
		}
		if b {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case OIDInt4:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, pgerror.New(codeInvalidTextRepresentation, "invalid input syntax for type integer: \"%s\"", v)
		}
		return binary.BigEndian.AppendUint32(nil, uint32(n)), nil
	case OIDInt8:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, pgerror.New(codeInvalidTextRepresentation, "invalid input syntax for type bigint: \"%s\"", v)
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
	}
	return nil, pgerror.New(pgerror.FeatureNotSupported, "binary result format is not supported for type OID %d", oid)
}
