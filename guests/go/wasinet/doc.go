// Package wasinet is the network of a Go guest in out_wasm: an http.RoundTripper over the
// host's wasi:http/outgoing-handler, installed as http.DefaultTransport when the package is
// imported (so http.Get, http.DefaultClient, an &http.Client{Timeout: ...} without a
// Transport, and libraries built on them use the host's HTTP client), and a TCP dialer over
// wasi:sockets (Dial, DialContext, Dialer) for clients that take one (crypto/tls.Client,
// syslog and forward writers).
//
//	import _ "outwasm/wasinet" // http.DefaultTransport is the host's
//
// Every request, lookup and connection is judged by the instance's wasm_allow_net grants; a
// denied one fails with an *Error that wraps ErrDenied and names wasm_allow_net. Waits honour
// the request's context, http.Client.Timeout and net.Conn deadlines, and never outlast the
// current flush: they give up at its deadline less a margin (a tenth of the time left, at
// least 50 ms), with an *Error whose Timeout() is true, so a slow endpoint is a clean retry
// rather than a deadline fault.
//
// Without this package, Go on wasip1 has only an in-process fake network: net.Dial and a
// plugin's own &http.Transport{} reach nothing (see docs/guests-go.md for the one-line fixes).
//
// Goroutines: Go runs other goroutines only while a call's goroutine waits on Go, never while
// the guest is blocked in a host call. So while other goroutines exist (http.Client starts one
// per request with a Timeout, a plugin may run its own), the waits here block in the host for
// at most 10 ms at a time and then yield to Go's scheduler, so timers fire and cancellations
// from other goroutines are seen; with no other goroutine they block until ready or timed out.
package wasinet
