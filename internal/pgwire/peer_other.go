//go:build !linux

package pgwire

import "context"

// watchPeer does nothing here: peeking at the socket is built for Linux
// only. A client that leaves is then noticed when its results are written.
func (c *conn) watchPeer(context.CancelCauseFunc) (stop func()) { return func() {} }
