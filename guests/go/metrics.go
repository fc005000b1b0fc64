package outwasm

import "errors"

// Metrics a guest publishes on the agent's own metrics endpoint, as
// fluentbit_wasm_guest_<name> with the output instance's name label first. Declare them from
// Init on; every instance of the same output shares them. The host refuses (with an error
// naming the limit) bad names, too many labels or series; where the agent has no metrics,
// everything succeeds and nothing is exported.

type metricKind uint8

const (
	kindCounter metricKind = iota
	kindGauge
	kindHistogram
)

type metricUpdate uint8

const (
	updateAdd metricUpdate = iota
	updateSet
	updateObserve
)

func metricError(message string) error { return errors.New(message) }

// Counter is a value that only goes up. The host appends _total to its name unless it has it.
type Counter struct{ id uint32 }

// Gauge is a value that goes up and down.
type Gauge struct{ id uint32 }

// Histogram is a distribution of observations in buckets.
type Histogram struct{ id uint32 }

// NewCounter declares a counter (or finds the one declared with the same spec) whose updates
// give values for labels, in order.
func NewCounter(name, help string, labels ...string) (*Counter, error) {
	id, err := hostDeclare(name, help, kindCounter, labels, nil)
	if err != nil {
		return nil, err
	}
	return &Counter{id}, nil
}

// NewGauge declares a gauge.
func NewGauge(name, help string, labels ...string) (*Gauge, error) {
	id, err := hostDeclare(name, help, kindGauge, labels, nil)
	if err != nil {
		return nil, err
	}
	return &Gauge{id}, nil
}

// NewHistogram declares a histogram with bucket upper bounds (strictly increasing; nil for
// the agent's default buckets).
func NewHistogram(name, help string, buckets []float64, labels ...string) (*Histogram, error) {
	id, err := hostDeclare(name, help, kindHistogram, labels, buckets)
	if err != nil {
		return nil, err
	}
	return &Histogram{id}, nil
}

// Add adds value (>= 0) to the series with these label values.
func (c *Counter) Add(value float64, labelValues ...string) error {
	return hostUpdate(updateAdd, c.id, labelValues, value)
}

// Inc adds 1.
func (c *Counter) Inc(labelValues ...string) error { return c.Add(1, labelValues...) }

// Set sets the series with these label values to value.
func (g *Gauge) Set(value float64, labelValues ...string) error {
	return hostUpdate(updateSet, g.id, labelValues, value)
}

// Add adds value (of any sign) to the series with these label values.
func (g *Gauge) Add(value float64, labelValues ...string) error {
	return hostUpdate(updateAdd, g.id, labelValues, value)
}

// Observe records one observation for the series with these label values.
func (h *Histogram) Observe(value float64, labelValues ...string) error {
	return hostUpdate(updateObserve, h.id, labelValues, value)
}
