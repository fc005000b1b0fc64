package outwasm

import "testing"

// BenchmarkJSONLines renders the languages bench's record (tests/e2e/benches/languages.rs),
// natively: what the same code costs outside the sandbox.
func BenchmarkJSONLines(b *testing.B) {
	// [[EventTime, {}], {"level":"info","msg":"request handled 12345","http":{"method":"GET",
	// "path":"/api/v1/items/12345","status":200,"latency_ms":42.125},"user":{"id":977,
	// "name":"user977"},"tags":["a","b"]}]
	record := "\x92\x92\xd7\x00\x65\x53\xf1\x00\x07\x5b\xcd\x15\x80\x85" +
		"\xa5level\xa4info\xa3msg\xb5request handled 12345" +
		"\xa4http\x84\xa6method\xa3GET\xa4path\xb3/api/v1/items/12345\xa6status\xcc\xc8" +
		"\xaalatency_ms\xcb\x40\x45\x10\x00\x00\x00\x00\x00" +
		"\xa4user\x82\xa2id\xcd\x03\xd1\xa4name\xa7user977\xa4tags\x92\xa1a\xa1b"
	var chunk []byte
	for range 256 {
		chunk = append(chunk, record...)
	}
	f := AgentJSONLines()
	var out []byte
	var e Event
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		out = out[:0]
		d := NewDecoder(chunk)
		for {
			ok, err := d.Next(&e)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			out = f.Append(out, &e)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "records/s")
}
