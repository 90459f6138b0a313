package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ZstdLevel is the level of Zstd. The kernel unpacks every zstd level at the
// same speed (bench/initrd boots them), so the initramfs takes the smallest
// short of --ultra, whose windows of up to 128 MiB the kernel would have to
// allocate while it unpacks. bench/initrd measured it: the nodeinit binary
// alone is 3.95 MB at -19 and 4.37 MB at -12.
const ZstdLevel = 19

// zstdProgram is the zstd program and its version, found once. Go has no
// encoder that reaches -19's ratio (klauspost/compress stops near -12), so
// Zstd runs the program when PATH has it, as mkinitramfs and dracut do.
var zstdProgram = sync.OnceValues(func() (path, version string) {
	path, err := exec.LookPath("zstd")
	if err != nil {
		return "", ""
	}
	out, _ := exec.Command(path, "-V").Output()
	return path, regexp.MustCompile(`v[0-9][0-9.]*`).FindString(string(out))
})

// newZstd returns a writer that compresses into w as c asks, and a name for
// what compresses. Both keep the output byte-identical between runs with the
// same compressor: one thread and fixed settings.
func newZstd(w io.Writer, c Compression) (io.WriteCloser, string, error) {
	if c == Zstd {
		if path, version := zstdProgram(); path != "" {
			p, err := startZstd(path, w)
			return p, fmt.Sprintf("zstd -%d (the zstd program %s)", ZstdLevel, version), err
		}
	}
	level, name := zstd.SpeedDefault, "klauspost/compress zstd at its default level (zstd-fast)"
	if c == Zstd {
		level, name = zstd.SpeedBestCompression, "klauspost/compress zstd at its best level: PATH has no zstd program for -19 (apt-get install zstd)"
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	return enc, name, err
}

// zstdProcess is the zstd program compressing its standard input into w.
type zstdProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
}

func startZstd(path string, w io.Writer) (*zstdProcess, error) {
	p := &zstdProcess{cmd: exec.Command(path, fmt.Sprintf("-%d", ZstdLevel), "-T1", "-q", "-c", "-")}
	p.cmd.Stdout, p.cmd.Stderr = w, &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return p, nil
}

func (p *zstdProcess) Write(b []byte) (int, error) {
	n, err := p.stdin.Write(b)
	if err != nil {
		return n, fmt.Errorf("zstd: %w: %s", err, strings.TrimSpace(p.stderr.String()))
	}
	return n, nil
}

// Close ends the input and waits for the program to write the rest.
func (p *zstdProcess) Close() error {
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("zstd: %w: %s", err, strings.TrimSpace(p.stderr.String()))
	}
	return nil
}

// CompressZstd compresses b as Build does with c (Zstd or ZstdFast), and names
// the compressor; bench/initrd measures the parts of an initramfs with it.
func CompressZstd(b []byte, c Compression) ([]byte, string, error) {
	var out bytes.Buffer
	w, name, err := newZstd(&out, c)
	if err != nil {
		return nil, "", err
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), name, nil
}
