package outwasm

import (
	"strings"
	"testing"
)

func TestEveryTruncationIsAnErrorWithAnOffsetInsideTheChunk(t *testing.T) {
	record := "\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\x81\xa1k\xa1v"
	for cut := 1; cut < len(record); cut++ {
		n := 0
		for _, err := range Events([]byte(record[:cut])) {
			n++
			if err == nil {
				t.Fatalf("cut at %d: a truncated record decoded", cut)
			}
			de := err.(*DecodeError)
			if de.Offset > cut || !strings.HasPrefix(err.Error(), "malformed chunk at byte offset") {
				t.Errorf("cut at %d: %v", cut, err)
			}
		}
		if n != 1 {
			t.Errorf("cut at %d: expected one error, got %d items", cut, n)
		}
	}
}

func TestNamesWhatIsWrongAndWhere(t *testing.T) {
	cases := []struct {
		chunk  string
		offset int
		reason string
	}{
		{"\x81\xa1k\xa1v", 0, "record is not an array"},
		{"\x93\x01\x02\x03", 0, "array of 3, not 2"},
		{"\x92\xa1x\x80", 1, "timestamp is a string"},
		{"\x92\xd6\x05\x00\x00\x00\x00\x80", 1, "extension type 5"},
		{"\x92\x01\xdd\xff\xff\xff\xff", 2, "truncated: array of 4294967295 entries"},
		{"\x92\x01" + strings.Repeat("\x91", 100_000) + "\xc0", 259, "nesting deeper than"},
	}
	for _, c := range cases {
		for _, err := range Events([]byte(c.chunk)) {
			de, ok := err.(*DecodeError)
			if !ok || de.Offset != c.offset || !strings.Contains(de.Reason, c.reason) {
				t.Errorf("expected %q at %d, got %v", c.reason, c.offset, err)
			}
		}
	}
}

func TestEveryTimestampEncoding(t *testing.T) {
	cases := map[string]Timestamp{
		"\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x80\x80": {1_700_000_000, 500_000_000},
		"\x92\xce\x65\x53\xf1\x00\x80":                             {1_700_000_000, 0},
		"\x92\xcb\x41\xd9\x54\xfc\x40\x10\x00\x00\x80":             {1_700_000_000, 250_000_000},
		"\x92\xd3\xff\xff\xff\xff\xff\xff\xff\xfd\x80":             {-3, 0},
	}
	for chunk, want := range cases {
		for e, err := range Events([]byte(chunk)) {
			if err != nil || e.Timestamp != want {
				t.Errorf("%q: expected %v, got %v (%v)", chunk, want, e.Timestamp, err)
			}
			if e.Metadata.Kind() != Map || e.Metadata.Len() != 0 && chunk[1] != 0x92 {
				t.Errorf("%q: metadata %v", chunk, e.Metadata)
			}
		}
	}
}

// The agent's semantics that a decoder into Go maps and strings would lose: repeated keys all
// kept in wire order (Get finds the last, as the agent prints it), invalid UTF-8 kept as it is,
// extension values with their type and raw payload, and the encoding each value had.
func TestRepeatedKeysInvalidUTF8AndExtensionsAreKept(t *testing.T) {
	// [[EventTime, {}], {"k": 1, "s": "\xff\xfe", "k": 2, "x": ext(-5, 01 02)}]
	chunk := "\x92\x92\xd7\x00\x65\x53\xf1\x00\x00\x00\x00\x00\x80" +
		"\x84\xa1k\x01\xa1s\xa2\xff\xfe\xa1k\xcc\x02\xa1x\xd5\xfb\x01\x02"
	for e, err := range Events([]byte(chunk)) {
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range e.Body.Entries() {
			keys = append(keys, k.String())
		}
		if strings.Join(keys, ",") != "k,s,k,x" {
			t.Errorf("keys %v", keys)
		}
		if k, _ := e.Body.Get("k"); k.Uint() != 2 || k.Marker() != 0xcc {
			t.Errorf("the last k: %v", k)
		}
		if s, _ := e.Body.Get("s"); string(s.Bytes()) != "\xff\xfe" {
			t.Errorf("s: %q", s.Bytes())
		}
		if x, _ := e.Body.Get("x"); x.Kind() != Ext || x.ExtType() != -5 || string(x.Bytes()) != "\x01\x02" {
			t.Errorf("x: %v", x)
		}
	}
}

// walk visits every value under v, as a guest reading a whole record does.
func walk(v Value) int {
	n := 1
	switch v.Kind() {
	case Array:
		for item := range v.Items() {
			n += walk(item)
		}
	case Map:
		for k, val := range v.Entries() {
			n += walk(k) + walk(val)
		}
	}
	return n
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\x81\xa1k\xa1v"))
	f.Fuzz(func(t *testing.T, chunk []byte) {
		n := 0
		for e, err := range Events(chunk) {
			if n++; n > len(chunk) {
				t.Fatal("more records than bytes: the decoder loops")
			}
			if err != nil {
				if de := err.(*DecodeError); de.Offset > len(chunk) {
					t.Fatalf("offset %d past the end of %d bytes", de.Offset, len(chunk))
				}
				continue
			}
			walk(e.Metadata)
			walk(e.Body)
		}
	})
}

// BenchmarkDecode decodes the languages bench's record (tests/e2e/benches/languages.rs) and
// visits every value, natively: what the same code costs outside the sandbox.
func BenchmarkDecode(b *testing.B) {
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
	var e Event
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		d := NewDecoder(chunk)
		for {
			ok, err := d.Next(&e)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			walk(e.Body)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "records/s")
}
