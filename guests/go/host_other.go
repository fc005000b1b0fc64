//go:build !wasip1

package outwasm

// Outside the sandbox (go test on the build machine) there is no host: log lines go to stderr
// and metrics are accepted and dropped.

import (
	"fmt"
	"os"
)

func hostMaxLevel() Level { return LevelTrace }

func hostLog(level Level, message string) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", [...]string{"error", "warn", "info", "debug", "trace"}[level], message)
}

var nextMetric uint32

func hostDeclare(string, string, metricKind, []string, []float64) (uint32, error) {
	nextMetric++
	return nextMetric, nil
}

func hostUpdate(metricUpdate, uint32, []string, float64) error { return nil }

func install() {}
