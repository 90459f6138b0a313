// Command image benchmarks the slot writer: it writes a 1 GiB bundle image
// onto a loop device with direct I/O using nodeinit (read → per-chunk digest
// → O_DIRECT writes, digests checked), `dd bs=4M oflag=direct conv=fsync` and
// `bmaptool copy` with a generated bmap, on the same target in the same run,
// and prints times (median, min, max), throughputs, CPU time, ratios and
// peak RSS. nodeinit runs three times: the default bundle (BLAKE3 chunk
// digests in the manifest and the SHA-256 chunk list, of which the writer
// checks the faster here), a BLAKE3-only bundle, and a SHA-256-only one
// (older manifests). Reference rows: each parallel chunk hash of the image
// alone, and dd and the BLAKE3 hash side by side.
//
// Run as root: go run ./bench/image [-size 1024] [-runs 5] [-dir /var/tmp]
//
// For profiles, keep the setup (-keep) and run the child by hand:
//
//	NODEINIT_BENCH_CPUPROFILE=cpu.prof NODEINIT_BENCH_TRACE=trace.out \
//	  go run ./bench/image write-child WORK/bundle WORK/keys /dev/loopN
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/benchutil"
	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hash-child" {
		if err := hashChild(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "hash:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "write-child" {
		if err := writeChild(os.Args[2], os.Args[3], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/image:", err)
		os.Exit(1)
	}
}

// result is one timed run.
type result struct {
	wall   time.Duration
	cpu    time.Duration // user + system time of the process and its children
	rssKiB int64
}

func run() error {
	sizeMiB := flag.Int("size", 1024, "image size in MiB")
	runs := flag.Int("runs", 9, "runs per tool (the median is reported)")
	base := flag.String("dir", os.TempDir(), "work directory (needs about twice the image size free)")
	keep := flag.Bool("keep", false, "keep the work directory and loop device (for profiling)")
	flag.Parse()
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (loop devices)")
	}
	for _, tool := range []string{"losetup", "dd", "bmaptool", "fallocate"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s: %w", tool, err)
		}
	}
	work, err := os.MkdirTemp(*base, "nodeinit-bench-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(work)
	}

	size := int64(*sizeMiB) << 20
	bundle := filepath.Join(work, "bundle")
	bundleSHA := filepath.Join(work, "bundle-sha256")
	bundleB3 := filepath.Join(work, "bundle-blake3")
	keys := filepath.Join(work, "keys")
	if err := makeBundles(work, keys, size, []bundleSpec{
		{bundle, image.ChunkBLAKE3, false}, {bundleB3, image.ChunkBLAKE3, true}, {bundleSHA, image.ChunkSHA256, false}}); err != nil {
		return err
	}
	choice, err := chunkCheck(bundle, keys)
	if err != nil {
		return err
	}
	img := filepath.Join(bundle, image.RootfsName)
	bmap := filepath.Join(work, "rootfs.bmap")
	if out, err := exec.Command("bmaptool", "create", "-o", bmap, img).CombinedOutput(); err != nil {
		return fmt.Errorf("bmaptool create: %v: %s", err, out)
	}

	// Target: a fully allocated backing file on a loop device with direct I/O,
	// so no run pays for block allocation that an earlier run already did.
	backing := filepath.Join(work, "disk.img")
	if out, err := exec.Command("fallocate", "-l", fmt.Sprint(size+(1<<20)), backing).CombinedOutput(); err != nil {
		return fmt.Errorf("fallocate: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", "--direct-io=on", backing).CombinedOutput()
	if err != nil {
		return fmt.Errorf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	if *keep {
		fmt.Printf("kept %s and %s\n", work, dev)
	} else {
		defer exec.Command("losetup", "-d", dev).Run()
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	tools := []struct {
		name string
		cmd  []string
	}{
		{"dd", []string{"dd", "if=" + img, "of=" + dev, "bs=4M", "oflag=direct", "conv=fsync", "status=none"}},
		{"bmaptool", []string{"bmaptool", "-q", "copy", "--bmap", bmap, img, dev}},
		// Hashing alone: a parallel digest of the image's 4 MiB chunks (what
		// nodeinit checks) from the page cache on every core.
		{"blake3", []string{self, "hash-child", "blake3", img}},
		{"sha256", []string{self, "hash-child", "sha256", img}},
		// dd and that hash side by side, each free to use every core: what
		// overlapping two independent tools gives.
		{"dd∥blake3", []string{"sh", "-c", `dd if="$1" of="$2" bs=4M oflag=direct conv=fsync status=none & "$3" hash-child blake3 "$1"; s=$?; wait $! && exit $s`,
			"sh", img, dev, self}},
		{"nodeinit-sha256", []string{self, "write-child", bundleSHA, keys, dev}},
		{"nodeinit-blake3", []string{self, "write-child", bundleB3, keys, dev}},
		// Last in every round, so checkDevice below judges nodeinit's output.
		{"nodeinit", []string{self, "write-child", bundle, keys, dev}},
	}
	// Warm the page cache with the source and the device path once.
	if err := catToNull(img); err != nil {
		return err
	}
	if _, err := timed(tools[0].cmd); err != nil {
		return fmt.Errorf("warm-up dd: %w", err)
	}
	results := map[string][]result{}
	for i := 0; i < *runs; i++ { // interleave the tools so drift hits all alike
		for _, tl := range tools {
			r, err := timed(tl.cmd)
			if err != nil {
				return fmt.Errorf("%s: %w", tl.name, err)
			}
			results[tl.name] = append(results[tl.name], r)
		}
	}
	if err := checkDevice(img, dev, size); err != nil {
		return err
	}

	fmt.Printf("image write: %d MiB onto %s (loop, --direct-io=on), %d interleaved runs each; wall time incl. process start\n", *sizeMiB, dev, *runs)
	fmt.Printf("  %-15s %9s %9s %9s %10s %9s %9s\n", "tool", "median s", "min s", "max s", "MB/s", "CPU s", "RSS MiB")
	med := map[string]result{}
	for _, tl := range tools {
		rs := results[tl.name]
		m := median(rs)
		med[tl.name] = m
		fmt.Printf("  %-15s %9.3f %9.3f %9.3f %10.1f %9.3f %9.1f\n", tl.name, m.wall.Seconds(), rs[0].wall.Seconds(), rs[len(rs)-1].wall.Seconds(),
			float64(size)/m.wall.Seconds()/1e6, m.cpu.Seconds(), float64(m.rssKiB)/1024)
	}
	ours := med["nodeinit"].wall.Seconds()
	ratio := func(name string) float64 { return med["dd"].wall.Seconds() / med[name].wall.Seconds() }
	fmt.Printf("  nodeinit checks:                     %s\n", choice)
	fmt.Printf("  nodeinit/dd throughput ratio:        %.3f (target >= 0.95; the default bundle, checked with the digests chosen above; dd does no verification)\n", ratio("nodeinit"))
	fmt.Printf("  nodeinit-blake3/dd ratio:            %.3f (BLAKE3 chunk digests only)\n", ratio("nodeinit-blake3"))
	fmt.Printf("  nodeinit-sha256/dd ratio:            %.3f (SHA-256 chunk digests only, as older manifests have)\n", ratio("nodeinit-sha256"))
	fmt.Printf("  nodeinit/(dd∥blake3) ratio:          %.3f (dd and a parallel BLAKE3 of the image run side by side)\n", med["dd∥blake3"].wall.Seconds()/ours)
	fmt.Printf("  hashing alone, share of dd's time:   blake3 %.2f, sha256 %.2f (on every core, from the page cache)\n",
		med["blake3"].wall.Seconds()/med["dd"].wall.Seconds(), med["sha256"].wall.Seconds()/med["dd"].wall.Seconds())
	fmt.Printf("  nodeinit/bmaptool throughput ratio:  %.3f (target > 1)\n", med["bmaptool"].wall.Seconds()/ours)
	fmt.Printf("  nodeinit peak RSS: %.1f MiB (target < 64 MiB)\n", float64(med["nodeinit"].rssKiB)/1024)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("  load average at the end: %s", la)
	}
	cpu := benchutil.CPUKind()
	for _, f := range []benchutil.Figure{
		{Name: "image.write", Value: ratio("nodeinit"), Unit: "x", Note: cpu + "; " + choice},
		{Name: "image.write_blake3", Value: ratio("nodeinit-blake3"), Unit: "x", Note: "BLAKE3 chunks only, " + cpu},
		{Name: "image.write_sha256", Value: ratio("nodeinit-sha256"), Unit: "x", Note: "SHA-256 chunks only, " + cpu},
	} {
		if err := benchutil.Record(f); err != nil {
			return err
		}
	}
	return nil
}

// bundleSpec is one bundle makeBundles builds: where, the manifest's chunk
// digest algorithm, and whether to leave out the SHA-256 chunk list.
type bundleSpec struct {
	out, alg    string
	noChunkList bool
}

// makeBundles writes bundles, signed by a new key whose public half goes into
// keys; every rootfs is the same size bytes of squashfs-like content: a mix of
// random (incompressible) and text-like blocks, with no holes, as a compressed
// root image has none.

func makeBundles(work, keys string, size int64, bundles []bundleSpec) error {
	in := filepath.Join(work, "in")
	os.MkdirAll(in, 0o755)
	os.MkdirAll(keys, 0o755)
	priv := filepath.Join(work, "bench.key")
	if err := image.GenerateKey(filepath.Join(keys, "bench.pub"), priv, ""); err != nil {
		return err
	}
	sq := filepath.Join(in, "root.sqfs")
	f, err := os.Create(sq)
	if err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	text := []byte(strings.Repeat("usr/lib/x86_64-linux-gnu/libexample.so.1 node image content ", 20000))
	for off := int64(0); off < size; off += int64(len(block)) {
		if (off>>20)%3 == 2 {
			copy(block, text[off%4096:])
		} else {
			rand.Read(block)
		}
		if off == 0 {
			copy(block, "hsqs")
		}
		if _, err := f.Write(block); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	small := filepath.Join(in, "small")
	os.WriteFile(small, []byte("MZ bench"), 0o644)
	for _, b := range bundles {
		if _, err := image.Build(image.BuildOptions{Squashfs: sq, Kernel: small, Initrd: small, Loader: small,
			Name: "bench", Version: "1", Out: b.out, ChunkHash: b.alg, NoChunkList: b.noChunkList}); err != nil {
			return err
		}
		if err := image.Sign(b.out, priv, ""); err != nil {
			return err
		}
	}
	return os.Remove(sq)
}

// chunkCheck opens the bundle as writeChild does and says which chunk
// digests a write of its rootfs checks on this machine.
func chunkCheck(bundle, keys string) (string, error) {
	ctx := context.Background()
	kr, err := image.LoadKeyring(keys)
	if err != nil {
		return "", err
	}
	src, err := image.OpenSource(bundle, image.SourceOptions{})
	if err != nil {
		return "", err
	}
	defer src.Close()
	b, err := image.Open(ctx, src, kr, image.VerifyOptions{})
	if err != nil {
		return "", err
	}
	return b.ChunkCheck(ctx, image.RootfsName)
}

// writeChild is the measured nodeinit run: verify the signed manifest, then
// stream rootfs.squashfs onto the device.
func writeChild(bundle, keys, dev string) error {
	if path := os.Getenv("NODEINIT_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("NODEINIT_BENCH_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	ctx := context.Background()
	kr, err := image.LoadKeyring(keys)
	if err != nil {
		return err
	}
	src, err := image.OpenSource(bundle, image.SourceOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	b, err := image.Open(ctx, src, kr, image.VerifyOptions{})
	if err != nil {
		return err
	}
	return b.WriteFile(ctx, image.RootfsName, dev, 0, func(p image.Progress) {
		if p.Final {
			json.NewEncoder(os.Stderr).Encode(p)
		}
	})
}

// hashChild hashes img in WriteBlockSize chunks with alg (blake3 or sha256)
// on every core, reading each chunk with pread as nodeinit's writer does,
// and throws the digests away.
func hashChild(alg, img string) error {
	sum := func(p []byte) { sha256.Sum256(p) }
	if alg == image.ChunkBLAKE3 {
		sum = func(p []byte) { blake3.Sum256(p) }
	}
	f, err := os.Open(img)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	next := make(chan int64)
	go func() {
		for off := int64(0); off < st.Size(); off += image.WriteBlockSize {
			next <- off
		}
		close(next)
	}()
	errs := make(chan error, runtime.GOMAXPROCS(0))
	for i := 0; i < cap(errs); i++ {
		go func() {
			// Huge-page backed like the writer's buffers (image/write_linux.go).
			mem, err := unix.Mmap(-1, 0, 2*image.WriteBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				errs <- err
				return
			}
			skip := (2<<20 - int(uintptr(unsafe.Pointer(&mem[0]))%(2<<20))) % (2 << 20)
			buf := mem[skip : skip+image.WriteBlockSize]
			unix.Madvise(buf, unix.MADV_HUGEPAGE)
			for off := range next {
				n, err := f.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				sum(buf[:n])
			}
			errs <- nil
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func timed(argv []string) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return result{}, fmt.Errorf("%v: %s", err, stderr.String())
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r := result{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru != nil {
		r.rssKiB = ru.Maxrss
	}
	return r, nil
}

func median(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].wall < rs[j].wall })
	return rs[len(rs)/2]
}

func catToNull(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// checkDevice compares the device's first size bytes with the image.
func checkDevice(img, dev string, size int64) error {
	a, err := os.Open(img)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer b.Close()
	ba, bb := make([]byte, 4<<20), make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(ba)) {
		if _, err := io.ReadFull(a, ba); err != nil {
			return err
		}
		if _, err := io.ReadFull(b, bb); err != nil {
			return err
		}
		if string(ba) != string(bb) {
			return fmt.Errorf("device differs from the image at byte %d", off)
		}
	}
	return nil
}
