// stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
// built-in stdout output with format json_lines (the Go twin of guests/rust/stdout).
//
// Keys (the built-in output's, with its defaults): json_date_key ("date"; "off" leaves it out),
// json_date_format (double, epoch, epoch_ms, iso8601, java_sql_timestamp) and escape_unicode
// ("on").
//
// With wasm_event_format json_lines the host renders the lines (with the keys' defaults) and
// this guest writes them through; other key values then need msgpack, and Init says so.
package main

import (
	"errors"
	"os"

	"outwasm"
)

type stdout struct {
	format *outwasm.JSONLines
	// render is false when the host delivers ready-made JSON lines.
	render bool
	lines  []byte
}

func (*stdout) ConfigSchema() []outwasm.ConfigKey { return outwasm.JSONLinesKeys() }

func (s *stdout) Init(ctx *outwasm.InitContext) error {
	format, err := outwasm.JSONLinesFromConfig(ctx.Config)
	if err != nil {
		return err
	}
	s.format = format
	s.render = ctx.EventFormat == outwasm.EventFormatMsgpack
	if !s.render && !format.IsDefault() {
		return errors.New("json_date_key, json_date_format and escape_unicode other than their defaults need " +
			"wasm_event_format msgpack: the host renders json_lines with the defaults")
	}
	return nil
}

func (s *stdout) Flush(_ *outwasm.FlushContext, chunk outwasm.Chunk) error {
	data := []byte(chunk)
	if s.render {
		s.lines = s.lines[:0]
		d := chunk.Decoder()
		var event outwasm.Event
		for {
			ok, err := d.Next(&event)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			s.lines = s.format.Append(s.lines, &event)
		}
		data = s.lines
	}
	// One write per chunk, as the agent does, so lines of concurrent flushes never interleave
	// (os.File.Write loops over partial writes).
	if _, err := os.Stdout.Write(data); err != nil {
		return outwasm.Retryf("failed to write to stdout: %w", err)
	}
	return nil
}

func (*stdout) Exit() {}

func init() { outwasm.Export(&stdout{}) }

func main() {}
