package outwasm

import "fmt"

// Level is the severity of a log line, as the agent ranks them.
type Level uint8

const (
	LevelError Level = iota
	LevelWarn
	LevelInfo
	LevelDebug
	LevelTrace
)

// maxLevel is the instance's log_level, asked once: it is constant for an instance's life.
var maxLevel = -1

// LogEnabled says whether a line at level reaches the agent's log (the instance's log_level),
// so a guest can skip formatting it.
func LogEnabled(level Level) bool {
	if maxLevel < 0 {
		maxLevel = int(hostMaxLevel())
	}
	return int(level) <= maxLevel
}

// Log writes a fmt-formatted line into the agent's log at level, prefixed with the instance's
// name. The text is data, never a format string for the host.
func Log(level Level, format string, args ...any) {
	if LogEnabled(level) {
		hostLog(level, fmt.Sprintf(format, args...))
	}
}

func Error(format string, args ...any) { Log(LevelError, format, args...) }
func Warn(format string, args ...any)  { Log(LevelWarn, format, args...) }
func Info(format string, args ...any)  { Log(LevelInfo, format, args...) }
func Debug(format string, args ...any) { Log(LevelDebug, format, args...) }
func Trace(format string, args ...any) { Log(LevelTrace, format, args...) }
