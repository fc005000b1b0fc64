// Package plugin is Calyptia's Go plugin SDK (github.com/calyptia/plugin) as out_wasm serves it:
// the same names and meanings for an output plugin, over out_wasm's Go SDK instead of cgo and
// the agent's Go proxy. guests/go/build replaces the module with this one, so a plugin written
// for it builds unmodified.
//
// As natively: RegisterOutput in an init function names the plugin; Init gets a Fluentbit
// whose Conf reads the [OUTPUT] section's keys (camelCase keys read as snake_case, quoted values
// unquoted), whose Logger writes to the agent's log at the line's level, and whose Metrics make
// counters and gauges on the agent's metrics endpoint; Init's context ends when Init returns.
// Then the plugin's Flush runs as a goroutine for the instance's life, fed each record of each
// chunk as a Message through an unbuffered channel: a chunk is answered FLB_OK once its records
// are all taken from the channel (or the run's context is cancelled), and dropped (FLB_ERROR)
// when it is malformed. At exit the run's context is cancelled and the channel closed, and
// Flush gets the host's exit time to return (what it was still doing is drained then).
//
// What differs: each [OUTPUT] section is its own guest instance (natively one per process);
// metrics are named fluentbit_wasm_guest_<name> with the output's labels (natively
// fluentbit_plugin_<name>); a record's values are decoded as natively (int8 ... uint64,
// float32/float64, string, []byte, []any, map[string]any), an EventTime inside a record as
// *EventTime; a chunk arriving after the plugin's Flush returned is retried, naming what it
// returned (natively the agent's flush would wait forever). Input and custom plugins compile
// but do not run: out_wasm runs output plugins.
package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/calyptia/plugin/metric"
	"outwasm"
)

// Fluentbit is what Init gets: the configuration, the metrics and the log.
type Fluentbit struct {
	Conf    ConfigLoader
	Metrics Metrics
	Logger  Logger
}

// InputPlugin is an input plugin (not run by out_wasm).
type InputPlugin interface {
	Init(ctx context.Context, fbit *Fluentbit) error
	Collect(ctx context.Context, ch chan<- Message) error
}

// OutputPlugin is an output plugin.
type OutputPlugin interface {
	Init(ctx context.Context, fbit *Fluentbit) error
	Flush(ctx context.Context, ch <-chan Message) error
}

// CustomPlugin is a custom plugin (not run by out_wasm).
type CustomPlugin interface {
	Init(ctx context.Context, fbit *Fluentbit) error
}

// ConfigLoader reads the instance's keys.
type ConfigLoader interface {
	String(key string) string
}

// Logger writes lines to the agent's log.
type Logger interface {
	Error(format string, a ...any)
	Warn(format string, a ...any)
	Info(format string, a ...any)
	Debug(format string, a ...any)
}

// Metrics makes counters and gauges; the label arguments name the labels.
type Metrics interface {
	NewCounter(name, desc string, labelValues ...string) metric.Counter
	NewGauge(name, desc string, labelValues ...string) metric.Gauge
}

// Message is one record: its time, its body and its chunk's tag.
type Message struct {
	Time time.Time
	// Record is the record's body, a map[string]any.
	Record any
	tag    *string
}

// Tag is the tag of the chunk the record came in.
func (m Message) Tag() string {
	if m.tag == nil {
		return ""
	}
	return *m.tag
}

// EventTime is Fluent Bit's timestamp extension (msgpack ext type 0).
type EventTime struct {
	time.Time
}

var registered atomic.Bool

func mustOnce() {
	if registered.Swap(true) {
		panic("plugin already registered")
	}
}

var (
	theName, theDesc string
	theOutput        OutputPlugin
	notOutput        string
)

// RegisterOutput makes out the plugin. Call it once, from an init function.
func RegisterOutput(name, desc string, out OutputPlugin) {
	mustOnce()
	theName, theDesc, theOutput = name, desc, out
	outwasm.Export(&guest{})
}

// RegisterInput compiles, but out_wasm runs output plugins only: the instance's Init fails.
func RegisterInput(name, desc string, in InputPlugin) {
	mustOnce()
	theName, theDesc, notOutput = name, desc, "an input plugin"
	outwasm.Export(&guest{})
}

// RegisterCustom compiles, but out_wasm runs output plugins only: the instance's Init fails.
func RegisterCustom(name, desc string, custom CustomPlugin) {
	mustOnce()
	theName, theDesc, notOutput = name, desc, "a custom plugin"
	outwasm.Export(&guest{})
}

// guest is the registered output plugin as an out_wasm guest.
type guest struct {
	outwasm.Defaults
	ch     chan Message
	cancel context.CancelFunc
	// done is closed when the plugin's Flush returns; err is what it returned.
	done chan struct{}
	err  error
}

func (g *guest) Init(*outwasm.InitContext) error {
	if theOutput == nil {
		return fmt.Errorf("%s (%s) is %s: out_wasm runs output plugins", theName, theDesc, notOutput)
	}
	outwasm.Debug("calyptia plugin %s: %s", theName, theDesc)
	fbit := &Fluentbit{Conf: config{}, Metrics: metrics{}, Logger: logger{}}
	ctx, cancel := context.WithCancel(context.Background())
	err := theOutput.Init(ctx, fbit)
	cancel()
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	// The run: Flush as a goroutine until exit, fed through an unbuffered channel.
	run, stop := context.WithCancel(context.Background())
	g.ch, g.cancel, g.done = make(chan Message), stop, make(chan struct{})
	go func() {
		defer close(g.done)
		g.err = theOutput.Flush(run, g.ch)
	}()
	return nil
}

func (g *guest) Flush(ctx *outwasm.FlushContext, chunk outwasm.Chunk) error {
	tag := strings.Clone(ctx.Tag)
	for event, err := range chunk.Events() {
		if err != nil {
			return outwasm.Fail(fmt.Errorf("flush: %w", err))
		}
		record, err := recordOf(event.Body)
		if err != nil {
			return outwasm.Fail(fmt.Errorf("flush: msgpack unmarshal event record: %w", err))
		}
		msg := Message{Time: event.Timestamp.Time(), Record: record, tag: &tag}
		select {
		case g.ch <- msg:
		case <-g.done:
			return outwasm.Retryf("the plugin's Flush returned (%v): no one takes the records", g.err)
		}
	}
	return nil
}

// Idle lets the plugin's Flush goroutine (and any of its own) run between flushes, as natively
// they run on threads of their own: while a goroutine besides the Flush one and the call's
// exists, Idle waits the host's budget in Go (the scheduler runs them meanwhile).
func (g *guest) Idle(budget time.Duration) (time.Duration, bool) {
	runtime.Gosched()
	if runtime.NumGoroutine() <= 2 {
		return 0, false
	}
	time.Sleep(budget)
	return 0, runtime.NumGoroutine() > 2
}

// Exit cancels the run's context and closes the channel, as natively, then gives Flush the
// host's exit time to return.
func (g *guest) Exit(ctx *outwasm.ExitContext) {
	if g.cancel == nil {
		return
	}
	g.cancel()
	close(g.ch)
	left, bounded := ctx.TimeLeft()
	if !bounded {
		<-g.done
		return
	}
	// Less a margin, so this answers before the host stops the call.
	select {
	case <-g.done:
	case <-time.After(left - max(left/10, 50*time.Millisecond)):
		outwasm.Warn("calyptia plugin %s: Flush did not return within the exit's time", theName)
	}
}

// config reads keys as the native loader does: camelCase as snake_case, quotes removed.
type config struct{}

var (
	firstCap = regexp.MustCompile("(.)([A-Z][a-z]+)")
	allCap   = regexp.MustCompile("([a-z0-9])([A-Z])")
)

func (config) String(key string) string {
	snake := strings.ToLower(allCap.ReplaceAllString(firstCap.ReplaceAllString(key, "${1}_${2}"), "${1}_${2}"))
	value, _ := outwasm.LookupConfig(snake)
	if s, err := strconv.Unquote(value); err == nil {
		return s
	}
	if strings.Contains(value, `\n`) {
		if s, err := strconv.Unquote(`"` + value + `"`); err == nil {
			return s
		}
	}
	return value
}

type logger struct{}

func (logger) Error(format string, a ...any) { outwasm.Error(format, a...) }
func (logger) Warn(format string, a ...any)  { outwasm.Warn(format, a...) }
func (logger) Info(format string, a ...any)  { outwasm.Info(format, a...) }
func (logger) Debug(format string, a ...any) { outwasm.Debug(format, a...) }

// metrics makes the host's metrics; a failure is written to stderr and the metric does
// nothing, as natively.
type metrics struct{}

func metricFailed(err error) { fmt.Fprintf(os.Stderr, "metrics: %s\n", err) }

func (metrics) NewCounter(name, desc string, labels ...string) metric.Counter {
	c, err := outwasm.NewCounter(name, desc, labels...)
	if err != nil {
		metricFailed(fmt.Errorf("new counter: %w", err))
		return noop{}
	}
	return counter{c}
}

func (metrics) NewGauge(name, desc string, labels ...string) metric.Gauge {
	g, err := outwasm.NewGauge(name, desc, labels...)
	if err != nil {
		metricFailed(fmt.Errorf("new gauge: %w", err))
		return noop{}
	}
	return gauge{g}
}

type counter struct{ c *outwasm.Counter }

func (c counter) Add(delta float64, labelValues ...string) {
	if err := c.c.Add(delta, labelValues...); err != nil {
		metricFailed(fmt.Errorf("counter add: %w", err))
	}
}

type gauge struct{ g *outwasm.Gauge }

func (g gauge) Add(delta float64, labelValues ...string) {
	if err := g.g.Add(delta, labelValues...); err != nil {
		metricFailed(fmt.Errorf("gauge add: %w", err))
	}
}

func (g gauge) Set(value float64, labelValues ...string) {
	if err := g.g.Set(value, labelValues...); err != nil {
		metricFailed(fmt.Errorf("gauge set: %w", err))
	}
}

type noop struct{}

func (noop) Add(float64, ...string) {}
func (noop) Set(float64, ...string) {}

// recordOf is the body as the native SDK's decoder makes it: a map[string]any.
func recordOf(body outwasm.Value) (map[string]any, error) {
	if body.Kind() != outwasm.Map {
		return nil, fmt.Errorf("the record is a %s, not a map", body.Describe())
	}
	v, err := valueOf(body)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// valueOf is one value as the native SDK's msgpack library (vmihailenco/msgpack v5) decodes it
// into an any: integers of their encoding's width (a fixint as int8), floats of theirs.
func valueOf(v outwasm.Value) (any, error) {
	m := v.Marker()
	switch v.Kind() {
	case outwasm.Nil:
		return nil, nil
	case outwasm.Bool:
		return v.Bool(), nil
	case outwasm.Int, outwasm.Uint:
		switch {
		case m <= 0x7f || m >= 0xe0 || m == 0xd0:
			return int8(v.Int()), nil
		case m == 0xd1:
			return int16(v.Int()), nil
		case m == 0xd2:
			return int32(v.Int()), nil
		case m == 0xd3:
			return v.Int(), nil
		case m == 0xcc:
			return uint8(v.Uint()), nil
		case m == 0xcd:
			return uint16(v.Uint()), nil
		case m == 0xce:
			return uint32(v.Uint()), nil
		}
		return v.Uint(), nil
	case outwasm.Float:
		if m == 0xca {
			return float32(v.Float()), nil
		}
		return v.Float(), nil
	case outwasm.Str:
		return v.String(), nil
	case outwasm.Bin:
		return append([]byte(nil), v.Bytes()...), nil
	case outwasm.Array:
		items := make([]any, 0, v.Len())
		for item := range v.Items() {
			x, err := valueOf(item)
			if err != nil {
				return nil, err
			}
			items = append(items, x)
		}
		return items, nil
	case outwasm.Map:
		entries := make(map[string]any, v.Len())
		for key, value := range v.Entries() {
			if key.Kind() != outwasm.Str && key.Kind() != outwasm.Bin {
				return nil, fmt.Errorf("a map key is a %s, not a string", key.Describe())
			}
			x, err := valueOf(value)
			if err != nil {
				return nil, err
			}
			entries[key.String()] = x
		}
		return entries, nil
	case outwasm.Ext:
		if b := v.Bytes(); v.ExtType() == 0 && len(b) == 8 {
			sec, nsec := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
			return &EventTime{time.Unix(int64(sec), int64(nsec))}, nil
		}
		return nil, fmt.Errorf("msgpack: unknown ext id=%d", v.ExtType())
	}
	return nil, errors.New("msgpack: unknown value")
}
