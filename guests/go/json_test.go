package outwasm

import (
	"math"
	"strings"
	"testing"
)

func json(v Value, escape bool) string { return string(AppendJSON(nil, v, escape)) }

func TestFloatsRenderLikePrintf(t *testing.T) {
	cases := []struct {
		f    float64
		want string
	}{
		{1.0, "1.0"}, {math.Copysign(0, -1), "-0.0"}, {0.1, "0.1"}, {1.5, "1.5"},
		{1700000000.123456, "1700000000.123456"}, {1e20, "1e+20"}, {1.0e300, "1e+300"}, {0.0001, "0.0001"},
		{0.00001234, "1.234e-05"}, {math.Pi, "3.141592653589793"}, {float64(float32(2.0)) / 3.0, "0.6666666666666666"},
		{9.223372036854776e18, "9.223372036854776e+18"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
		{math.NaN(), "nan"}, {123456789.5, "123456789.5"}, {1e15 + 0.5, "1000000000000000"},
		{-2.5e-7, "-2.5e-07"}, {1234567890123456.7, "1234567890123457"},
	}
	for _, c := range cases {
		if got := json(MakeFloat(c.f), true); got != c.want {
			t.Errorf("rendering %v: expected %s, got %s", c.f, c.want, got)
		}
	}
}

func TestStringsEscapeLikeTheAgent(t *testing.T) {
	cases := []struct {
		in     string
		escape bool
		want   string
	}{
		{"tab\there \"q\" \\ /", true, `"tab\there \"q\" \\ /"`},
		{"\x00\x01\x08\x0b\x0c\x7f", true, `"\u0000\u0001\b\u000b\f\u007f"`},
		{"ünï", true, `"\u00fcn\u00ef"`},
		{"ünï", false, `"ünï"`},
		{"😀", true, `"\ud83d\ude00"`},
		// 0xff announces a 6-byte sequence: with fewer bytes left the agent drops it...
		{"a\xffb", true, `"ab"`},
		// ...with enough left, the decoder rejects it and maps the byte to U+E0FF.
		{"a\xffbcdefg", true, "\"a\ue0ffbcdefg\""},
		{"a\xffb", false, "\"a\ufffdb\""},
		{"cut\xe2\x82", true, "\"cut\ue082\""},
	}
	for _, c := range cases {
		if got := json(MakeStr([]byte(c.in)), c.escape); got != c.want {
			t.Errorf("rendering %q (escape_unicode %v): expected %s, got %s", c.in, c.escape, c.want, got)
		}
	}
}

// mp decodes one msgpack value from hex-free bytes.
func mp(t *testing.T, b string) Value {
	t.Helper()
	r := reader{buf: []byte(b)}
	v, err := r.value(0)
	if err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

func TestMapsDropEarlierRepeatedKeysAndExtPrintsSignedBytes(t *testing.T) {
	// {"a":1,"b":-2,"a":nil}
	if got, want := json(mp(t, "\x83\xa1a\x01\xa1b\xfe\xa1a\xc0"), true), `{"b":-2,"a":null}`; got != want {
		t.Errorf("expected %s, got %s", want, got)
	}
	if got, want := json(mp(t, "\xd5\x05\x01\x80"), true), `"\x01\xffffff80"`; got != want {
		t.Errorf("expected %s, got %s", want, got)
	}
	v := mp(t, "\x83\xa1a\x01\xa1b\xfe\xa1a\xc0")
	if got, ok := v.Get("a"); !ok || got.Kind() != Nil {
		t.Errorf("Get returns the last of repeated keys, got %v %v", got, ok)
	}
}

func TestCalendarDates(t *testing.T) {
	ts := Timestamp{Seconds: 1_700_000_000, Nanoseconds: 123_456_789}
	e := Event{Timestamp: ts, Metadata: emptyMap, Body: mp(t, "\x80")}
	for format, want := range map[DateFormat]string{
		DateISO8601: `{"date":"2023-11-14T22:13:20.123456Z"}`, DateJavaSQLTimestamp: `{"date":"2023-11-14 22:13:20.123456"}`,
		DateEpoch: `{"date":1700000000}`, DateEpochMs: `{"date":1700000000123}`, DateDouble: `{"date":1700000000.123457}`,
	} {
		f := AgentJSONLines()
		f.DateFormat = format
		if got := string(f.Append(nil, &e)); got != want+"\n" {
			t.Errorf("format %d: expected %s, got %s", format, want, got)
		}
	}
	if y, mo, d, _, _, _ := civil(951_782_400); y != 2000 || mo != 2 || d != 29 {
		t.Errorf("expected 2000-02-29, got %d-%d-%d", y, mo, d)
	}
	if y, mo, d, h, mi, s := civil(-1); y != 1969 || mo != 12 || d != 31 || h != 23 || mi != 59 || s != 59 {
		t.Errorf("expected 1969-12-31 23:59:59, got %d-%d-%d %d:%d:%d", y, mo, d, h, mi, s)
	}
}

func TestLinesCarryMetadataGroupsAndTheLogKey(t *testing.T) {
	chunk := "\x92\x92\xd7\x00\xff\xff\xff\xff\x00\x00\x00\x00\x80\x81\xa1g\x01" + // group start {"g":1}
		"\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\xa5plain" + // metadata, body not a map
		"\x92\x92\xd7\x00\xff\xff\xff\xfe\x00\x00\x00\x00\x80\x80" + // group end
		"\x92\xce\x65\x53\xf1\x00\x82\xa4date\x01\xa1k\xa1v" // forward layout, a body key "date"
	var out []byte
	f := AgentJSONLines()
	for e, err := range Events([]byte(chunk)) {
		if err != nil {
			t.Fatal(err)
		}
		out = f.Append(out, &e)
	}
	want := `{"date":1700000000.5,"__internal__":{"group_attributes":{"g":1},"log_metadata":{"m":1}},"log":"plain"}` + "\n" +
		`{"date":1,"k":"v"}` + "\n"
	if string(out) != want {
		t.Errorf("expected\n%s\ngot\n%s", want, out)
	}
}

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

func FuzzDecodeAndRender(f *testing.F) {
	f.Add([]byte("\x92\x92\xd7\x00\x65\x53\xf1\x00\x1d\xcd\x65\x00\x81\xa1m\x01\x81\xa1k\xa1v"))
	f.Fuzz(func(t *testing.T, chunk []byte) {
		n := 0
		lines := AgentJSONLines()
		iso := &JSONLines{DateFormat: DateISO8601}
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
			lines.Append(nil, &e)
			iso.Append(nil, &e)
		}
	})
}
