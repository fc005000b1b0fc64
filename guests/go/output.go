// Package outwasm writes Fluent Bit output plugins in Go that run in out_wasm.
//
// Implement Output (embed Defaults for the optional parts) and export it from an init function:
//
//	type count struct {
//		outwasm.Defaults
//		n int
//	}
//
//	func (c *count) Init(ctx *outwasm.InitContext) error { return nil }
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
// Every call runs on one goroutine, one call at a time; a call must not wait on other
// goroutines (Go's rule for wasmexport functions: they cannot be scheduled while the host
// waits). A panic, a nil dereference or running out of wasm_memory_limit ends the call as a
// trap: the host answers FLB_RETRY and the next chunk gets a fresh instance.
package outwasm

import (
	"errors"
	"fmt"
	"iter"
	"time"
)

// Output is an output plugin. One value lives per guest instance, from Init until Exit.
// Embed Defaults for ConfigSchema and Exit; implement PreferredEventFormat and
// AcceptedEventTypes to change their defaults (msgpack, logs only).
type Output interface {
	// ConfigSchema declares the configuration keys this output accepts. Called once per guest
	// version, before any Init.
	ConfigSchema() []ConfigKey
	// Init prepares the instance. An error stops the agent from starting (or, for an extra
	// instance made later, fails that flush with a retry).
	Init(ctx *InitContext) error
	// Flush delivers one chunk. nil: delivered (FLB_OK). An error made by Retry/Retryf, or any
	// error that is not a FlushError or DecodeError: FLB_RETRY. Fail/Failf and a *DecodeError
	// (a malformed chunk will not decode on a retry): FLB_ERROR, the chunk is dropped.
	Flush(ctx *FlushContext, chunk Chunk) error
	// Exit is the last call on this instance (not made after a fault).
	Exit()
}

// Defaults gives an Output no configuration keys and an Exit that does nothing.
type Defaults struct{}

func (Defaults) ConfigSchema() []ConfigKey { return nil }
func (Defaults) Exit()                     {}

// EventFormat is how the host hands a chunk's events to Flush.
type EventFormat uint8

const (
	// EventFormatMsgpack is the msgpack bytes exactly as the agent flushed them.
	EventFormatMsgpack EventFormat = iota
	// EventFormatJSONLines is logs rendered by the host as the agent's stdout output prints
	// them with format json_lines and its default keys, one line each.
	EventFormatJSONLines
	// EventFormatOTLPJSON is the chunk rendered by the host as one OTLP/JSON export request.
	EventFormatOTLPJSON
)

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

// PreferredEventFormat is implemented by an Output that would rather receive another format
// than msgpack. The operator's wasm_event_format overrides it.
type PreferredEventFormat interface {
	PreferredEventFormat() EventFormat
}

// AcceptedEventTypes is implemented by an Output that accepts other event types than logs.
type AcceptedEventTypes interface {
	AcceptedEventTypes() EventTypes
}

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
// order, spelled as declared.
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

// InitContext is everything an instance learns before its first flush.
type InitContext struct {
	// Instance is the agent's name for this output instance.
	Instance string
	// GuestPath is wasm_path.
	GuestPath string
	// GuestDigest is the lowercase hex SHA-256 of the component file.
	GuestDigest string
	Config      Config
	// EventFormat is what every Flush of this instance receives.
	EventFormat EventFormat
	// EventTypes are the types this instance's flushes can carry.
	EventTypes EventTypes
}

// FlushContext is what the host tells about one flush, besides the chunk.
type FlushContext struct {
	// Tag is the chunk's tag.
	Tag string
	// EventType is the kind of events in the chunk.
	EventType EventType
	// TimeLeft is how long this call may still run, measured when the host made the call
	// (HasTimeLeft false when the operator turned deadlines off). Past it the instance is
	// stopped and the chunk delivered again; a guest waiting on the network should answer
	// Retry a little earlier.
	TimeLeft    time.Duration
	HasTimeLeft bool
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
