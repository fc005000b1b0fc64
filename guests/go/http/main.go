// http: POSTs each chunk's records as one JSON array to an endpoint, with net/http over the
// host's outbound HTTP (package outwasm/wasinet makes it http.DefaultTransport). The endpoint's
// host:port must be granted with wasm_allow_net. The Go twin of guests/rust/http.
//
// Keys:
//   - url (required): http://host:port/path or https://...
//   - json_date_key (date), json_date_format (double), escape_unicode (on): as for the stdout
//     guest.
//
// Answers: 2xx is delivered; 5xx, 408, 429 and failures to connect or to get an answer in time
// are retried (the agent flushes the chunk again later); other 4xx drop the chunk (the endpoint
// refuses it and would again), as does a request the host denies (no grant). One request per
// chunk, so a retried chunk is sent whole and once more. Each request carries the chunk's
// delivery id as its Idempotency-Key header: the same on every delivery of the chunk, so an
// endpoint that honours the header stores a retried chunk once.
//
// The host renders the records as JSON lines with the three keys (the guest asks for that
// format); the body is those lines joined as one array. The request's context ends at the
// flush's deadline less a margin, so an endpoint too slow to answer is a clean retry, not a
// deadline fault.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"outwasm"
	"outwasm/wasinet"
)

type httpOutput struct {
	outwasm.Defaults
	url  string
	body bytes.Buffer
}

func (*httpOutput) ConfigSchema() []outwasm.ConfigKey {
	return append([]outwasm.ConfigKey{
		{Name: "url", Description: "where to POST: http://host:port/path or https://...", Required: true},
	}, outwasm.JSONLinesKeys()...)
}

func (*httpOutput) PreferredEventFormat(config outwasm.Config) (outwasm.EventFormat, error) {
	options, err := outwasm.JSONLinesFromConfig(config)
	return outwasm.JSONLinesFormat(options), err
}

func (h *httpOutput) Init(ctx *outwasm.InitContext) error {
	if ctx.EventFormat.Kind != outwasm.JSONLines {
		return errors.New("this guest posts the JSON lines the host renders: leave wasm_event_format unset " +
			"(or set it to json_lines), not " + ctx.EventFormat.Kind.String())
	}
	h.url = ctx.Config.Value("url")
	u, err := url.Parse(h.url)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("invalid url %q: expected http://host:port/path or https://...", h.url)
	}
	return nil
}

func (h *httpOutput) Flush(ctx *outwasm.FlushContext, chunk outwasm.Chunk) error {
	// One JSON line per record: the array is the lines, comma-separated, without their newlines.
	h.body.Reset()
	h.body.WriteByte('[')
	records := 0
	for line := range bytes.SplitSeq(chunk, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		if records > 0 {
			h.body.WriteByte(',')
		}
		h.body.Write(line)
		records++
	}
	h.body.WriteByte(']')

	req, err := http.NewRequestWithContext(ctx.Context(), http.MethodPost, h.url, bytes.NewReader(h.body.Bytes()))
	if err != nil {
		return outwasm.Fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", ctx.Delivery.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, wasinet.ErrDenied) {
			return outwasm.Fail(err) // names wasm_allow_net; a retry would be denied again
		}
		return outwasm.Retryf("request failed: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		outwasm.Debug("posted %d records: %d", records, code)
		return nil
	case code == 408 || code == 429 || code >= 500:
		return outwasm.Retryf("the endpoint answered %d", code)
	default:
		return outwasm.Failf("the endpoint refused the records: %d", code)
	}
}

func init() { outwasm.Export(&httpOutput{}) }

func main() {}
