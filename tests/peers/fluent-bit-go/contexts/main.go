// flbctx: a fluent-bit-go output plugin run as several instances, each with its own context
// (FLBPluginSetContext in FLBPluginInit, FLBPluginGetContext in FLBPluginFlushCtx and
// FLBPluginExitCtx), reading keys it never declares (id, time_zone), the host's name
// (os.Hostname), an environment variable (FLBCTX_REGION: in out_wasm, granted with
// wasm_allow_env) and a time zone (time.LoadLocation). Each record becomes one line on stdout
// naming the instance, its running count and the record's time in the instance's zone.
package main

import (
	"C"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

type instance struct {
	id    string
	zone  *time.Location
	count int
}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbctx", "one line per record, per instance")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	id := output.FLBPluginConfigKey(plugin, "id")
	zone, err := time.LoadLocation(output.FLBPluginConfigKey(plugin, "time_zone"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "[flbctx] %s: %v\n", id, err)
		return output.FLB_ERROR
	}
	host, err := os.Hostname()
	if err != nil {
		fmt.Fprintf(os.Stderr, "[flbctx] %s: %v\n", id, err)
		return output.FLB_ERROR
	}
	fmt.Printf("[%s] init on %s in %s, region %q\n", id, host, zone, os.Getenv("FLBCTX_REGION"))
	output.FLBPluginSetContext(plugin, &instance{id: id, zone: zone})
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	inst := output.FLBPluginGetContext(ctx).(*instance)
	dec := output.NewDecoder(data, int(length))
	var b strings.Builder
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		t, _ := ts.(output.FLBTime)
		inst.count++
		fmt.Fprintf(&b, "[%s] %s #%d %s %s\n", inst.id, C.GoString(tag), inst.count,
			t.In(inst.zone).Format(time.RFC3339Nano), record["message"])
	}
	fmt.Print(b.String())
	return output.FLB_OK
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) int {
	inst := output.FLBPluginGetContext(ctx).(*instance)
	fmt.Printf("[%s] exit after %d records\n", inst.id, inst.count)
	return output.FLB_OK
}

func main() {}
