// logfmt: a fluent-bit-go output plugin written the way such plugins usually are (config keys,
// a context per instance, NewDecoder/GetRecord, the FLB_* answers), written for out_wasm with the
// flbgo compatibility package and host-checked keys (output.Register with Plugin.Keys). The
// native original, tests/peers/fluent-bit-go/logfmt, builds unmodified with guests/go/build too
// (docs/guests-go.md).
//
// Each record becomes one logfmt line on stdout: prefix, tag, time, then the record's keys in
// sorted order (only those listed in `fields`, if set).
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
	"unsafe"

	"outwasm"
	"outwasm/flbgo/output"
)

type config struct {
	prefix string
	fields []string
}

func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "logfmt", "records as logfmt lines on stdout")
}

func FLBPluginInit(plugin unsafe.Pointer) int {
	cfg := &config{prefix: output.FLBPluginConfigKey(plugin, "prefix")}
	if fields := output.FLBPluginConfigKey(plugin, "fields"); fields != "" {
		cfg.fields = strings.Split(fields, ",")
	}
	output.FLBPluginSetContext(plugin, cfg)
	return output.FLB_OK
}

func format(v interface{}) string {
	switch v := v.(type) {
	case []byte:
		return fmt.Sprintf("%q", v)
	case map[interface{}]interface{}, []interface{}:
		return fmt.Sprintf("%q", fmt.Sprint(v))
	default:
		return fmt.Sprint(v)
	}
}

func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length int, tag string) int {
	cfg := output.FLBPluginGetContext(ctx).(*config)
	dec := output.NewDecoder(data, int(length))
	var b strings.Builder
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		var t time.Time
		switch ts := ts.(type) {
		case output.FLBTime:
			t = ts.Time
		case uint64:
			t = time.Unix(int64(ts), 0)
		default:
			fmt.Fprintf(os.Stderr, "[logfmt] record without a time: %v\n", ts)
			return output.FLB_ERROR
		}
		keys := cfg.fields
		if keys == nil {
			for k := range record {
				keys = append(keys, fmt.Sprint(k))
			}
			sort.Strings(keys)
		}
		fmt.Fprintf(&b, "%stag=%s time=%s", cfg.prefix, tag, t.UTC().Format(time.RFC3339Nano))
		for _, k := range keys {
			if v, ok := record[k]; ok {
				fmt.Fprintf(&b, " %s=%s", k, format(v))
			}
		}
		b.WriteByte('\n')
	}
	if _, err := os.Stdout.WriteString(b.String()); err != nil {
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

func FLBPluginExit() int {
	return output.FLB_OK
}

func init() {
	output.Register(output.Plugin{
		Register: FLBPluginRegister,
		Init:     FLBPluginInit,
		FlushCtx: FLBPluginFlushCtx,
		Exit:     FLBPluginExit,
		Keys: []outwasm.ConfigKey{
			{Name: "prefix", Description: "text before each line"},
			{Name: "fields", Description: "comma-separated keys to print (default: all, sorted)"},
		},
	})
}

func main() {
}
