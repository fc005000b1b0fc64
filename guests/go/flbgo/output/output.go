// Package output mirrors the parts of fluent-bit-go's output package
// (github.com/fluent/fluent-bit-go/output) that output plugins use, on top of out_wasm's Go SDK.
// guests/go/build builds an unmodified fluent-bit-go plugin against it (outwasm/flbgo/port
// rewrites the plugin's import of fluent-bit-go's package to this one and registers its entry
// points); a plugin written for out_wasm may use it directly too:
//
//   - FLBPluginRegister, FLBPluginConfigKey, FLBPluginSetContext, FLBPluginGetContext,
//     FLBPluginUnregister with the same signatures;
//   - NewDecoder and GetRecord with the same return codes and the same Go types for values
//     (those of fluent-bit-go's msgpack codec: strings as []byte, integers as int64 or uint64,
//     floats as float64, maps as map[interface{}]interface{}, EventTime as FLBTime);
//   - FLB_OK, FLB_ERROR, FLB_RETRY with the agent's values.
//
// The plugin's entry points (FLBPluginRegister, FLBPluginInit, FLBPluginFlushCtx or
// FLBPluginFlush, FLBPluginExitCtx or FLBPluginExit, FLBPluginUnregister) keep their bodies;
// instead of being exported to the agent with //export and cgo (which GOOS=wasip1 does not
// have), they are handed to Register, which may also declare configuration keys (with
// descriptions and defaults, checked by the host); FLBPluginConfigKey reads any other key of
// the section too. Between flushes the plugin's own goroutines run in the host's idle calls
// (see Idle).
package output

import (
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"outwasm"
)

// The agent's answers and plugin types, with fluent-bit-go's values.
const (
	FLB_ERROR = 0
	FLB_OK    = 1
	FLB_RETRY = 2

	FLB_PROXY_OUTPUT_PLUGIN = 2
	FLB_PROXY_GOLANG        = 11
)

// Plugin holds a fluent-bit-go plugin's entry points, as the plugin defines them. Register and
// Init are required, and one of FlushCtx and Flush.
type Plugin struct {
	Register func(def unsafe.Pointer) int
	Init     func(plugin unsafe.Pointer) int
	// FlushCtx is FLBPluginFlushCtx; data and length are the chunk, tag its tag (a Go string:
	// there is no *C.char without cgo).
	FlushCtx func(ctx, data unsafe.Pointer, length int, tag string) int
	// Flush is the older FLBPluginFlush, for plugins without a context.
	Flush   func(data unsafe.Pointer, length int, tag string) int
	Exit    func() int
	ExitCtx func(ctx unsafe.Pointer) int
	// Unregister is FLBPluginUnregister, called after the exit call, as the agent calls it
	// when it unloads the plugin.
	Unregister func(def unsafe.Pointer)
	// Keys are configuration keys the plugin declares (documented, defaulted and checked by
	// the host); FLBPluginConfigKey reads undeclared keys as well.
	Keys []outwasm.ConfigKey
	// EventTypes are the event types the plugin takes (zero: logs only). A plugin that takes
	// metrics reads each cmetrics context of a metrics chunk with GetRecord.
	EventTypes outwasm.EventTypes
}

// proxyDef is what FLBPluginRegister fills in.
type proxyDef struct {
	typ, proxy  int
	name, descr string
}

// instance is the plugin pointer handed to FLBPluginInit and the context pointer handed to
// FLBPluginFlushCtx: a guest instance is one output instance.
type instance struct {
	config  outwasm.Config
	context interface{}
}

// FLBPluginRegister fills in the plugin's name and description.
func FLBPluginRegister(def unsafe.Pointer, name, desc string) int {
	p := (*proxyDef)(def)
	p.typ, p.proxy, p.name, p.descr = FLB_PROXY_OUTPUT_PLUGIN, FLB_PROXY_GOLANG, name, desc
	return 0
}

// FLBPluginUnregister releases nothing: there is nothing to release.
func FLBPluginUnregister(def unsafe.Pointer) {}

// FLBPluginConfigKey is the value of key in the plugin's [OUTPUT] section (the agent matches
// keys case-insensitively), or "" when it is not set: a key of Plugin.Keys with its default,
// any other key as the operator wrote it.
func FLBPluginConfigKey(plugin unsafe.Pointer, key string) string {
	for _, e := range (*instance)(plugin).config {
		if strings.EqualFold(e.Key, key) {
			return e.Value
		}
	}
	value, _ := outwasm.LookupConfig(key)
	return value
}

// FLBPluginSetContext sets the context of the plugin instance to ctx.
func FLBPluginSetContext(plugin unsafe.Pointer, ctx interface{}) {
	(*instance)(plugin).context = ctx
}

// FLBPluginGetContext is the context set for the instance FLBPluginFlushCtx's ctx names.
func FLBPluginGetContext(proxyCtx unsafe.Pointer) interface{} {
	return (*instance)(proxyCtx).context
}

type guest struct {
	outwasm.Defaults
	plugin Plugin
	def    proxyDef
	inst   instance
	// registered: FLBPluginRegister was called in this guest instance.
	registered bool
	// initialized: FLBPluginInit answered FLB_OK in this guest instance.
	initialized bool
}

// Register makes p this component's output plugin. Call it once, from an init function of
// package main.
func Register(p Plugin) {
	if p.Register == nil || p.Init == nil || p.FlushCtx == nil && p.Flush == nil {
		panic("flbgo: Register needs Register, Init and FlushCtx or Flush")
	}
	outwasm.Export(&guest{plugin: p})
}

// ConfigSchema registers the plugin (the agent calls FLBPluginRegister once, when it loads the
// plugin) and names it in the log, so out-wasm check shows which plugin the component is.
func (g *guest) ConfigSchema() []outwasm.ConfigKey {
	g.register()
	outwasm.Info("fluent-bit-go plugin %s: %s", g.def.name, g.def.descr)
	return g.plugin.Keys
}

// register calls FLBPluginRegister once per guest instance.
func (g *guest) register() {
	if !g.registered {
		g.registered = true
		g.plugin.Register(unsafe.Pointer(&g.def))
	}
}

func (g *guest) AcceptedEventTypes() outwasm.EventTypes {
	if g.plugin.EventTypes == 0 {
		return outwasm.AcceptLogs
	}
	return g.plugin.EventTypes
}

func (g *guest) Init(ctx *outwasm.InitContext) error {
	g.register()
	hostname = ctx.Hostname
	g.inst = instance{config: ctx.Config}
	if code := g.plugin.Init(unsafe.Pointer(&g.inst)); code != FLB_OK {
		return &codeError{"FLBPluginInit of " + g.def.name, code}
	}
	g.initialized = true
	return nil
}

func (g *guest) Flush(ctx *outwasm.FlushContext, chunk outwasm.Chunk) error {
	data := unsafe.Pointer(unsafe.SliceData(chunk))
	var code int
	if g.plugin.FlushCtx != nil {
		code = g.plugin.FlushCtx(unsafe.Pointer(&g.inst), data, len(chunk), ctx.Tag)
	} else {
		code = g.plugin.Flush(data, len(chunk), ctx.Tag)
	}
	switch code {
	case FLB_OK:
		return nil
	case FLB_RETRY:
		return outwasm.Retry(&codeError{"FLBPluginFlush of " + g.def.name, code})
	}
	return outwasm.Fail(&codeError{"FLBPluginFlush of " + g.def.name, code})
}

func (g *guest) Exit(*outwasm.ExitContext) {
	if !g.initialized {
		// The agent calls the exit callbacks of initialised instances only (a guest instance
		// may live only for ConfigSchema, as out-wasm check's does).
		return
	}
	// As the agent's proxy: FLBPluginExitCtx if defined, else FLBPluginExit.
	if g.plugin.ExitCtx != nil {
		g.plugin.ExitCtx(unsafe.Pointer(&g.inst))
	} else if g.plugin.Exit != nil {
		g.plugin.Exit()
	}
	if g.plugin.Unregister != nil {
		g.plugin.Unregister(unsafe.Pointer(&g.def))
	}
}

// Idle lets the plugin's own goroutines run between flushes (a batcher's ticker, a sender
// worker): natively they run on threads of their own; in the guest they run only while a call
// waits in Go. So while the plugin has goroutines besides the call's own, Idle waits the host's
// budget in time.Sleep (Go's scheduler runs them meanwhile, and a timer due within it fires)
// and asks to be called again; without them it asks for no more calls until the next flush.
func (g *guest) Idle(budget time.Duration) (time.Duration, bool) {
	if runtime.NumGoroutine() <= 1 {
		return 0, false
	}
	time.Sleep(budget)
	return 0, runtime.NumGoroutine() > 1
}

// hostname is the agent's host name, told at Init.
var hostname string

// Hostname is os.Hostname as a native plugin sees it: the agent's host name (Go's wasip1
// runtime answers "wasip1"). guests/go/build rewrites a plugin's os.Hostname calls to it.
// Before the instance's Init (in a package init function) it is os.Hostname's answer.
func Hostname() (string, error) {
	if hostname == "" {
		return os.Hostname()
	}
	return hostname, nil
}

type codeError struct {
	call string
	code int
}

func (e *codeError) Error() string {
	names := map[int]string{FLB_ERROR: "FLB_ERROR", FLB_OK: "FLB_OK", FLB_RETRY: "FLB_RETRY"}
	name, ok := names[e.code]
	if !ok {
		name = "unknown code"
	}
	return e.call + " answered " + name
}

// FLBTime is a record's EventTime.
type FLBTime struct {
	time.Time
}
