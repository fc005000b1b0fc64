package outwasm

import (
	"errors"
	"iter"
	"math"
	"strconv"

	"github.com/tinylib/msgp/msgp"
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

// failed is the DecodeError for what tinylib/msgp refused at offset at: a value cut short by
// the end of the chunk, in words naming the value, or the library's own words.
func (r *reader) failed(at int, err error) *DecodeError {
	if errors.Is(err, msgp.ErrShortBytes) {
		return r.fail(at, "truncated: "+describeMarker(r.buf[at])+" runs past the end of the chunk ("+
			strconv.Itoa(len(r.buf)-at)+" bytes left)")
	}
	return r.fail(at, err.Error())
}

// describeMarker names the value a marker starts, for messages.
func describeMarker(b byte) string {
	switch msgp.NextType([]byte{b}) {
	case msgp.StrType:
		return "a string"
	case msgp.BinType:
		return "a binary"
	case msgp.ArrayType:
		return "an array"
	case msgp.MapType:
		return "a map"
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		return "an extension"
	case msgp.Float32Type, msgp.Float64Type:
		return "a float"
	}
	return "an integer"
}

// borrowed is an extension value whose payload stays a view of the chunk (tinylib/msgp hands
// an Extension the payload to unmarshal; keeping the slice copies nothing).
type borrowed struct {
	typ  int8
	data []byte
}

func (e *borrowed) ExtensionType() int8            { return e.typ }
func (e *borrowed) Len() int                       { return len(e.data) }
func (e *borrowed) MarshalBinaryTo([]byte) error   { return nil }
func (e *borrowed) UnmarshalBinary(b []byte) error { e.data = b; return nil }

// extType is the type byte of the extension at the start of b (0 when b is too short: the
// library then reports the truncation).
func extType(b []byte) int8 {
	at := map[byte]int{0xd4: 1, 0xd5: 1, 0xd6: 1, 0xd7: 1, 0xd8: 1, 0xc7: 2, 0xc8: 3, 0xc9: 5}[b[0]]
	if at == 0 || len(b) <= at {
		return 0
	}
	return int8(b[at])
}

func (r *reader) container(kind Kind, count uint32, depth int, at int) (Value, *DecodeError) {
	values := uint64(count)
	name := "array"
	if kind == Map {
		values *= 2
		name = "map"
	}
	// Every value takes at least one byte: a count beyond the rest of the chunk is a lie.
	if left := uint64(len(r.buf) - r.pos); values > left {
		return Value{}, r.fail(at, "truncated: "+name+" of "+strconv.FormatUint(uint64(count), 10)+
			" entries, only "+strconv.FormatUint(left, 10)+" bytes left")
	}
	start := r.pos
	for range values {
		if _, err := r.value(depth + 1); err != nil {
			return Value{}, err
		}
	}
	return Value{kind: kind, count: count, raw: r.buf[start:r.pos:r.pos]}, nil
}

func (r *reader) value(depth int) (Value, *DecodeError) {
	at := r.pos
	v, err := r.decode(depth)
	if err == nil {
		v.marker = r.buf[at]
	}
	return v, err
}

// decode reads one value with tinylib/msgp's zero-copy readers: strings, binaries and
// extension payloads are views of the chunk, strings are not checked as UTF-8, and maps are
// walked entry by entry by the caller, so repeated keys stay as they are on the wire.
func (r *reader) decode(depth int) (Value, *DecodeError) {
	at := r.pos
	if depth > maxDepth {
		return Value{}, r.fail(at, "nesting deeper than "+strconv.Itoa(maxDepth)+" levels")
	}
	b := r.buf[at:]
	if len(b) == 0 {
		return Value{}, r.fail(at, "truncated: a value expected, the chunk ends")
	}
	var (
		v    Value
		rest []byte
		err  error
	)
	switch t := msgp.NextType(b); t {
	case msgp.NilType:
		rest, err = msgp.ReadNilBytes(b)
	case msgp.BoolType:
		var on bool
		on, rest, err = msgp.ReadBoolBytes(b)
		v.kind = Bool
		if on {
			v.num = 1
		}
	case msgp.IntType, msgp.UintType:
		// The library calls a positive fixint an int; the agent (and Value) an unsigned one.
		if b[0] <= 0x7f || b[0] >= 0xcc && b[0] <= 0xcf {
			v.kind = Uint
			v.num, rest, err = msgp.ReadUint64Bytes(b)
		} else {
			var n int64
			n, rest, err = msgp.ReadInt64Bytes(b)
			v.kind, v.num = Int, uint64(n)
		}
	case msgp.Float32Type:
		var f float32
		f, rest, err = msgp.ReadFloat32Bytes(b)
		v.kind, v.num = Float, math.Float64bits(float64(f))
	case msgp.Float64Type:
		var f float64
		f, rest, err = msgp.ReadFloat64Bytes(b)
		v.kind, v.num = Float, math.Float64bits(f)
	case msgp.StrType:
		v.kind = Str
		v.raw, rest, err = msgp.ReadStringZC(b)
	case msgp.BinType:
		v.kind = Bin
		v.raw, rest, err = msgp.ReadBytesZC(b)
	case msgp.ArrayType, msgp.MapType:
		kind, read := Array, msgp.ReadArrayHeaderBytes
		if t == msgp.MapType {
			kind, read = Map, msgp.ReadMapHeaderBytes
		}
		var count uint32
		if count, rest, err = read(b); err != nil {
			return Value{}, r.failed(at, err)
		}
		r.pos = len(r.buf) - len(rest)
		return r.container(kind, count, depth, at)
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		// Every extension type is kept as it is (EventTime is type 0); the library's own
		// meanings of -1, 3 and 4 do not apply.
		e := borrowed{typ: extType(b)}
		rest, err = msgp.ReadExtensionBytes(b, &e)
		v.kind, v.ext, v.raw = Ext, e.typ, e.data[:len(e.data):len(e.data)]
	default:
		return Value{}, r.fail(at, "reserved msgpack marker 0x"+strconv.FormatUint(uint64(b[0]), 16))
	}
	if err != nil {
		return Value{}, r.failed(at, err)
	}
	r.pos = len(r.buf) - len(rest)
	return v, nil
}

// skip steps over a value already validated by the decoder.
func (r *reader) skip() {
	rest, _ := msgp.Skip(r.buf[r.pos:])
	r.pos = len(r.buf) - len(rest)
}

// reread decodes a value already validated by the decoder: it cannot fail. A container's items
// are skipped without being decoded again.
func (r *reader) reread() Value {
	at := r.pos
	b := r.buf[at:]
	t := msgp.NextType(b)
	if t != msgp.ArrayType && t != msgp.MapType {
		v, _ := r.value(0)
		return v
	}
	kind, read := Array, msgp.ReadArrayHeaderBytes
	if t == msgp.MapType {
		kind, read = Map, msgp.ReadMapHeaderBytes
	}
	count, rest, _ := read(b)
	start := len(r.buf) - len(rest)
	r.skip()
	return Value{kind: kind, marker: b[0], count: count, raw: r.buf[start:r.pos:r.pos]}
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
