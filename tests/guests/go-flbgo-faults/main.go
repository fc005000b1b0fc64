// go-flbgo-faults: a fluent-bit-go output plugin (built unmodified by guests/go/build) that
// fails the way plugins fail natively, as its `fail` key says: "exit" (os.Exit(3) in
// FLBPluginInit), "fatal" (log.Fatal in FLBPluginInit), "panic" (a panic in FLBPluginInit),
// "flush-panic" (a panic in FLBPluginFlushCtx), "flush-fatal" (log.Fatalf in
// FLBPluginFlushCtx). Each message names the plugin so the tests can find it in the agent's log.
package main

import (
	"C"
	"log"
	"os"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

var fail string

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbfaults", "fails as asked")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	fail = output.FLBPluginConfigKey(plugin, "fail")
	switch fail {
	case "exit":
		os.Stderr.WriteString("[flbfaults] bad config, exiting\n")
		os.Exit(3)
	case "fatal":
		log.Fatal("[flbfaults] fatal: bad config")
	case "panic":
		panic("[flbfaults] panic: bad config")
	}
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	switch fail {
	case "flush-panic":
		panic("[flbfaults] panic in flush of " + C.GoString(tag))
	case "flush-fatal":
		log.Fatalf("[flbfaults] fatal in flush of %s", C.GoString(tag))
	}
	return output.FLB_OK
}

func main() {}
