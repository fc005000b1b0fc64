package outwasm

// The glue between an Output and the bindings wit-bindgen generates (internal/wit). The
// bindings do the canonical ABI: their cabi_realloc allocates the host's arguments from the Go
// heap and pins them for the call (pausing the adapter's clock, since a collection during
// cabi_realloc must not call the host), and their post-return functions unpin results.

import (
	"time"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/exports/export_out_wasm_output_output"
	"outwasm/internal/wit/out_wasm_output_types"
	_ "outwasm/internal/wit/wit_exports" // the wasmexport functions
)

type guest struct{}

func install() { export_out_wasm_output_output.Impl = guest{} }

func (guest) ConfigSchema() []out_wasm_output_types.ConfigKey {
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
