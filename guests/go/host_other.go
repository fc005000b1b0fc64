//go:build !wasip1

package outwasm

// Outside the sandbox (go test on the build machine) there is no host: log lines go to stderr,
// no key is set beyond the declared ones, and metrics are accepted and dropped.

import (
	"fmt"
	"os"
)

func hostMaxLevel() Level { return LevelTrace }

func hostLog(level Level, message string) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", [...]string{"error", "warn", "info", "debug", "trace"}[level], message)
}

func hostConfigGet(string) (string, bool) { return "", false }

type (
	counterHandle   struct{}
	gaugeHandle     struct{}
	histogramHandle struct{}
)

func declareCounter(string, string, []string) (counterHandle, error) { return counterHandle{}, nil }
func declareGauge(string, string, []string) (gaugeHandle, error)     { return gaugeHandle{}, nil }
func declareHistogram(string, string, []float64, []string) (histogramHandle, error) {
	return histogramHandle{}, nil
}
func counterAdd(counterHandle, []string, float64) error         { return nil }
func gaugeSet(gaugeHandle, []string, float64) error             { return nil }
func gaugeAdd(gaugeHandle, []string, float64) error             { return nil }
func histogramObserve(histogramHandle, []string, float64) error { return nil }

func install() {}
