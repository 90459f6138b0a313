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
	return &httpSource{base: u, opts: opts, client: &http.Client{Transport: tr, CheckRedirect: CheckRedirect}}, nil
}

// MaxRedirects is how many redirects one request may follow.
const MaxRedirects = 5

// CheckRedirect is the redirect policy of every HTTP client nodeinit runs: at
// most MaxRedirects hops, and never from https to plain http, which would
// fetch over cleartext what the operator asked to fetch over TLS (bypassing
// the rule that cleartext needs a signature or a pin).
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", errRedirect, MaxRedirects)
	}
	for _, v := range via {
		if v.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: from https to %s (%s), a downgrade to cleartext", errRedirect, req.URL.Scheme, RedactURL(req.URL))
		}
	}
	return nil
}

// errRedirect marks a redirect CheckRedirect refused.
var errRedirect = errors.New("redirect refused")

// RedactURL is u as messages show it: no user information, query or fragment,
// which may carry credentials (a password, a token, a signed URL's signature).
func RedactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "REDACTED", false
	}
	if c.Fragment != "" {
		c.Fragment, c.RawFragment = "REDACTED", ""
	}
	return c.String()
}

func (h *httpSource) Cleartext() bool { return h.base.Scheme == "http" }
func (h *httpSource) String() string  { return RedactURL(h.base) }

func (h *httpSource) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

func (h *httpSource) fileURL(name string) *url.URL {
	return h.base.JoinPath(name)
}

// Open starts the download of name. The returned reader resumes with Range
// requests after a dropped connection or a stall, with exponential backoff,
// until Retries attempts in a row have failed.
func (h *httpSource) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	u := h.fileURL(name)
	// One deadline for the whole file, however the server paces it.
	dctx, stop := context.WithTimeout(ctx, h.opts.Deadline)
	r := &httpReader{ctx: dctx, parent: ctx, stop: stop, src: h, url: u.String(), shown: RedactURL(u), size: -1,
		started: time.Now()}
	r.windowStart = r.started
	if err := r.connect(); err != nil {
		stop()
		return nil, 0, err
	}
	return r, r.size, nil
}

// httpReader is one resumable download.
type httpReader struct {
	ctx    context.Context // parent with the Deadline
	parent context.Context
	stop   context.CancelFunc
	src    *httpSource
	url    string // what is fetched
	shown  string // what messages show: url without credentials
	size   int64  // total size, -1 if the server did not say
	off    int64  // bytes delivered to the caller so far

	started     time.Time
	windowStart time.Time // the rate window: since when, and off then
	windowOff   int64

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
		if rerr := r.checkRate(); rerr != nil {
			r.closeBody()
			return n, rerr
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
		if cerr := r.ctxErr(); cerr != nil {
			return n, cerr
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
	r.stop()
	return nil
}

// checkRate fails the download when, over the last RateWindow, the server
// delivered less than MinRate bytes a second: a server that drips a byte now
// and then never trips the stall timer, and must not hold an install forever.
func (r *httpReader) checkRate() error {
	o := r.src.opts
	now := time.Now()
	elapsed := now.Sub(r.windowStart)
	if elapsed < o.RateWindow {
		return nil
	}
	rate := float64(r.off-r.windowOff) / elapsed.Seconds()
	if rate < float64(o.MinRate) {
		return newError("download", r.shown,
			fmt.Errorf("%.0f bytes/s over the last %s, below the minimum of %d bytes/s (at byte %d)", rate, elapsed.Round(time.Millisecond), o.MinRate, r.off),
			"the server or the network is too slow: check them, or put the bundle on the boot medium")
	}
	r.windowStart, r.windowOff = now, r.off
	return nil
}

// ctxErr is the error for a done context: the Deadline, or the caller's own.
func (r *httpReader) ctxErr() error {
	if r.ctx.Err() == nil {
		return nil
	}
	if r.parent.Err() == nil {
		return newError("download", r.shown,
			fmt.Errorf("not finished after %s (byte %d of %d)", r.src.opts.Deadline, r.off, r.size),
			"the server or the network is too slow: check them, or put the bundle on the boot medium")
	}
	return fmt.Errorf("download %s: %w", r.shown, r.parent.Err())
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
			return newError("download", r.shown,
				fmt.Errorf("gave up after %d failed attempts in a row (%d in total) at byte %d: %w",
					r.fails, r.attempts, r.off, r.lastErr),
				"check the server and the network, or put the bundle on the boot medium")
		}
		if r.attempts > 0 && r.fails > 0 {
			if err := sleepCtx(r.ctx, backoff(o.BackoffMin, o.BackoffMax, r.fails)); err != nil {
				return r.ctxErr()
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
		if cerr := r.ctxErr(); cerr != nil {
			return cerr
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
		return &permanentError{newError("download", r.shown, err, "check the URL")}
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
		// net/http's error carries the URL with its query (and user name):
		// keep only the cause, the messages name the URL without credentials.
		err = WithoutURL(err)
		if errors.Is(err, errRedirect) {
			return &permanentError{newError("download", r.shown, err, "serve the bundle over https all the way, or point nodeinit.image= at where the redirect leads")}
		}
		if isCertError(err) {
			return &permanentError{newError("download", r.shown, err,
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
		return fail(&permanentError{fmt.Errorf("download %s: HTTP %s: %w", r.shown, resp.Status, fs.ErrNotExist)})
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
		return fail(&permanentError{newError("download", r.shown, fmt.Errorf("HTTP %s", resp.Status),
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

// RedactRawURL is RedactURL of a URL string; a string that does not parse
// is shown as REDACTED, since it may hide a credential anywhere.
func RedactRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "REDACTED"
	}
	if u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return raw // nothing to hide: shown as written
	}
	return RedactURL(u)
}

// WithoutURL returns the cause of a net/http client error, whose message
// carries the request URL, query and user name included; other errors are
// returned as they are.
func WithoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
