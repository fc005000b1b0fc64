package outwasm

import (
	"outwasm/internal/wit/out_wasm_output_logging"
	"outwasm/internal/wit/out_wasm_output_metrics"
)

func hostMaxLevel() Level { return Level(out_wasm_output_logging.MaxLevel()) }

func hostLog(level Level, message string) { out_wasm_output_logging.Log(uint8(level), message) }

func hostDeclare(name, help string, kind metricKind, labels []string, buckets []float64) (uint32, error) {
	r := out_wasm_output_metrics.Declare(out_wasm_output_metrics.MetricSpec{
		Name: name, Help: help, Kind: uint8(kind), LabelNames: labels, Buckets: buckets,
	})
	if r.IsErr() {
		return 0, metricError(r.Err())
	}
	return r.Ok(), nil
}

func hostUpdate(kind metricUpdate, id uint32, labels []string, value float64) error {
	update := out_wasm_output_metrics.Add
	switch kind {
	case updateSet:
		update = out_wasm_output_metrics.Set
	case updateObserve:
		update = out_wasm_output_metrics.Observe
	}
	if r := update(id, labels, value); r.IsErr() {
		return metricError(r.Err())
	}
	return nil
}
