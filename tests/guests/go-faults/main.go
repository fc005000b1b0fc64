// Test guest go-faults: a Go guest that faults on purpose, in the way its `mode` key names, so
// tests can show that Go's own ways of failing end as traps (FLB_RETRY, a fresh instance).
//
// Contract:
//   - Keys: `mode` (required): `panic`, `nil-deref` or `alloc-until-cap`.
//   - Init logs `go-faults init mode=<mode>` at info.
//   - Flush: a chunk none of whose records has `"evil": true` is delivered: the guest logs
//     `go-faults delivered <n> records in flush #<k>` at info (k counts this instance's
//     flushes, from 1, so a fresh instance says #1) and answers ok. A chunk with an evil record
//     triggers the mode:
//   - `panic`: panics with `go-faults panics on purpose` (the Go runtime prints the panic to
//     stderr and aborts with `unreachable`: a trap).
//   - `nil-deref`: reads through a nil pointer in `depth` (Go checks it and panics, as above).
//   - `alloc-until-cap`: allocates 1 MiB blocks and keeps them, without end, until memory.grow
//     is refused at wasm_memory_limit.
//   - A malformed chunk is answered with an error naming the byte offset.
//   - Exit logs `go-faults exit`.
package main

import (
	"outwasm"
)

type faults struct {
	outwasm.Defaults
	mode    string
	flushes int
	kept    [][]byte
}

type node struct{ next *node }

func (*faults) ConfigSchema() []outwasm.ConfigKey {
	return []outwasm.ConfigKey{{Name: "mode", Description: "panic, nil-deref or alloc-until-cap", Required: true}}
}

func (f *faults) Init(ctx *outwasm.InitContext) error {
	f.mode = ctx.Config.Value("mode")
	outwasm.Info("go-faults init mode=%s", f.mode)
	return nil
}

//go:noinline
func depth(n *node) int { return 1 + len(n.next.next.String()) }

func (n *node) String() string { return "node" }

func (f *faults) Flush(_ *outwasm.FlushContext, chunk outwasm.Chunk) error {
	f.flushes++
	records, evil := 0, false
	for event, err := range chunk.Events() {
		if err != nil {
			return err
		}
		records++
		if v, ok := event.Body.Get("evil"); ok && v.Bool() {
			evil = true
		}
	}
	if !evil {
		outwasm.Info("go-faults delivered %d records in flush #%d", records, f.flushes)
		return nil
	}
	switch f.mode {
	case "panic":
		panic("go-faults panics on purpose")
	case "nil-deref":
		outwasm.Info("go-faults depth %d", depth(&node{}))
	case "alloc-until-cap":
		for {
			block := make([]byte, 1<<20)
			block[len(block)-1] = 1
			f.kept = append(f.kept, block)
		}
	}
	return outwasm.Failf("go-faults: unknown mode %q", f.mode)
}

func (*faults) Exit(*outwasm.ExitContext) { outwasm.Info("go-faults exit") }

func init() { outwasm.Export(&faults{}) }

func main() {}
