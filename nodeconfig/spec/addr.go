package spec

import (
	"math/bits"
	"strings"
)

// parseMAC reads a hardware address of 6, 8 or 20 bytes written as hex pairs all
// separated by ':' or all by '-' (the forms net.ParseMAC reads, less Cisco's dotted
// one), and returns it in lower case with ':'.
func parseMAC(s string) (string, bool) {
	for _, sep := range []string{":", "-"} {
		parts := strings.Split(s, sep)
		if len(parts) != 6 && len(parts) != 8 && len(parts) != 20 {
			continue
		}
		for _, p := range parts {
			if len(p) != 2 || !isHex(p[0]) || !isHex(p[1]) {
				return "", false
			}
		}
		return strings.ToLower(strings.Join(parts, ":")), true
	}
	return "", false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// maskBits is the length of a contiguous IPv4 netmask (255.255.254.0 is 23), or -1 when
// its ones are not contiguous, as net.IPMask.Size says.
func maskBits(m [4]byte) int {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	ones := bits.LeadingZeros32(^v)
	if v<<ones != 0 {
		return -1
	}
	return ones
}

// cutPort splits HOST:PORT and [HOST]:PORT exactly as net.SplitHostPort does; ok is
// false where SplitHostPort fails: no port (HOST, [HOST], a bare IPv6 address), or brackets
// and colons out of place.
func cutPort(s string) (host, port string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	j, k := 0, 0
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 != i {
			return "", "", false // no ']', no port after it, or a colon that is not the last
		}
		host = s[1:end]
		j, k = 1, end+1
	} else {
		host = s[:i]
		if strings.IndexByte(host, ':') >= 0 {
			return "", "", false
		}
	}
	if strings.IndexByte(s[j:], '[') >= 0 || strings.IndexByte(s[k:], ']') >= 0 {
		return "", "", false
	}
	return host, s[i+1:], true
}

// joinHostPort is net.JoinHostPort: an address with a ':' goes in brackets.
func joinHostPort(host, port string) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
