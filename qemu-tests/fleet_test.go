package qemutests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/backoff"
	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// fleetSize is how many nodes install at once.
const fleetSize = 6

// fleetDisk is every node's disk serial: each VM is its own machine, and one PXE
// config names the disk for all of them.
const fleetDisk = "FLEETDISK"

// TestFleetInstallWithMirrorFailover PXE-installs fleetSize nodes at once from two
// nginx mirrors of one bundle, with rsyslog receiving their logs and a Go HTTP
// server their result records, all on 127.0.0.1. Halfway through the first
// node's rootfs both mirrors are stopped, and the second comes back 4 s
// later. Every node must install with the right rootfs, post
// its record exactly once with its own MAC, leave its stage lines in
// rsyslog's file, retry no faster than the backoff allows (failovers after
// the first pass spaced by at least its floor, and some node made several),
// and the second mirror's access log must show Range resumes. DHCP and TFTP are QEMU's own (one user network per VM); dnsmasq
// is not needed for that, and TestPXEInstallOverHTTP covers the loaders.
func TestFleetInstallWithMirrorFailover(t *testing.T) {
	for _, bin := range []string{"nginx", "rsyslogd", "sgdisk"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (Debian packages nginx-light, rsyslog, gdisk: .ci/deps.sh installs them)", bin)
		}
	}
	f := fixtures(t)
	tftp := filepath.Join(t.TempDir(), "tftp")
	bundleDir := filepath.Join(tftp, media.PXEBundleDir)
	// Mirror a sends each node the rootfs at rootfsRate, slow enough to be stopped halfway.
	const rootfsRate = 256 << 10
	a := startNginx(t, "a", bundleDir, fmt.Sprintf("location = /bundle/%s { limit_rate %d; }", image.RootfsName, rootfsRate))
	b := startNginx(t, "b", bundleDir, "")
	syslogFile, syslogPort := startRsyslog(t)
	results := newResultCollector(t)
	res, err := media.WritePXE(media.PXEOptions{Dir: tftp, Bundle: f.Bundles["1.0"],
		ImageURL: fmt.Sprintf("http://10.0.2.2:%d/bundle/,http://10.0.2.2:%d/bundle/", a.port, b.port),
		Menu: media.MenuOptions{Timeout: time.Second, Unattended: "serial:" + fleetDisk, ExtraArgs: []string{
			"console=ttyS0", "panic=5", "nodeinit.events=ttyS1",
			fmt.Sprintf("syslog=10.0.2.2:%d", syslogPort),
			fmt.Sprintf("nodeinit.status_url=http://10.0.2.2:%d/results/${mac}", results.port),
			"testos.action=poweroff"}},
		PXELinux:        filepath.Join(f.Debian.CacheDir, "root", media.DebianPXELinux),
		SyslinuxModules: filepath.Join(f.Debian.CacheDir, "root", media.DebianSyslinuxModules)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pxe tree: %s", strings.Join(res.Files, " "))
	m := bundleManifest(t, bundleDir)
	rootfs, _ := m.File(image.RootfsName)

	type fleetNode struct {
		mac string
		n   *node
		v   *vm.VM
	}
	var fleet []fleetNode
	for i := range fleetSize {
		mac := fmt.Sprintf("52:54:00:f1:00:%02x", i+1)
		n := newNode(t, vm.Disk{Path: vm.NewDisk(t, fmt.Sprintf("fleet%d.img", i), 16<<30), Interface: vm.NVMe, Serial: fleetDisk})
		fleet = append(fleet, fleetNode{mac: mac, n: n, v: fleetBoot(n, tftp, mac)})
	}

	// Stop the first mirror when the first node to start its slot write is halfway
	// through the rootfs at mirror a's rate (the rootfs is smaller than one progress
	// step, so the events cannot say when half of it has arrived).
	deadline := time.Now().Add(20 * time.Minute)
	for started := false; !started; {
		if time.Now().After(deadline) {
			t.Fatal("no node started its slot write")
		}
		for _, fn := range fleet {
			for _, e := range fn.v.Events() {
				if e.Stage == "write-slot" && e.Kind == stages.EventStart {
					started = true
				}
			}
		}
		if !started {
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(time.Duration(rootfs.Size/2) * time.Second / rootfsRate)
	// Both mirrors go away; b comes back 4 s later. Every node in the middle
	// of the rootfs retries against both as the backoff allows, then resumes
	// on b.
	a.stop()
	b.stop()
	time.Sleep(4 * time.Second)
	b.start(t)
	t.Logf("mirror a stopped; mirror b was away for 4 s")

	floor := backoff.Policy{Min: 500 * time.Millisecond, Max: 15 * time.Second}.Floor(1)
	retried, checked := 0, 0 // the most failovers of one file at one byte, on any node; the gaps checked
	for _, fn := range fleet {
		fn.v.ExpectEvent(fn.mac+" install finished", vm.Finished, 20*time.Minute)
		waitExit(t, fn.v)
		// The slot holds the rootfs the signed manifest names.
		off, _ := partExtent(t, fn.n.disks[0].Path, "node-root-a")
		if got := hashRange(t, fn.n.disks[0].Path, off, rootfs.Size); got != rootfs.SHA256 {
			t.Errorf("%s: slot a sha256 %s, want %s", fn.mac, got, rootfs.SHA256)
		}
		// Failovers of one file at one byte (no progress between them) are
		// immediate for the first pass over the two mirrors, and spaced by at
		// least the backoff's floor after it. Files download concurrently, so
		// each file's failovers are judged apart.
		type failover struct {
			at  time.Time
			off string
		}
		byFile := map[string][]failover{}
		for _, e := range fn.v.Events() {
			if m := resuming.FindStringSubmatch(e.Message); e.Kind == stages.EventInfo && m != nil {
				byFile[m[1]] = append(byFile[m[1]], failover{e.Time, m[2]})
			}
		}
		for file, fs := range byFile {
			run := 0 // failovers so far at this byte
			for i, f := range fs {
				if i > 0 && f.off == fs[i-1].off {
					run++
				} else {
					run = 0
				}
				if run >= 2 {
					checked++
					if gap := f.at.Sub(fs[i-1].at); gap < floor {
						t.Errorf("%s: %s failover %d at byte %s came %s after the last, under the backoff floor %s", fn.mac, file, run+1, f.off, gap, floor)
					}
				}
				retried = max(retried, run+1)
			}
		}
	}
	t.Logf("backoff: up to %d failovers of one file at one byte; %d gaps after the first pass, each at least %s", retried, checked, floor)
	if retried < 3 {
		t.Errorf("no file failed over more than %d times at one byte: the outage of both mirrors did not exercise the backoff", retried)
	}

	// Every record arrived exactly once, with its node's MAC and the signed digest.
	got := results.byMAC()
	for _, fn := range fleet {
		rs := got[fn.mac]
		if len(rs) != 1 {
			t.Errorf("%s: %d result records, want 1", fn.mac, len(rs))
			continue
		}
		r := rs[0]
		if r.Schema != stages.ResultSchema || r.Outcome != stages.OutcomeSucceeded || r.Machine.MAC != fn.mac ||
			r.Image == nil || r.Image.RootfsSHA256 != rootfs.SHA256 {
			t.Errorf("%s: record %+v", fn.mac, r)
		}
	}

	// rsyslog's file holds each node's stage lines.
	logText := waitForFile(t, syslogFile, func(s string) bool {
		for _, fn := range fleet {
			if !strings.Contains(s, `mac="`+fn.mac+`"`) {
				return false
			}
		}
		return true
	})
	for _, fn := range fleet {
		found := map[string]bool{}
		for _, l := range strings.Split(logText, "\n") {
			if strings.Contains(l, `mac="`+fn.mac+`"`) && strings.Contains(l, `kind="done"`) {
				for _, s := range []string{"network", "probe", "partition", "write-slot"} {
					if strings.Contains(l, `stage="`+s+`"`) {
						found[s] = true
					}
				}
			}
		}
		if len(found) != 4 {
			t.Errorf("%s: rsyslog holds the done lines of %v, want network, probe, partition, write-slot", fn.mac, found)
		}
	}

	// The second mirror served Range resumes of the rootfs.
	resumes := 0
	for _, l := range strings.Split(b.accessLog(t), "\n") {
		if strings.Contains(l, image.RootfsName) && strings.Contains(l, " 206 ") && strings.Contains(l, `"bytes=`) {
			resumes++
		}
	}
	if resumes == 0 {
		t.Errorf("mirror b's access log shows no Range resume:\n%s", b.accessLog(t))
	}
	// Each node names itself to the mirrors (User-Agent with its MAC).
	logs := a.accessLog(t) + b.accessLog(t)
	for _, fn := range fleet {
		if !strings.Contains(logs, "mac "+fn.mac) {
			t.Errorf("%s: no request in the mirrors' access logs names it", fn.mac)
		}
	}
	t.Logf("%d Range resumes on mirror b", resumes)
}

// resuming matches a failover event: the file and the byte it resumes at.
var resuming = regexp.MustCompile(`resuming (\S+) at byte (\d+) from mirror`)

// fleetBoot PXE-boots n like pxeBoot, with the NIC's MAC given. The user network is
// unrestricted only so that the guest reaches the servers on the host's loopback
// through the gateway address 10.0.2.2.
func fleetBoot(n *node, tftp, mac string) *vm.VM {
	n.t.Helper()
	rom := filepath.Join(n.f.Debian.CacheDir, "root/usr/lib/ipxe/qemu/efi-virtio.rom")
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1024,
		Events: n.eventsFile(), Timeout: 30 * time.Minute,
		ExtraArgs: []string{
			"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=" + media.PXEIPXE,
			"-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=" + rom + ",bootindex=1",
		}})
}

// nginxMirror is one nginx serving the bundle under /bundle/ on 127.0.0.1.
type nginxMirror struct {
	port int
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startNginx(t *testing.T, name, bundleDir, extra string) *nginxMirror {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nginx-"+name)
	for _, d := range []string{"root", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bundleDir, filepath.Join(dir, "root", "bundle")); err != nil {
		t.Fatal(err)
	}
	m := &nginxMirror{port: freePort(t), dir: dir}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  log_format fleet '$msec $remote_addr "$request" $status $body_bytes_sent "$http_range" "$http_user_agent"';
  access_log %[1]s/access.log fleet;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%[2]d;
    root %[1]s/root;
    location /bundle/ { sendfile on; gzip off; %[3]s }
  }
}
`, dir, m.port, extra)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.start(t)
	t.Cleanup(m.stop)
	return m
}

// start runs this mirror's nginx and waits until it listens.
func (m *nginxMirror) start(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	m.cmd = exec.Command("nginx", "-p", m.dir, "-c", filepath.Join(m.dir, "nginx.conf"))
	m.cmd.Stderr = os.Stderr
	err := m.cmd.Start()
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, m.port)
}

// stop kills this nginx, as an operator pulling a mirror would.
func (m *nginxMirror) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		m.cmd = nil
	}
}

func (m *nginxMirror) accessLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startRsyslog runs rsyslogd receiving UDP syslog on 127.0.0.1 into one file,
// each line with the host, the structured data and the message.
func startRsyslog(t *testing.T) (file string, port int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rsyslog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port = freeUDPPort(t)
	file = filepath.Join(dir, "nodes.log")
	conf := fmt.Sprintf(`global(workDirectory="%[1]s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%[2]d")
template(name="line" type="string" string="%%HOSTNAME%% %%APP-NAME%% %%STRUCTURED-DATA%% %%msg%%\n")
if $app-name == "nodeinit" then { action(type="omfile" file="%[3]s" template="line") }
`, dir, port, file)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rsyslogd", "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslog.pid"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return file, port
}

// resultCollector is the status endpoint: it keeps every result record by the MAC
// in its path (/results/<mac>).
type resultCollector struct {
	port int
	mu   sync.Mutex
	got  map[string][]stages.Result
}

func newResultCollector(t *testing.T) *resultCollector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &resultCollector{port: ln.Addr().(*net.TCPAddr).Port, got: map[string][]stages.Result{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var res stages.Result
		if err := json.Unmarshal(body, &res); err != nil || res.Schema == "" {
			return // a stage event (nodeinit.status_stages), not a record
		}
		mac := strings.TrimPrefix(r.URL.Path, "/results/")
		c.mu.Lock()
		c.got[mac] = append(c.got[mac], res)
		c.mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return c
}

func (c *resultCollector) byMAC() map[string][]stages.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]stages.Result{}
	for k, v := range c.got {
		out[k] = append([]stages.Result(nil), v...)
	}
	return out
}

func bundleManifest(t *testing.T, dir string) *image.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, image.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := image.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// hashRange is the hex SHA-256 of size bytes of path from off.
func hashRange(t *testing.T, path string, off, size int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// waitForFile waits up to 30s for path's content to satisfy ok, and returns it.
func waitForFile(t *testing.T, path string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if ok(string(b)) || time.Now().After(deadline) {
			return string(b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// waitListening waits up to 10s for a TCP listener on 127.0.0.1:port.
func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
