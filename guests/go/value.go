package outwasm

import (
	"encoding/binary"
	"iter"
	"math"
	"strconv"
)

// Kind is the msgpack type of a Value.
type Kind uint8

const (
	Nil   Kind = iota
	Bool       // Value.Bool
	Int        // a signed msgpack integer (int 8 to int 64, negative fixint): Value.Int
	Uint       // an unsigned one (uint 8 to uint 64, positive fixint): Value.Uint or Value.Int
	Float      // float 32 (widened) or float 64: Value.Float
	Str        // Value.Bytes: UTF-8 by convention, not validated
	Bin        // Value.Bytes
	Array      // Value.Items
	Map        // Value.Entries
	Ext        // Value.ExtType and Value.Bytes
)

// Value is one msgpack value, borrowed from the chunk: strings, binaries, extension payloads and
// the items of arrays and maps are views into the chunk's bytes, which live until Flush returns.
// Copy what must outlive the call (Value.String copies).
type Value struct {
	kind Kind
	ext  int8
	// marker is the value's first byte on the wire.
	marker byte
	// Items of an array, entries of a map.
	count uint32
	// Bool (0/1), Int (as int64 bits), Uint, Float (as float64 bits).
	num uint64
	// Str, Bin and Ext payloads; the encoded items of an array or map.
	raw []byte
}

// Kind says which of the accessors applies.
func (v Value) Kind() Kind { return v.kind }

// Marker is the first byte of the value's msgpack encoding, which tells apart the encodings of
// one kind (positive fixint from uint 8, float 32 from float 64...).
func (v Value) Marker() byte { return v.marker }

// Bool is the value of a Bool.
func (v Value) Bool() bool { return v.kind == Bool && v.num != 0 }

// Int is the value of an Int or a Uint (a Uint above math.MaxInt64 wraps).
func (v Value) Int() int64 { return int64(v.num) }

// Uint is the value of a Uint.
func (v Value) Uint() uint64 { return v.num }

// Float is the value of a Float.
func (v Value) Float() float64 { return math.Float64frombits(v.num) }

// Bytes is the payload of a Str, Bin or Ext, borrowed from the chunk.
func (v Value) Bytes() []byte {
	switch v.kind {
	case Str, Bin, Ext:
		return v.raw
	}
	return nil
}

// String is a copy of a Str's bytes (not validated as UTF-8), or "" for other kinds.
func (v Value) String() string {
	if v.kind != Str {
		return ""
	}
	return string(v.raw)
}

// ExtType is the type of an Ext.
func (v Value) ExtType() int8 { return v.ext }

// Len is the number of items of an Array or entries of a Map.
func (v Value) Len() int {
	if v.kind == Array || v.kind == Map {
		return int(v.count)
	}
	return 0
}

// Items are the items of an Array, in order.
func (v Value) Items() iter.Seq[Value] {
	return func(yield func(Value) bool) {
		if v.kind != Array {
			return
		}
		r := reader{buf: v.raw}
		for range v.count {
			if !yield(r.reread()) {
				return
			}
		}
	}
}

// Entries are the entries of a Map in wire order; repeated keys are all yielded.
func (v Value) Entries() iter.Seq2[Value, Value] {
	return func(yield func(Value, Value) bool) {
		if v.kind != Map {
			return
		}
		r := reader{buf: v.raw}
		for range v.count {
			k := r.reread()
			if !yield(k, r.reread()) {
				return
			}
		}
	}
}

// Get is the value under string key `key` of a Map (the last one, if the key repeats).
func (v Value) Get(key string) (Value, bool) {
	var found Value
	ok := false
	for k, val := range v.Entries() {
		if k.kind == Str && string(k.raw) == key {
			found, ok = val, true
		}
	}
	return found, ok
}

// Describe names the kind of value, for messages.
func (v Value) Describe() string {
	return [...]string{"nil", "a boolean", "an integer", "an integer", "a float", "a string", "a binary",
		"an array", "a map", "an extension"}[v.kind]
}

// MakeStr is a Str value of b (not copied), for building lines with the SDK's writers.
func MakeStr(b []byte) Value { return Value{kind: Str, raw: b} }

// MakeUint is a Uint value.
func MakeUint(n uint64) Value { return Value{kind: Uint, num: n} }

// MakeFloat is a Float value.
func MakeFloat(f float64) Value { return Value{kind: Float, num: math.Float64bits(f)} }

// maxDepth bounds nesting: a hostile chunk must not exhaust the guest's stack.
const maxDepth = 256

// DecodeError is a chunk that is not well-formed msgpack records. It names where decoding
// stopped.
type DecodeError struct {
	// Offset is the byte offset into the chunk.
	Offset int
	Reason string
}

func (e *DecodeError) Error() string {
	return "malformed chunk at byte offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

type reader struct {
	buf []byte
	pos int
	// base is the offset of buf in the chunk, for error offsets.
	base int
}

func (r *reader) fail(at int, reason string) *DecodeError {
	return &DecodeError{Offset: r.base + at, Reason: reason}
}

func (r *reader) need(n uint64, what string) *DecodeError {
	if left := uint64(len(r.buf) - r.pos); left < n {
		return r.fail(r.pos, "truncated: "+what+" needs "+strconv.FormatUint(n, 10)+" bytes, "+
			strconv.FormatUint(left, 10)+" left")
	}
	return nil
}

func (r *reader) fixed(n int, what string) (uint64, *DecodeError) {
	if err := r.need(uint64(n), what); err != nil {
		return 0, err
	}
	b := r.buf[r.pos : r.pos+n]
	r.pos += n
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	default:
		return binary.BigEndian.Uint64(b), nil
	}
}

func (r *reader) bytes(kind Kind, n uint64, what string) (Value, *DecodeError) {
	if err := r.need(n, what); err != nil {
		return Value{}, err
	}
	v := Value{kind: kind, raw: r.buf[r.pos : r.pos+int(n) : r.pos+int(n)]}
	r.pos += int(n)
	return v, nil
}

func (r *reader) ext(n uint64) (Value, *DecodeError) {
	t, err := r.fixed(1, "an extension type")
	if err != nil {
		return Value{}, err
	}
	v, err := r.bytes(Ext, n, "an extension payload")
	v.ext = int8(t)
	return v, err
}

func (r *reader) container(kind Kind, count uint64, depth int, at int) (Value, *DecodeError) {
	values := count
	name := "array"
	if kind == Map {
		values *= 2
		name = "map"
	}
	// Every value takes at least one byte: a count beyond the rest of the chunk is a lie.
	if left := uint64(len(r.buf) - r.pos); values > left {
		return Value{}, r.fail(at, "truncated: "+name+" of "+strconv.FormatUint(count, 10)+" entries, only "+
			strconv.FormatUint(left, 10)+" bytes left")
	}
	start := r.pos
	for range values {
		if _, err := r.value(depth + 1); err != nil {
			return Value{}, err
		}
	}
	return Value{kind: kind, count: uint32(count), raw: r.buf[start:r.pos:r.pos]}, nil
}

func (r *reader) value(depth int) (Value, *DecodeError) {
	at := r.pos
	v, err := r.decode(depth)
	if err == nil {
		v.marker = r.buf[at]
	}
	return v, err
}

func (r *reader) decode(depth int) (Value, *DecodeError) {
	at := r.pos
	if depth > maxDepth {
		return Value{}, r.fail(at, "nesting deeper than "+strconv.Itoa(maxDepth)+" levels")
	}
	if err := r.need(1, "a marker"); err != nil {
		return Value{}, err
	}
	b := r.buf[r.pos]
	r.pos++
	switch {
	case b <= 0x7f:
		return Value{kind: Uint, num: uint64(b)}, nil
	case b >= 0xe0:
		return Value{kind: Int, num: uint64(int64(int8(b)))}, nil
	case b >= 0xa0 && b <= 0xbf:
		return r.bytes(Str, uint64(b&0x1f), "a string")
	case b >= 0x80 && b <= 0x8f:
		return r.container(Map, uint64(b&0x0f), depth, at)
	case b >= 0x90 && b <= 0x9f:
		return r.container(Array, uint64(b&0x0f), depth, at)
	}
	var n uint64
	var err *DecodeError
	switch b {
	case 0xc0:
		return Value{kind: Nil}, nil
	case 0xc2:
		return Value{kind: Bool}, nil
	case 0xc3:
		return Value{kind: Bool, num: 1}, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		n, err = r.fixed(1<<(b-0xcc), "an unsigned integer")
		return Value{kind: Uint, num: n}, err
	case 0xd0:
		n, err = r.fixed(1, "an i8")
		return Value{kind: Int, num: uint64(int64(int8(n)))}, err
	case 0xd1:
		n, err = r.fixed(2, "an i16")
		return Value{kind: Int, num: uint64(int64(int16(n)))}, err
	case 0xd2:
		n, err = r.fixed(4, "an i32")
		return Value{kind: Int, num: uint64(int64(int32(n)))}, err
	case 0xd3:
		n, err = r.fixed(8, "an i64")
		return Value{kind: Int, num: n}, err
	case 0xca:
		n, err = r.fixed(4, "a f32")
		return Value{kind: Float, num: math.Float64bits(float64(math.Float32frombits(uint32(n))))}, err
	case 0xcb:
		n, err = r.fixed(8, "a f64")
		return Value{kind: Float, num: n}, err
	case 0xd9, 0xda, 0xdb:
		if n, err = r.fixed(1<<(b-0xd9), "a string length"); err != nil {
			return Value{}, err
		}
		return r.bytes(Str, n, "a string")
	case 0xc4, 0xc5, 0xc6:
		if n, err = r.fixed(1<<(b-0xc4), "a binary length"); err != nil {
			return Value{}, err
		}
		return r.bytes(Bin, n, "a binary")
	case 0xdc, 0xdd:
		if n, err = r.fixed(2<<(b-0xdc), "an array length"); err != nil {
			return Value{}, err
		}
		return r.container(Array, n, depth, at)
	case 0xde, 0xdf:
		if n, err = r.fixed(2<<(b-0xde), "a map length"); err != nil {
			return Value{}, err
		}
		return r.container(Map, n, depth, at)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return r.ext(1 << (b - 0xd4))
	case 0xc7, 0xc8, 0xc9:
		if n, err = r.fixed(1<<(b-0xc7), "an extension length"); err != nil {
			return Value{}, err
		}
		return r.ext(n)
	}
	return Value{}, r.fail(at, "reserved msgpack marker 0xc1")
}

// reread decodes a value already validated by the decoder: it cannot fail. A container's items
// are skipped without being decoded again.
func (r *reader) reread() Value {
	at := r.pos
	b := r.buf[at]
	var count uint64
	kind := Array
	switch {
	case b >= 0x80 && b <= 0x8f:
		kind, count = Map, uint64(b&0x0f)
		r.pos++
	case b >= 0x90 && b <= 0x9f:
		count = uint64(b & 0x0f)
		r.pos++
	case b == 0xdc || b == 0xde:
		count = uint64(binary.BigEndian.Uint16(r.buf[at+1:]))
		r.pos += 3
	case b == 0xdd || b == 0xdf:
		count = uint64(binary.BigEndian.Uint32(r.buf[at+1:]))
		r.pos += 5
	default:
		v, _ := r.value(0)
		return v
	}
	if b >= 0xde || b <= 0x8f {
		kind = Map
	}
	start := r.pos
	values := count
	if kind == Map {
		values *= 2
	}
	for range values {
		r.skip()
	}
	return Value{kind: kind, marker: b, count: uint32(count), raw: r.buf[start:r.pos:r.pos]}
}

// skip steps over a value already validated by the decoder.
func (r *reader) skip() {
	b := r.buf[r.pos]
	r.pos++
	var n uint64
	switch {
	case b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3:
		return
	case b >= 0xa0 && b <= 0xbf:
		r.pos += int(b & 0x1f)
		return
	case b >= 0x80 && b <= 0x8f:
		n = uint64(b&0x0f) * 2
	case b >= 0x90 && b <= 0x9f:
		n = uint64(b & 0x0f)
	case b >= 0xcc && b <= 0xcf:
		r.pos += 1 << (b - 0xcc)
		return
	case b >= 0xd0 && b <= 0xd3:
		r.pos += 1 << (b - 0xd0)
		return
	case b == 0xca:
		r.pos += 4
		return
	case b == 0xcb:
		r.pos += 8
		return
	case b >= 0xd4 && b <= 0xd8:
		r.pos += 1 + 1<<(b-0xd4)
		return
	case b == 0xd9 || b == 0xc4:
		r.pos += 1 + int(r.buf[r.pos])
		return
	case b == 0xda || b == 0xc5:
		r.pos += 2 + int(binary.BigEndian.Uint16(r.buf[r.pos:]))
		return
	case b == 0xdb || b == 0xc6:
		r.pos += 4 + int(binary.BigEndian.Uint32(r.buf[r.pos:]))
		return
	case b == 0xc7:
		r.pos += 2 + int(r.buf[r.pos])
		return
	case b == 0xc8:
		r.pos += 3 + int(binary.BigEndian.Uint16(r.buf[r.pos:]))
		return
	case b == 0xc9:
		r.pos += 5 + int(binary.BigEndian.Uint32(r.buf[r.pos:]))
		return
	case b == 0xdc:
		n = uint64(binary.BigEndian.Uint16(r.buf[r.pos:]))
		r.pos += 2
	case b == 0xdd:
		n = uint64(binary.BigEndian.Uint32(r.buf[r.pos:]))
		r.pos += 4
	case b == 0xde:
		n = uint64(binary.BigEndian.Uint16(r.buf[r.pos:])) * 2
		r.pos += 2
	case b == 0xdf:
		n = uint64(binary.BigEndian.Uint32(r.buf[r.pos:])) * 2
		r.pos += 4
	}
	for range n {
		r.skip()
	}
}

// DecodeValue decodes the one msgpack value at the start of b: the value (borrowing from b) and
// the number of bytes it takes.
func DecodeValue(b []byte) (Value, int, error) {
	r := reader{buf: b}
	v, err := r.value(0)
	if err != nil {
		return Value{}, 0, err
	}
	return v, r.pos, nil
}
