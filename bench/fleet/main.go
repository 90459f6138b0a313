// Command fleet benchmarks the image path at fleet scale on one machine: N
// nodes install at once from one nginx. Each node is a process running
// nodeinit's real slot write (image.OpenSource on the bundle's http URL,
// image.Open with the keyring, Bundle.WriteFile of the rootfs, as the
// write-slot step does) into its own loop device; next to it, in the same run
// and on the same devices, N `curl | dd` pipelines do the same copy without
// any verification. For 1 node and for N nodes it prints the wall time, the
// aggregate and per-node MB/s, the CPU time of nginx (utime+stime from
// /proc/<pid>/stat) and of the clients, and the ratios nodeinit/curl|dd.
//
// Every loop device is discarded before each row and must hold the rootfs
// after it (SHA-256 of its first rootfs-size bytes against the manifest), or
// the bench fails.
//
// Run as root: go run ./bench/fleet [-nodes 8] [-size 256] [-runs 3] [-dir /var/tmp] [-keep]
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/benchutil"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "write-child" {
		if len(os.Args) != 5 {
			fmt.Fprintln(os.Stderr, "usage: fleet write-child URL KEYS-DIR DEVICE")
			os.Exit(2)
		}
		if err := writeChild(os.Args[2], os.Args[3], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(1)
	}
}

// ddCommand is the baseline each node runs instead of nodeinit. It matches
// nodeinit's writer: O_DIRECT writes of 4 MiB and a sync before it returns.
// iflag=fullblock is needed for that: from a pipe, dd's reads come back
// short, and GNU dd turns O_DIRECT off for good at the first short block.
const ddCommand = `set -o pipefail; curl -sSf --noproxy '*' "$1" | dd of="$2" bs=4M iflag=fullblock oflag=direct conv=fsync status=none`

const ddShown = "curl -sSf URL | dd bs=4M iflag=fullblock oflag=direct conv=fsync"

func run() error {
	nodes := flag.Int("nodes", 8, "concurrent writers in the fleet rows (a 1-node row runs too)")
	sizeMiB := flag.Int("size", 256, "rootfs size in MiB (incompressible data; a multiple of 4)")
	runs := flag.Int("runs", 3, "interleaved runs of every row (the run with the median wall time is shown)")
	base := flag.String("dir", "/var/tmp", "work directory: the bundle and one sparse backing file per node")
	keep := flag.Bool("keep", false, "leave nginx running with the bundle and the loop devices, for profiling; stop with Ctrl-C")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/fleet: needs root (loop devices); run: sudo go run ./bench/fleet")
		os.Exit(2)
	}
	if *nodes < 1 || *runs < 1 || *sizeMiB < 4 || *sizeMiB%4 != 0 {
		return fmt.Errorf("-nodes and -runs must be at least 1, -size a multiple of 4")
	}
	for _, tool := range []string{"nginx", "curl", "dd", "bash", "losetup", "blkdiscard"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s: %w (nginx: apt-get install nginx-light, see .ci/deps.sh)", tool, err)
		}
	}
	benchutil.UndoOnSignal("bench/fleet", "nginx, loop devices and the work directory")
	work, err := os.MkdirTemp(*base, "nodeinit-bench-fleet-")
	if err != nil {
		return err
	}
	defer benchutil.AtInterrupt(func() { os.RemoveAll(work) })()

	size := int64(*sizeMiB) << 20
	bundle, keys := filepath.Join(work, "bundle"), filepath.Join(work, "keys")
	t := time.Now()
	rootfs, err := makeBundle(work, bundle, keys, size)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	fmt.Printf("bundle: %d MiB incompressible rootfs, signed, %s chunk digests (built in %.1f s)\n",
		*sizeMiB, rootfs.ChunkHash, time.Since(t).Seconds())

	ngx, err := startNginx(filepath.Join(work, "nginx"), bundle)
	if err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	defer benchutil.AtInterrupt(ngx.stop)()
	url := fmt.Sprintf("http://127.0.0.1:%d/bundle/", ngx.port)

	devs := make([]string, *nodes)
	for i := range devs {
		d, undo, err := loopDevice(work, i, size)
		if err != nil {
			return err
		}
		defer undo()
		devs[i] = d
	}
	// Warm nginx and the page cache with one fetch of the rootfs.
	if out, err := exec.Command("curl", "-sSf", "--noproxy", "*", "-o", "/dev/null", url+image.RootfsName).CombinedOutput(); err != nil {
		return fmt.Errorf("warm-up fetch: %v: %s", err, out)
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	tools := []tool{
		{"nodeinit", func(dev string) *exec.Cmd { return exec.Command(self, "write-child", url, keys, dev) }},
		{"curl|dd", func(dev string) *exec.Cmd {
			return exec.Command("bash", "-c", ddCommand, "bash", url+image.RootfsName, dev)
		}},
	}
	counts := []int{1, *nodes}
	if *nodes == 1 {
		counts = counts[:1]
	}
	results := map[string][]rowRun{} // by rowKey
	checks := 0
	for r := 0; r < *runs; r++ {
		for _, n := range counts {
			order := []tool{tools[0], tools[1]}
			if r%2 == 1 { // alternate which tool goes first, so drift hits both alike
				order[0], order[1] = order[1], order[0]
			}
			for _, tl := range order {
				if err := discard(devs[:n]); err != nil {
					return err
				}
				rr, err := runRow(ngx, tl, devs[:n])
				if err != nil {
					return fmt.Errorf("%s, %d nodes: %w", tl.name, n, err)
				}
				if err := verify(devs[:n], size, rootfs.SHA256); err != nil {
					return fmt.Errorf("%s, %d nodes, run %d: %w", tl.name, n, r+1, err)
				}
				checks += n
				results[rowKey(tl.name, n)] = append(results[rowKey(tl.name, n)], rr)
			}
		}
	}

	fmt.Printf("\nfleet: N nodes fetch a %d MiB signed rootfs at once from one nginx (127.0.0.1:%d, one process:\n", *sizeMiB, ngx.port)
	fmt.Printf("master_process off, sendfile on), each into its own %d MiB loop device (sparse file, --direct-io=on,\n", *sizeMiB)
	fmt.Printf("discarded before each row); %d interleaved runs, the run with the median wall time shown; MB = 10^6 bytes\n", *runs)
	fmt.Printf("  nodeinit: a process per node, image.OpenSource(URL) + image.Open(keyring) + Bundle.WriteFile (O_DIRECT, fsync)\n")
	fmt.Printf("  curl|dd:  %s (O_DIRECT and a sync, as nodeinit; no verification)\n", ddShown)
	fmt.Printf("  CPU: nginx utime+stime (10 ms ticks; on loopback it includes the kernel TCP work done in its context), client: each node's process tree\n")
	fmt.Printf("  %-9s %5s %8s %15s %9s %23s %10s %7s %10s\n", "row", "nodes", "wall s", "(min-max)", "agg MB/s", "per-node MB/s min/med/max", "nginx CPU", "% wall", "client CPU")
	med := map[string]rowRun{}
	for _, n := range counts {
		for _, tl := range tools {
			rs := results[rowKey(tl.name, n)]
			sort.Slice(rs, func(i, j int) bool { return rs[i].wall < rs[j].wall })
			m := rs[len(rs)/2]
			med[rowKey(tl.name, n)] = m
			rates := m.nodeRates(size)
			fmt.Printf("  %-9s %5d %8.3f %15s %9.1f %23s %9.2fs %6.1f%% %9.2fs\n", tl.name, n, m.wall.Seconds(),
				fmt.Sprintf("(%.3f-%.3f)", rs[0].wall.Seconds(), rs[len(rs)-1].wall.Seconds()),
				float64(int64(n)*size)/m.wall.Seconds()/1e6,
				fmt.Sprintf("%.0f/%.0f/%.0f", rates[0], rates[len(rates)/2], rates[len(rates)-1]),
				m.nginxCPU.Seconds(), 100*m.nginxCPU.Seconds()/m.wall.Seconds(), m.clientCPU.Seconds())
		}
	}
	for _, n := range counts {
		a, b := med[rowKey("nodeinit", n)], med[rowKey("curl|dd", n)]
		fmt.Printf("  nodeinit/curl|dd, %d node(s): aggregate MB/s %.3f, nginx CPU %.3f, client CPU %.3f\n", n,
			b.wall.Seconds()/a.wall.Seconds(), a.nginxCPU.Seconds()/b.nginxCPU.Seconds(), a.clientCPU.Seconds()/b.clientCPU.Seconds())
	}
	fmt.Printf("  verified: %d loop-device writes, each device's first %d bytes had the manifest's sha256 %s…\n", checks, size, rootfs.SHA256[:16])
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("  load average at the end: %s", la)
	}
	if *keep {
		fmt.Printf("kept: nginx (pid %d) serving %s, devices %s; a node by hand: %s write-child %s %s %s\nCtrl-C removes them\n",
			ngx.cmd.Process.Pid, url, strings.Join(devs, " "), self, url, keys, devs[0])
		select {}
	}
	return nil
}

type tool struct {
	name string
	cmd  func(dev string) *exec.Cmd
}

func rowKey(name string, n int) string { return name + "/" + strconv.Itoa(n) }

// rowRun is one timed row: n nodes started together.
type rowRun struct {
	wall      time.Duration   // first start to last exit
	nodes     []time.Duration // each node's own start to exit
	nginxCPU  time.Duration   // nginx's utime+stime during the row
	clientCPU time.Duration   // user+system time of every node's process tree
}

// nodeRates is each node's MB/s, lowest first.
func (r rowRun) nodeRates(size int64) []float64 {
	out := make([]float64, len(r.nodes))
	for i, d := range r.nodes {
		out[i] = float64(size) / d.Seconds() / 1e6
	}
	sort.Float64s(out)
	return out
}

// runRow starts one tl process per device at once and waits for all of them.
func runRow(ngx *nginx, tl tool, devs []string) (rowRun, error) {
	before, err := ngx.cpu()
	if err != nil {
		return rowRun{}, err
	}
	r := rowRun{nodes: make([]time.Duration, len(devs))}
	cmds := make([]*exec.Cmd, len(devs))
	stderr := make([]strings.Builder, len(devs))
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, dev := range devs {
		cmds[i] = tl.cmd(dev)
		cmds[i].Stderr = &stderr[i]
		t := time.Now()
		if err := cmds[i].Start(); err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cmds[i].Wait()
			r.nodes[i] = time.Since(t)
		}()
	}
	wg.Wait()
	r.wall = time.Since(start)
	after, err := ngx.cpu()
	if err != nil {
		return rowRun{}, err
	}
	r.nginxCPU = after - before
	for i, c := range cmds {
		if errs[i] != nil {
			return rowRun{}, fmt.Errorf("node %d (%s): %v: %s", i, devs[i], errs[i], strings.TrimSpace(stderr[i].String()))
		}
		// wait4's rusage counts the children the process reaped: curl and dd for bash.
		r.clientCPU += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	return r, nil
}

// writeChild is one node: nodeinit's write-slot path from an http source.
func writeChild(url, keys, dev string) error {
	ctx := context.Background()
	kr, err := image.LoadKeyring(keys)
	if err != nil {
		return err
	}
	src, err := image.OpenSource(url, image.SourceOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	b, err := image.Open(ctx, src, kr, image.VerifyOptions{})
	if err != nil {
		return err
	}
	if !b.Signed {
		return fmt.Errorf("bundle at %s opened without a signature", url)
	}
	return b.WriteFile(ctx, image.RootfsName, dev, 0, func(image.Progress) {})
}

// makeBundle writes a signed bundle whose rootfs is size bytes of random
// data behind a squashfs magic (compressed images are incompressible too) and
// returns the rootfs's manifest entry.
func makeBundle(work, bundle, keys string, size int64) (image.File, error) {
	in := filepath.Join(work, "in")
	for _, d := range []string{in, keys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return image.File{}, err
		}
	}
	priv := filepath.Join(work, "bench.key")
	if err := image.GenerateKey(filepath.Join(keys, "bench.pub"), priv, ""); err != nil {
		return image.File{}, err
	}
	sq := filepath.Join(in, "root.sqfs")
	f, err := os.Create(sq)
	if err != nil {
		return image.File{}, err
	}
	block := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(block)) {
		rand.Read(block)
		if off == 0 {
			copy(block, "hsqs")
		}
		if _, err := f.Write(block); err != nil {
			f.Close()
			return image.File{}, err
		}
	}
	if err := f.Close(); err != nil {
		return image.File{}, err
	}
	small := filepath.Join(in, "small")
	if err := os.WriteFile(small, []byte("MZ bench"), 0o644); err != nil {
		return image.File{}, err
	}
	m, err := image.Build(image.BuildOptions{Squashfs: sq, Kernel: small, Initrd: small, Loader: small,
		Name: "bench-fleet", Version: "1", Out: bundle})
	if err != nil {
		return image.File{}, err
	}
	if err := image.Sign(bundle, priv, ""); err != nil {
		return image.File{}, err
	}
	os.Remove(sq)
	rf, ok := m.File(image.RootfsName)
	if !ok || rf.Size != size {
		return image.File{}, fmt.Errorf("manifest has no %s of %d bytes", image.RootfsName, size)
	}
	return rf, nil
}

// nginx is the one web server of the fleet, run in the foreground as a single
// process, so its /proc/<pid>/stat holds all of its CPU time.
type nginx struct {
	cmd    *exec.Cmd
	port   int
	exited chan error // receives Wait's result once nginx is gone
	once   sync.Once
}

func startNginx(dir, bundle string) (*nginx, error) {
	for _, d := range []string{"root", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(bundle, filepath.Join(dir, "root", "bundle")); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// The location is README.md's "Running a fleet" one.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%[2]d;
    root %[1]s/root;
    location /bundle/ { sendfile on; tcp_nopush on; gzip off; }
  }
}
`, dir, port)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{port: port, cmd: exec.Command("nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))}
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-n.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("exited: %v: %s", err, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("not listening on 127.0.0.1:%d after 10 s", port)
		}
	}
	return n, nil
}

func (n *nginx) stop() {
	n.once.Do(func() { n.cmd.Process.Kill(); <-n.exited })
}

// cpu is nginx's utime+stime so far (fields 14 and 15 of /proc/<pid>/stat,
// in clock ticks of 1/100 s, the USER_HZ every Linux architecture but alpha
// and ia64 reports).
func (n *nginx) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // after comm; f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", n.cmd.Process.Pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", n.cmd.Process.Pid, s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// loopDevice attaches a size-byte sparse file in work as node i's disk, with
// direct I/O, so writes reach the backing file as they would a disk and not
// this machine's page cache.
func loopDevice(work string, i int, size int64) (string, func(), error) {
	img := filepath.Join(work, fmt.Sprintf("node-%d.img", i))
	f, err := os.Create(img)
	if err != nil {
		return "", nil, err
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return "", nil, err
	}
	out, err := exec.Command("losetup", "-f", "--show", "--direct-io=on", img).CombinedOutput()
	if err != nil {
		os.Remove(img)
		return "", nil, fmt.Errorf("losetup %s: %v: %s", img, err, out)
	}
	dev := strings.TrimSpace(string(out))
	return dev, benchutil.AtInterrupt(func() {
		exec.Command("losetup", "-d", dev).Run()
		os.Remove(img)
	}), nil
}

// discard empties every device (holes punched in the backing files) and
// checks that its first and last MiB now read as zeroes, so that the check
// after a row can only pass on what that row wrote.
func discard(devs []string) error {
	for _, dev := range devs {
		if out, err := exec.Command("blkdiscard", dev).CombinedOutput(); err != nil {
			return fmt.Errorf("blkdiscard %s: %v: %s", dev, err, out)
		}
		f, err := os.Open(dev)
		if err != nil {
			return err
		}
		st, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return err
		}
		buf := make([]byte, 1<<20)
		for _, off := range []int64{0, st - int64(len(buf))} {
			if _, err := f.ReadAt(buf, off); err != nil {
				f.Close()
				return fmt.Errorf("read %s after discard: %w", dev, err)
			}
			for _, c := range buf {
				if c != 0 {
					f.Close()
					return fmt.Errorf("%s does not read as zeroes at byte %d after blkdiscard", dev, off)
				}
			}
		}
		f.Close()
	}
	return nil
}

// verify hashes each device's first size bytes, two devices at a time, and
// fails unless every one has the rootfs's digest.
func verify(devs []string, size int64, want string) error {
	errs := make([]error, len(devs))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, dev := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = verifyOne(dev, size, want)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func verifyOne(dev string, size int64, want string) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, size); err != nil {
		return fmt.Errorf("read %s: %w", dev, err)
	}
	// Drop what was read from the page cache: it is 2 GiB a row at the defaults.
	unix.Fadvise(int(f.Fd()), 0, size, unix.FADV_DONTNEED)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("VERIFY FAILED: %s holds sha256 %s in its first %d bytes, the rootfs is %s", dev, got, size, want)
	}
	return nil
}
