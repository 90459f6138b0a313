package image

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bundleServer serves dir on 127.0.0.1 with Range support. dropAt, when
// set, decides per request how many body bytes to send before cutting the
// connection (-1: serve normally).
type bundleServer struct {
	dir    string
	mu     sync.Mutex
	log    []string // "name range" of each request
	dropAt func(name string, req int, rangeHdr string) int64
	count  map[string]int
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := filepath.Base(r.URL.Path)
	s.mu.Lock()
	if s.count == nil {
		s.count = map[string]int{}
	}
	s.count[name]++
	n := s.count[name]
	s.log = append(s.log, name+" "+r.Header.Get("Range"))
	s.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	drop := int64(-1)
	if s.dropAt != nil {
		drop = s.dropAt(name, n, r.Header.Get("Range"))
	}
	if drop < 0 {
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
		return
	}
	// Promise the whole (remaining) body, send part of it, then cut the TCP connection.
	start := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		start, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.Itoa(len(b)-1)+"/"+strconv.Itoa(len(b)))
		w.Header().Set("Content-Length", strconv.FormatInt(int64(len(b))-start, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
	}
	w.Write(b[start:min(start+drop, int64(len(b)))])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close() // the client sees EOF before Content-Length bytes
	}
}

func (s *bundleServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func fastRetry() SourceOptions {
	return SourceOptions{Retries: 3, BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		ConnectTimeout: 5 * time.Second, StallTimeout: 5 * time.Second}
}

func TestHTTPResumeAfterDrop(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	srv := &bundleServer{dir: dir, dropAt: func(name string, n int, _ string) int64 {
		if name == RootfsName && n <= 2 {
			return 3<<20 + 17 // mid-file, unaligned, twice
		}
		return -1
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	src, err := OpenSource(ts.URL+"/bundle/", fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Cleartext() != true {
		t.Fatal("http source does not report cleartext")
	}
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	dst := regularTarget(t, rootfsSize)
	if err := b.WriteFile(context.Background(), RootfsName, dst, 0, nil); err != nil {
		t.Fatalf("WriteFile over a dropping server: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	if got := readAt(t, dst, 0, len(want)); !bytes.Equal(got, want) {
		t.Fatal("downloaded slot differs")
	}
	var ranges []string
	for _, r := range srv.requests() {
		if strings.HasPrefix(r, RootfsName+" bytes=") {
			ranges = append(ranges, r)
		}
	}
	wantRanges := []string{RootfsName + " bytes=3145745-", RootfsName + " bytes=6291490-"}
	if strings.Join(ranges, ",") != strings.Join(wantRanges, ",") {
		t.Errorf("range requests = %q, want %q", ranges, wantRanges)
	}
}

func TestHTTPRetryBudget(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	// Every request after the first dies before sending a byte.
	srv := &bundleServer{dir: dir, dropAt: func(name string, n int, _ string) int64 {
		switch {
		case name != RootfsName:
			return -1
		case n == 1:
			return 1 << 20
		default:
			return 0
		}
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	src, _ := OpenSource(ts.URL, fastRetry())
	defer src.Close()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	dst := regularTarget(t, rootfsSize)
	err := b.WriteFile(context.Background(), RootfsName, dst, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 failed attempts") {
		t.Fatalf("WriteFile = %v, want a retry-budget error", err)
	}
	if HintOf(err) == "" {
		t.Error("retry-budget error carries no hint")
	}
	if got := readAt(t, dst, 0, 4096); !bytes.Equal(got, make([]byte, 4096)) {
		t.Error("partly written slot was not spoiled")
	}
}

func TestHTTPTruncatedFile(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	os.Truncate(filepath.Join(dir, RootfsName), rootfsSize/2) // the server holds a short file
	ts := httptest.NewServer(&bundleServer{dir: dir})
	defer ts.Close()
	src, _ := OpenSource(ts.URL, fastRetry())
	defer src.Close()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	err := b.WriteFile(context.Background(), RootfsName, regularTarget(t, rootfsSize), 0, nil)
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("WriteFile = %v, want ErrSizeMismatch", err)
	}
}

func TestPlainHTTPTrustRules(t *testing.T) {
	priv, keys := testKeys(t)
	signed, _ := testBundle(t, priv)
	unsigned, _ := testBundle(t, "")
	kr := mustKeyring(t, keys)
	serve := func(dir string) Source {
		ts := httptest.NewServer(&bundleServer{dir: dir})
		t.Cleanup(ts.Close)
		src, err := OpenSource(ts.URL, fastRetry())
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	pin := func(dir string) string {
		b := mustOpen(t, openDir(t, dir), kr, VerifyOptions{Insecure: true})
		return b.ManifestSHA256
	}
	tests := []struct {
		name string
		dir  string
		opts VerifyOptions
		want error // nil: accepted
	}{
		{"signed", signed, VerifyOptions{}, nil},
		{"unsigned", unsigned, VerifyOptions{}, ErrCleartext},
		{"unsigned insecure without pin", unsigned, VerifyOptions{Insecure: true}, ErrCleartext},
		{"unsigned pinned without insecure", unsigned, VerifyOptions{PinnedSHA256: pin(unsigned)}, ErrCleartext},
		{"unsigned insecure and pinned", unsigned, VerifyOptions{Insecure: true, PinnedSHA256: pin(unsigned)}, nil},
		{"unsigned wrong pin", unsigned, VerifyOptions{Insecure: true, PinnedSHA256: pin(signed)}, ErrPinMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), serve(tc.dir), kr, tc.opts)
			if tc.want == nil && err != nil {
				t.Fatalf("Open = %v, want success", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if tc.want == ErrCleartext && !strings.Contains(HintOf(err), "nodeinit.image.sha256=") {
				t.Errorf("hint %q does not mention nodeinit.image.sha256=", HintOf(err))
			}
		})
	}
}

func TestHTTPSUnknownCA(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	ts := httptest.NewTLSServer(&bundleServer{dir: dir})
	defer ts.Close()

	src, _ := OpenSource(ts.URL, fastRetry()) // system pool: the test CA is unknown
	defer src.Close()
	start := time.Now()
	_, err := Open(context.Background(), src, mustKeyring(t, keys), VerifyOptions{})
	if err == nil || !isCertError(err) {
		t.Fatalf("Open over https with an unknown CA = %v, want a certificate error", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("certificate errors should not be retried")
	}

	opts := fastRetry()
	opts.RootCAs = x509Pool(ts)
	src2, _ := OpenSource(ts.URL, opts)
	defer src2.Close()
	if src2.Cleartext() {
		t.Error("https source reports cleartext")
	}
	b := mustOpen(t, src2, mustKeyring(t, keys), VerifyOptions{})
	if err := b.VerifyFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPMissingSignatureIs404(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	os.Remove(filepath.Join(dir, SignatureName))
	ts := httptest.NewTLSServer(&bundleServer{dir: dir})
	defer ts.Close()
	opts := fastRetry()
	opts.RootCAs = x509Pool(ts)
	src, _ := OpenSource(ts.URL, opts)
	defer src.Close()
	if _, err := Open(context.Background(), src, mustKeyring(t, keys), VerifyOptions{}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("Open = %v, want ErrUnsigned", err)
	}
	if _, _, err := src.Open(context.Background(), "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing file = %v, want fs.ErrNotExist", err)
	}
}

func TestHTTPStallResumes(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	release := make(chan struct{})
	defer close(release)
	first := true
	var mu sync.Mutex
	fs := http.FileServer(http.Dir(dir))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stall := first && strings.HasSuffix(r.URL.Path, InitrdName)
		first = first && !stall
		mu.Unlock()
		if stall {
			b, _ := os.ReadFile(filepath.Join(dir, InitrdName))
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b[:1000])
			w.(http.Flusher).Flush()
			select { // hang until the client gives up on us
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		fs.ServeHTTP(w, r)
	}))
	defer ts.Close()
	opts := fastRetry()
	opts.StallTimeout = 300 * time.Millisecond
	src, _ := OpenSource(ts.URL, opts)
	defer src.Close()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	if err := b.CopyFile(context.Background(), InitrdName, filepath.Join(t.TempDir(), "initrd")); err != nil {
		t.Fatalf("CopyFile after a stall: %v", err)
	}
}
