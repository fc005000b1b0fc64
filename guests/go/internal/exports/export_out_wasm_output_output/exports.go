// Package export_out_wasm_output_output is where the bindings wit-bindgen generates
// (internal/wit/wit_exports) find the guest's exports. It only forwards to the Guest the SDK
// installs (package outwasm, export_wasip1.go): the bindings import this package, so it cannot
// import the SDK itself.
package export_out_wasm_output_output

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/wit/out_wasm_output_types"
)

// Guest is the output plugin as the generated bindings call it.
type Guest interface {
	ConfigSchema() []out_wasm_output_types.ConfigKey
	PreferredEventFormat(config []out_wasm_output_types.ConfigEntry) witTypes.Result[out_wasm_output_types.EventFormat, string]
	AcceptedEventTypes() out_wasm_output_types.EventTypes
	Init(ctx out_wasm_output_types.InitContext) witTypes.Result[witTypes.Unit, string]
	Flush(ctx out_wasm_output_types.FlushContext, chunk []uint8) witTypes.Result[witTypes.Unit, out_wasm_output_types.FlushError]
	Idle(budget uint64) witTypes.Option[uint64]
	Exit(timeLeft witTypes.Option[uint64])
}

// Impl is set by outwasm.Export, from the guest's init function, before the host calls any
// export.
var Impl Guest

func guest() Guest {
	if Impl == nil {
		panic("outwasm: no output exported: call outwasm.Export from an init function of package main")
	}
	return Impl
}

func ConfigSchema() []out_wasm_output_types.ConfigKey { return guest().ConfigSchema() }

func PreferredEventFormat(config []out_wasm_output_types.ConfigEntry) witTypes.Result[out_wasm_output_types.EventFormat, string] {
	return guest().PreferredEventFormat(config)
}

func AcceptedEventTypes() out_wasm_output_types.EventTypes { return guest().AcceptedEventTypes() }

func Init(ctx out_wasm_output_types.InitContext) witTypes.Result[witTypes.Unit, string] {
	return guest().Init(ctx)
}

func Flush(ctx out_wasm_output_types.FlushContext, chunk []uint8) witTypes.Result[witTypes.Unit, out_wasm_output_types.FlushError] {
	return guest().Flush(ctx, chunk)
}

func Idle(budget uint64) witTypes.Option[uint64] { return guest().Idle(budget) }

func Exit(timeLeft witTypes.Option[uint64]) { guest().Exit(timeLeft) }
