// Test guest go-net: a Go guest that talks to a TCP server through the SDK's dialer
// (outwasm/wasinet over wasi:sockets), so tests can show delivery, read deadlines, the host's
// grants and lookup policy, and goroutines running while the dialer waits.
//
// Contract:
//   - Keys: `address` (required): the server's host:port (an IP or a name); `read_timeout`
//     (default 5s): the read deadline for the server's answer, a Go duration; `dialer`
//     (default `wasinet`): `std` dials with Go's own (&net.Dialer{}).DialContext instead, as
//     an unmodified library does (guests/go/build gives std net the host's network).
//   - Init starts a background goroutine that counts ticks (one per millisecond of time.Sleep)
//     and logs `go-net init address=<address>` at info.
//   - Flush dials `address` with wasinet.DialContext(ctx.Context(), "tcp", address) (or net's
//     Dialer), writes
//     one line `go-net <delivery id> <records>\n`, sets the read deadline to now +
//     read_timeout and reads one line back. Then:
//   - the server answered `ok`: logs `go-net delivered <records> records to <address>: ok
//     (remote <ip:port>)` at info and answers ok;
//   - the read deadline fired: answers retry with `go-net read timed out after <read_timeout>
//     (timeout=<net.Error Timeout()>, deadline-exceeded=<errors.Is os.ErrDeadlineExceeded>,
//     background ticks=<ticks counted during the read>): <error>`;
//   - the dial was denied (errors.Is wasinet.ErrDenied, through net's *OpError too): answers error with
//     `go-net denied: <error>` (the error names wasm_allow_net);
//   - any other failure: answers retry with `go-net failed: <error>`.
//   - Exit logs `go-net exit`.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"outwasm"
	"outwasm/wasinet"
)

type goNet struct {
	outwasm.Defaults
	address     string
	readTimeout time.Duration
	dial        func(ctx context.Context, network, address string) (net.Conn, error)
	ticks       atomic.Int64
}

func (*goNet) ConfigSchema() []outwasm.ConfigKey {
	return []outwasm.ConfigKey{
		{Name: "address", Description: "the server's host:port", Required: true},
		{Name: "read_timeout", Description: "how long to wait for the server's answer", Default: "5s"},
		{Name: "dialer", Description: "wasinet (the SDK's dialer) or std (Go's net.Dialer)", Default: "wasinet"},
	}
}

func (g *goNet) Init(ctx *outwasm.InitContext) error {
	g.address = ctx.Config.Value("address")
	var err error
	if g.readTimeout, err = time.ParseDuration(ctx.Config.Value("read_timeout")); err != nil {
		return fmt.Errorf("invalid read_timeout: %w", err)
	}
	switch d := ctx.Config.Value("dialer"); d {
	case "wasinet":
		g.dial = wasinet.DialContext
	case "std":
		g.dial = (&net.Dialer{}).DialContext
	default:
		return fmt.Errorf("invalid dialer %q (wasinet, std)", d)
	}
	// Runs only while a call's goroutine waits on Go: the dialer's waits let it.
	go func() {
		for {
			time.Sleep(time.Millisecond)
			g.ticks.Add(1)
		}
	}()
	outwasm.Info("go-net init address=%s", g.address)
	return nil
}

func (g *goNet) Flush(ctx *outwasm.FlushContext, chunk outwasm.Chunk) error {
	records := 0
	for _, err := range chunk.Events() {
		if err != nil {
			return err
		}
		records++
	}
	conn, err := g.dial(ctx.Context(), "tcp", g.address)
	if err != nil {
		if errors.Is(err, wasinet.ErrDenied) {
			return outwasm.Failf("go-net denied: %w", err)
		}
		return outwasm.Retryf("go-net failed: %w", err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "go-net %s %d\n", ctx.Delivery.ID, records); err != nil {
		return outwasm.Retryf("go-net failed: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(g.readTimeout))
	before := g.ticks.Load()
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return outwasm.Retryf("go-net read timed out after %s (timeout=%t, deadline-exceeded=%t, "+
				"background ticks=%d): %w", g.readTimeout, netErr.Timeout(), errors.Is(err, os.ErrDeadlineExceeded),
				g.ticks.Load()-before, err)
		}
		return outwasm.Retryf("go-net failed: %w", err)
	}
	outwasm.Info("go-net delivered %d records to %s: %s (remote %s)", records, g.address,
		strings.TrimSpace(answer), conn.RemoteAddr())
	return nil
}

func (*goNet) Exit(*outwasm.ExitContext) { outwasm.Info("go-net exit") }

func init() { outwasm.Export(&goNet{}) }

func main() {}
