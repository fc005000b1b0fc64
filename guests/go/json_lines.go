package outwasm

import (
	"fmt"
	"strings"
)

// DateFormat is how the date key of a JSON line shows the record's time (the agent's
// json_date_format).
type DateFormat uint8

const (
	// DateDouble is seconds as a float: 1700000000.123456.
	DateDouble DateFormat = iota
	// DateJavaSQLTimestamp is 2023-11-14 22:13:20.123456.
	DateJavaSQLTimestamp
	// DateISO8601 is 2023-11-14T22:13:20.123456Z.
	DateISO8601
	// DateEpoch is whole seconds: 1700000000.
	DateEpoch
	// DateEpochMs is milliseconds: 1700000000123.
	DateEpochMs
)

var dateFormats = []string{"double", "java_sql_timestamp", "iso8601", "epoch", "epoch_ms"}

// ParseDateFormat reads a json_date_format value (case-insensitive).
func ParseDateFormat(s string) (DateFormat, error) {
	for i, name := range dateFormats {
		if strings.EqualFold(s, name) {
			return DateFormat(i), nil
		}
	}
	return 0, fmt.Errorf("unknown date format %q (double, java_sql_timestamp, iso8601, epoch, epoch_ms)", s)
}

// JSONLines is the agent's json_lines format, set up from the same keys the agent's outputs
// take: json_date_key, json_date_format and escape_unicode.
type JSONLines struct {
	// DateKey is the key of the record time; "" leaves it out (json_date_key off).
	DateKey    string
	DateFormat DateFormat
	// EscapeUnicode is the agent's [SERVICE] json.escape_unicode: \uXXXX for non-ASCII when on.
	EscapeUnicode bool

	w jsonWriter
	// The date key's bytes (for DateKey keyBytesOf) and a buffer for the text dates, reused
	// across lines.
	keyBytes   []byte
	keyBytesOf string
	dateText   []byte
}

// AgentJSONLines is the agent's defaults: what the host renders for EventFormatJSONLines.
func AgentJSONLines() *JSONLines {
	return &JSONLines{DateKey: "date", DateFormat: DateDouble, EscapeUnicode: true}
}

// JSONLinesKeys are the three keys with the agent's defaults, for a guest's ConfigSchema.
func JSONLinesKeys() []ConfigKey {
	return []ConfigKey{
		{Name: "json_date_key", Description: "key of the record time; off to leave it out", Default: "date"},
		{Name: "json_date_format", Description: "double, epoch, epoch_ms, iso8601 or java_sql_timestamp",
			Default: "double"},
		{Name: "escape_unicode", Description: `on: write non-ASCII as \uXXXX like the agent; off: keep UTF-8`,
			Default: "on"},
	}
}

func parseSwitch(key, value string) (bool, error) {
	switch strings.ToLower(value) {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("invalid value %q for key '%s': expected on or off", value, key)
}

// JSONLinesFromConfig reads the three keys; an invalid value is an error naming the key.
func JSONLinesFromConfig(config Config) (*JSONLines, error) {
	f := AgentJSONLines()
	if key, ok := config.Get("json_date_key"); ok {
		// Like the agent: a boolean-looking "false" disables the key, anything else names it.
		if on, err := parseSwitch("json_date_key", key); err == nil && !on {
			key = ""
		}
		f.DateKey = key
	}
	if format, ok := config.Get("json_date_format"); ok {
		var err error
		if f.DateFormat, err = ParseDateFormat(format); err != nil {
			return nil, fmt.Errorf("invalid value %q for key 'json_date_format': %w", format, err)
		}
	}
	if escape, ok := config.Get("escape_unicode"); ok {
		var err error
		if f.EscapeUnicode, err = parseSwitch("escape_unicode", escape); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// IsDefault is true for the agent's defaults: the lines the host renders for
// EventFormatJSONLines.
func (f *JSONLines) IsDefault() bool {
	return f.DateKey == "date" && f.DateFormat == DateDouble && f.EscapeUnicode
}

// Append appends e as one line, newline included, exactly as the agent's format json_lines
// (stdout, file and http outputs) writes it: the date under DateKey, then __internal__ when the
// record has metadata or group attributes, then the body's keys, with the agent's rule for
// repeated keys applied across all of them.
func (f *JSONLines) Append(dst []byte, e *Event) []byte {
	w := &f.w
	w.out, w.escape, w.event = dst, f.EscapeUnicode, e
	entries := w.entries[:0]
	if f.DateKey != "" {
		if f.keyBytesOf != f.DateKey {
			f.keyBytes, f.keyBytesOf = []byte(f.DateKey), f.DateKey
		}
		entries = append(entries, entry{key: MakeStr(f.keyBytes), value: f.date(e.Timestamp)})
	}
	if e.Metadata.kind == Map && e.Metadata.count > 0 || e.HasGroup && e.GroupAttributes.kind == Map &&
		e.GroupAttributes.count > 0 {
		entries = append(entries, entry{key: MakeStr(internalKey), internal: true})
	}
	if e.Body.kind == Map {
		for k, v := range e.Body.Entries() {
			entries = append(entries, entry{key: k, value: v})
		}
	} else {
		entries = append(entries, entry{key: MakeStr(logKey), value: e.Body})
	}
	w.entries = entries
	w.entries = w.writeEntries(0)
	w.out = append(w.out, '\n')
	out := w.out
	w.out, w.event = nil, nil
	return out
}

var (
	internalKey = []byte("__internal__")
	logKey      = []byte("log")
)

func (f *JSONLines) date(ts Timestamp) Value {
	switch f.DateFormat {
	case DateDouble:
		return MakeFloat(ts.Float())
	case DateEpoch:
		return MakeUint(uint64(ts.Seconds))
	case DateEpochMs:
		return MakeUint(uint64(ts.Seconds)*1000 + uint64(ts.Nanoseconds/1_000_000))
	}
	y, mo, d, h, mi, s := civil(ts.Seconds)
	sep, zone := byte(' '), ""
	if f.DateFormat == DateISO8601 {
		sep, zone = 'T', "Z"
	}
	text := appendPadded(f.dateText[:0], y, 4)
	text = append(text, '-')
	text = appendPadded(text, mo, 2)
	text = append(text, '-')
	text = appendPadded(text, d, 2)
	text = append(text, sep)
	text = appendPadded(text, h, 2)
	text = append(text, ':')
	text = appendPadded(text, mi, 2)
	text = append(text, ':')
	text = appendPadded(text, s, 2)
	text = append(text, '.')
	text = appendPadded(text, int64(ts.Nanoseconds/1000), 6)
	text = append(text, zone...)
	f.dateText = text
	return MakeStr(text)
}

// appendPadded is printf's %0<width>lld.
func appendPadded(dst []byte, n int64, width int) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
		width--
	}
	var buf [20]byte
	i := len(buf)
	for n != 0 || len(buf)-i < width {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, buf[i:]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// civil is the UTC calendar fields of seconds since the epoch (proleptic Gregorian, Howard
// Hinnant's civil_from_days).
func civil(seconds int64) (year, month, day, hour, minute, second int64) {
	days := floorDiv(seconds, 86400)
	secs := seconds - days*86400
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	if mp >= 10 {
		month = mp - 9
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day, secs / 3600, secs / 60 % 60, secs % 60
}
