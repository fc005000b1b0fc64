package wasinet

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"outwasm/internal/calls"
	"outwasm/internal/wit/wasi_http_outgoing_handler"
	"outwasm/internal/wit/wasi_http_types"
	"outwasm/internal/wit/wasi_io_streams"
)

// Installed before any export runs, so before the guest's Init: every client without its own
// Transport goes through the host.
func init() { http.DefaultTransport = &Transport{} }

// Transport is an http.RoundTripper over the host's outbound HTTP client (wasi:http): the host
// keeps connections alive, speaks TLS with its roots and wasm_tls_ca_file, and judges each
// request by wasm_allow_net before connecting. Request and response bodies are streamed. The
// zero value is ready to use.
type Transport struct {
	// UserAgent is sent when a request has no User-Agent header ("" for Go's own default,
	// Go-http-client/1.1, as net/http's transport sends).
	UserAgent string
}

// RoundTrip sends req and waits for the response's status and headers, bounded by req's
// context (http.Client.Timeout sets it) and the current flush's bound. The response body is
// read from the host as the caller reads it, under the same bounds.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		req.Body.Close()
	}
	return resp, err
}

func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	authority := req.Host
	if authority == "" {
		authority = req.URL.Host
	}
	fail := func(e *Error) (*http.Response, error) {
		e.Op, e.Addr = "request", authority
		return nil, e
	}
	deadline := bound(ctx, time.Time{}, calls.Seq())
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return fail(&Error{timeout: true})
	}

	headers, err := fields(req, t.UserAgent)
	if err != nil {
		return nil, err
	}
	request := wasi_http_types.MakeOutgoingRequest(headers)
	set := []witTypes.Result[witTypes.Unit, witTypes.Unit]{
		request.SetMethod(method(req.Method)),
		request.SetScheme(witTypes.Some(scheme(req.URL.Scheme))),
		request.SetAuthority(witTypes.Some(authority)),
		request.SetPathWithQuery(witTypes.Some(req.URL.RequestURI())),
	}
	for _, r := range set {
		if r.IsErr() {
			request.Drop()
			return fail(&Error{Code: "the host refused the request's method or URL (" + req.Method + " " +
				req.URL.Redacted() + ")"})
		}
	}
	body := request.Body().Ok()
	options := witTypes.None[*wasi_http_types.RequestOptions]()
	if !deadline.IsZero() {
		// The host's own timeouts too, so a connection it is making gives up in time.
		o := wasi_http_types.MakeRequestOptions()
		nanos := witTypes.Some(uint64(max(time.Until(deadline), 1)))
		o.SetConnectTimeout(nanos)
		o.SetFirstByteTimeout(nanos)
		o.SetBetweenBytesTimeout(nanos)
		options = witTypes.Some(o)
	}
	handled := wasi_http_outgoing_handler.Handle(request, options)
	if options.IsSome() {
		options.Some().Drop()
	}
	if handled.IsErr() {
		body.Drop()
		return fail(errorOfCode(handled.Err()))
	}
	future := handled.Ok()
	// A request the host refuses fails its body stream too; the response says why, so it is
	// awaited even when sending failed.
	sendErr := send(ctx, body, req.Body, deadline)

	pollable := future.Subscribe()
	werr := wait(ctx, pollable, deadline)
	pollable.Drop()
	if werr != nil {
		future.Drop()
		return fail(werr)
	}
	got := future.Get()
	future.Drop()
	if got.IsNone() || got.Some().IsErr() {
		if sendErr != nil {
			return fail(sendErr)
		}
		return fail(&Error{Code: "no response"})
	}
	answered := got.Some().Ok()
	if answered.IsErr() {
		return fail(errorOfCode(answered.Err()))
	}
	if sendErr != nil {
		answered.Ok().Drop()
		return fail(sendErr)
	}
	return response(req, answered.Ok(), authority, deadline)
}

// fields are req's headers as the host takes them. Headers wasi:http forbids a guest to set
// (Connection, Host, Keep-Alive, Transfer-Encoding, ...: the host's client sets them) are
// left out, as net/http's own transport would set them itself.
func fields(req *http.Request, userAgent string) (*wasi_http_types.Fields, error) {
	f := wasi_http_types.MakeFields()
	add := func(name, value string) error {
		r := f.Append(name, []byte(value))
		if r.IsErr() && r.Err().Tag() == wasi_http_types.HeaderErrorInvalidSyntax {
			f.Drop()
			return &Error{Op: "request", Addr: req.URL.Host, Code: "invalid header " + strconv.Quote(name)}
		}
		return nil
	}
	for name, values := range req.Header {
		if textproto.CanonicalMIMEHeaderKey(name) == "Content-Length" {
			// net/http writes req.ContentLength and never this header (reqWriteExcludeHeader);
			// clients such as aws-sdk-go set both. Added below, once.
			continue
		}
		for _, value := range values {
			if err := add(name, value); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		if userAgent == "" {
			userAgent = "Go-http-client/1.1"
		}
		if err := add("User-Agent", userAgent); err != nil {
			return nil, err
		}
	}
	// net/http keeps the length beside the headers; unknown (-1) is sent chunked by the host.
	// (A zero length with a body is unknown too, as net/http reads it.)
	noBody := req.Body == nil || req.Body == http.NoBody
	if req.ContentLength > 0 || req.ContentLength == 0 && noBody && methodHasBody(req.Method) {
		if err := add("Content-Length", strconv.FormatInt(req.ContentLength, 10)); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func methodHasBody(m string) bool { return m == "POST" || m == "PUT" || m == "PATCH" }

func method(m string) wasi_http_types.Method {
	switch strings.ToUpper(m) {
	case "", "GET":
		return wasi_http_types.MakeMethodGet()
	case "HEAD":
		return wasi_http_types.MakeMethodHead()
	case "POST":
		return wasi_http_types.MakeMethodPost()
	case "PUT":
		return wasi_http_types.MakeMethodPut()
	case "DELETE":
		return wasi_http_types.MakeMethodDelete()
	case "CONNECT":
		return wasi_http_types.MakeMethodConnect()
	case "OPTIONS":
		return wasi_http_types.MakeMethodOptions()
	case "TRACE":
		return wasi_http_types.MakeMethodTrace()
	case "PATCH":
		return wasi_http_types.MakeMethodPatch()
	}
	return wasi_http_types.MakeMethodOther(m)
}

func scheme(s string) wasi_http_types.Scheme {
	switch s {
	case "http":
		return wasi_http_types.MakeSchemeHttp()
	case "https":
		return wasi_http_types.MakeSchemeHttps()
	}
	return wasi_http_types.MakeSchemeOther(s)
}

// send streams the request body to the host and finishes it.
func send(ctx context.Context, body *wasi_http_types.OutgoingBody, from io.ReadCloser, deadline time.Time) *Error {
	stream := body.Write().Ok()
	var err *Error
	if from != nil {
		err = writeAll(ctx, stream, from, deadline)
		from.Close()
	}
	stream.Drop()
	finished := wasi_http_types.OutgoingBodyFinish(body, witTypes.None[*wasi_http_types.Fields]())
	if err == nil && finished.IsErr() {
		err = errorOfCode(finished.Err())
	}
	return err
}

// writeAll copies from into stream as the host takes it.
func writeAll(ctx context.Context, stream *wasi_io_streams.OutputStream, from io.Reader, deadline time.Time) *Error {
	buf := make([]byte, 32<<10)
	for {
		n, rerr := from.Read(buf)
		for piece := buf[:n]; len(piece) > 0; {
			room := stream.CheckWrite()
			if room.IsErr() {
				return streamError(room.Err())
			}
			if room.Ok() == 0 {
				p := stream.Subscribe()
				werr := wait(ctx, p, deadline)
				p.Drop()
				if werr != nil {
					return werr
				}
				continue
			}
			k := min(uint64(len(piece)), room.Ok())
			if w := stream.Write(piece[:k]); w.IsErr() {
				return streamError(w.Err())
			}
			piece = piece[k:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &Error{Code: "reading the request body: " + rerr.Error()}
		}
	}
	// Wait until the host has taken everything. A stream the host closed once it had the whole
	// body (a Content-Length's worth) is done, not failed.
	if f := stream.Flush(); f.IsErr() {
		return finalError(f.Err())
	}
	p := stream.Subscribe()
	defer p.Drop()
	if werr := wait(ctx, p, deadline); werr != nil {
		return werr
	}
	if room := stream.CheckWrite(); room.IsErr() {
		return finalError(room.Err())
	}
	return nil
}

// finalError is a stream error after the whole body was written: closed is the end.
func finalError(err wasi_io_streams.StreamError) *Error {
	if err.Tag() == wasi_io_streams.StreamErrorClosed {
		return nil
	}
	return streamError(err)
}

// response is the http.Response of the host's answer; its Body reads the host's stream.
func response(req *http.Request, in *wasi_http_types.IncomingResponse, authority string,
	deadline time.Time) (*http.Response, error) {
	status := int(in.Status())
	resp := &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, ContentLength: -1, Request: req,
	}
	headers := in.Headers()
	for _, e := range headers.Entries() {
		resp.Header.Add(e.F0, string(e.F1))
	}
	headers.Drop()
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	body := in.Consume().Ok()
	resp.Body = &responseBody{ctx: req.Context(), response: in, body: body, stream: body.Stream().Ok(),
		deadline: deadline, authority: authority}
	if req.Method == "HEAD" {
		resp.ContentLength = max(resp.ContentLength, 0)
	}
	return resp, nil
}

// responseBody is a response's body, read from the host's stream as it arrives.
type responseBody struct {
	ctx       context.Context
	response  *wasi_http_types.IncomingResponse
	body      *wasi_http_types.IncomingBody
	stream    *wasi_io_streams.InputStream
	deadline  time.Time
	authority string
	err       error
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		r := b.stream.Read(uint64(len(p)))
		if r.IsErr() {
			if r.Err().Tag() == wasi_io_streams.StreamErrorClosed {
				b.err = io.EOF
			} else {
				e := streamError(r.Err())
				e.Op, e.Addr = "response", b.authority
				b.err = e
			}
			return 0, b.err
		}
		if n := copy(p, r.Ok()); n > 0 {
			return n, nil
		}
		pollable := b.stream.Subscribe()
		werr := wait(b.ctx, pollable, b.deadline)
		pollable.Drop()
		if werr != nil {
			werr.Op, werr.Addr = "response", b.authority
			return 0, werr
		}
	}
}

// Close gives the stream, the body and the response back to the host, children first.
func (b *responseBody) Close() error {
	if b.stream == nil {
		return nil
	}
	b.stream.Drop()
	wasi_http_types.IncomingBodyFinish(b.body).Drop()
	b.response.Drop()
	b.stream = nil
	if b.err == nil {
		b.err = errors.New("http: read on closed response body")
	}
	return nil
}

// streamError is a stream's failure as an *Error, with the HTTP error code when the host
// gives one.
func streamError(err wasi_io_streams.StreamError) *Error {
	if err.Tag() == wasi_io_streams.StreamErrorClosed {
		return &Error{Code: "the host closed the stream"}
	}
	failed := err.LastOperationFailed()
	defer failed.Drop()
	if code := wasi_http_types.HttpErrorCode(failed); code.IsSome() {
		return errorOfCode(code.Some())
	}
	return &Error{Code: failed.ToDebugString()}
}

var codeNames = [...]string{
	"DNS-timeout", "DNS-error", "destination-not-found", "destination-unavailable",
	"destination-IP-prohibited", "destination-IP-unroutable", "connection-refused",
	"connection-terminated", "connection-timeout", "connection-read-timeout",
	"connection-write-timeout", "connection-limit-reached", "TLS-protocol-error",
	"TLS-certificate-error", "TLS-alert-received", "HTTP-request-denied",
	"HTTP-request-length-required", "HTTP-request-body-size", "HTTP-request-method-invalid",
	"HTTP-request-URI-invalid", "HTTP-request-URI-too-long", "HTTP-request-header-section-size",
	"HTTP-request-header-size", "HTTP-request-trailer-section-size", "HTTP-request-trailer-size",
	"HTTP-response-incomplete", "HTTP-response-header-section-size", "HTTP-response-header-size",
	"HTTP-response-body-size", "HTTP-response-trailer-section-size", "HTTP-response-trailer-size",
	"HTTP-response-transfer-coding", "HTTP-response-content-coding", "HTTP-response-timeout",
	"HTTP-upgrade-failed", "HTTP-protocol-error", "loop-detected", "configuration-error",
	"internal-error",
}

// errorOfCode is the host's wasi:http error code as an *Error.
func errorOfCode(code wasi_http_types.ErrorCode) *Error {
	e := &Error{Code: codeNames[min(int(code.Tag()), len(codeNames)-1)]}
	switch code.Tag() {
	case wasi_http_types.ErrorCodeHttpRequestDenied:
		e.denied = true
	case wasi_http_types.ErrorCodeDnsTimeout, wasi_http_types.ErrorCodeConnectionTimeout,
		wasi_http_types.ErrorCodeConnectionReadTimeout, wasi_http_types.ErrorCodeConnectionWriteTimeout,
		wasi_http_types.ErrorCodeHttpResponseTimeout:
		e.timeout = true
	case wasi_http_types.ErrorCodeInternalError:
		if detail := code.InternalError(); detail.IsSome() {
			e.Code += ": " + detail.Some()
		}
	}
	return e
}
