// The native peer of the Go stdout guest: a fluent-bit-go output plugin (built with
// go build -buildmode=c-shared against github.com/fluent/fluent-bit-go, loaded by the agent
// with -e like out_wasm.so) that does the same job as guests/go/stdout with the same code:
// every record as one JSON line on stdout, rendered by the Go SDK's decoder and JSONLines
// (built natively here), one write per chunk. scripts/agent-cpu runs it beside out_wasm with
// the Go stdout guest, so the difference is what the sandbox costs.
//
// Plugin name: gostdout. No keys: the agent's json_lines defaults (date, double, escape on).
package main

import (
	"C"
	"fmt"
	"os"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"

	"outwasm"
)

var lines []byte

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "gostdout", "JSON lines on stdout, like out_wasm's Go stdout guest")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	output.FLBPluginSetContext(plugin, outwasm.AgentJSONLines())
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	format := output.FLBPluginGetContext(ctx).(*outwasm.JSONLines)
	var chunk []byte
	if length > 0 {
		// Read in place: the agent keeps the chunk until this call returns.
		chunk = unsafe.Slice((*byte)(data), int(length))
	}
	lines = lines[:0]
	d := outwasm.NewDecoder(chunk)
	var event outwasm.Event
	for {
		ok, err := d.Next(&event)
		if err != nil {
			fmt.Fprintf(os.Stderr, "[gostdout] %v\n", err)
			return output.FLB_ERROR
		}
		if !ok {
			break
		}
		lines = format.Append(lines, &event)
	}
	if _, err := os.Stdout.Write(lines); err != nil {
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int { return output.FLB_OK }

func main() {}
