// flbbatch: a fluent-bit-go output plugin that batches in a background goroutine, as plugins
// that send in batches do: FLBPluginFlushCtx only hands the records to the goroutine, which
// prints what it holds every `interval` (a ticker), and FLBPluginExit makes it print what is
// left and waits for it. Natively the goroutine runs on its own thread; in out_wasm it runs
// while the host calls the guest's idle export between flushes, and in exit.
package main

import (
	"C"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

var (
	records = make(chan string, 1024)
	stop    = make(chan struct{})
	done    sync.WaitGroup
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbbatch", "records printed in batches by a goroutine")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	interval, err := time.ParseDuration(output.FLBPluginConfigKey(plugin, "interval"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "[flbbatch] interval: %v\n", err)
		return output.FLB_ERROR
	}
	done.Add(1)
	go batch(interval)
	return output.FLB_OK
}

func batch(interval time.Duration) {
	defer done.Done()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var pending []string
	send := func(why string) {
		if len(pending) > 0 {
			fmt.Printf("%s[%s]\n", strings.Join(pending, ""), why)
			pending = pending[:0]
		}
	}
	for {
		select {
		case r := <-records:
			pending = append(pending, r)
		case <-ticker.C:
			send("tick")
		case <-stop:
			for {
				select {
				case r := <-records:
					pending = append(pending, r)
				default:
					send("exit")
					return
				}
			}
		}
	}
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	dec := output.NewDecoder(data, int(length))
	for {
		ret, _, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		records <- fmt.Sprintf("%s %s\n", C.GoString(tag), record["message"])
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int {
	close(stop)
	done.Wait()
	return output.FLB_OK
}

func main() {}
