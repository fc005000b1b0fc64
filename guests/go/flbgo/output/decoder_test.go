package output

import (
	"bytes"
	"os"
	"testing"
	"time"
	"unsafe"
)

func records(t *testing.T, chunk string) (codes []int, stamps []interface{}, bodies []map[interface{}]interface{}) {
	t.Helper()
	b := []byte(chunk)
	dec := NewDecoder(unsafe.Pointer(unsafe.SliceData(b)), len(b))
	for {
		ret, ts, rec := GetRecord(dec)
		codes, stamps, bodies = append(codes, ret), append(stamps, ts), append(bodies, rec)
		if ret == -1 {
			return
		}
	}
}

// The Go types fluent-bit-go's codec gives values, so a ported plugin's type switches and
// assertions keep working.
func TestGetRecordGivesFluentBitGosTypes(t *testing.T) {
	// [[EventTime(1700000000.5), {}], {"s":"v","p":1,"u":uint8 200,"n":-3,"i":int8 5,"f":1.5,"b":true,
	//   "z":nil,"a":[1],"m":{"k":"v"},"x":bin"\x01"}]
	chunk := "\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x80" +
		"\x8b\xa1s\xa1v\xa1p\x01\xa1u\xcc\xc8\xa1n\xfd\xa1i\xd0\x05\xa1f\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00" +
		"\xa1b\xc3\xa1z\xc0\xa1a\x91\x01\xa1m\x81\xa1k\xa1v\xa1x\xc4\x01\x01"
	codes, stamps, bodies := records(t, chunk)
	if len(codes) != 2 || codes[0] != 0 || codes[1] != -1 {
		t.Fatalf("expected one record then -1, got %v", codes)
	}
	ts, ok := stamps[0].(FLBTime)
	if !ok || !ts.Time.Equal(time.Unix(1_700_000_000, 500_000_000)) {
		t.Errorf("expected FLBTime 1700000000.5, got %#v", stamps[0])
	}
	r := bodies[0]
	if v, ok := r["s"].([]byte); !ok || !bytes.Equal(v, []byte("v")) {
		t.Errorf("strings are []byte: %#v", r["s"])
	}
	if r["p"] != int64(1) || r["u"] != uint64(200) || r["n"] != int64(-3) || r["i"] != int64(5) {
		t.Errorf("integers: positive fixint and signed as int64, unsigned as uint64: %#v %#v %#v %#v", r["p"], r["u"], r["n"], r["i"])
	}
	if r["f"] != 1.5 || r["b"] != true || r["z"] != nil {
		t.Errorf("float, bool, nil: %#v %#v %#v", r["f"], r["b"], r["z"])
	}
	if a, ok := r["a"].([]interface{}); !ok || len(a) != 1 || a[0] != int64(1) {
		t.Errorf("arrays are []interface{}: %#v", r["a"])
	}
	if m, ok := r["m"].(map[interface{}]interface{}); !ok || !bytes.Equal(m["k"].([]byte), []byte("v")) {
		t.Errorf("maps are map[interface{}]interface{} with string keys: %#v", r["m"])
	}
	if x, ok := r["x"].([]byte); !ok || !bytes.Equal(x, []byte{1}) {
		t.Errorf("binaries are []byte: %#v", r["x"])
	}
}

func TestGetRecordReturnCodes(t *testing.T) {
	cases := []struct {
		chunk string
		code  int
	}{
		{"\x93\x01\x02\x03", -2},                         // not an array of 2
		{"\x92\xce\x65\x53\xf1\x00\xa1x", -3},            // body not a map
		{"\x92\x91\x01\x80", -4},                         // header of 1
		{"\x92\x01\x80", -5},                             // a positive fixint time is int64 to the codec
		{"\x92\xce\x65\x53\xf1\x00\x80", 0},              // uint32 time
		{"\x92\xc1", -1},                                 // malformed
		{"\x92\xce\x65\x53\xf1\x00\x81\xa1k", -1},        // a body that ends inside a map
		{"\x92\xce\x65\x53\xf1\x00\x81\x91\x01\x02", -1}, // an array as a map key
	}
	for _, c := range cases {
		codes, stamps, _ := records(t, c.chunk)
		if codes[0] != c.code {
			t.Errorf("%q: expected %d, got %d", c.chunk, c.code, codes[0])
		}
		if c.code == 0 && stamps[0] != uint64(1_700_000_000) {
			t.Errorf("%q: expected uint64 time, got %#v", c.chunk, stamps[0])
		}
	}
}

// A metrics chunk captured from the agent's fluentbit_metrics input: one record per cmetrics
// context, the decoded map with the time of decoding, as fluent-bit-go gives metrics.
func TestGetRecordGivesAMetricsChunksContexts(t *testing.T) {
	chunk, err := os.ReadFile("../../../../format/tests/data/fluentbit_metrics.msgpack")
	if err != nil {
		t.Fatalf("failed to read the captured chunk: %v", err)
	}
	before := time.Now()
	codes, stamps, bodies := records(t, string(chunk))
	if len(codes) != 2 || codes[0] != 0 || codes[1] != -1 {
		t.Fatalf("expected one context then -1, got %v", codes)
	}
	if ts, ok := stamps[0].(FLBTime); !ok || ts.Time.Before(before) {
		t.Errorf("expected the time of decoding as an FLBTime, got %#v", stamps[0])
	}
	meta, ok := bodies[0]["meta"].(map[interface{}]interface{})
	if !ok {
		t.Fatalf("the context has a meta map: %#v", bodies[0]["meta"])
	}
	if _, ok := meta["cmetrics"]; !ok {
		t.Errorf("meta holds cmetrics' own metadata: %#v", meta)
	}
	metrics, ok := bodies[0]["metrics"].([]interface{})
	if !ok || len(metrics) == 0 {
		t.Fatalf("the context has a list of metrics: %#v", bodies[0]["metrics"])
	}
	found := false
	for _, m := range metrics {
		opts, _ := m.(map[interface{}]interface{})["meta"].(map[interface{}]interface{})["opts"].(map[interface{}]interface{})
		if name, ok := opts["name"].([]byte); ok && string(name) == "uptime" {
			found = true
		}
	}
	if !found {
		t.Errorf("the agent's uptime is among the metrics: %#v", metrics)
	}
}

// A traces chunk: one record per ctraces context; zero bytes after the last one end the chunk.
func TestGetRecordGivesATracesChunksContextsAndSkipsPadding(t *testing.T) {
	chunk, err := os.ReadFile("../../../../format/tests/data/v1_traces.msgpack")
	if err != nil {
		t.Fatalf("failed to read the captured chunk: %v", err)
	}
	codes, _, bodies := records(t, string(chunk)+"\x00\x00\x00")
	if len(codes) != 2 || codes[0] != 0 || codes[1] != -1 {
		t.Fatalf("expected one context then -1, got %v", codes)
	}
	if spans, ok := bodies[0]["resourceSpans"].([]interface{}); !ok || len(spans) == 0 {
		t.Errorf("the context has resourceSpans: %#v", bodies[0])
	}
}
