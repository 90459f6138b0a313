package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/internal/backoff"
)

// httpSource fetches bundle files below one or more base URLs, the mirrors,
// tried in order (see ParseMirrors). Which mirror served a file does not
// matter: the manifest's signature, or the pinned digest, decides what the
// bytes must be, and every file is checked against the manifest.
type httpSource struct {
	bases  []*url.URL
	opts   SourceOptions
	client *http.Client
	// preferred is the mirror the next file starts on: the last one that
	// delivered bytes, so a dead first mirror costs one failover, not one per file.
	preferred atomic.Int32
}

// ParseMirrors splits an image spec into its mirrors:
// "http://a/b/,https://c/d/" is two (see cmdline.MirrorSeparator). A spec
// that is not a list is the one element.
func ParseMirrors(spec string) []string { return cmdline.SplitMirrors(spec) }

func newHTTPSource(spec string, opts SourceOptions) (*httpSource, error) {
	var bases []*url.URL
	for _, m := range ParseMirrors(spec) {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, newError("open image source", RedactRawURL(m), fmt.Errorf("bad URL: %v", WithoutURL(err)),
				"write it as http(s)://host[:port]/path/to/bundle/, mirrors joined by commas")
		}
		bases = append(bases, u)
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
	return &httpSource{bases: bases, opts: opts, client: &http.Client{Transport: tr, CheckRedirect: CheckRedirect}}, nil
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

// Cleartext is true when any mirror is plain http: which mirror serves a
// file is not known in advance.
func (h *httpSource) Cleartext() bool {
	for _, b := range h.bases {
		if b.Scheme == "http" {
			return true
		}
	}
	return false
}

// String names the mirror files are fetched from now.
func (h *httpSource) String() string { return RedactURL(h.bases[h.preferred.Load()]) }

func (h *httpSource) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

// Open starts the download of name. The returned reader resumes with Range
// requests after a dropped connection or a stall, on the next mirror when
// there are several, waiting between attempts as the backoff policy says,
// until Retries attempts per mirror in a row have failed, RetryBudget is
// spent waiting, or Deadline passes.
func (h *httpSource) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	// One deadline for the whole file, however the servers pace it.
	dctx, stop := context.WithTimeout(ctx, h.opts.Deadline)
	r := &httpReader{ctx: dctx, parent: ctx, stop: stop, src: h, name: name, size: -1, started: time.Now(),
		cur: int(h.preferred.Load()), notify: notifyOf(ctx, h.opts.Notify),
		bo: backoff.Backoff{Policy: backoff.Policy{Min: h.opts.BackoffMin, Max: h.opts.BackoffMax,
			Retries: h.opts.Retries * len(h.bases), Budget: h.opts.RetryBudget}, Rand: h.opts.Rand}}
	for _, b := range h.bases {
		u := b.JoinPath(name)
		r.mirrors = append(r.mirrors, &mirror{url: u.String(), shown: RedactURL(u)})
	}
	r.windowStart = r.started
	if err := r.connect(); err != nil {
		stop()
		return nil, 0, err
	}
	return r, r.size, nil
}

// mirror is one mirror's copy of the file being downloaded.
type mirror struct {
	url   string // what is fetched
	shown string // what messages show: url without credentials
	// validator is the ETag or Last-Modified of this mirror's first
	// response, for If-Range: another mirror's validator would not match.
	validator string
	// dead says why this mirror is left for the rest of the file (a 404, a
	// refused redirect or certificate, a different file, too slow); nil
	// while it may be tried.
	dead error
}

// httpReader is one resumable download.
type httpReader struct {
	ctx    context.Context // parent with the Deadline
	parent context.Context
	stop   context.CancelFunc
	src    *httpSource
	name   string
	size   int64 // total size, -1 if no server said
	off    int64 // bytes delivered to the caller so far

	mirrors []*mirror
	cur     int // the mirror being read
	notify  func(string)

	started     time.Time
	windowStart time.Time // the rate window: since when, and off then
	windowOff   int64

	body     io.ReadCloser
	cancel   context.CancelFunc
	watchdog *time.Timer

	bo       backoff.Backoff // waits since the last progress
	fails    int             // failed attempts since the last progress
	attempts int             // attempts in total
	lastErr  error           // why the last attempt failed
}

// shown names the mirror being read, for messages.
func (r *httpReader) shown() string { return r.mirrors[r.cur].shown }

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
			r.progress()
			r.watchdog.Reset(r.src.opts.StallTimeout)
		}
		if rerr := r.checkRate(); rerr != nil {
			r.closeBody()
			// Too slow: leave this mirror for the rest of the file; without
			// another mirror the download fails, so a server that drips
			// bytes cannot hold an install forever.
			if !r.leave(rerr) {
				return n, rerr
			}
			if n > 0 {
				return n, nil
			}
			continue
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
		r.failed(err)
		if n > 0 {
			return n, nil
		}
	}
}

// progress notes that bytes arrived: the retry count and budget start again,
// and the mirror that delivered them is where the next file starts.
func (r *httpReader) progress() {
	r.fails = 0
	r.bo.Reset()
	r.src.preferred.Store(int32(r.cur))
}

// failed records a failed attempt on the current mirror and moves to the
// next live mirror, reporting the failover.
func (r *httpReader) failed(err error) {
	r.lastErr = err
	r.fails++
	r.advance(err)
}

// leave marks the current mirror dead for this file and moves on; it
// reports false when no mirror is left.
func (r *httpReader) leave(err error) bool {
	r.mirrors[r.cur].dead = err
	r.lastErr = err
	return r.advance(err)
}

// advance moves to the next live mirror after the current one failed with
// err, and reports whether there is one.
func (r *httpReader) advance(err error) bool {
	from := r.cur
	for i := 1; i <= len(r.mirrors); i++ {
		next := (from + i) % len(r.mirrors)
		if r.mirrors[next].dead != nil {
			continue
		}
		if next != from && r.notify != nil {
			r.notify(fmt.Sprintf("mirror %s failed (%v); resuming %s at byte %d from mirror %s",
				r.mirrors[from].shown, err, r.name, r.off, r.mirrors[next].shown))
		}
		r.cur = next
		return true
	}
	return false
}

func (r *httpReader) Close() error {
	r.closeBody()
	r.stop()
	return nil
}

// checkRate fails the mirror when, over the last RateWindow, it delivered
// less than MinRate bytes a second: a server that drips a byte now and then
// never trips the stall timer.
func (r *httpReader) checkRate() error {
	o := r.src.opts
	now := time.Now()
	elapsed := now.Sub(r.windowStart)
	if elapsed < o.RateWindow {
		return nil
	}
	rate := float64(r.off-r.windowOff) / elapsed.Seconds()
	r.windowStart, r.windowOff = now, r.off
	if rate < float64(o.MinRate) {
		return newError("download", r.shown(),
			fmt.Errorf("%.0f bytes/s over the last %s, below the minimum of %d bytes/s (at byte %d)", rate, elapsed.Round(time.Millisecond), o.MinRate, r.off),
			"the server or the network is too slow: check them, add a mirror, or put the bundle on the boot medium")
	}
	return nil
}

// ctxErr is the error for a done context: the Deadline, or the caller's own.
func (r *httpReader) ctxErr() error {
	if r.ctx.Err() == nil {
		return nil
	}
	if r.parent.Err() == nil {
		return newError("download", r.shown(),
			fmt.Errorf("not finished after %s (byte %d of %d)", r.src.opts.Deadline, r.off, r.size),
			"the server or the network is too slow: check them, or put the bundle on the boot medium")
	}
	return fmt.Errorf("download %s: %w", r.shown(), r.parent.Err())
}

func (r *httpReader) closeBody() {
	if r.body != nil {
		r.watchdog.Stop()
		r.body.Close()
		r.cancel()
		r.body = nil
	}
}

// connect issues GET requests, from r.off on, until one succeeds, every
// mirror has failed for good, or the retry budget is spent. A failed
// attempt moves to the next mirror at once the first time round; once every
// live mirror has failed since the last progress, each further attempt
// waits as the backoff says, so no server sees retries faster than that.
func (r *httpReader) connect() error {
	live := func() int {
		n := 0
		for _, m := range r.mirrors {
			if m.dead == nil {
				n++
			}
		}
		return n
	}
	for {
		if live() == 0 {
			return r.allDead()
		}
		if r.fails >= live() {
			if r.fails >= r.src.opts.Retries*live() {
				return r.gaveUp()
			}
			if err := r.bo.Wait(r.ctx); err != nil {
				if errors.Is(err, backoff.ErrExhausted) {
					return r.gaveUp()
				}
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
			r.leave(perm.err)
			continue
		}
		if cerr := r.ctxErr(); cerr != nil {
			return cerr
		}
		r.failed(err)
	}
}

// gaveUp is the error when the retry count or time budget is spent.
func (r *httpReader) gaveUp() error {
	where := r.shown()
	if len(r.mirrors) > 1 {
		where = fmt.Sprintf("%s (%d mirrors)", r.name, len(r.mirrors))
	}
	left := ""
	for _, m := range r.mirrors {
		if m.dead != nil {
			left += fmt.Sprintf("; %s was left: %v", m.shown, m.dead)
		}
	}
	return newError("download", where,
		fmt.Errorf("gave up after %d failed attempts in a row (%d in total, %s waiting) at byte %d: %w%s",
			r.fails, r.attempts, r.bo.Waited().Round(time.Millisecond), r.off, r.lastErr, left),
		"check the server and the network, add a mirror to nodeinit.image=, or put the bundle on the boot medium")
}

// allDead is the error when every mirror failed for good: the one error
// when there is one mirror; with several, a missing file (fs.ErrNotExist)
// only when every mirror said so, else the first other reason.
func (r *httpReader) allDead() error {
	if len(r.mirrors) == 1 {
		return r.mirrors[0].dead
	}
	var first error
	missing := 0
	for _, m := range r.mirrors {
		if errors.Is(m.dead, fs.ErrNotExist) {
			missing++
		} else if first == nil {
			first = m.dead
		}
	}
	if first == nil {
		return fmt.Errorf("download %s: no mirror of %d has it: %w", r.name, len(r.mirrors), r.mirrors[0].dead)
	}
	return fmt.Errorf("every mirror of %d failed (%d without the file); the first: %w", len(r.mirrors), missing, first)
}

// permanentError marks a failure that retrying the same mirror cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }

func (r *httpReader) try() error {
	m := r.mirrors[r.cur]
	ctx, cancel := context.WithCancel(r.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		cancel()
		return &permanentError{newError("download", m.shown, err, "check the URL")}
	}
	req.Header.Set("User-Agent", r.src.opts.UserAgent)
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
		if m.validator != "" {
			req.Header.Set("If-Range", m.validator)
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
			return &permanentError{newError("download", m.shown, err, "serve the bundle over https all the way, or point nodeinit.image= at where the redirect leads")}
		}
		if isCertError(err) {
			return &permanentError{newError("download", m.shown, err,
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
	// A mirror whose copy has another size holds another file: leave it.
	otherFile := func(size int64) error {
		return &permanentError{newError("download", m.shown, fmt.Errorf("%d bytes, where %d were expected", size, r.size),
			"the mirrors hold different bundles: sync them")}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fail(&permanentError{fmt.Errorf("download %s: HTTP %s: %w", m.shown, resp.Status, fs.ErrNotExist)})
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fail(fmt.Errorf("HTTP %s", resp.Status))
	case resp.StatusCode == http.StatusOK:
		if r.size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != r.size {
			return fail(otherFile(resp.ContentLength))
		}
		if r.size < 0 && resp.ContentLength >= 0 {
			r.size = resp.ContentLength
		}
		if r.off > 0 {
			// The server ignored the Range (or If-Range found the file
			// changed): it sends the file from byte 0, so skip what was
			// delivered already. The bytes stay in order; if the file
			// differs, the digest check refuses it.
			if r.notify != nil {
				r.notify(fmt.Sprintf("mirror %s ignored the Range request: reading %s again from byte 0 to resume at byte %d", m.shown, r.name, r.off))
			}
			if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
				return fail(fmt.Errorf("skip %d bytes: %w", r.off, err))
			}
		}
	case resp.StatusCode == http.StatusPartialContent:
		if r.off == 0 {
			return fail(fmt.Errorf("HTTP 206 to a request without Range"))
		}
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != r.off {
			return fail(fmt.Errorf("bad Content-Range %q for offset %d", resp.Header.Get("Content-Range"), r.off))
		}
		if r.size >= 0 && total >= 0 && total != r.size {
			return fail(otherFile(total))
		}
		if r.size < 0 {
			r.size = total
		}
	default:
		return fail(&permanentError{newError("download", m.shown, fmt.Errorf("HTTP %s", resp.Status),
			"check the URL in nodeinit.image= and the server's access rules")})
	}
	if m.validator == "" {
		m.validator = resp.Header.Get("ETag")
		if m.validator == "" || strings.HasPrefix(m.validator, "W/") {
			m.validator = resp.Header.Get("Last-Modified")
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

// notifyKey is the context key of WithNotify.
type notifyKey struct{}

// WithNotify returns ctx carrying fn, which the http source calls with a
// line about each mirror failover and Range trouble of a download opened
// with ctx. A stage passes its Reporter's Info, so the remark is an event.
func WithNotify(ctx context.Context, fn func(msg string)) context.Context {
	return context.WithValue(ctx, notifyKey{}, fn)
}

// notifyOf is ctx's notify function, else def.
func notifyOf(ctx context.Context, def func(string)) func(string) {
	if fn, ok := ctx.Value(notifyKey{}).(func(string)); ok && fn != nil {
		return fn
	}
	return def
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
