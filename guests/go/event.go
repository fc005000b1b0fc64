package outwasm

import (
	"encoding/binary"
	"iter"
	"math"
	"strconv"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// Timestamp is when a record happened: seconds and nanoseconds since the Unix epoch.
type Timestamp struct {
	Seconds int64
	// Nanoseconds is always below 1e9.
	Nanoseconds uint32
}

// Float is the time as seconds in a float64, computed as the agent does.
func (t Timestamp) Float() float64 {
	return float64(t.Seconds) + float64(t.Nanoseconds)/1e9
}

// Time is the timestamp as a time.Time in UTC.
func (t Timestamp) Time() time.Time {
	return time.Unix(t.Seconds, int64(t.Nanoseconds)).UTC()
}

// timestampOfFloat truncates float seconds like the agent does.
func timestampOfFloat(seconds float64) Timestamp {
	whole := math.Trunc(seconds)
	nanos := int64((seconds - whole) * 1e9)
	s := int64(whole)
	if nanos < 0 {
		s--
		nanos += 1_000_000_000
	}
	return Timestamp{Seconds: s, Nanoseconds: uint32(min(max(nanos, 0), 999_999_999))}
}

// Event is one record of a chunk.
type Event struct {
	Timestamp Timestamp
	// Metadata is the record's metadata map; an empty map for records in the old [ts, body]
	// layout.
	Metadata Value
	// Body is the record itself, normally a map.
	Body Value
	// GroupAttributes are the attributes of the OpenTelemetry group the record belongs to
	// (HasGroup). Group start and end markers are not yielded as events.
	GroupAttributes Value
	HasGroup        bool
}

type stamp uint8

const (
	stampTime stamp = iota
	stampGroupStart
	stampGroupEnd
)

var emptyMap = Value{kind: Map}

// Decoder reads the records of a msgpack chunk one at a time, in both record layouts
// ([[ts, metadata], body] and [ts, body]) and every timestamp encoding (EventTime, integer,
// float). Nothing is copied: events borrow from the chunk.
type Decoder struct {
	r      reader
	failed bool
	group  Value
	inGrp  bool
}

// NewDecoder starts decoding chunk.
func NewDecoder(chunk []byte) *Decoder {
	return &Decoder{r: reader{buf: chunk}}
}

// Next decodes the next record into e. It returns false at the end of the chunk, or with a
// *DecodeError at the first malformed record (after which it always returns false, nil).
func (d *Decoder) Next(e *Event) (bool, error) {
	if d.failed {
		return false, nil
	}
	for d.r.pos < len(d.r.buf) {
		s, err := d.record(e)
		if err != nil {
			d.failed = true
			return false, err
		}
		switch s {
		case stampGroupStart:
			d.group, d.inGrp = e.Body, true
		case stampGroupEnd:
			d.group, d.inGrp = Value{}, false
		default:
			e.GroupAttributes, e.HasGroup = d.group, d.inGrp
			return true, nil
		}
	}
	return false, nil
}

// Events yields the records of chunk; a malformed chunk yields one error, then ends.
func Events(chunk []byte) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		d := NewDecoder(chunk)
		for {
			var e Event
			ok, err := d.Next(&e)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !ok || !yield(e, nil) {
				return
			}
		}
	}
}

func isArrayMarker(b byte) bool { return b >= 0x90 && b <= 0x9f || b == 0xdc || b == 0xdd }

func (d *Decoder) arrayLen() (uint32, bool, *DecodeError) {
	r := &d.r
	if !isArrayMarker(r.buf[r.pos]) {
		return 0, false, nil
	}
	n, rest, err := msgp.ReadArrayHeaderBytes(r.buf[r.pos:])
	if err != nil {
		return 0, true, r.failed(r.pos, err)
	}
	r.pos = len(r.buf) - len(rest)
	return n, true, nil
}

func (d *Decoder) record(e *Event) (stamp, error) {
	r := &d.r
	start := r.pos
	n, isArray, err := d.arrayLen()
	switch {
	case err != nil:
		return 0, err
	case !isArray:
		return 0, r.fail(start, "record is not an array")
	case n != 2:
		return 0, r.fail(start, "record is an array of "+strconv.FormatUint(uint64(n), 10)+", not 2")
	}
	headerAt := r.pos
	var s stamp
	if r.pos < len(r.buf) && isArrayMarker(r.buf[r.pos]) {
		n, _, err = d.arrayLen()
		if err != nil {
			return 0, err
		}
		if n != 2 {
			return 0, r.fail(headerAt, "record header is an array of "+strconv.FormatUint(uint64(n), 10)+", not 2")
		}
		if s, err = d.timestamp(&e.Timestamp); err != nil {
			return 0, err
		}
		if e.Metadata, err = r.value(0); err != nil {
			return 0, err
		}
	} else {
		if s, err = d.timestamp(&e.Timestamp); err != nil {
			return 0, err
		}
		e.Metadata = emptyMap
	}
	if e.Body, err = r.value(0); err != nil {
		return 0, err
	}
	return s, nil
}

func (d *Decoder) timestamp(ts *Timestamp) (stamp, *DecodeError) {
	r := &d.r
	at := r.pos
	v, err := r.value(0)
	if err != nil {
		return 0, err
	}
	*ts = Timestamp{}
	switch v.kind {
	case Ext:
		if v.ext == 0 && len(v.raw) == 8 {
			seconds := binary.BigEndian.Uint32(v.raw)
			nanos := binary.BigEndian.Uint32(v.raw[4:])
			// The agent marks group boundaries with EventTime seconds 2^32-1 / 2^32-2.
			if nanos == 0 && seconds == 0xffffffff {
				return stampGroupStart, nil
			}
			if nanos == 0 && seconds == 0xfffffffe {
				return stampGroupEnd, nil
			}
			if nanos >= 1_000_000_000 {
				return 0, r.fail(at, "EventTime has "+strconv.FormatUint(uint64(nanos), 10)+" nanoseconds")
			}
			*ts = Timestamp{Seconds: int64(seconds), Nanoseconds: nanos}
			return stampTime, nil
		}
		return 0, r.fail(at, "timestamp is extension type "+strconv.Itoa(int(v.ext))+" of "+
			strconv.Itoa(len(v.raw))+" bytes, not EventTime")
	case Uint:
		ts.Seconds = int64(min(v.num, math.MaxInt64))
		return stampTime, nil
	case Int:
		switch int64(v.num) {
		case -1:
			return stampGroupStart, nil
		case -2:
			return stampGroupEnd, nil
		}
		ts.Seconds = int64(v.num)
		return stampTime, nil
	case Float:
		if f := v.Float(); !math.IsInf(f, 0) && !math.IsNaN(f) {
			*ts = timestampOfFloat(f)
			return stampTime, nil
		}
	}
	return 0, r.fail(at, "timestamp is "+v.Describe()+", not a time")
}
