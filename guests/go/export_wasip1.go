package outwasm

// The glue between an Output and the bindings wit-bindgen generates (internal/wit). The
// bindings do the canonical ABI: their cabi_realloc allocates the host's arguments from the Go
// heap and pins them for the call (pausing the adapter's clock, since a collection during
// cabi_realloc must not call the host), and their post-return functions unpin results.

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"time"
	_ "unsafe" // go:linkname

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/calls"
	"outwasm/internal/exports/export_out_wasm_output_output"
	"outwasm/internal/wit/out_wasm_output_types"
	_ "outwasm/internal/wit/wit_exports" // the wasmexport functions
)

type guest struct{}

func install() { export_out_wasm_output_output.Impl = guest{} }

// Go's collector must never run inside cabi_realloc: the host is then lowering a call's
// arguments, the component model forbids calling out of the instance, and a collection reads
// the clocks, which the preview1 adapter answers by calling the host (a trap, "cannot leave
// component instance"). The bindings' runtime pauses the adapter's monotonic clock around its
// allocations, but mark termination also reads the wall clock, and an allocation can also
// assist a cycle begun in an earlier call. So the automatic collector is off, and the SDK
// collects between calls instead, when the heap has grown as far as Go's default would let it
// (GOGC=100, at least 4 MiB): no cycle is ever running when the host allocates.
func init() { debug.SetGCPercent(-1) }

var (
	gcSamples  = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	allocsAtGC uint64
	liveAtGC   uint64
)

// collect runs a full collection, at the end of a call, once enough was allocated since the
// last one.
func collect() {
	metrics.Read(gcSamples[:1])
	if gcSamples[0].Value.Uint64()-allocsAtGC < max(liveAtGC, 4<<20) {
		return
	}
	runtime.GC()
	metrics.Read(gcSamples)
	allocsAtGC, liveAtGC = gcSamples[0].Value.Uint64(), gcSamples[1].Value.Uint64()
}

func (guest) ConfigSchema() []out_wasm_output_types.ConfigKey {
	defer collect()
	keys := exported.ConfigSchema()
	out := make([]out_wasm_output_types.ConfigKey, len(keys))
	for i, k := range keys {
		def := witTypes.None[string]()
		if k.Default != "" {
			def = witTypes.Some(k.Default)
		}
		out[i] = out_wasm_output_types.ConfigKey{Name: k.Name, Description: k.Description, DefaultValue: def,
			Required: k.Required}
	}
	return out
}

func configOf(entries []out_wasm_output_types.ConfigEntry) Config {
	config := make(Config, len(entries))
	for i, e := range entries {
		// The bindings' strings view the host's argument buffer: copied, since a Config may be
		// kept for the life of the instance.
		config[i] = ConfigEntry{Key: strings.Clone(e.Key), Value: strings.Clone(e.Value)}
	}
	return config
}

func (guest) PreferredEventFormat(entries []out_wasm_output_types.ConfigEntry) witTypes.Result[out_wasm_output_types.EventFormat, string] {
	defer collect()
	format, err := exported.PreferredEventFormat(configOf(entries))
	if err != nil {
		return witTypes.Err[out_wasm_output_types.EventFormat](err.Error())
	}
	var wire out_wasm_output_types.EventFormat
	switch format.Kind {
	case JSONLines:
		key := witTypes.None[string]()
		if format.JSON.DateKey != "" {
			key = witTypes.Some(format.JSON.DateKey)
		}
		wire = out_wasm_output_types.MakeEventFormatJsonLines(out_wasm_output_types.JsonOptions{
			DateKey: key, DateFormat: uint8(format.JSON.DateFormat), EscapeUnicode: format.JSON.EscapeUnicode,
		})
	case OTLPJSON:
		wire = out_wasm_output_types.MakeEventFormatOtlpJson()
	default:
		wire = out_wasm_output_types.MakeEventFormatMsgpack()
	}
	return witTypes.Ok[out_wasm_output_types.EventFormat, string](wire)
}

func (guest) AcceptedEventTypes() out_wasm_output_types.EventTypes {
	return uint8(exported.AcceptedEventTypes())
}

func eventFormatOf(wire out_wasm_output_types.EventFormat) EventFormat {
	switch wire.Tag() {
	case out_wasm_output_types.EventFormatJsonLines:
		options := wire.JsonLines()
		return JSONLinesFormat(JSONOptions{
			DateKey: strings.Clone(options.DateKey.SomeOr("")), DateFormat: DateFormat(options.DateFormat),
			EscapeUnicode: options.EscapeUnicode,
		})
	case out_wasm_output_types.EventFormatOtlpJson:
		return EventFormat{Kind: OTLPJSON}
	}
	return EventFormat{Kind: Msgpack}
}

// stdHostname is what os.Hostname answers once set (guests/go/build's overlay of os, package
// outwasm/stdnet): the agent's host name, as a native plugin's os.Hostname answers.
//
//go:linkname stdHostname os.outwasmHostname
var stdHostname string

func (guest) Init(ctx out_wasm_output_types.InitContext) witTypes.Result[witTypes.Unit, string] {
	defer collect()
	stdHostname = strings.Clone(ctx.Hostname)
	err := exported.Init(&InitContext{
		Instance: strings.Clone(ctx.Instance), GuestPath: strings.Clone(ctx.GuestPath),
		GuestDigest: strings.Clone(ctx.GuestDigest), Config: configOf(ctx.Config),
		EventFormat: eventFormatOf(ctx.EventFormat), EventTypes: EventTypes(ctx.EventTypes),
		Hostname: strings.Clone(ctx.Hostname),
	})
	if err != nil {
		return witTypes.Err[witTypes.Unit](err.Error())
	}
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

// durationOf is a WIT duration (nanoseconds, u64) as a time.Duration, capped at its maximum.
func durationOf(nanos uint64) time.Duration { return time.Duration(min(nanos, 1<<63-1)) }

// deadlineOf is now plus the host's time left, if any.
func deadlineOf(timeLeft witTypes.Option[uint64]) (time.Time, bool) {
	if timeLeft.IsNone() {
		return time.Time{}, false
	}
	return time.Now().Add(durationOf(timeLeft.Some())), true
}

func (guest) Flush(ctx out_wasm_output_types.FlushContext, chunk []uint8) witTypes.Result[witTypes.Unit, out_wasm_output_types.FlushError] {
	fc := FlushContext{
		Tag: strings.Clone(ctx.Tag), EventType: EventType(ctx.EventType),
		Delivery: Delivery{ID: strings.Clone(ctx.Delivery.Id), Attempt: ctx.Delivery.Attempt},
	}
	fc.deadline, fc.hasDeadline = deadlineOf(ctx.TimeLeft)
	if fc.hasDeadline {
		fc.bound = withMargin(fc.deadline)
	}
	calls.SetBound(fc.bound, fc.hasDeadline)
	err := exported.Flush(&fc, chunk)
	calls.SetBound(time.Time{}, false)
	fc.done()
	collect()
	if err == nil {
		return witTypes.Ok[witTypes.Unit, out_wasm_output_types.FlushError](witTypes.Unit{})
	}
	retry, message := flushAnswer(err)
	if retry {
		return witTypes.Err[witTypes.Unit](out_wasm_output_types.MakeFlushErrorRetry(message))
	}
	return witTypes.Err[witTypes.Unit](out_wasm_output_types.MakeFlushErrorError(message))
}

func (guest) Idle(budget uint64) witTypes.Option[uint64] {
	defer collect()
	// The budget bounds the SDK's network waits: a flush that arrives meanwhile waits for Idle.
	calls.SetBound(time.Now().Add(durationOf(budget)), true)
	defer calls.SetBound(time.Time{}, false)
	next, again := exported.Idle(durationOf(budget))
	if !again {
		return witTypes.None[uint64]()
	}
	return witTypes.Some(uint64(max(next, 0)))
}

func (guest) Exit(timeLeft witTypes.Option[uint64]) {
	var ec ExitContext
	ec.deadline, ec.hasDeadline = deadlineOf(timeLeft)
	if ec.hasDeadline {
		calls.SetBound(withMargin(ec.deadline), true)
	}
	exported.Exit(&ec)
	calls.SetBound(time.Time{}, false)
}
