package wasinet

import (
	"context"
	"errors"
	"os"
	"runtime"
	"time"

	"outwasm/internal/calls"
	"outwasm/internal/wit/wasi_clocks_monotonic_clock"
	"outwasm/internal/wit/wasi_io_poll"
)

// ErrDenied is what an operation the host refused wraps: no wasm_allow_net grant allows it.
var ErrDenied = errors.New("denied by the host: no wasm_allow_net grant allows it")

// Error is a failed network operation: a net.Error. Timeout() is true when it gave up at a
// deadline (the request's context, http.Client.Timeout, a net.Conn deadline, or the flush's
// bound); errors.Is(err, ErrDenied) when the host refused it for want of a grant.
type Error struct {
	// Op is what failed: "lookup", "dial", "read", "write", "request" or "response".
	Op string
	// Addr is the address, name or URL authority.
	Addr string
	// Code is the host's reason, as WASI names it ("connection-refused", "TLS-certificate-error").
	Code    string
	timeout bool
	denied  bool
	// cause is a context's error when one ended the wait.
	cause error
	// bare: Error() leaves Addr out (Go's net error around it names it).
	bare bool
}

func (e *Error) Error() string {
	// Through Go's net package (stdnet_wasip1.go) the operation and address are net's to say:
	// Op alone, or nothing.
	what := e.Op
	if e.Addr != "" && !e.bare {
		what += " " + e.Addr
	}
	if what != "" {
		what += ": "
	}
	switch {
	case e.denied:
		return what + "the host denied it: grant " + e.Addr + " with wasm_allow_net"
	case e.timeout && e.Code == "":
		return what + "timed out"
	case e.timeout:
		return what + "timed out (" + e.Code + ")"
	}
	return what + e.Code
}

// Timeout is true when the operation gave up at a deadline.
func (e *Error) Timeout() bool { return e.timeout }

// Temporary is Timeout, as net.Error asks (deprecated there).
func (e *Error) Temporary() bool { return e.timeout }

// Unwrap gives ErrDenied for a denied operation, os.ErrDeadlineExceeded for a timeout (what
// net.Conn deadlines give), and the context's error when a context ended the wait.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.denied {
		errs = append(errs, ErrDenied)
	}
	if e.timeout {
		errs = append(errs, os.ErrDeadlineExceeded)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// slice is the longest a wait blocks in the host while other goroutines may need to run.
const slice = 10 * time.Millisecond

// bound is the earliest of deadline (zero: none), ctx's deadline and, when the wait began in
// the current call (seq), the call's bound.
func bound(ctx context.Context, deadline time.Time, seq uint64) time.Time {
	earliest := func(t time.Time) {
		if deadline.IsZero() || t.Before(deadline) {
			deadline = t
		}
	}
	if ctx != nil {
		if d, ok := ctx.Deadline(); ok {
			earliest(d)
		}
	}
	if d, ok := calls.Bound(); ok && calls.Seq() == seq {
		earliest(d)
	}
	return deadline
}

// errClosed is what a wait answers when its connection was closed meanwhile (by another
// goroutine).
var errClosed = &Error{Code: "use of closed network connection"}

// wait blocks until p is ready, deadline (zero: none) passes or ctx (nil: none) is done. It
// answers a timeout *Error (Op and Addr left for the caller), ctx's error as one, or nil.
func wait(ctx context.Context, p *wasi_io_poll.Pollable, deadline time.Time) *Error {
	return waitOr(ctx, p, deadline, nil)
}

// waitOr is wait that also ends, with errClosed, when stopped (nil: never) says so: a
// connection closed by another goroutine while this one waits on it. The bounds are looked at
// anew each time round, so a wait carried over from an earlier call (the goroutine was paused
// when that call returned) is bounded by its own deadlines only.
func waitOr(ctx context.Context, p *wasi_io_poll.Pollable, deadline time.Time, stopped func() bool) *Error {
	started := calls.Seq()
	for {
		if p.Ready() {
			return nil
		}
		if stopped != nil && stopped() {
			return errClosed
		}
		if ctx != nil && ctx.Err() != nil {
			return &Error{timeout: errors.Is(ctx.Err(), context.DeadlineExceeded), cause: ctx.Err(),
				Code: ctx.Err().Error()}
		}
		var left time.Duration = -1
		if until := bound(ctx, deadline, started); !until.IsZero() {
			if left = time.Until(until); left <= 0 {
				return &Error{timeout: true}
			}
		}
		others := runtime.NumGoroutine() > 1
		if others && (left < 0 || left > slice) {
			left = slice
		}
		if left < 0 {
			p.Block()
			continue
		}
		timer := wasi_clocks_monotonic_clock.SubscribeDuration(uint64(left))
		wasi_io_poll.Poll([]*wasi_io_poll.Pollable{p, timer})
		timer.Drop()
		if others {
			// Timers and goroutines that became runnable while the host waited run now.
			runtime.Gosched()
		}
	}
}
