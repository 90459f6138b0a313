package vm

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Network is a private network namespace holding one bridge and a tap device per
// VM: the guests and the servers a test runs for them share a LAN that reaches
// nothing outside this machine (the namespace has no uplink). A VM joins it with
// Config.Netns and a tap netdev; a server is started inside it with Command.
type Network struct {
	Name    string // the namespace, under /run/netns
	Gateway string // the bridge's address, where the servers listen
	Prefix  int    // the bridge's prefix length
	taps    int
}

// NewNetwork creates the namespace name-<pid> with the bridge br0 at gateway/24 and
// taps tap devices on it, and deletes it when the test ends.
func NewNetwork(t testing.TB, name, gateway string, taps int) *Network {
	t.Helper()
	n := &Network{Name: fmt.Sprintf("%s-%d", name, os.Getpid()), Gateway: gateway, Prefix: 24, taps: taps}
	exec.Command("ip", "netns", "del", n.Name).Run() // a namespace left by a killed run
	if err := ip("netns", "add", n.Name); err != nil {
		t.Fatalf("network namespace (needs root and iproute2): %v", err)
	}
	t.Cleanup(func() {
		if err := ip("netns", "del", n.Name); err != nil {
			t.Errorf("delete network namespace: %v", err)
		}
	})
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"addr", "add", fmt.Sprintf("%s/%d", gateway, n.Prefix), "dev", "br0"},
		{"link", "set", "br0", "up"},
	}
	for i := range taps {
		steps = append(steps,
			[]string{"tuntap", "add", n.Tap(i), "mode", "tap"},
			[]string{"link", "set", n.Tap(i), "master", "br0", "up"})
	}
	for _, s := range steps {
		if err := ip(append([]string{"-n", n.Name}, s...)...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// Tap is the name of the i-th tap device.
func (n *Network) Tap(i int) string { return fmt.Sprintf("tap%d", i) }

// NetdevArgs are the QEMU arguments that attach a virtio NIC with mac to the i-th tap,
// using romfile as its option ROM (iPXE for network boot) when it is set.
func (n *Network) NetdevArgs(i int, mac, romfile string) []string {
	dev := "virtio-net-pci,netdev=n0,mac=" + mac
	if romfile != "" {
		dev += ",romfile=" + romfile + ",bootindex=1"
	}
	return []string{"-netdev", "tap,id=n0,ifname=" + n.Tap(i) + ",script=no,downscript=no", "-device", dev}
}

// Command runs name inside the namespace.
func (n *Network) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Listen opens a listener inside the namespace, for servers the test runs itself.
func (n *Network) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.do(func() (err error) { ln, err = net.Listen(network, addr); return })
	return ln, err
}

// Dial connects from inside the namespace.
func (n *Network) Dial(network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() (err error) { c, err = net.Dial(network, addr); return })
	return c, err
}

// do runs f on an OS thread that has entered the namespace. A socket belongs to the
// namespace it was created in, so it stays there after the thread returns to the
// test's own namespace; a thread that cannot return is left locked, and Go ends it.
func (n *Network) do(f func() error) error {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer home.Close()
	ns, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", n.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave network namespace %s: %w", n.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, out)
	}
	return nil
}
