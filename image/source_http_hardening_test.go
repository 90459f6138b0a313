package image

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHTTPRefusesADowngradeRedirect: an https source whose server redirects
// to plain http is refused with the redirect named, and nothing is fetched
// over cleartext.
func TestHTTPRefusesADowngradeRedirect(t *testing.T) {
	plainHits := 0
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits++
		io.WriteString(w, "cleartext bytes")
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusFound)
	}))
	defer tlsSrv.Close()
	opts := fastRetry()
	opts.RootCAs = x509.NewCertPool()
	opts.RootCAs.AddCert(tlsSrv.Certificate())
	src, err := OpenSource(tlsSrv.URL+"/bundle/", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, err = src.Open(context.Background(), ManifestName)
	if err == nil || !strings.Contains(err.Error(), "downgrade to cleartext") {
		t.Fatalf("Open through an https→http redirect = %v, want a refused downgrade", err)
	}
	if plainHits != 0 {
		t.Fatalf("the plain http server was asked %d times", plainHits)
	}
}

// TestHTTPCapsRedirects: a redirect loop ends after MaxRedirects with an error.
func TestHTTPCapsRedirects(t *testing.T) {
	hits := 0
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, srv.URL+r.URL.Path+"x", http.StatusFound)
	}))
	defer srv.Close()
	src, _ := OpenSource(srv.URL+"/b/", fastRetry())
	defer src.Close()
	_, _, err := src.Open(context.Background(), ManifestName)
	if err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("Open through a redirect loop = %v", err)
	}
	if hits != MaxRedirects {
		t.Fatalf("the server saw %d requests, want %d (the first and %d redirects)", hits, MaxRedirects, MaxRedirects-1)
	}
}

// TestHTTPErrorsCarryNoCredentials: a URL with a password and a token in its
// query fails (404, refused connection, redirect refused, too slow) without
// either secret in the error or in the source's name.
func TestHTTPErrorsCarryNoCredentials(t *testing.T) {
	const pass, token = "hunter2pass", "s3cr3tT0ken"
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for name, base := range map[string]string{"404": notFound.URL, "refused": closedURL} {
		t.Run(name, func(t *testing.T) {
			u := strings.Replace(base, "http://", "http://admin:"+pass+"@", 1) + "/b/?token=" + token
			opts := fastRetry()
			opts.Retries = 1
			src, err := OpenSource(u, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			_, _, err = src.Open(context.Background(), ManifestName)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, s := range []string{err.Error(), src.String(), HintOf(err)} {
				if strings.Contains(s, pass) || strings.Contains(s, token) {
					t.Errorf("a credential leaked: %q", s)
				}
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestHTTPDripFeedFails: a server that sends a byte now and then, never
// stalling long enough for the stall timer, fails on the minimum rate, with
// an error that says so.
func TestHTTPDripFeedFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		for i := 0; i < 1000; i++ {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	opts := fastRetry()
	opts.StallTimeout = time.Second // longer than the drip's pauses
	opts.MinRate, opts.RateWindow = 1000, 300*time.Millisecond
	src, _ := OpenSource(srv.URL+"/b/", opts)
	defer src.Close()
	rc, _, err := src.Open(context.Background(), ManifestName)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	if err == nil || !strings.Contains(err.Error(), "below the minimum of 1000 bytes/s") {
		t.Fatalf("drip-fed download = %v, want the minimum rate error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the drip feed held the download for %s", d)
	}
	t.Logf("error: %v", err)
}

// TestHTTPDeadline: a download that keeps a good pace but does not finish
// within the deadline fails with an error naming the deadline.
func TestHTTPDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000000")
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	opts := fastRetry()
	opts.Deadline = 400 * time.Millisecond
	src, _ := OpenSource(srv.URL+"/b/", opts)
	defer src.Close()
	rc, _, err := src.Open(context.Background(), ManifestName)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	if err == nil || !strings.Contains(err.Error(), "not finished after 400ms") {
		t.Fatalf("slow download = %v, want the deadline error", err)
	}
	t.Logf("error: %v", err)
}
