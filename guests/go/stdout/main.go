// stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
// built-in stdout output with format json_lines (the Go twin of guests/rust/stdout).
//
// Keys (the built-in output's, with its defaults):
//   - json_date_key (date): key of the record time; false/off/no leaves it out.
//   - json_date_format (double): double, epoch, epoch_ms, iso8601 or java_sql_timestamp.
//   - escape_unicode (on): the agent's [SERVICE] json.escape_unicode; on writes non-ASCII as
//     \uXXXX like the agent does by default, off keeps UTF-8 as is.
//
// The host renders the lines with these keys (the guest asks for JSON lines with them) and this
// guest writes them through: the rendering is the host's, exactly the agent's.
//
// It counts the records it printed per tag in the guest metric records_printed (exported as
// fluentbit_wasm_guest_records_printed_total), as the other languages' stdout examples do.
package main

import (
	"bytes"
	"errors"
	"os"

	"outwasm"
)

type stdout struct {
	outwasm.Defaults
	printed *outwasm.Counter
}

func (*stdout) ConfigSchema() []outwasm.ConfigKey { return outwasm.JSONLinesKeys() }

// PreferredEventFormat asks for the lines rendered with the keys; an invalid value refuses the
// configuration, naming the key.
func (*stdout) PreferredEventFormat(config outwasm.Config) (outwasm.EventFormat, error) {
	options, err := outwasm.JSONLinesFromConfig(config)
	return outwasm.JSONLinesFormat(options), err
}

func (s *stdout) Init(ctx *outwasm.InitContext) error {
	if ctx.EventFormat.Kind != outwasm.JSONLines {
		return errors.New("this guest prints the JSON lines the host renders: leave wasm_event_format unset " +
			"(or set it to json_lines), not " + ctx.EventFormat.Kind.String())
	}
	var err error
	s.printed, err = outwasm.NewCounter("records_printed", "records printed on stdout", "tag")
	return err
}

func (s *stdout) Flush(ctx *outwasm.FlushContext, chunk outwasm.Chunk) error {
	// One write per chunk, as the agent does, so lines of concurrent flushes never interleave
	// (os.File.Write loops over partial writes).
	if _, err := os.Stdout.Write(chunk); err != nil {
		return outwasm.Retryf("failed to write to stdout: %w", err)
	}
	// A refusal (the operator's series cap) costs the metric, never the records: the host
	// already counts and logs it.
	_ = s.printed.Add(float64(bytes.Count(chunk, []byte{'\n'})), ctx.Tag)
	return nil
}

func init() { outwasm.Export(&stdout{}) }

func main() {}
