// flbsyslog: a fluent-bit-go output plugin that writes each record's `message` to a syslog
// server over UDP with Go's log/syslog (which dials for itself and names the host with
// os.Hostname), at the level the record's `level` names (info otherwise).
package main

import (
	"C"
	"fmt"
	"log"
	"log/syslog"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

var writer *syslog.Writer

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbsyslog", "records to syslog over UDP")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	address := output.FLBPluginConfigKey(plugin, "address")
	var err error
	writer, err = syslog.Dial("udp", address, syslog.LOG_INFO|syslog.LOG_LOCAL0, "flbsyslog")
	if err != nil {
		log.Printf("[flbsyslog] %v", err)
		return output.FLB_ERROR
	}
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	dec := output.NewDecoder(data, int(length))
	for {
		ret, _, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		text := func(key string) string {
			if b, ok := record[key].([]byte); ok {
				return string(b)
			}
			return fmt.Sprint(record[key])
		}
		var err error
		switch text("level") {
		case "error":
			err = writer.Err(text("message"))
		case "warning":
			err = writer.Warning(text("message"))
		default:
			err = writer.Info(text("message"))
		}
		if err != nil {
			log.Printf("[flbsyslog] %v", err)
			return output.FLB_RETRY
		}
	}
	return output.FLB_OK
}

func main() {}
