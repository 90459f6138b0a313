package rescue

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func init() { register("ping", "[-c COUNT] [-i SECONDS] [-W SECONDS] [-s SIZE] HOST", ping) }

// ping sends ICMP echo requests to HOST, four unless -c says otherwise, and exits 1 when no
// reply came back.
func ping(c *call, args []string) error {
	fs := c.flags()
	count := fs.Int("c", 4, "requests to send")
	interval := fs.Float64("i", 1, "seconds between requests")
	wait := fs.Float64("W", 1, "seconds to wait for each reply")
	size := fs.Int("s", 56, "data bytes per request")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *count < 1 || *size < 0 || *size > 65000 {
		return usagef("want one HOST, COUNT > 0 and SIZE up to 65000")
	}
	dst, err := net.ResolveIPAddr("ip", fs.Arg(0))
	if err != nil {
		return err
	}
	p, err := newPinger(dst.IP)
	if err != nil {
		return err
	}
	defer p.conn.Close()
	fmt.Fprintf(c.stdout, "PING %s (%s) %d data bytes\n", fs.Arg(0), dst.IP, *size)
	received := 0
	for seq := 1; seq <= *count; seq++ {
		if seq > 1 {
			time.Sleep(time.Duration(*interval * float64(time.Second)))
		}
		rtt, n, err := p.echo(seq, *size, time.Duration(*wait*float64(time.Second)))
		if err != nil {
			fmt.Fprintf(c.stdout, "no reply for icmp_seq=%d: %v\n", seq, err)
			continue
		}
		received++
		fmt.Fprintf(c.stdout, "%d bytes from %s: icmp_seq=%d time=%.3f ms\n", n, dst.IP, seq, float64(rtt.Microseconds())/1000)
	}
	fmt.Fprintf(c.stdout, "--- %s ping statistics ---\n%d packets transmitted, %d received, %d%% packet loss\n",
		fs.Arg(0), *count, received, 100*(*count-received) / *count)
	if received == 0 {
		return exitStatus(1)
	}
	return nil
}

// pinger is an ICMP socket to one address: raw when we are root (as in the initramfs), else
// the kernel's unprivileged ping socket, which net.ipv4.ping_group_range must allow.
type pinger struct {
	conn           *icmp.PacketConn
	dst            net.Addr
	proto          int // 1 ICMP or 58 ICMPv6
	request, reply icmp.Type
}

func newPinger(ip net.IP) (*pinger, error) {
	p := &pinger{proto: 1, request: ipv4.ICMPTypeEcho, reply: ipv4.ICMPTypeEchoReply}
	raw, dgram, addr := "ip4:icmp", "udp4", "0.0.0.0"
	if ip.To4() == nil {
		p.proto, p.request, p.reply = 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
		raw, dgram, addr = "ip6:ipv6-icmp", "udp6", "::"
	}
	conn, err := icmp.ListenPacket(raw, addr)
	p.conn, p.dst = conn, &net.IPAddr{IP: ip}
	if err != nil {
		conn, err = icmp.ListenPacket(dgram, addr)
		p.conn, p.dst = conn, &net.UDPAddr{IP: ip}
	}
	if err != nil {
		return nil, fmt.Errorf("no ICMP socket: a raw one needs root, an unprivileged one net.ipv4.ping_group_range: %w", err)
	}
	return p, nil
}

// echo sends request seq and waits for its reply; it returns the round trip and the reply's size.
func (p *pinger) echo(seq, size int, wait time.Duration) (time.Duration, int, error) {
	id := os.Getpid() & 0xffff
	_, dgram := p.dst.(*net.UDPAddr) // the kernel sets the ID and filters the replies
	msg := icmp.Message{Type: p.request, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, size)}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := p.conn.WriteTo(b, p.dst); err != nil {
		return 0, 0, err
	}
	p.conn.SetReadDeadline(start.Add(wait))
	buf := make([]byte, size+512)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			return 0, 0, err
		}
		m, err := icmp.ParseMessage(p.proto, buf[:n])
		if err != nil || m.Type != p.reply {
			continue // a raw socket sees every ICMP message, our own requests too
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq && (dgram || e.ID == id) {
			return time.Since(start), n, nil
		}
	}
}
