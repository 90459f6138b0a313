package remotelog

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/internal/backoff"
	"github.com/nodeinit/nodeinit/stages"
)

// Default ports.
const (
	SyslogPort     = 514
	NetconsolePort = 6666
)

// QueueSize is how many events wait for each collector before the oldest
// are dropped.
const QueueSize = 1024

// Identity names the machine in every message. Fields may be empty until
// they are known (the MAC once the network is up): see SetIdentity.
type Identity struct {
	Hostname  string
	MAC       string
	InstallID string // one per run of the installer; New makes one when empty
	IP        string // the boot interface's address, without a prefix
}

// Format is how a collector wants its messages.
type Format int

// Formats.
const (
	// Syslog is RFC 5424.
	Syslog Format = iota
	// Text is one readable line, as a netconsole receiver shows it.
	Text
)

// Target is one collector.
type Target struct {
	Network string // "udp" or "tcp"
	Addr    string // host:port
	Format  Format
}

// Targets are the collectors the command line names.
func Targets(p *cmdline.Params) []Target {
	var out []Target
	if hp := p.Syslog; hp != nil {
		network := "udp"
		if hp.Proto == "tcp" {
			network = "tcp"
		}
		out = append(out, Target{Network: network, Addr: hostPort(hp, SyslogPort), Format: Syslog})
	}
	if hp := p.Netconsole; hp != nil {
		out = append(out, Target{Network: "udp", Addr: hostPort(hp, NetconsolePort), Format: Text})
	}
	return out
}

func hostPort(hp *cmdline.HostPort, def int) string {
	port := hp.Port
	if port == 0 {
		port = def
	}
	return net.JoinHostPort(hp.Host, strconv.Itoa(port))
}

// Logger sends events to every collector. A nil *Logger (no collector
// named) accepts and drops everything, so callers need not check.
type Logger struct {
	mu      sync.Mutex
	ident   Identity
	senders []*sender
	// lastProgress throttles progress events per stage.
	lastProgress map[string]time.Time
}

// Options tune a Logger; the zero value gives the defaults.
type Options struct {
	// Dial connects to a collector (default net.Dialer with a 3s timeout).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Backoff spaces out reconnection attempts (default 250ms doubling to
	// 10s; the series starts again when it runs out, so a collector that
	// comes back late still gets the queue).
	Backoff backoff.Policy
	// Rand draws the backoff's jitter; nil means math/rand/v2.
	Rand func() float64
	// QueueSize overrides QueueSize.
	QueueSize int
}

// New returns the Logger for the collectors p names, or nil (a valid,
// silent Logger) when it names none. It starts one sender per collector.
func New(p *cmdline.Params, ident Identity) (*Logger, error) {
	return NewWith(Targets(p), ident, Options{})
}

// NewWith is New with explicit targets and options, for tests.
func NewWith(targets []Target, ident Identity, o Options) (*Logger, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	if ident.InstallID == "" {
		ident.InstallID = uuid.NewString()
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: 3 * time.Second}
		o.Dial = d.DialContext
	}
	if o.Backoff.Min == 0 {
		o.Backoff = backoff.Policy{Min: 250 * time.Millisecond, Max: 10 * time.Second, Retries: 1 << 20, Budget: 1 << 62}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = QueueSize
	}
	l := &Logger{ident: ident, lastProgress: map[string]time.Time{}}
	for _, t := range targets {
		if t.Network != "udp" && t.Network != "tcp" {
			return nil, fmt.Errorf("remote log %s: network %q is neither udp nor tcp", t.Addr, t.Network)
		}
		s := newSender(t, o, l.identity)
		l.senders = append(l.senders, s)
		go s.loop()
	}
	return l, nil
}

// Identity is what the messages name the machine as now.
func (l *Logger) Identity() Identity {
	if l == nil {
		return Identity{}
	}
	return l.identity()
}

func (l *Logger) identity() Identity {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ident
}

// SetIdentity fills in what became known (the MAC and IP once the network
// is up, the host name from DHCP). Empty fields keep their value; events
// still queued are sent with the new identity.
func (l *Logger) SetIdentity(id Identity) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&l.ident.Hostname, id.Hostname)
	set(&l.ident.MAC, id.MAC)
	set(&l.ident.InstallID, id.InstallID)
	set(&l.ident.IP, id.IP)
}

// NetworkUp tells every sender that the network came up: each tries its
// collector at once instead of waiting out its backoff.
func (l *Logger) NetworkUp() {
	if l == nil {
		return
	}
	for _, s := range l.senders {
		s.kick()
	}
}

// progressInterval is the least time between two progress messages of a stage.
const progressInterval = 5 * time.Second

// Emit queues e for every collector; it never blocks.
func (l *Logger) Emit(e stages.Event) {
	if l == nil {
		return
	}
	if e.Kind == stages.EventProgress && e.Done < e.Total {
		l.mu.Lock()
		last, ok := l.lastProgress[e.Stage]
		if ok && e.Time.Sub(last) < progressInterval {
			l.mu.Unlock()
			return
		}
		l.lastProgress[e.Stage] = e.Time
		l.mu.Unlock()
	}
	for _, s := range l.senders {
		s.push(e)
	}
	if stages.EndsRun(e) {
		// The hand-off or the failure policy may reboot at once: give
		// what is queued a moment to leave.
		l.Flush(FlushWait)
	}
}

// FlushWait is how long the event that ends a run waits for the queues to
// drain.
var FlushWait = 2 * time.Second

// Flush waits until every queue is empty, or for at most wait.
func (l *Logger) Flush(wait time.Duration) {
	if l == nil {
		return
	}
	deadline := time.Now().Add(wait)
	for _, s := range l.senders {
		for s.queued() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Close sends what is queued, waiting at most wait in all, then stops the
// senders. It returns how many events were dropped: queue overflow plus what
// was still queued at the end.
func (l *Logger) Close(wait time.Duration) (dropped int) {
	if l == nil {
		return 0
	}
	deadline := time.Now().Add(wait)
	for _, s := range l.senders {
		dropped += s.close(time.Until(deadline))
	}
	return dropped
}

// Dropped is how many events were dropped so far, over every collector.
func (l *Logger) Dropped() int {
	if l == nil {
		return 0
	}
	n := 0
	for _, s := range l.senders {
		n += s.droppedCount()
	}
	return n
}
