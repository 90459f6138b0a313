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
	"slices"
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
// nginx mirrors of one bundle, on a LAN of their own: a private network namespace
// with a bridge, where Debian's dnsmasq answers DHCP and TFTP with the snippet
// mkmedia pxe wrote, rsyslog receives the nodes' logs and a Go HTTP server their
// result records. Halfway through the first node's rootfs both mirrors are
// stopped, and the second comes back 4 s later. Every node must get its lease
// and boot.ipxe from dnsmasq, install with the right rootfs, post its record
// exactly once with its own MAC, leave its stage lines in rsyslog's file, retry
// no faster than the backoff allows (failovers after the first pass spaced by at
// least its floor, and some node made several), and the second mirror's access
// log must show Range resumes.
func TestFleetInstallWithMirrorFailover(t *testing.T) {
	for _, bin := range []string{"nginx", "rsyslogd", "dnsmasq", "sgdisk", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (Debian packages nginx-light, rsyslog, dnsmasq-base, gdisk, iproute2: .ci/deps.sh installs them)", bin)
		}
	}
	f := fixtures(t)
	lan := vm.NewNetwork(t, "nodeinit-fleet", fleetGateway, fleetSize)
	tftp := filepath.Join(t.TempDir(), "tftp")
	bundleDir := filepath.Join(tftp, media.PXEBundleDir)
	// Mirror a sends each node the rootfs at rootfsRate, slow enough to be stopped halfway.
	const rootfsRate = 256 << 10
	a := startNginx(t, lan, "a", 8001, bundleDir, fmt.Sprintf("location = /bundle/%s { limit_rate %d; }", image.RootfsName, rootfsRate))
	b := startNginx(t, lan, "b", 8002, bundleDir, "")
	syslogFile := startRsyslog(t, lan, 514)
	results := newResultCollector(t, lan, 8080)
	res, err := media.WritePXE(media.PXEOptions{Dir: tftp, Bundle: f.Bundles["1.0"],
		ImageURL: fmt.Sprintf("http://%[1]s:%[2]d/bundle/,http://%[1]s:%[3]d/bundle/", fleetGateway, a.port, b.port),
		Menu: media.MenuOptions{Timeout: time.Second, Unattended: "serial:" + fleetDisk, ExtraArgs: []string{
			"console=ttyS0", "panic=5", "nodeinit.events=ttyS1",
			"syslog=" + fleetGateway,
			fmt.Sprintf("nodeinit.status_url=http://%s:%d/results/${mac}", fleetGateway, results.port),
			"testos.action=poweroff"}},
		PXELinux:        filepath.Join(f.Debian.CacheDir, "root", media.DebianPXELinux),
		SyslinuxModules: filepath.Join(f.Debian.CacheDir, "root", media.DebianSyslinuxModules)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pxe tree: %s", strings.Join(res.Files, " "))
	dnsmasqLogFile := startDnsmasq(t, lan, filepath.Join(tftp, media.PXEDnsmasq))
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
		fleet = append(fleet, fleetNode{mac: mac, n: n, v: fleetBoot(n, lan, i, mac)})
		time.Sleep(time.Second) // power-on a second apart, as a rack's PDU sequences its outlets
	}

	// Debian's iPXE ROM (2019) on virtio-net sometimes never sees its own DHCP
	// transmit complete when six of them boot at once under emulation ("TX:0",
	// offers refused as "socket is not connected") and falls through to the UEFI
	// shell, before any nodeinit code runs. The rack's answer is a power cycle;
	// so is the test's, at most twice per node, and it says so.
	pxeRetries := 0
	repower := func(i int) {
		fn := &fleet[i]
		if !strings.Contains(fn.v.Output(), "No configuration methods succeeded") {
			return
		}
		if pxeRetries++; pxeRetries > 2*fleetSize {
			t.Fatalf("%s: iPXE got no lease from dnsmasq, again:\n%s", fn.mac, fn.v.Output())
		}
		t.Logf("%s: iPXE got no lease (firmware, before nodeinit); power-cycling it", fn.mac)
		fn.v.Kill()
		fn.v = fleetBoot(fn.n, lan, i, fn.mac)
	}

	// Stop the first mirror when the first node to start its slot write is halfway
	// through the rootfs at mirror a's rate (the rootfs is smaller than one progress
	// step, so the events cannot say when half of it has arrived).
	deadline := time.Now().Add(20 * time.Minute)
	for started := false; !started; {
		if time.Now().After(deadline) {
			t.Fatal("no node started its slot write")
		}
		for i, fn := range fleet {
			for _, e := range fn.v.Events() {
				if e.Stage == "write-slot" && e.Kind == stages.EventStart {
					started = true
				}
			}
			repower(i)
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

	// Every node's nodeinit is running (a late power cycle too) before the checks.
	for deadline := time.Now().Add(5 * time.Minute); ; {
		running := 0
		for i := range fleet {
			repower(i)
			if len(fleet[i].v.Events()) > 0 {
				running++
			}
		}
		if running == fleetSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d nodes started nodeinit", running, fleetSize)
		}
		time.Sleep(time.Second)
	}
	t.Logf("iPXE power cycles: %d", pxeRetries)

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

	// dnsmasq leased each node its address twice (iPXE, then nodeinit's network
	// stage), sent it boot.ipxe, the kernel and the initrd by TFTP, and the node's
	// record names the address it installed with.
	dnsmasqLog := waitForFile(t, dnsmasqLogFile, func(string) bool { return true })
	leased := map[string][]string{} // MAC -> addresses acknowledged, in order
	for _, m := range dhcpAck.FindAllStringSubmatch(dnsmasqLog, -1) {
		leased[m[2]] = append(leased[m[2]], m[1])
	}
	sentTo := map[string][]string{} // address -> files sent by TFTP
	for _, m := range tftpSent.FindAllStringSubmatch(dnsmasqLog, -1) {
		sentTo[m[2]] = append(sentTo[m[2]], filepath.Base(m[1]))
	}
	for _, fn := range fleet {
		acks := leased[fn.mac]
		if len(acks) < 2 {
			t.Errorf("%s: dnsmasq acknowledged %d leases (%v), want iPXE's and nodeinit's", fn.mac, len(acks), acks)
			continue
		}
		addr := acks[len(acks)-1]
		for _, want := range []string{media.PXEIPXE, media.PXEKernel, media.PXEInitrd} {
			if !slices.Contains(sentTo[acks[0]], want) {
				t.Errorf("%s: dnsmasq sent %v to %s by TFTP, want %s among them", fn.mac, sentTo[acks[0]], acks[0], want)
			}
		}
		if rs := got[fn.mac]; len(rs) == 1 && rs[0].Machine.IP != addr {
			t.Errorf("%s: record says address %q, dnsmasq leased %s", fn.mac, rs[0].Machine.IP, addr)
		}
	}
	t.Logf("dnsmasq: %d nodes leased, TFTP to %d addresses", len(leased), len(sentTo))

	// rsyslog's file holds each node's stage lines. The nodes sent them before they
	// powered off, but rsyslog writes its file in its own time: wait for what the
	// check wants, not just for a first line of each node.
	doneStages := func(logText, mac string) map[string]bool {
		found := map[string]bool{}
		for _, l := range strings.Split(logText, "\n") {
			if strings.Contains(l, `mac="`+mac+`"`) && strings.Contains(l, `kind="done"`) {
				for _, s := range []string{"network", "probe", "partition", "write-slot"} {
					if strings.Contains(l, `stage="`+s+`"`) {
						found[s] = true
					}
				}
			}
		}
		return found
	}
	logText := waitForFile(t, syslogFile, func(s string) bool {
		for _, fn := range fleet {
			if len(doneStages(s, fn.mac)) != 4 {
				return false
			}
		}
		return true
	})
	for _, fn := range fleet {
		if found := doneStages(logText, fn.mac); len(found) != 4 {
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

// dhcpAck and tftpSent match dnsmasq's log lines for a lease (address, MAC) and a
// file sent by TFTP (path, address).
var (
	dhcpAck  = regexp.MustCompile(`DHCPACK\(br0\) (\S+) (\S+)`)
	tftpSent = regexp.MustCompile(`dnsmasq-tftp\[\d+\]: sent (\S+) to (\S+)`)
)

// resuming matches a failover event: the file and the byte it resumes at.
var resuming = regexp.MustCompile(`resuming (\S+) at byte (\d+) from mirror`)

// fleetBoot PXE-boots n from the fleet's LAN through its i-th tap, with the NIC's
// MAC given: the NIC's option ROM is Debian's iPXE, which asks dnsmasq for a lease
// and boot.ipxe.
func fleetBoot(n *node, lan *vm.Network, i int, mac string) *vm.VM {
	n.t.Helper()
	rom := filepath.Join(n.f.Debian.CacheDir, "root/usr/lib/ipxe/qemu/efi-virtio.rom")
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1024,
		Events: n.eventsFile(), Timeout: 30 * time.Minute, Netns: lan.Name, ExtraArgs: lan.NetdevArgs(i, mac, rom)})
}

// fleetGateway is the fleet LAN's bridge address, where every server listens.
const fleetGateway = "10.77.0.1"

// startDnsmasq runs Debian's dnsmasq on the fleet LAN with the snippet mkmedia pxe
// wrote (TFTP of its tree, boot.ipxe for iPXE clients) and a lease range, as an
// operator's /etc/dnsmasq.d would hold it. It returns dnsmasq's log file once
// dnsmasq is serving.
func startDnsmasq(t *testing.T, lan *vm.Network, snippet string) (logFile string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dnsmasq")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile = filepath.Join(dir, "dnsmasq.log")
	conf := fmt.Sprintf(`# the fleet LAN: no DNS, DHCP on the bridge only, a log of every lease and TFTP file
port=0
user=root
interface=br0
bind-interfaces
dhcp-range=10.77.0.100,10.77.0.199,1h
dhcp-leasefile=%[1]s/leases
pid-file=%[1]s/dnsmasq.pid
log-dhcp
log-facility=%[2]s
# broadcast every reply: six iPXE ROMs asking at once under emulation dropped a unicast offer
dhcp-broadcast
conf-file=%[3]s
`, dir, logFile, snippet)
	confPath := filepath.Join(dir, "dnsmasq.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := lan.Command("dnsmasq", "--keep-in-foreground", "--conf-file="+confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if s := waitForFile(t, logFile, func(s string) bool { return strings.Contains(s, "TFTP root is") }); !strings.Contains(s, "TFTP root is") {
		t.Fatalf("dnsmasq did not start serving TFTP:\n%s", s)
	}
	return logFile
}

// nginxMirror is one nginx serving the bundle under /bundle/ on the fleet LAN.
type nginxMirror struct {
	port int
	dir  string
	lan  *vm.Network
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startNginx(t *testing.T, lan *vm.Network, name string, port int, bundleDir, extra string) *nginxMirror {
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
	m := &nginxMirror{port: port, dir: dir, lan: lan}
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
    listen %[4]s:%[2]d;
    root %[1]s/root;
    location /bundle/ { sendfile on; gzip off; %[3]s }
  }
}
`, dir, m.port, extra, fleetGateway)
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
	m.cmd = m.lan.Command("nginx", "-p", m.dir, "-c", filepath.Join(m.dir, "nginx.conf"))
	m.cmd.Stderr = os.Stderr
	err := m.cmd.Start()
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, m.lan, m.port)
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

// startRsyslog runs rsyslogd receiving UDP syslog on the fleet LAN into one file,
// each line with the host, the structured data and the message.
func startRsyslog(t *testing.T, lan *vm.Network, port int) (file string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rsyslog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "nodes.log")
	conf := fmt.Sprintf(`global(workDirectory="%[1]s")
module(load="imudp")
input(type="imudp" address="%[4]s" port="%[2]d")
template(name="line" type="string" string="%%HOSTNAME%% %%APP-NAME%% %%STRUCTURED-DATA%% %%msg%%\n")
if $app-name == "nodeinit" then { action(type="omfile" file="%[3]s" template="line") }
`, dir, port, file, fleetGateway)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := lan.Command("rsyslogd", "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslog.pid"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return file
}

// resultCollector is the status endpoint: it keeps every result record by the MAC
// in its path (/results/<mac>).
type resultCollector struct {
	port int
	mu   sync.Mutex
	got  map[string][]stages.Result
}

func newResultCollector(t *testing.T, lan *vm.Network, port int) *resultCollector {
	t.Helper()
	ln, err := lan.Listen("tcp", fmt.Sprintf("%s:%d", fleetGateway, port))
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

// waitListening waits up to 10s for a TCP listener on the fleet LAN's port.
func waitListening(t *testing.T, lan *vm.Network, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := lan.Dial("tcp", fmt.Sprintf("%s:%d", fleetGateway, port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s:%d: %v", fleetGateway, port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
