// Package metric is the Calyptia SDK's metric interfaces, as out_wasm serves them: what
// plugin.Fluentbit.Metrics makes.
package metric

// Counter only goes up.
type Counter interface {
	Add(delta float64, labelValues ...string)
}

// Gauge goes up and down.
type Gauge interface {
	Add(delta float64, labelValues ...string)
	Set(value float64, labelValues ...string)
}
