package output

import (
	"encoding/binary"
	"errors"
	"time"
	"unsafe"

	"github.com/tinylib/msgp/msgp"

	"outwasm"
)

// FLBDecoder reads a chunk's records one at a time.
type FLBDecoder struct {
	data []byte
	pos  int
}

// RawExt is an extension value other than EventTime, as fluent-bit-go's codec gives it.
type RawExt struct {
	Tag  uint64
	Data []byte
}

// NewDecoder starts decoding the chunk at data. Unlike fluent-bit-go it reads the chunk in
// place: the chunk is the guest's own copy, valid until the flush returns.
func NewDecoder(data unsafe.Pointer, length int) *FLBDecoder {
	if length == 0 {
		return &FLBDecoder{}
	}
	return &FLBDecoder{data: unsafe.Slice((*byte)(data), length)}
}

// GetRecord is the next record, with fluent-bit-go's return codes: 0 and the timestamp and
// body; -1 at the end of the chunk (or where it is malformed); -2 when the record is not an
// array of 2; -3 when the body is not a map; -4 when the [timestamp, metadata] header has
// fewer than 2 items; -5 when the timestamp is neither an EventTime (FLBTime) nor an unsigned
// integer (uint64). With the [[timestamp, metadata], body] layout the timestamp is the
// header's first item, whatever its type.
//
// A metrics chunk (a guest that accepts metrics gets them) is concatenated cmetrics contexts,
// each a map: as fluent-bit-go's decoder does, each context is one record, the decoded map
// (meta, metrics) with the time of decoding as its timestamp (an FLBTime, like a log record's).
// A traces chunk's ctraces contexts come the same way; zero bytes after the last one are
// padding, the end of the chunk.
func GetRecord(dec *FLBDecoder) (ret int, ts interface{}, rec map[interface{}]interface{}) {
	rest := dec.data[dec.pos:]
	if onlyPadding(rest) {
		return -1, 0, nil
	}
	v, after, err := decode(rest, 0)
	if err != nil {
		return -1, 0, nil
	}
	dec.pos = len(dec.data) - len(after)
	switch v := v.(type) {
	case map[interface{}]interface{}:
		return 0, FLBTime{time.Now()}, v
	case []interface{}:
		if len(v) != 2 {
			return -2, 0, nil
		}
		var t interface{}
		switch stamp := v[0].(type) {
		case FLBTime, uint64:
			t = stamp
		case []interface{}:
			if len(stamp) < 2 {
				return -4, 0, nil
			}
			t = stamp[0]
		default:
			return -5, 0, nil
		}
		body, ok := v[1].(map[interface{}]interface{})
		if !ok {
			return -3, 0, nil
		}
		return 0, t, body
	}
	return -2, 0, nil
}

// maxDepth bounds the nesting decode follows (the agent's records nest a few levels).
const maxDepth = 1000

var errTooDeep = errors.New("flbgo: msgpack nested too deep")

// decode reads the msgpack value at the start of b, in one pass, as the Go value fluent-bit-go's
// codec (ugorji msgpack, default handle) gives it, and what follows it. Strings and binaries are
// views of the chunk (the guest's copy, kept alive by them). Extensions go through the SDK's
// decoder and convert.
func decode(b []byte, depth int) (interface{}, []byte, error) {
	if depth > maxDepth {
		return nil, b, errTooDeep
	}
	if len(b) == 0 {
		return nil, b, msgp.ErrShortBytes
	}
	switch t := msgp.NextType(b); t {
	case msgp.NilType:
		rest, err := msgp.ReadNilBytes(b)
		return nil, rest, err
	case msgp.BoolType:
		return msgp.ReadBoolBytes(b)
	case msgp.IntType, msgp.UintType:
		// The codec reads uint 8 to uint 64 as uint64, every other integer (positive fixint
		// included) as int64.
		if b[0] >= 0xcc && b[0] <= 0xcf {
			return msgp.ReadUint64Bytes(b)
		}
		return msgp.ReadInt64Bytes(b)
	case msgp.Float32Type:
		f, rest, err := msgp.ReadFloat32Bytes(b)
		return float64(f), rest, err
	case msgp.Float64Type:
		return msgp.ReadFloat64Bytes(b)
	case msgp.StrType:
		return msgp.ReadStringZC(b)
	case msgp.BinType:
		return msgp.ReadBytesZC(b)
	case msgp.ArrayType:
		n, rest, err := msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return nil, b, err
		}
		items := make([]interface{}, n)
		for i := range items {
			if items[i], rest, err = decode(rest, depth+1); err != nil {
				return nil, b, err
			}
		}
		return items, rest, nil
	case msgp.MapType:
		n, rest, err := msgp.ReadMapHeaderBytes(b)
		if err != nil {
			return nil, b, err
		}
		m := make(map[interface{}]interface{}, n)
		for range n {
			var k, v interface{}
			if k, rest, err = decode(rest, depth+1); err != nil {
				return nil, b, err
			}
			if v, rest, err = decode(rest, depth+1); err != nil {
				return nil, b, err
			}
			switch key := k.(type) {
			case []byte:
				// A []byte cannot be a map key: the codec makes string keys strings.
				k = string(key)
			case map[interface{}]interface{}, []interface{}:
				return nil, b, errors.New("flbgo: a map or an array as a map key")
			}
			m[k] = v
		}
		return m, rest, nil
	}
	v, n, err := outwasm.DecodeValue(b)
	if err != nil {
		return nil, b, err
	}
	return convert(v), b[n:], nil
}

// convert gives v the Go type fluent-bit-go's codec (ugorji msgpack, default handle) gives it.
func convert(v outwasm.Value) interface{} {
	switch v.Kind() {
	case outwasm.Nil:
		return nil
	case outwasm.Bool:
		return v.Bool()
	case outwasm.Int:
		return v.Int()
	case outwasm.Uint:
		// The codec reads a positive fixint as signed.
		if v.Marker() <= 0x7f {
			return v.Int()
		}
		return v.Uint()
	case outwasm.Float:
		return v.Float()
	case outwasm.Str, outwasm.Bin:
		return v.Bytes()
	case outwasm.Array:
		items := make([]interface{}, 0, v.Len())
		for item := range v.Items() {
			items = append(items, convert(item))
		}
		return items
	case outwasm.Map:
		m := make(map[interface{}]interface{}, v.Len())
		for k, val := range v.Entries() {
			key := convert(k)
			// A []byte cannot be a map key: the codec makes string keys strings.
			if b, ok := key.([]byte); ok {
				key = string(b)
			}
			m[key] = convert(val)
		}
		return m
	}
	if v.ExtType() == 0 && len(v.Bytes()) == 8 {
		b := v.Bytes()
		return FLBTime{time.Unix(int64(binary.BigEndian.Uint32(b)), int64(binary.BigEndian.Uint32(b[4:])))}
	}
	return RawExt{Tag: uint64(uint8(v.ExtType())), Data: v.Bytes()}
}

// onlyPadding tells whether rest is zero bytes, as output processors may leave after the last
// context of a traces chunk. An empty rest is not padding: it is the plain end of the chunk.
func onlyPadding(rest []byte) bool {
	for _, b := range rest {
		if b != 0 {
			return false
		}
	}
	return len(rest) > 0
}
