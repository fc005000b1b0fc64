// flbtls: a fluent-bit-go output plugin that sends each chunk's records as one JSON array over
// HTTPS with TLS of its own, as plugins with their own clients do: `mode transport` POSTs to
// `url` through its own &http.Transport{DialContext: (&net.Dialer{...}).DialContext,
// TLSClientConfig: ..., MaxIdleConns: ...} (New Relic's shape); `mode dial` writes the same
// request by hand over crypto/tls.Dial to `address`. Both trust the system's roots (natively
// SSL_CERT_FILE; in out_wasm the host's, with wasm_tls_ca_file). FLB_RETRY when the server does
// not answer 2xx.
package main

import (
	"C"
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

var (
	mode, url, address string
	client             *http.Client
)

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "flbtls", "records as JSON arrays over its own TLS")
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) int {
	mode = output.FLBPluginConfigKey(plugin, "mode")
	url = output.FLBPluginConfigKey(plugin, "url")
	address = output.FLBPluginConfigKey(plugin, "address")
	switch {
	case mode == "transport" && url != "":
		transport := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConns:        4,
			IdleConnTimeout:     30 * time.Second,
		}
		client = &http.Client{Transport: transport, Timeout: 10 * time.Second}
	case mode == "dial" && address != "":
	default:
		log.Printf("[flbtls] set mode transport with url, or mode dial with address")
		return output.FLB_ERROR
	}
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	dec := output.NewDecoder(data, int(length))
	var batch []map[string]interface{}
	for {
		ret, ts, record := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		t, _ := ts.(output.FLBTime)
		m := map[string]interface{}{"tag": C.GoString(tag), "time": t.UTC().Format(time.RFC3339Nano)}
		for k, v := range record {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			m[fmt.Sprint(k)] = v
		}
		batch = append(batch, m)
	}
	body, err := json.Marshal(batch)
	if err != nil {
		log.Printf("[flbtls] %v", err)
		return output.FLB_ERROR
	}
	status, err := send(body)
	if err != nil {
		log.Printf("[flbtls] %v", err)
		return output.FLB_RETRY
	}
	if status/100 != 2 {
		log.Printf("[flbtls] answered %d", status)
		return output.FLB_RETRY
	}
	return output.FLB_OK
}

func send(body []byte) (int, error) {
	if mode == "transport" {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	host, _, _ := net.SplitHostPort(address)
	conn, err := tls.Dial("tcp", address, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /ingest HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n%s", address, len(body), body)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var status int
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "HTTP/1.1 %d", &status); err != nil {
		return 0, fmt.Errorf("unexpected answer %q", line)
	}
	return status, nil
}

func main() {}
