// Package calls holds what the SDK knows about the call the host is making into the guest,
// for the SDK's network code (package wasinet), which cannot import the SDK's root package.
package calls

import "time"

var (
	bound    time.Time
	hasBound bool
	seq      uint64
)

// SetBound records when the SDK's network waits of the current call must give up (the call's
// deadline less the margin kept for answering the host), or clears it (ok false). Setting one
// starts a call: Seq counts them.
func SetBound(at time.Time, ok bool) {
	bound, hasBound = at, ok
	if ok {
		seq++
	}
}

// Seq tells calls apart: a wait that began in an earlier call (a goroutine's read carried
// over, such as an idle kept-alive connection's) is not cut by a later call's bound.
func Seq() uint64 { return seq }

// Bound is the current call's bound for network waits, if it has one.
func Bound() (time.Time, bool) { return bound, hasBound }
