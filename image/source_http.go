package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// httpSource fetches bundle files below a base URL.
type httpSource struct {
	base   *url.URL
	opts   SourceOptions
	client *http.Client
}

func newHTTPSource(spec string, opts SourceOptions) (*httpSource, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" {
		return nil, newError("open image source", spec, fmt.Errorf("bad URL: %v", err),
			"write it as http(s)://host[:port]/path/to/bundle/")
	}
	dialer := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   opts.ConnectTimeout,
		ResponseHeaderTimeout: opts.ConnectTimeout,
		// Compression would hide the byte offsets Range resume relies on.
		DisableCompression:  true,
		MaxIdleConnsPerHost: 2,
		ReadBufferSize:      256 << 10,
	}
	return &httpSource{base: u, opts: opts, client: &http.Client{Transport: tr}}, nil
}

func (h *httpSource) Cleartext() bool { return h.base.Scheme == "http" }
func (h *httpSource) String() string  { return h.base.Redacted() }

func (h *httpSource) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

func (h *httpSource) fileURL(name string) string {
	return h.base.JoinPath(name).String()
}

// Open starts the download of name. The returned reader resumes with Range
// requests after a dropped connection or a stall, with exponential backoff,
// until Retries attempts in a row have failed.
func (h *httpSource) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	r := &httpReader{ctx: ctx, src: h, url: h.fileURL(name), size: -1}
	if err := r.connect(); err != nil {
		return nil, 0, err
	}
	return r, r.size, nil
}

// httpReader is one resumable download.
type httpReader struct {
	ctx  context.Context
	src  *httpSource
	url  string
	size int64 // total size, -1 if the server did not say
	off  int64 // bytes delivered to the caller so far

	validator string // ETag or Last-Modified of the first response, for If-Range
	body      io.ReadCloser
	cancel    context.CancelFunc
	watchdog  *time.Timer

	fails    int   // failed attempts since the last progress
	attempts int   // attempts in total
	lastErr  error // why the last attempt failed
}

func (r *httpReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if err := r.connect(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.fails = 0
			r.watchdog.Reset(r.src.opts.StallTimeout)
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF {
			if r.size < 0 || r.off >= r.size {
				return n, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		// The connection dropped or stalled: resume on the next attempt.
		r.closeBody()
		if cerr := r.ctx.Err(); cerr != nil {
			return n, fmt.Errorf("download %s: %w", r.url, cerr)
		}
		r.lastErr = err
		r.fails++
		if n > 0 {
			return n, nil
		}
	}
}

func (r *httpReader) Close() error {
	r.closeBody()
	return nil
}

func (r *httpReader) closeBody() {
	if r.body != nil {
		r.watchdog.Stop()
		r.body.Close()
		r.cancel()
		r.body = nil
	}
}

// connect issues GET requests, from r.off on, until one succeeds, a
// permanent error occurs or the retry budget is spent.
func (r *httpReader) connect() error {
	o := r.src.opts
	for {
		if r.fails >= o.Retries {
			return newError("download", r.url,
				fmt.Errorf("gave up after %d failed attempts in a row (%d in total) at byte %d: %w",
					r.fails, r.attempts, r.off, r.lastErr),
				"check the server and the network, or put the bundle on the boot medium")
		}
		if r.attempts > 0 && r.fails > 0 {
			if err := sleepCtx(r.ctx, backoff(o.BackoffMin, o.BackoffMax, r.fails)); err != nil {
				return fmt.Errorf("download %s: %w", r.url, err)
			}
		}
		r.attempts++
		err := r.try()
		if err == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return fmt.Errorf("download %s: %w", r.url, cerr)
		}
		r.lastErr = err
		r.fails++
	}
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }

func (r *httpReader) try() error {
	ctx, cancel := context.WithCancel(r.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		cancel()
		return &permanentError{newError("download", r.url, err, "check the URL")}
	}
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
		if r.validator != "" {
			req.Header.Set("If-Range", r.validator)
		}
	}
	// Time out the headers and any later stall with one timer.
	watchdog := time.AfterFunc(r.src.opts.ConnectTimeout+r.src.opts.StallTimeout, cancel)
	resp, err := r.src.client.Do(req)
	if err != nil {
		watchdog.Stop()
		cancel()
		if isCertError(err) {
			return &permanentError{newError("download", r.url, err,
				"the server's certificate is not trusted: add its CA to the initramfs, or fetch the bundle from the boot medium")}
		}
		return err
	}
	fail := func(err error) error {
		watchdog.Stop()
		resp.Body.Close()
		cancel()
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fail(&permanentError{fmt.Errorf("download %s: HTTP %s: %w", r.url, resp.Status, fs.ErrNotExist)})
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fail(fmt.Errorf("HTTP %s", resp.Status))
	case resp.StatusCode == http.StatusOK:
		if r.size < 0 && resp.ContentLength >= 0 {
			r.size = resp.ContentLength
		}
		if r.off > 0 {
			// No Range support (or the file changed): skip what we have. If
			// the file changed, the digest check catches it.
			if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
				return fail(fmt.Errorf("skip %d bytes: %w", r.off, err))
			}
		}
	case resp.StatusCode == http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != r.off {
			return fail(fmt.Errorf("bad Content-Range %q for offset %d", resp.Header.Get("Content-Range"), r.off))
		}
		if r.size < 0 {
			r.size = total
		}
	default:
		return fail(&permanentError{newError("download", r.url, fmt.Errorf("HTTP %s", resp.Status),
			"check the URL in nodeinit.image= and the server's access rules")})
	}
	if r.validator == "" {
		r.validator = resp.Header.Get("ETag")
		if r.validator == "" || strings.HasPrefix(r.validator, "W/") {
			r.validator = resp.Header.Get("Last-Modified")
		}
	}
	watchdog.Reset(r.src.opts.StallTimeout)
	r.body, r.cancel, r.watchdog = resp.Body, cancel, watchdog
	return nil
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(v string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("no bytes unit")
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("no total")
	}
	s, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("no range")
	}
	if start, err = strconv.ParseInt(s, 10, 64); err != nil {
		return 0, 0, err
	}
	if tot == "*" {
		return start, -1, nil
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	return start, total, err
}

func isCertError(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &cv)
}

// backoff returns min·2^(n-1) capped at max, with ±20% jitter.
func backoff(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min2(d, max)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

func min2(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
