// Package outwasm writes Fluent Bit output plugins in Go that run in out_wasm.
//
// Implement Output (embed Defaults for the optional parts) and export it from an init function:
//
//	type count struct {
//		outwasm.Defaults
//		n int
//	}
//
//	func (c *count) Flush(ctx *outwasm.FlushContext, chunk outwasm.Chunk) error {
//		for event, err := range chunk.Events() {
//			if err != nil {
//				return err // a malformed chunk: the agent drops it
//			}
//			_ = event
//			c.n++
//		}
//		outwasm.Info("%d records so far", c.n)
//		return nil
//	}
//
//	func init() { outwasm.Export(&count{}) }
//
//	func main() {}
//
// Build with guests/go/build NAME OUT.wasm (the standard Go toolchain, GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared, made a component with wasm-tools and the WASI preview1
// adapter) and point an [OUTPUT] Name wasm section's wasm_path at OUT.wasm.
//
// Every call runs on one goroutine, one call at a time. Other goroutines run only while a call
// is inside the guest and its goroutine waits on Go (a channel, a lock, time.Sleep): never
// between calls, and never while the guest waits in a host call. The SDK's HTTP transport and
// dialer wait in Go's scheduler for that reason (see Transport). A panic, a nil dereference or
// running out of wasm_memory_limit ends the call as a trap: the host answers FLB_RETRY and the
// next chunk gets a fresh instance.
package outwasm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// Output is an output plugin. One value lives per guest instance, from Init until Exit.
// Embed Defaults for everything but Flush.
type Output interface {
	// ConfigSchema declares the configuration keys this output accepts. Called once per guest
	// version, before any Init. Default: none.
	ConfigSchema() []ConfigKey
	// PreferredEventFormat is the format this output would like its chunks in, given its
	// resolved configuration (the declared keys, as InitContext.Config will hold them). An
	// error refuses the configuration: the agent does not start, naming the guest and the
	// error. The operator's wasm_event_format overrides the format. Called once per guest
	// version, after ConfigSchema. Default: msgpack.
	PreferredEventFormat(config Config) (EventFormat, error)
	// AcceptedEventTypes are the event types this output takes. Default: logs only.
	AcceptedEventTypes() EventTypes
	// Init prepares the instance. An error stops the agent from starting (or, for an extra
	// instance made later, fails that flush with a retry). Default: nothing to prepare.
	Init(ctx *InitContext) error
	// Flush delivers one chunk. nil: delivered (FLB_OK). An error made by Retry/Retryf, or any
	// error that is not a FlushError or DecodeError: FLB_RETRY. Fail/Failf and a *DecodeError
	// (a malformed chunk will not decode on a retry): FLB_ERROR, the chunk is dropped.
	Flush(ctx *FlushContext, chunk Chunk) error
	// Idle gives background work time to run between flushes, for budget at most (goroutines
	// started earlier run while Idle waits on them). It answers when to be called again
	// (again true; no sooner than the operator's wasm_idle_interval), or again false for no
	// more calls until after the next flush. Default: no more calls.
	Idle(budget time.Duration) (next time.Duration, again bool)
	// Exit is the last call on this instance (not made after a fault): finish what the
	// instance still holds within ctx's time left. Default: nothing.
	Exit(ctx *ExitContext)
}

// Defaults gives an Output every method but Flush: no configuration keys, msgpack, logs only,
// an Init that does nothing, no idle calls and an Exit that does nothing.
type Defaults struct{}

func (Defaults) ConfigSchema() []ConfigKey { return nil }
func (Defaults) PreferredEventFormat(Config) (EventFormat, error) {
	return EventFormat{Kind: Msgpack}, nil
}
func (Defaults) AcceptedEventTypes() EventTypes           { return AcceptLogs }
func (Defaults) Init(*InitContext) error                  { return nil }
func (Defaults) Idle(time.Duration) (time.Duration, bool) { return 0, false }
func (Defaults) Exit(*ExitContext)                        {}

// FormatKind is which of the event formats the host hands chunks in.
type FormatKind uint8

const (
	// Msgpack is the msgpack bytes exactly as the agent flushed them.
	Msgpack FormatKind = iota
	// JSONLines is logs rendered by the host, one JSON line per record, exactly as the agent's
	// stdout output prints them with format json_lines and EventFormat.JSON's options.
	JSONLines
	// OTLPJSON is the chunk rendered by the host as one OTLP/JSON export request.
	OTLPJSON
)

func (k FormatKind) String() string {
	return [...]string{"msgpack", "json_lines", "otlp_json"}[k]
}

// EventFormat is how the host hands a chunk's events to Flush.
type EventFormat struct {
	Kind FormatKind
	// JSON is how the host renders the lines, for Kind JSONLines.
	JSON JSONOptions
}

// JSONLinesFormat is EventFormat{Kind: JSONLines, JSON: options}.
func JSONLinesFormat(options JSONOptions) EventFormat {
	return EventFormat{Kind: JSONLines, JSON: options}
}

// EventType is the kind of events a chunk holds.
type EventType uint8

const (
	Logs EventType = iota
	Metrics
	Traces
)

func (t EventType) String() string {
	return [...]string{"logs", "metrics", "traces"}[t]
}

// EventTypes is a set of event types.
type EventTypes uint8

const (
	AcceptLogs EventTypes = 1 << iota
	AcceptMetrics
	AcceptTraces
)

// Has says whether t is in the set.
func (s EventTypes) Has(t EventType) bool { return s&(1<<t) != 0 }

// ConfigKey is one configuration key an output accepts in its [OUTPUT] section.
type ConfigKey struct {
	// Name is the key as operators write it.
	Name string
	// Description is one line for humans; the host quotes it when the key is missing.
	Description string
	// Default is used when the operator does not set the key ("" for none).
	Default string
	// Required keys without a value (and without a default) stop the agent from starting.
	Required bool
}

// Config is the resolved configuration: every declared key that has a value, in declaration
// order, spelled as declared. LookupConfig reads any other key of the section.
type Config []ConfigEntry

// ConfigEntry is one resolved key.
type ConfigEntry struct {
	Key, Value string
}

// Get is the value of key.
func (c Config) Get(key string) (string, bool) {
	for _, e := range c {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// Value is the value of key, or "" when it is not set.
func (c Config) Value(key string) string {
	v, _ := c.Get(key)
	return v
}

// LookupConfig is the value of any key of this instance's [OUTPUT] section, declared or not
// (matched case-insensitively, as the operator wrote it; a declared key's default does not
// apply: that is in Config), and false when the section does not set it. Keys the agent or
// the host consume (match, workers, tls*, wasm_*) always read as unset. Callable from every
// call, ConfigSchema included.
func LookupConfig(key string) (string, bool) { return hostConfigGet(key) }

// InitContext is everything an instance learns before its first flush.
type InitContext struct {
	// Instance is the agent's name for this output instance.
	Instance string
	// GuestPath is wasm_path.
	GuestPath string
	// GuestDigest is the lowercase hex SHA-256 of the component file.
	GuestDigest string
	Config      Config
	// EventFormat is what every Flush of this instance receives: the operator's
	// wasm_event_format if set, else PreferredEventFormat's.
	EventFormat EventFormat
	// EventTypes are the types this instance's flushes can carry.
	EventTypes EventTypes
	// Hostname is the agent's machine name (os.Hostname answers "wasip1" in a guest).
	Hostname string
}

// Delivery says which delivery of which chunk a flush is: what makes a send idempotent.
type Delivery struct {
	// ID is the same on every delivery of the same chunk (retries, other instances, other
	// versions): 32 lowercase hex digits, a digest of the tag and the chunk's bytes.
	ID string
	// Attempt is 1 the first time this output instance is handed ID, then 2, 3, ...
	Attempt uint32
}

// FlushContext is what the host tells about one flush, besides the chunk.
type FlushContext struct {
	// Tag is the chunk's tag.
	Tag string
	// EventType is the kind of events in the chunk.
	EventType EventType
	// Delivery names the chunk and counts the attempts at it.
	Delivery Delivery

	deadline    time.Time
	hasDeadline bool
	// bound is the deadline less the margin: when network waits give up.
	bound  time.Time
	ctx    context.Context
	cancel context.CancelFunc
}

// TimeLeft is how long this call may still run, now (false when the operator turned deadlines
// off). Past it the instance is stopped and the chunk delivered again; a guest waiting on the
// network should answer Retry a little earlier (the SDK's HTTP transport and dialer, package
// outwasm/wasinet, give up at the deadline less a tenth of the time left, at least 50 ms).
func (c *FlushContext) TimeLeft() (time.Duration, bool) {
	if !c.hasDeadline {
		return 0, false
	}
	return time.Until(c.deadline), true
}

// Deadline is when this call must have answered (false when deadlines are off).
func (c *FlushContext) Deadline() (time.Time, bool) { return c.deadline, c.hasDeadline }

// Context is a context.Context that ends at the call's deadline less a margin (a tenth of the
// time left, at least 50 ms), for requests made in Flush.
func (c *FlushContext) Context() context.Context {
	if c.ctx == nil {
		c.ctx = context.Background()
		if c.hasDeadline {
			// Cancelled when Flush returns: the context does not outlive the call.
			c.ctx, c.cancel = context.WithDeadline(c.ctx, c.bound)
		}
	}
	return c.ctx
}

// done ends what Context started, when Flush has returned.
func (c *FlushContext) done() {
	if c.cancel != nil {
		c.cancel()
	}
}

// ExitContext is what the host tells about the last call.
type ExitContext struct {
	deadline    time.Time
	hasDeadline bool
}

// TimeLeft is how long Exit may still run (false when the operator turned deadlines off).
func (c *ExitContext) TimeLeft() (time.Duration, bool) {
	if !c.hasDeadline {
		return 0, false
	}
	return time.Until(c.deadline), true
}

// Chunk is one chunk's bytes, in the instance's event format. They are the host's copy, valid
// until Flush returns.
type Chunk []byte

// Events yields the records of a msgpack chunk; a malformed chunk yields one *DecodeError,
// then ends.
func (c Chunk) Events() iter.Seq2[Event, error] { return Events(c) }

// Decoder reads the records of a msgpack chunk one at a time.
func (c Chunk) Decoder() *Decoder { return NewDecoder(c) }

// FlushError is why a flush did not deliver its chunk.
type FlushError struct {
	// Retry: the agent flushes the chunk again later (FLB_RETRY). Otherwise it drops it
	// (FLB_ERROR).
	Retry bool
	Err   error
}

func (e *FlushError) Error() string { return e.Err.Error() }
func (e *FlushError) Unwrap() error { return e.Err }

// Retry makes err a retry: the chunk may be delivered later.
func Retry(err error) error { return &FlushError{Retry: true, Err: err} }

// Retryf is Retry(fmt.Errorf(format, args...)).
func Retryf(format string, args ...any) error { return Retry(fmt.Errorf(format, args...)) }

// Fail makes err final: the chunk can never be delivered and the agent drops it.
func Fail(err error) error { return &FlushError{Retry: false, Err: err} }

// Failf is Fail(fmt.Errorf(format, args...)).
func Failf(format string, args ...any) error { return Fail(fmt.Errorf(format, args...)) }

// flushAnswer maps Flush's error to the host's answer: retry, and the message.
func flushAnswer(err error) (retry bool, message string) {
	var flushErr *FlushError
	var decodeErr *DecodeError
	switch {
	case errors.As(err, &flushErr):
		return flushErr.Retry, err.Error()
	case errors.As(err, &decodeErr):
		return false, err.Error()
	}
	return true, err.Error()
}

// withMargin is deadline less the margin kept for answering the host: a tenth of the time
// left, at least 50 ms.
func withMargin(deadline time.Time) time.Time {
	left := time.Until(deadline)
	return deadline.Add(-max(left/10, 50*time.Millisecond))
}

var exported Output

// Export makes o this component's output plugin. Call it once, from an init function of
// package main.
func Export(o Output) {
	if exported != nil {
		panic("outwasm: Export called twice")
	}
	exported = o
	install()
}
