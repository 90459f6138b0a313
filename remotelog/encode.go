package remotelog

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nodeinit/nodeinit/stages"
)

// Syslog constants of the messages (RFC 5424).
const (
	facilityDaemon = 3
	appName        = "nodeinit"
	// sdID is nodeinit's structured data element; 32473 is RFC 5612's
	// documentation enterprise number.
	sdID = "nodeinit@32473"
	// MaxUDP is the longest datagram sent: the size RFC 5426 says every
	// receiver should accept.
	MaxUDP = 2048
)

// Severities (RFC 5424 §6.2.1).
const (
	sevErr     = 3
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
	sevDebug   = 7
)

func severity(k stages.EventKind) int {
	switch k {
	case stages.EventFailed:
		return sevErr
	case stages.EventBreak:
		return sevWarning
	case stages.EventStart, stages.EventDone, stages.EventSkipped, stages.EventPlan:
		return sevNotice
	case stages.EventProgress:
		return sevDebug
	}
	return sevInfo
}

// Message is e as one RFC 5424 message, without transport framing:
//
//	<PRI>1 TIMESTAMP HOSTNAME nodeinit - KIND [origin …][nodeinit@32473 …] TEXT
func Message(e stages.Event, id Identity) []byte {
	var b strings.Builder
	b.WriteString("<" + strconv.Itoa(facilityDaemon*8+severity(e.Kind)) + ">1 ")
	ts := "-"
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	}
	b.WriteString(ts + " ")
	// RFC 5424 §6.2.4: the host name, else an IP address, else the NILVALUE.
	host := id.Hostname
	if host == "" {
		host = id.IP
	}
	b.WriteString(headerField(host, 255) + " ")
	b.WriteString(appName + " - ")
	b.WriteString(headerField(string(e.Kind), 32) + " ")
	b.WriteString("[origin")
	writeParam(&b, "software", appName)
	if id.IP != "" {
		writeParam(&b, "ip", id.IP)
	}
	b.WriteString("][" + sdID)
	for _, p := range [][2]string{{"hostname", id.Hostname}, {"mac", id.MAC}, {"install_id", id.InstallID},
		{"stage", e.Stage}, {"kind", string(e.Kind)}} {
		if p[1] != "" {
			writeParam(&b, p[0], p[1])
		}
	}
	b.WriteString("] ")
	b.WriteString(TextLine(e))
	return []byte(b.String())
}

// writeParam writes ` name="value"` with value escaped as RFC 5424 §6.3.3
// demands: '"', '\' and ']' get a backslash. Control characters, which
// would break a collector's line-based files, become spaces.
func writeParam(b *strings.Builder, name, value string) {
	b.WriteString(" " + name + `="`)
	b.WriteString(EscapeParam(value))
	b.WriteByte('"')
}

// EscapeParam escapes an SD-PARAM value (RFC 5424 §6.3.3).
func EscapeParam(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '"' || r == '\\' || r == ']':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		case r == utf8.RuneError:
			b.WriteRune('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// headerField is v as a HOSTNAME or MSGID field: printable US-ASCII without
// spaces, at most n characters, "-" when empty (the NILVALUE).
func headerField(v string, n int) string {
	var b strings.Builder
	for i := 0; i < len(v) && b.Len() < n; i++ {
		if c := v[i]; c > 32 && c < 127 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// TextLine is e as one readable line without control characters: the
// console line without its "nodeinit: " prefix (the app name says it).
func TextLine(e stages.Event) string {
	line := strings.TrimSpace(strings.TrimPrefix(stages.FormatHuman(e), "nodeinit: "))
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, line)
}

// OctetCounted frames msg for TCP as RFC 6587 §3.4.1 says: "LEN SP MSG".
func OctetCounted(msg []byte) []byte {
	return append([]byte(strconv.Itoa(len(msg))+" "), msg...)
}

// TruncateUDP cuts msg to MaxUDP bytes, at a character boundary.
func TruncateUDP(msg []byte) []byte {
	if len(msg) <= MaxUDP {
		return msg
	}
	cut := MaxUDP
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}
