package outwasm

// The glue between an Output and the bindings wit-bindgen generates (internal/wit). The
// bindings do the canonical ABI: their cabi_realloc allocates the host's arguments from the Go
// heap and pins them for the call (pausing the adapter's clock, since a collection during
// cabi_realloc must not call the host), and their post-return functions unpin results.

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

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

func (guest) PreferredEventFormat() out_wasm_output_types.EventFormat {
	if p, ok := exported.(PreferredEventFormat); ok {
		return uint8(p.PreferredEventFormat())
	}
	return out_wasm_output_types.EventFormatMsgpack
}

func (guest) AcceptedEventTypes() out_wasm_output_types.EventTypes {
	if a, ok := exported.(AcceptedEventTypes); ok {
		return uint8(a.AcceptedEventTypes())
	}
	return out_wasm_output_types.EventTypesLogs
}

func (guest) Init(ctx out_wasm_output_types.InitContext) witTypes.Result[witTypes.Unit, string] {
	defer collect()
	config := make(Config, len(ctx.Config))
	for i, e := range ctx.Config {
		config[i] = ConfigEntry{Key: e.Key, Value: e.Value}
	}
	err := exported.Init(&InitContext{
		Instance: ctx.Instance, GuestPath: ctx.GuestPath, GuestDigest: ctx.GuestDigest, Config: config,
		EventFormat: EventFormat(ctx.EventFormat), EventTypes: EventTypes(ctx.EventTypes),
	})
	if err != nil {
		return witTypes.Err[witTypes.Unit](err.Error())
	}
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

func (guest) Flush(ctx out_wasm_output_types.FlushContext, chunk []uint8) witTypes.Result[witTypes.Unit, out_wasm_output_types.FlushError] {
	fc := FlushContext{Tag: ctx.Tag, EventType: EventType(ctx.EventType)}
	if ctx.TimeLeft.IsSome() {
		fc.TimeLeft, fc.HasTimeLeft = time.Duration(min(ctx.TimeLeft.Some(), 1<<63-1)), true
	}
	err := exported.Flush(&fc, chunk)
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

func (guest) Exit() { exported.Exit() }
