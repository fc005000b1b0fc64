// flbredis: a fluent-bit-go output plugin as third-party Redis outputs are written: each
// record as a JSON object RPUSHed to the list `key` on the server `address` with
// github.com/redis/go-redis/v9, a public client that dials for itself (net.Dialer), answering
// FLB_RETRY when the server does not take the batch. Built unmodified for out_wasm, Go's own
// net reaches the server through the host (wasm_allow_net).
package main

import (
	"C"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
	"github.com/redis/go-redis/v9"
)

var (
	client *redis.Client
	key    string
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbredis", "records RPUSHed to a Redis list")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	address := output.FLBPluginConfigKey(plugin, "address")
	key = output.FLBPluginConfigKey(plugin, "key")
	if address == "" || key == "" {
		log.Printf("[flbredis] address and key must be set")
		return output.FLB_ERROR
	}
	client = redis.NewClient(&redis.Options{
		Addr:         address,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   -1,
		// The client's own identification round trip (CLIENT SETINFO) is left out, as many
		// deployments (and older servers) refuse it.
		DisableIdentity: true,
	})
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	dec := output.NewDecoder(data, int(length))
	var values []interface{}
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		t, _ := ts.(output.FLBTime)
		m := map[string]interface{}{"tag": C.GoString(tag), "time": t.UTC().Format(time.RFC3339Nano)}
		for k, v := range record {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			m[fmt.Sprint(k)] = v
		}
		line, err := json.Marshal(m)
		if err != nil {
			log.Printf("[flbredis] %v", err)
			return output.FLB_ERROR
		}
		values = append(values, line)
	}
	if len(values) == 0 {
		return output.FLB_OK
	}
	if err := client.RPush(context.Background(), key, values...).Err(); err != nil {
		log.Printf("[flbredis] RPUSH %s: %v", key, err)
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int {
	if client != nil {
		client.Close()
	}
	return output.FLB_OK
}

func main() {}
