package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/internal/benchutil"
	"golang.org/x/sys/unix"
)

// format is one way to compress the whole cpio.
type format struct {
	name    string // the table's label
	kconfig string // the CONFIG_RD_* option the kernel needs to unpack it
	// compress reads the cpio on stdin and writes the result to stdout; nil
	// means nodeinit's zstd-fast, in this process.
	compress []string
	// shipped marks the format initramfs.Build uses by default: its result
	// must be the shipped initrd.img, byte for byte.
	shipped bool
	// decompress reads the result on stdin and writes the cpio to stdout: an
	// independent check of every result, nodeinit's too.
	decompress []string
}

// formats are the candidates, nodeinit's current one first. The command lines
// are the forms the kernel unpacks: usr/Makefile compresses an initramfs with
// `zstd -19`, xz needs --check=crc32 (the kernel's xz has no CRC64/SHA-256),
// lz4 needs the legacy frame (-l). Every tool runs on one thread (-T1 where
// it would use more), so its CPU time is what it costs one core, and two
// compressors can run side by side on this 2-core machine without sharing one.
var formats = []format{
	{name: "zstd -19 (nodeinit)", kconfig: "CONFIG_RD_ZSTD", shipped: true, compress: []string{"zstd", "-q", "-19", "-T1", "-c"}, decompress: []string{"zstd", "-q", "-d", "-c"}},
	{name: "zstd-fast", kconfig: "CONFIG_RD_ZSTD", decompress: []string{"zstd", "-q", "-d", "-c"}},
	{name: "gzip -9", kconfig: "CONFIG_RD_GZIP", compress: []string{"gzip", "-n", "-9", "-c"}, decompress: []string{"gzip", "-d", "-c"}},
	{name: "xz -9", kconfig: "CONFIG_RD_XZ", compress: []string{"xz", "--check=crc32", "-9", "-T1", "-c"}, decompress: []string{"xz", "-d", "-c"}},
	{name: "lz4 -l -9", kconfig: "CONFIG_RD_LZ4", compress: []string{"lz4", "-l", "-9", "-c"}, decompress: []string{"lz4", "-d", "-c"}},
}

// slowFirst is the order compressions start in, two at a time: the two slow
// ones (xz -9 and zstd -19 take tens of seconds on 28 MiB) first, so both
// cores finish together. The order changes no result, only the wall time.
var slowFirst = []string{"xz -9", "zstd -19 (nodeinit)", "gzip -9", "lz4 -l -9", "zstd-fast"}

// tools are the programs formats run, with their Debian packages.
var tools = map[string]string{"zstd": "zstd", "gzip": "gzip", "xz": "xz-utils", "lz4": "lz4"}

// kernelConfig reads the options a kernel config file sets (CONFIG_X=value).
func kernelConfig(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("kernel config: %w (run make fetch)", err)
	}
	return parseKernelConfig(data), nil
}

func parseKernelConfig(data []byte) map[string]string {
	opts := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			opts[k] = v
		}
	}
	return opts
}

// compressed is one format's result.
type compressed struct {
	format
	file string
	size int64
	cpu  time.Duration // host CPU time of the compressor (one thread)
	wall time.Duration
}

// compressAll compresses the cpio file in every format, two at a time, and
// checks each result: decompressed by its tool, it must be the cpio again.
func compressAll(ctx context.Context, fs []format, cpioFile, dir string) ([]compressed, error) {
	raw, err := os.ReadFile(cpioFile)
	if err != nil {
		return nil, fmt.Errorf("read cpio: %w", err)
	}
	want := sha256.Sum256(raw)
	out := make([]compressed, len(fs))
	errs := make([]error, len(fs))
	slots := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, name := range slowFirst {
		i := indexOf(fs, name)
		if i < 0 {
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			c := compressed{format: fs[i], file: filepath.Join(dir, fmt.Sprintf("initrd-%d.img", i))}
			if c.compress == nil {
				errs[i] = c.inProcess(raw)
			} else {
				errs[i] = c.external(ctx, cpioFile)
			}
			if errs[i] == nil {
				errs[i] = c.check(ctx, want)
			}
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", c.name, errs[i])
			}
			out[i] = c
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, err
		}
		if out[i].file == "" {
			return nil, fmt.Errorf("%s: not in the start order (slowFirst)", fs[i].name)
		}
	}
	return out, nil
}

func indexOf(fs []format, name string) int {
	for i, f := range fs {
		if f.name == name {
			return i
		}
	}
	return -1
}

// inProcess compresses as `mkinitramfs --compress zstd-fast` does, on one
// locked thread, whose CPU time is then the compressor's.
func (c *compressed) inProcess(raw []byte) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, cpu0 := time.Now(), threadCPU()
	z, _, err := initramfs.CompressZstd(raw, initramfs.ZstdFast)
	if err != nil {
		return err
	}
	c.cpu, c.wall = threadCPU()-cpu0, time.Since(start)
	c.size = int64(len(z))
	if err := os.WriteFile(c.file, z, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", c.file, err)
	}
	return nil
}

// threadCPU is the calling thread's user and system time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// external runs the format's compressor from the cpio file to c.file.
func (c *compressed) external(ctx context.Context, cpioFile string) error {
	in, err := os.Open(cpioFile)
	if err != nil {
		return fmt.Errorf("open cpio: %w", err)
	}
	defer in.Close()
	f, err := os.Create(c.file)
	if err != nil {
		return fmt.Errorf("create %s: %w", c.file, err)
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, c.compress[0], c.compress[1:]...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, f, &stderr
	start := time.Now()
	if err := runChild(cmd); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(c.compress, " "), err, strings.TrimSpace(stderr.String()))
	}
	c.wall = time.Since(start)
	c.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", c.file, err)
	}
	c.size = st.Size()
	return f.Close()
}

// check decompresses c.file with the format's tool and compares the
// result's SHA-256 with the cpio's.
func (c *compressed) check(ctx context.Context, want [sha256.Size]byte) error {
	in, err := os.Open(c.file)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.file, err)
	}
	defer in.Close()
	cmd := exec.CommandContext(ctx, c.decompress[0], c.decompress[1:]...)
	h := sha256.New()
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, h, &stderr
	if err := runChild(cmd); err != nil {
		return fmt.Errorf("check with %s: %w: %s", strings.Join(c.decompress, " "), err, strings.TrimSpace(stderr.String()))
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		return fmt.Errorf("check with %s: decompressed to sha256 %x, the cpio is %x", strings.Join(c.decompress, " "), got, want)
	}
	return nil
}

// runChild runs cmd to its end; an interrupted bench kills it first.
func runChild(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	kill := benchutil.AtInterrupt(func() { cmd.Process.Kill() })
	err := cmd.Wait()
	kill()
	return err
}
