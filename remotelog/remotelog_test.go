package remotelog

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/internal/backoff"
	"github.com/nodeinit/nodeinit/stages"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)

var ident = Identity{Hostname: "node7", MAC: "52:54:00:12:34:56", InstallID: "0b7e3c1a-5d2f-4e6a-9c8b-1f2e3d4c5b6a", IP: "192.0.2.7"}

func TestMessageRFC5424(t *testing.T) {
	for _, c := range []struct {
		e    stages.Event
		want string
	}{
		{stages.Event{Time: t0, Stage: "partition", Kind: stages.EventDone, Duration: 1200 * time.Millisecond},
			`<29>1 2026-12-01T10:00:00.123456Z node7 nodeinit - done [origin software="nodeinit" ip="192.0.2.7"]` +
				`[nodeinit@32473 hostname="node7" mac="52:54:00:12:34:56" install_id="0b7e3c1a-5d2f-4e6a-9c8b-1f2e3d4c5b6a" stage="partition" kind="done"]` +
				` [partition] done in 1.2s`},
		{stages.Event{Time: t0, Stage: "write-slot", Kind: stages.EventFailed, Error: "short write\non sda", Hint: "replace it"},
			`<27>1 2026-12-01T10:00:00.123456Z node7 nodeinit - failed [origin software="nodeinit" ip="192.0.2.7"]` +
				`[nodeinit@32473 hostname="node7" mac="52:54:00:12:34:56" install_id="0b7e3c1a-5d2f-4e6a-9c8b-1f2e3d4c5b6a" stage="write-slot" kind="failed"]` +
				` [write-slot] failed: short write on sda; fix: replace it`},
	} {
		if got := string(Message(c.e, ident)); got != c.want {
			t.Errorf("Message:\n got %s\nwant %s", got, c.want)
		}
	}
	// Before the network is up nothing but the install id may be known.
	got := string(Message(stages.Event{Stage: "network", Kind: stages.EventStart}, Identity{InstallID: "x"}))
	want := `<29>1 - - nodeinit - start [origin software="nodeinit"][nodeinit@32473 install_id="x" stage="network" kind="start"] [network] start`
	if got != want {
		t.Errorf("Message without identity:\n got %s\nwant %s", got, want)
	}
	// Without a host name the address names the machine.
	if got := string(Message(stages.Event{Kind: stages.EventInfo}, Identity{IP: "192.0.2.9"})); !strings.HasPrefix(got, "<30>1 - 192.0.2.9 nodeinit - info ") {
		t.Errorf("Message with only an address: %s", got)
	}
}

func TestEscapeParam(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:        `plain`,
		`a"b`:          `a\"b`,
		`back\slash`:   `back\\slash`,
		`close]`:       `close\]`,
		`all"\]`:       `all\"\\\]`,
		"tab\tnl\n":    "tab nl ",
		`[open is ok=`: `[open is ok=`,
		"ünïcode":      "ünïcode",
	} {
		if got := EscapeParam(in); got != want {
			t.Errorf("EscapeParam(%q) = %q, want %q", in, got, want)
		}
	}
	m := string(Message(stages.Event{Stage: `x"]`, Kind: stages.EventInfo, Message: "m"}, Identity{Hostname: "bad host"}))
	if !strings.Contains(m, `stage="x\"\]"`) || !strings.Contains(m, " badhost nodeinit ") {
		t.Errorf("Message = %s", m)
	}
}

func TestFraming(t *testing.T) {
	if got := string(OctetCounted([]byte("<29>1 - - - - - hi"))); got != "18 <29>1 - - - - - hi" {
		t.Errorf("OctetCounted = %q", got)
	}
	long := []byte(strings.Repeat("é", MaxUDP)) // 2 bytes each
	cut := TruncateUDP(long)
	if len(cut) > MaxUDP || !strings.HasPrefix(string(long), string(cut)) || !utf8Valid(cut) {
		t.Errorf("TruncateUDP: %d bytes, valid %v", len(cut), utf8Valid(cut))
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func TestTargets(t *testing.T) {
	for line, want := range map[string]string{
		"syslog=192.0.2.1":                             "udp 192.0.2.1:514 0",
		"syslog=tcp://logs.example:601":                "tcp logs.example:601 0",
		"syslog=udp://[2001:db8::1]:10":                "udp [2001:db8::1]:10 0",
		"netconsole=192.0.2.2":                         "udp 192.0.2.2:6666 1",
		"syslog=h:1 netconsole=h:2":                    "udp h:1 0,udp h:2 1",
		"netconsole=6665@10.0.0.1/eth0,6666@10.0.0.2/": "",
	} {
		p, err := cmdline.Parse(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var got []string
		for _, tg := range Targets(p) {
			got = append(got, tg.Network+" "+tg.Addr+" "+strconv.Itoa(int(tg.Format)))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: targets %q, want %q", line, got, want)
		}
	}
	if l, err := New(&cmdline.Params{}, Identity{}); l != nil || err != nil {
		t.Errorf("New without collectors = %v, %v; want a nil Logger", l, err)
	}
	var l *Logger // a nil Logger is silent
	l.Emit(stages.Event{})
	l.SetIdentity(ident)
	l.NetworkUp()
	if l.Close(time.Second) != 0 {
		t.Error("nil Logger dropped events")
	}
}

// fast is a backoff for tests.
var fast = Options{Backoff: backoff.Policy{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond, Retries: 1 << 20, Budget: time.Hour}}

func TestUDPBuffersUntilTheNetworkIsUp(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var up atomic.Bool
	o := fast
	o.Backoff.Min, o.Backoff.Max = time.Hour, time.Hour // only NetworkUp may end the wait
	o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !up.Load() {
			return nil, errors.New("network is unreachable")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	l, err := NewWith([]Target{{Network: "udp", Addr: pc.LocalAddr().String()}}, Identity{InstallID: "run1"}, o)
	if err != nil {
		t.Fatal(err)
	}
	l.Emit(stages.Event{Time: t0, Stage: "network", Kind: stages.EventStart})
	time.Sleep(20 * time.Millisecond)
	up.Store(true)
	l.SetIdentity(Identity{MAC: "52:54:00:00:00:01", Hostname: "n1"})
	l.NetworkUp()
	l.Emit(stages.Event{Time: t0, Stage: "network", Kind: stages.EventDone})
	got := readUDP(t, pc, 2)
	if !strings.Contains(got[0], "kind=\"start\"") || !strings.Contains(got[1], "kind=\"done\"") {
		t.Fatalf("order: %q", got)
	}
	// The early event is sent with the identity known when it went out.
	if !strings.Contains(got[0], `mac="52:54:00:00:00:01"`) || !strings.Contains(got[0], " n1 nodeinit ") ||
		!strings.Contains(got[0], `install_id="run1"`) {
		t.Errorf("buffered message lacks the identity: %s", got[0])
	}
	if n := l.Close(time.Second); n != 0 {
		t.Errorf("dropped %d", n)
	}
}

func readUDP(t *testing.T, pc net.PacketConn, n int) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 4096)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(out) < n {
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(out), err)
		}
		out = append(out, string(buf[:k]))
	}
	return out
}

func TestTCPOctetCounting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 10)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			lenText, err := r.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(lenText))
			if err != nil {
				msgs <- "bad frame " + lenText
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			msgs <- string(b)
		}
	}()
	l, err := NewWith([]Target{{Network: "tcp", Addr: ln.Addr().String()}}, ident, fast)
	if err != nil {
		t.Fatal(err)
	}
	l.Emit(stages.Event{Time: t0, Stage: "probe", Kind: stages.EventInfo, Message: "two\nlines"})
	l.Emit(stages.Event{Time: t0, Stage: "probe", Kind: stages.EventDone})
	for _, want := range []string{"[probe] info: two lines", "[probe] done in 0s"} {
		select {
		case m := <-msgs:
			if !strings.HasPrefix(m, "<") || !strings.HasSuffix(strings.TrimSpace(m), want) {
				t.Errorf("frame %q, want one ending %q", m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no message over TCP")
		}
	}
	l.Close(time.Second)
}

func TestNetconsoleIsPlainText(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, _ := NewWith([]Target{{Network: "udp", Addr: pc.LocalAddr().String(), Format: Text}}, ident, fast)
	l.Emit(stages.Event{Stage: "partition", Kind: stages.EventStart})
	if got := readUDP(t, pc, 1)[0]; got != "[partition] start\n" {
		t.Errorf("netconsole line %q", got)
	}
	l.Close(time.Second)
}

func TestDeadCollectorNeverBlocks(t *testing.T) {
	var mu sync.Mutex
	dials := 0
	o := fast
	o.QueueSize = 8
	o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return nil, errors.New("connection refused")
	}
	l, _ := NewWith([]Target{{Network: "tcp", Addr: "127.0.0.1:1"}}, ident, o)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		l.Emit(stages.Event{Stage: "s", Kind: stages.EventInfo, Message: strconv.Itoa(i)})
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("1000 events took %s against a dead collector", d)
	}
	if got := l.Dropped(); got != 1000-8 {
		t.Errorf("Dropped = %d, want %d (drop-oldest, queue of 8)", got, 1000-8)
	}
	start = time.Now()
	if got := l.Close(50 * time.Millisecond); got != 1000 {
		t.Errorf("Close = %d dropped, want all 1000", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %s", d)
	}
}

func TestDropOldestKeepsNewest(t *testing.T) {
	s := newSender(Target{Network: "udp"}, Options{QueueSize: 3}, func() Identity { return ident })
	for i := 0; i < 5; i++ {
		s.push(stages.Event{Message: strconv.Itoa(i)})
	}
	var got []string
	for _, e := range s.queue {
		got = append(got, e.Message)
	}
	if strings.Join(got, "") != "234" || s.dropped != 2 {
		t.Errorf("queue %q, dropped %d", got, s.dropped)
	}
}

func TestProgressIsThrottled(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, _ := NewWith([]Target{{Network: "udp", Addr: pc.LocalAddr().String(), Format: Text}}, ident, fast)
	for i := 0; i < 10; i++ { // ten progress events within one second: one goes out, plus the final
		l.Emit(stages.Event{Time: t0.Add(time.Duration(i) * 100 * time.Millisecond), Stage: "w", Kind: stages.EventProgress, Done: int64(i), Total: 10})
	}
	l.Emit(stages.Event{Time: t0.Add(time.Second), Stage: "w", Kind: stages.EventProgress, Done: 10, Total: 10})
	l.Emit(stages.Event{Stage: "w", Kind: stages.EventDone})
	got := readUDP(t, pc, 3)
	if !strings.Contains(got[0], "progress") || !strings.Contains(got[1], "(100%)") || !strings.Contains(got[2], "done") {
		t.Errorf("got %q", got)
	}
	l.Close(time.Second)
}

func TestEndOfRunFlushesTheQueue(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, _ := NewWith([]Target{{Network: "udp", Addr: pc.LocalAddr().String(), Format: Text}}, ident, fast)
	defer l.Close(time.Second)
	for i := 0; i < 50; i++ {
		l.Emit(stages.Event{Stage: "s", Kind: stages.EventInfo, Message: strconv.Itoa(i)})
	}
	l.Emit(stages.Event{Stage: "reboot", Kind: stages.EventStart})
	// Emit of the hand-off returned: everything has been sent.
	if n := l.senders[0].queued(); n != 0 {
		t.Errorf("%d events still queued at the hand-off", n)
	}
	if got := readUDP(t, pc, 51); got[50] != "[reboot] start\n" {
		t.Errorf("last line %q", got[50])
	}
}
