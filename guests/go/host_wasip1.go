package outwasm

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/wit/out_wasm_output_config"
	"outwasm/internal/wit/out_wasm_output_logging"
	"outwasm/internal/wit/out_wasm_output_metrics"
)

func hostMaxLevel() Level { return Level(out_wasm_output_logging.MaxLevel()) }

func hostLog(level Level, message string) { out_wasm_output_logging.Log(uint8(level), message) }

func hostConfigGet(key string) (string, bool) {
	value := out_wasm_output_config.Get(key)
	return value.SomeOr(""), value.IsSome()
}

// The metric handles are the host's resources; the wrappers in metrics.go hold them.
type (
	counterHandle   = *out_wasm_output_metrics.Counter
	gaugeHandle     = *out_wasm_output_metrics.Gauge
	histogramHandle = *out_wasm_output_metrics.Histogram
)

func metricInfo(name, help string, labels []string) out_wasm_output_metrics.MetricInfo {
	return out_wasm_output_metrics.MetricInfo{Name: name, Help: help, LabelNames: labels}
}

func declareCounter(name, help string, labels []string) (counterHandle, error) {
	r := out_wasm_output_metrics.CounterDeclare(metricInfo(name, help, labels))
	if r.IsErr() {
		return nil, metricError(r.Err())
	}
	return r.Ok(), nil
}

func declareGauge(name, help string, labels []string) (gaugeHandle, error) {
	r := out_wasm_output_metrics.GaugeDeclare(metricInfo(name, help, labels))
	if r.IsErr() {
		return nil, metricError(r.Err())
	}
	return r.Ok(), nil
}

func declareHistogram(name, help string, buckets []float64, labels []string) (histogramHandle, error) {
	r := out_wasm_output_metrics.HistogramDeclare(metricInfo(name, help, labels), buckets)
	if r.IsErr() {
		return nil, metricError(r.Err())
	}
	return r.Ok(), nil
}

// updated is an update's result as an error.
func updated(r witTypes.Result[witTypes.Unit, string]) error {
	if r.IsErr() {
		return metricError(r.Err())
	}
	return nil
}

func counterAdd(h counterHandle, labels []string, value float64) error {
	return updated(h.Add(labels, value))
}

func gaugeSet(h gaugeHandle, labels []string, value float64) error {
	return updated(h.Set(labels, value))
}

func gaugeAdd(h gaugeHandle, labels []string, value float64) error {
	return updated(h.Add(labels, value))
}

func histogramObserve(h histogramHandle, labels []string, value float64) error {
	return updated(h.Observe(labels, value))
}
