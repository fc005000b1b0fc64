package outwasm

import (
	"fmt"
	"strings"
)

// JSONOptions is how the host renders JSON lines: the options of the agent's stdout output.
// The rendering itself is the host's (format/ in the repository), byte for byte the agent's.
type JSONOptions struct {
	// DateKey is the key the record time is written under, first in each object; "" leaves
	// the time out (the agent's json_date_key false).
	DateKey    string
	DateFormat DateFormat
	// EscapeUnicode writes every non-ASCII character as \uXXXX, as the agent does by default
	// (json.escape_unicode on); false keeps UTF-8 as it is.
	EscapeUnicode bool
}

// AgentJSONOptions are the agent's defaults: date, double, escaped.
func AgentJSONOptions() JSONOptions {
	return JSONOptions{DateKey: "date", DateFormat: DateDouble, EscapeUnicode: true}
}

// DateFormat is how the date key shows the record's time (the agent's json_date_format).
type DateFormat uint8

const (
	// DateDouble is seconds with the microseconds as a fraction: 1700000000.123456.
	DateDouble DateFormat = iota
	// DateEpoch is whole seconds: 1700000000.
	DateEpoch
	// DateEpochMs is whole milliseconds: 1700000000123.
	DateEpochMs
	// DateISO8601 is "2023-11-14T22:13:20.123456Z".
	DateISO8601
	// DateJavaSQLTimestamp is "2023-11-14 22:13:20.123456".
	DateJavaSQLTimestamp
)

var dateFormats = [...]string{"double", "epoch", "epoch_ms", "iso8601", "java_sql_timestamp"}

func (f DateFormat) String() string { return dateFormats[f] }

// ParseDateFormat reads a json_date_format value (case-insensitive).
func ParseDateFormat(s string) (DateFormat, error) {
	for i, name := range dateFormats {
		if strings.EqualFold(s, name) {
			return DateFormat(i), nil
		}
	}
	return 0, fmt.Errorf("unknown date format %q (double, java_sql_timestamp, iso8601, epoch, epoch_ms)", s)
}

// JSONLinesKeys are the keys the agent's stdout output takes for JSON lines, with its
// defaults, for a ConfigSchema: json_date_key, json_date_format and escape_unicode.
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

// JSONLinesFromConfig reads the JSONLinesKeys from a resolved config (unset keys take the
// agent's defaults); an invalid value is an error naming the key.
func JSONLinesFromConfig(config Config) (JSONOptions, error) {
	options := AgentJSONOptions()
	if key, ok := config.Get("json_date_key"); ok {
		// Like the agent: a boolean-looking false leaves the date out, anything else names it.
		if on, err := parseSwitch("json_date_key", key); err == nil && !on {
			key = ""
		}
		options.DateKey = key
	}
	if value, ok := config.Get("json_date_format"); ok {
		format, err := ParseDateFormat(value)
		if err != nil {
			return JSONOptions{}, fmt.Errorf("invalid value %q for key 'json_date_format': %w", value, err)
		}
		options.DateFormat = format
	}
	if value, ok := config.Get("escape_unicode"); ok {
		escape, err := parseSwitch("escape_unicode", value)
		if err != nil {
			return JSONOptions{}, err
		}
		options.EscapeUnicode = escape
	}
	return options, nil
}
