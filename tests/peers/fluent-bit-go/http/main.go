// flbhttp: a fluent-bit-go output plugin that POSTs each chunk's records as one JSON array with
// net/http to the `url` key, answering FLB_RETRY when the endpoint does not take it.
package main

import (
	"C"
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

var (
	url    string
	client = &http.Client{Timeout: 5 * time.Second}
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbhttp", "records POSTed as JSON arrays")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	url = output.FLBPluginConfigKey(plugin, "url")
	if url == "" {
		log.Printf("[flbhttp] url is not set")
		return output.FLB_ERROR
	}
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	dec := output.NewDecoder(data, int(length))
	var batch []map[string]interface{}
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
		batch = append(batch, m)
	}
	body, err := json.Marshal(batch)
	if err != nil {
		log.Printf("[flbhttp] %v", err)
		return output.FLB_ERROR
	}
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		log.Printf("[flbhttp] %v", err)
		return output.FLB_ERROR
	}
	req.Header.Set("Content-Type", "application/json")
	// Set as well as req.ContentLength, as SDKs do (aws-sdk-go signs it): net/http sends it once.
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp, err := client.Do(req)
	if err != nil {
		log.Printf("[flbhttp] %v", err)
		return output.FLB_RETRY
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		log.Printf("[flbhttp] %s answered %s", url, resp.Status)
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int { return output.FLB_OK }

func main() {}
