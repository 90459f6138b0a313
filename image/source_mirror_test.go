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
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseMirrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"http://a/b/", []string{"http://a/b/"}},
		{"http://a/b/,https://c/d/", []string{"http://a/b/", "https://c/d/"}},
		{"http://a/x,y/,http://c/", []string{"http://a/x,y/", "http://c/"}}, // a comma in a path stays
		{"https://a/,http://b/,http://c/", []string{"https://a/", "http://b/", "http://c/"}},
	} {
		if got := ParseMirrors(c.in); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("ParseMirrors(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// notes collects the source's failover remarks.
type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.lines = append(n.lines, s); n.mu.Unlock() }
func (n *notes) all() string  { n.mu.Lock(); defer n.mu.Unlock(); return strings.Join(n.lines, "\n") }

// downAfter turns a handler into one that fails every request (503) once
// *down is set.
func downAfter(down *bool, mu *sync.Mutex, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := *down
		mu.Unlock()
		if d {
			http.Error(w, "stopped", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// mirrorPair serves dir from two mirrors: the first dies halfway through the
// rootfs and answers 503 from then on; the second is second.
func mirrorPair(t *testing.T, dir string, second http.Handler) (first *bundleServer, spec string) {
	t.Helper()
	var mu sync.Mutex
	down := false
	first = &bundleServer{dir: dir, dropAt: func(name string, n int, _ string) int64 {
		if name == RootfsName {
			mu.Lock()
			down = true // the mirror stops after this response
			mu.Unlock()
			return rootfsSize / 2
		}
		return -1
	}}
	a := httptest.NewServer(downAfter(&down, &mu, first))
	t.Cleanup(a.Close)
	b := httptest.NewServer(second)
	t.Cleanup(b.Close)
	return first, a.URL + "/bundle/," + b.URL + "/bundle/"
}

// writeThroughMirrors writes the rootfs of a signed test bundle from a first
// mirror that dies halfway and the second mirror served by newSecond (given
// the bundle's directory), checks the slot holds the rootfs, and returns the
// bundle and the failover remarks.
func writeThroughMirrors(t *testing.T, newSecond func(dir string) http.Handler) (*Bundle, *notes) {
	t.Helper()
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	_, spec := mirrorPair(t, dir, newSecond(dir))
	n := &notes{}
	opts := fastRetry()
	opts.Notify = n.add
	src, err := OpenSource(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	dst := regularTarget(t, rootfsSize)
	if err := b.WriteFile(context.Background(), RootfsName, dst, 0, nil); err != nil {
		t.Fatalf("WriteFile with the first mirror dying halfway: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	if got := readAt(t, dst, 0, len(want)); !bytes.Equal(got, want) {
		t.Fatal("the slot differs from the rootfs")
	}
	return b, n
}

func TestMirrorFailoverResumesWithRange(t *testing.T) {
	var second *bundleServer
	b, n := writeThroughMirrors(t, func(dir string) http.Handler { second = &bundleServer{dir: dir}; return second })
	wantReq := RootfsName + " bytes=" + itoa(rootfsSize/2) + "-"
	if reqs := strings.Join(second.requests(), ","); !strings.Contains(reqs, wantReq) {
		t.Errorf("second mirror saw %q, want a resume %q", reqs, wantReq)
	}
	if got := n.all(); !strings.Contains(got, "resuming "+RootfsName+" at byte "+itoa(rootfsSize/2)) {
		t.Errorf("failover not reported: %q", got)
	}
	// The next file starts on the mirror that worked: no second failover.
	before := strings.Count(n.all(), "resuming")
	if err := b.CopyFile(context.Background(), InitrdName, filepath.Join(t.TempDir(), "initrd")); err != nil {
		t.Fatal(err)
	}
	if after := strings.Count(n.all(), "resuming"); after != before {
		t.Errorf("the next file failed over again (%d → %d remarks)", before, after)
	}
}

// ignoreRange serves dir with 200 and the whole file to every request,
// Range or not, as some servers and proxies do.
type ignoreRange struct {
	dir string
	mu  sync.Mutex
	n   int
}

func (s *ignoreRange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := os.ReadFile(filepath.Join(s.dir, filepath.Base(r.URL.Path)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	w.Header().Set("Content-Length", itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func TestMirrorIgnoringRangeDoesNotCorrupt(t *testing.T) {
	_, n := writeThroughMirrors(t, func(dir string) http.Handler { return &ignoreRange{dir: dir} })
	if !strings.Contains(n.all(), "ignored the Range request") {
		t.Errorf("the ignored Range was not reported: %q", n.all())
	}
}

func TestMirrorWithAnotherFileIsLeft(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	// The second mirror holds a rootfs of another size: it must be refused,
	// not spliced onto the first half.
	other := t.TempDir()
	for _, name := range []string{ManifestName, SignatureName, RootfsName} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if name == RootfsName {
			b = append(b, 1, 2, 3)
		}
		os.WriteFile(filepath.Join(other, name), b, 0o644)
	}
	_, spec := mirrorPair(t, dir, &bundleServer{dir: other})
	src, err := OpenSource(spec, fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	err = b.WriteFile(context.Background(), RootfsName, regularTarget(t, rootfsSize), 0, nil)
	if err == nil || !strings.Contains(err.Error(), "where "+itoa(rootfsSize)+" were expected") {
		t.Fatalf("WriteFile = %v, want the other file refused", err)
	}
}

func TestManifestFromAnyMirror(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	empty := httptest.NewServer(http.NotFoundHandler()) // a mirror not synced yet
	defer empty.Close()
	good := httptest.NewServer(&bundleServer{dir: dir})
	defer good.Close()
	src, err := OpenSource(empty.URL+"/,"+good.URL+"/", fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	if !b.Signed {
		t.Fatal("the bundle from the second mirror is not signature-checked")
	}
	if _, _, err := src.Open(context.Background(), "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file no mirror has = %v, want fs.ErrNotExist", err)
	}
}

func TestMirrorsAllDownAreBounded(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	a := httptest.NewServer(h)
	defer a.Close()
	b := httptest.NewServer(h)
	defer b.Close()
	opts := fastRetry()
	opts.BackoffMin, opts.BackoffMax = 20*time.Millisecond, 40*time.Millisecond
	opts.Rand = func() float64 { return 0 } // every wait at its floor
	src, err := OpenSource(a.URL+"/,"+b.URL+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, err = src.Open(context.Background(), ManifestName)
	if err == nil || !strings.Contains(err.Error(), "gave up after 6 failed attempts") {
		t.Fatalf("Open = %v, want a bounded give-up", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 6 { // Retries (3) on each of two mirrors
		t.Fatalf("%d attempts, want 6", len(times))
	}
	// The first failover is at once; after that every attempt waits at
	// least the backoff's floor.
	for i := 2; i < len(times); i++ {
		floor := 10 * time.Millisecond << min(i-2, 1)
		if gap := times[i].Sub(times[i-1]); gap < floor {
			t.Errorf("attempt %d came %s after the last, under the floor %s", i+1, gap, floor)
		}
	}
}

func TestMirrorThatStallsIsLeft(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	release := make(chan struct{})
	defer close(release)
	files := http.FileServer(http.Dir(dir))
	stalling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, RootfsName) {
			files.ServeHTTP(w, r)
			return
		}
		b, _ := os.ReadFile(filepath.Join(dir, RootfsName))
		w.Header().Set("Content-Length", itoa(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		select { // hang halfway until the client leaves
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer stalling.Close()
	second := &bundleServer{dir: dir}
	good := httptest.NewServer(second)
	defer good.Close()
	opts := fastRetry()
	opts.StallTimeout = 300 * time.Millisecond
	var n notes
	opts.Notify = n.add
	src, err := OpenSource(stalling.URL+"/,"+good.URL+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	dst := regularTarget(t, rootfsSize)
	if err := b.WriteFile(context.Background(), RootfsName, dst, 0, nil); err != nil {
		t.Fatalf("WriteFile with a stalling first mirror: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	if got := readAt(t, dst, 0, len(want)); !bytes.Equal(got, want) {
		t.Fatal("the slot differs")
	}
	if reqs := strings.Join(second.requests(), ","); !strings.Contains(reqs, RootfsName+" bytes=") {
		t.Errorf("the second mirror did not resume with Range: %q", reqs)
	}
	if !strings.Contains(n.all(), "resuming "+RootfsName) {
		t.Errorf("no failover event: %q", n.all())
	}
}

// TestUserAgent: every request carries SourceOptions.UserAgent, "nodeinit"
// by default, so a mirror's access log can tell the nodes of a fleet apart.
func TestUserAgent(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	for _, c := range []struct{ set, want string }{{"", "nodeinit"}, {"nodeinit (mac 52:54:00:00:00:01)", "nodeinit (mac 52:54:00:00:00:01)"}} {
		var mu sync.Mutex
		agents := map[string]bool{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			agents[r.UserAgent()] = true
			mu.Unlock()
			http.FileServer(http.Dir(dir)).ServeHTTP(w, r)
		}))
		opts := fastRetry()
		opts.UserAgent = c.set
		src, err := OpenSource(srv.URL+"/", opts)
		if err != nil {
			t.Fatal(err)
		}
		b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
		if err := b.CopyFile(context.Background(), InitrdName, filepath.Join(t.TempDir(), "initrd")); err != nil {
			t.Fatal(err)
		}
		src.Close()
		srv.Close()
		if len(agents) != 1 || !agents[c.want] {
			t.Errorf("UserAgent %q: the server saw %v, want only %q", c.set, agents, c.want)
		}
	}
}
