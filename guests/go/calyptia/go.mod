// Calyptia's Go plugin SDK (github.com/calyptia/plugin, now chronosphereio/calyptia-plugin)
// served by out_wasm: guests/go/build replaces the module with this directory when a plugin
// imports it, so a plugin written for it builds unmodified (see docs/guests-go.md). Its API,
// not its code: nothing here is taken from it.
module github.com/calyptia/plugin

go 1.25

require outwasm v0.0.0

require (
	github.com/philhofer/fwd v1.2.0 // indirect
	github.com/tinylib/msgp v1.6.5 // indirect
	go.bytecodealliance.org/pkg v0.2.3 // indirect
)

// For building this module on its own (go vet, go test); a plugin's build gives the same.
replace outwasm => ../
