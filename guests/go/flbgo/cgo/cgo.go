// Package cgo is what cgo supplies to a fluent-bit-go plugin, for the plugin built unmodified
// for GOOS=wasip1 (which has no cgo): guests/go/build's source transform (package
// outwasm/flbgo/port) imports it as C in place of import "C" and renames the forms plugins use,
// C.int to C.Int, *C.char to *C.Char, C.GoString to C.GoString, C.CString to C.CString,
// C.free to C.Free.
//
// The types have cgo's underlying types on the agent's platforms (C's char is signed, int is
// 32 bits, long 64), so conversions written for cgo mean the same here. Strings made by CString
// live in Go's heap: C memory does not exist here, so Free has nothing to release and the
// collector reclaims them once unreferenced.
package cgo

import "unsafe"

// C's scalar types, as cgo names them on 64-bit Linux.
type (
	Char      int8
	Schar     int8
	Uchar     uint8
	Short     int16
	Ushort    uint16
	Int       int32
	Uint      uint32
	Long      int64
	Ulong     uint64
	Longlong  int64
	Ulonglong uint64
	Float     float32
	Double    float64
	SizeT     = Ulong
)

// GoString is the Go string of the NUL-terminated C string s ("" for nil), as cgo's.
func GoString(s *Char) string {
	if s == nil {
		return ""
	}
	p := unsafe.Pointer(s)
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}

// GoStringN is the Go string of the n bytes at s, as cgo's.
func GoStringN(s *Char, n Int) string {
	if s == nil || n <= 0 {
		return ""
	}
	return string(unsafe.Slice((*byte)(unsafe.Pointer(s)), int(n)))
}

// GoBytes is a copy of the n bytes at p, as cgo's.
func GoBytes(p unsafe.Pointer, n Int) []byte {
	if p == nil || n <= 0 {
		return []byte{}
	}
	return append([]byte(nil), unsafe.Slice((*byte)(p), int(n))...)
}

// CString is s as a NUL-terminated string, as cgo's (in Go's heap; Free is optional).
func CString(s string) *Char {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return (*Char)(unsafe.Pointer(&b[0]))
}

// CBytes is a copy of b, as cgo's (in Go's heap; Free is optional).
func CBytes(b []byte) unsafe.Pointer {
	c := make([]byte, max(len(b), 1))
	copy(c, b)
	return unsafe.Pointer(&c[0])
}

// Free stands for C.free: memory from CString and CBytes is Go's, reclaimed by the collector.
func Free(unsafe.Pointer) {}
