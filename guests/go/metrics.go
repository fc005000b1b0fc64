package outwasm

import "errors"

// Metrics a guest publishes on the agent's own metrics endpoint, as
// fluentbit_wasm_guest_<name> with the output instance's name label first. Declare them in
// Init; every instance of the same output shares them (declaring the same spec again finds
// the same metric, with its values). The host refuses (with an error naming the limit) bad
// names, too many labels or series; where the agent has no metrics, everything succeeds and
// nothing is exported. The types wrap the host's metric resources (the WIT's counter, gauge
// and histogram).

func metricError(message string) error { return errors.New(message) }

// Counter is a value that only goes up. The host appends _total to its name unless it has it.
type Counter struct{ h counterHandle }

// Gauge is a value that goes up and down.
type Gauge struct{ h gaugeHandle }

// Histogram is a distribution of observations in buckets.
type Histogram struct{ h histogramHandle }

// NewCounter declares a counter (or finds the one declared with the same spec) whose updates
// give values for labels, in order.
func NewCounter(name, help string, labels ...string) (*Counter, error) {
	h, err := declareCounter(name, help, labels)
	if err != nil {
		return nil, err
	}
	return &Counter{h}, nil
}

// NewGauge declares a gauge.
func NewGauge(name, help string, labels ...string) (*Gauge, error) {
	h, err := declareGauge(name, help, labels)
	if err != nil {
		return nil, err
	}
	return &Gauge{h}, nil
}

// NewHistogram declares a histogram with bucket upper bounds (strictly increasing; nil for
// the agent's default buckets).
func NewHistogram(name, help string, buckets []float64, labels ...string) (*Histogram, error) {
	h, err := declareHistogram(name, help, buckets, labels)
	if err != nil {
		return nil, err
	}
	return &Histogram{h}, nil
}

// Add adds value (>= 0) to the series with these label values.
func (c *Counter) Add(value float64, labelValues ...string) error {
	return counterAdd(c.h, labelValues, value)
}

// Inc adds 1.
func (c *Counter) Inc(labelValues ...string) error { return c.Add(1, labelValues...) }

// Set sets the series with these label values to value.
func (g *Gauge) Set(value float64, labelValues ...string) error {
	return gaugeSet(g.h, labelValues, value)
}

// Add adds value (of any sign) to the series with these label values.
func (g *Gauge) Add(value float64, labelValues ...string) error {
	return gaugeAdd(g.h, labelValues, value)
}

// Observe records one observation for the series with these label values.
func (h *Histogram) Observe(value float64, labelValues ...string) error {
	return histogramObserve(h.h, labelValues, value)
}
