// flbjson: a typical fluent-bit-go output plugin, the kind people bring to out_wasm: every
// record read with NewDecoder/GetRecord into Go maps, converted for encoding/json and printed
// as one JSON line on stdout ({"date": seconds as a float, then the record's keys}), one write
// per chunk. It uses the older FLBPluginFlush (no context).
//
// Built natively (tests/peers/fluent-bit-go/build, cgo against fluent-bit-go) and unmodified for
// out_wasm (guests/go/build tests/peers/fluent-bit-go OUT.wasm); scripts/agent-cpu runs the
// pair on the same records, so the difference is what the sandbox and the compatibility
// decoder cost.
package main

import (
	"C"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbjson", "records as JSON lines on stdout")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	return output.FLB_OK
}

// plain is v with the codec's []byte strings and interface{} map keys made what
// encoding/json takes.
func plain(v interface{}) interface{} {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(v))
		for k, val := range v {
			m[key(k)] = plain(val)
		}
		return m
	case []interface{}:
		for i, item := range v {
			v[i] = plain(item)
		}
		return v
	}
	return v
}

func key(k interface{}) string {
	if b, ok := k.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(k)
}

var buf bytes.Buffer

//export FLBPluginFlush
func FLBPluginFlush(data unsafe.Pointer, length C.int, tag *C.char) int {
	dec := output.NewDecoder(data, int(length))
	buf.Reset()
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		var date float64
		switch t := ts.(type) {
		case output.FLBTime:
			date = float64(t.UnixNano()) / 1e9
		case uint64:
			date = float64(t)
		}
		m := plain(record).(map[string]interface{})
		m["date"] = date
		line, err := json.Marshal(m)
		if err != nil {
			fmt.Fprintf(os.Stderr, "[flbjson] %v\n", err)
			return output.FLB_ERROR
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if _, err := os.Stdout.Write(buf.Bytes()); err != nil {
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int { return output.FLB_OK }

func main() {}
