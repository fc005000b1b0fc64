package outwasm

// The agent's JSON rendering, ported from the Rust SDK (guests/rust/sdk/src/value.rs), which
// follows Fluent Bit 5.1's msgpack2json and flb_utils_write_str: the same number formats, the
// same escapes, the same handling of repeated keys and of bytes that are not UTF-8.

import (
	"math"
	"strconv"
)

// AppendJSON appends v as JSON rendered like the agent's msgpack2json. escapeUnicode mirrors
// the agent's json.escape_unicode (on by default: non-ASCII as \uXXXX).
func AppendJSON(dst []byte, v Value, escapeUnicode bool) []byte {
	w := jsonWriter{out: dst, escape: escapeUnicode}
	w.value(v)
	return w.out
}

type entry struct {
	key, value Value
	// internal marks the __internal__ entry of a line, whose value is built from the event.
	internal bool
}

type jsonWriter struct {
	out    []byte
	escape bool
	// entries is a stack of the maps being written, reused across values and lines.
	entries []entry
	event   *Event
}

func (w *jsonWriter) value(v Value) {
	switch v.kind {
	case Nil:
		w.out = append(w.out, "null"...)
	case Bool:
		if v.num != 0 {
			w.out = append(w.out, "true"...)
		} else {
			w.out = append(w.out, "false"...)
		}
	case Int:
		w.out = strconv.AppendInt(w.out, int64(v.num), 10)
	case Uint:
		w.out = strconv.AppendUint(w.out, v.num, 10)
	case Float:
		w.out = appendFloat(w.out, v.Float())
	case Str, Bin:
		w.str(v.raw)
	case Ext:
		w.out = append(w.out, '"')
		for _, b := range v.raw {
			// The agent prints each byte as a *signed* char with "\\x%02x".
			w.out = append(w.out, '\\', 'x')
			w.out = appendHex(w.out, uint32(int32(int8(b))), 2)
		}
		w.out = append(w.out, '"')
	case Array:
		w.out = append(w.out, '[')
		first := true
		for item := range v.Items() {
			if !first {
				w.out = append(w.out, ',')
			}
			w.value(item)
			first = false
		}
		w.out = append(w.out, ']')
	case Map:
		base := len(w.entries)
		for k, val := range v.Entries() {
			w.entries = append(w.entries, entry{key: k, value: val})
		}
		w.entries = w.writeEntries(base)
	}
}

// writeEntries writes entries[base:] as one object and pops them. Like the agent, an entry
// whose string key appears again later in the same map is left out: the last one wins, in its
// own position.
func (w *jsonWriter) writeEntries(base int) []entry {
	n := len(w.entries)
	written := false
	w.out = append(w.out, '{')
	for i := base; i < n; i++ {
		k := w.entries[i].key
		if k.kind == Str && w.repeatedLater(i, n, k.raw) {
			continue
		}
		if written {
			w.out = append(w.out, ',')
		}
		w.value(k)
		w.out = append(w.out, ':')
		if w.entries[i].internal {
			w.internal()
		} else {
			w.value(w.entries[i].value)
		}
		written = true
	}
	w.out = append(w.out, '}')
	return w.entries[:base]
}

func (w *jsonWriter) repeatedLater(i, n int, key []byte) bool {
	for j := i + 1; j < n; j++ {
		if later := w.entries[j].key; later.kind == Str && string(later.raw) == string(key) {
			return true
		}
	}
	return false
}

// internal writes {"group_attributes":..., "log_metadata":...}, the one value of a line that
// is not in the chunk.
func (w *jsonWriter) internal() {
	w.out = append(w.out, '{')
	if w.event.HasGroup {
		w.out = append(w.out, `"group_attributes":`...)
		w.value(w.event.GroupAttributes)
		w.out = append(w.out, ',')
	}
	w.out = append(w.out, `"log_metadata":`...)
	w.value(w.event.Metadata)
	w.out = append(w.out, '}')
}

const twoPow63 = 9223372036854775808.0

// appendFloat is "%.1f" for floats with an integral value in long long range, else "%.16g",
// as the agent prints them.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		if math.Signbit(f) {
			return append(dst, "-nan"...)
		}
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case math.Trunc(f) == f && f >= -twoPow63 && f < twoPow63:
		// An integral double in this range is exactly an int64.
		if f == 0 && math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		dst = strconv.AppendInt(dst, int64(f), 10)
		return append(dst, ".0"...)
	}
	// Go's %g with a precision picks fixed or exponent notation by the same rule as C's and
	// writes a two-digit exponent with its sign, as C does.
	return strconv.AppendFloat(dst, f, 'g', 16, 64)
}

const hexDigits = "0123456789abcdef"

func appendHex(dst []byte, v uint32, width int) []byte {
	var buf [8]byte
	i := len(buf)
	for v != 0 || len(buf)-i < width {
		i--
		buf[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return append(dst, buf[i:]...)
}

// asciiEscapes holds the agent's escape of each ASCII byte that needs one.
var asciiEscapes = func() (t [128]string) {
	for c := range 0x20 {
		t[c] = `\u00` + string(hexDigits[c>>4]) + string(hexDigits[c&0xf])
	}
	t['\b'], t['\t'], t['\n'], t['\f'], t['\r'] = `\b`, `\t`, `\n`, `\f`, `\r`
	t['"'], t['\\'], t[0x7f] = `\"`, `\\`, `\u007f`
	return t
}()

// plain marks the ASCII bytes copied as they are.
var plain = func() (t [256]bool) {
	for c := range 0x80 {
		t[c] = asciiEscapes[c] == ""
	}
	return t
}()

// str writes string bytes the way flb_utils_write_str does, quotes included.
func (w *jsonWriter) str(s []byte) {
	w.out = append(w.out, '"')
	i := 0
	for i < len(s) {
		run := i
		for run < len(s) && plain[s[run]] {
			run++
		}
		w.out = append(w.out, s[i:run]...)
		i = run
		if i >= len(s) {
			break
		}
		c := s[i]
		switch {
		case c < 0x80:
			w.out = append(w.out, asciiEscapes[c]...)
			i++
		case w.escape:
			i = w.escapedSequence(s, i)
		default:
			i = w.rawSequence(s, i)
		}
	}
	w.out = append(w.out, '"')
}

// rawSequence is json.escape_unicode off: valid UTF-8 is copied, each invalid byte becomes
// U+FFFD.
func (w *jsonWriter) rawSequence(s []byte, i int) int {
	n := utf8ValidateChar(s[i:])
	if n == 0 {
		w.out = append(w.out, "\uFFFD"...)
		return i + 1
	}
	w.out = append(w.out, s[i:i+n]...)
	return i + n
}

// escapedSequence is json.escape_unicode on (the agent's default): a valid sequence becomes
// \uXXXX (a surrogate pair above the BMP); a sequence cut short by the end of the string is
// dropped; the bytes of an invalid sequence each become U+E0XX (XX the byte), as UTF-8.
func (w *jsonWriter) escapedSequence(s []byte, start int) int {
	announced := utf8Len(s[start])
	if start+announced > len(s) {
		return start + 1
	}
	taken, valid, cp := decodePrefix(s[start:], announced)
	if valid {
		if cp > 0xffff {
			w.out = append(w.out, '\\', 'u')
			w.out = appendHex(w.out, 0xd800+((cp-0x10000)>>10), 4)
			w.out = append(w.out, '\\', 'u')
			w.out = appendHex(w.out, 0xdc00+((cp-0x10000)&0x3ff), 4)
		} else {
			w.out = append(w.out, '\\', 'u')
			w.out = appendHex(w.out, cp, 4)
		}
	} else {
		for _, b := range s[start : start+taken] {
			w.out = append(w.out, 0xee, 0x80|(b>>6), 0x80|(b&0x3f))
		}
	}
	return start + taken
}

// utf8Len is the length of the sequence a lead byte announces (flb_utf8_len): 1 for ASCII and
// stray continuation bytes, up to 6 for the obsolete 5- and 6-byte forms.
func utf8Len(lead byte) int {
	switch {
	case lead <= 0xbf:
		return 1
	case lead <= 0xdf:
		return 2
	case lead <= 0xef:
		return 3
	case lead <= 0xf7:
		return 4
	case lead <= 0xfb:
		return 5
	}
	return 6
}

// decodePrefix runs flb_utf8_decode over announced bytes: how many bytes it takes, and the code
// point when valid. It rejects surrogates and code points above U+10FFFF but, like the agent,
// not overlong forms. An invalid lead byte is taken alone; at an invalid continuation byte only
// the prefix before it is taken.
func decodePrefix(s []byte, announced int) (taken int, valid bool, cp uint32) {
	lead := s[0]
	var pending int
	switch {
	case lead&0xe0 == 0xc0:
		cp, pending = uint32(lead&0x1f), 1
	case lead&0xf0 == 0xe0:
		cp, pending = uint32(lead&0x0f), 2
	case lead&0xf8 == 0xf0:
		cp, pending = uint32(lead&0x07), 3
	default:
		return 1, false, 0
	}
	for n := 1; n < announced; n++ {
		if s[n]&0xc0 != 0x80 {
			return n, false, 0
		}
		cp = cp<<6 | uint32(s[n]&0x3f)
		if pending--; pending == 0 {
			if cp >= 0xd800 && cp <= 0xdfff || cp > 0x10ffff {
				return n, false, 0
			}
			return n + 1, true, cp
		}
	}
	return announced, false, 0
}

// utf8ValidateChar is flb_utf8_validate_char: the length of the valid UTF-8 sequence at the
// start of s, or 0.
func utf8ValidateChar(s []byte) int {
	c := s[0]
	hasSecond := len(s) > 1
	var second byte
	if hasSecond {
		second = s[1]
	}
	var n int
	switch {
	case c < 0x80:
		return 1
	case c&0xe0 == 0xc0:
		if c < 0xc2 {
			return 0
		}
		n = 2
	case c&0xf0 == 0xe0:
		if c == 0xe0 && hasSecond && second < 0xa0 || c == 0xed && hasSecond && second >= 0xa0 {
			return 0
		}
		n = 3
	case c&0xf8 == 0xf0:
		if c == 0xf0 && hasSecond && second < 0x90 || c > 0xf4 || c == 0xf4 && hasSecond && second > 0x8f {
			return 0
		}
		n = 4
	default:
		return 0
	}
	if len(s) < n {
		return 0
	}
	for _, b := range s[1:n] {
		if b&0xc0 != 0x80 {
			return 0
		}
	}
	return n
}
