package cmdline

import (
	"net/url"
	"strings"
)

// Redacted is what was parsed, for an operator to check the line against
// (`nodeinit plan --json` prints it as "params"): "action" is the resolved action, and
// every interpreted argument other than the action flags is keyed by its kernel name
// (storage_init, storage_vol, BOOTIF, ip, dns, ntp, hostname, management_server, every
// nodeinit.* key, …) with its value in canonical form, or true for a flag. Arguments not
// given are absent. No secret appears: password hashes read "<redacted>", and URLs show
// "<redacted>" for their user information, query and fragment.
func (p *Params) Redacted() map[string]any {
	m := map[string]any{"action": string(p.Action)}
	for _, a := range p.interpreted(false) {
		if a.flag {
			m[a.key] = true
			continue
		}
		if urlKeys[a.key] {
			m[a.key] = redactURL(a.val)
		} else {
			m[a.key] = a.val
		}
	}
	return m
}

// urlKeys are the arguments whose value is a URL, which may carry a credential.
var urlKeys = map[string]bool{"nodeinit.image": true, "nodeinit.status_url": true, "local_boot_trigger": true}

// redactURL hides the parts of a URL that carry credentials: user information (a password,
// a token as user name), the query (signed URLs) and the fragment. Any other value, and
// a URL without them, is returned as written. oVirt's scheme-less HOST/PATH form of
// local_boot_trigger is read as http.
func redactURL(v string) string {
	if !strings.ContainsAny(v, "@?#") {
		return v
	}
	raw, bare := v, !strings.Contains(v, "://")
	if bare {
		raw = "http://" + v
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		if strings.Contains(v, "/") {
			return Redacted // URL-like but unreadable: it may hide a credential anywhere
		}
		return v
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery {
		return v
	}
	s := u.Scheme + "://"
	if u.User != nil {
		s += Redacted + "@"
	}
	s += u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?" + Redacted // a bare key can be a token as well as a value
	}
	if u.Fragment != "" {
		s += "#" + Redacted
	}
	if bare {
		s = strings.TrimPrefix(s, "http://")
	}
	return s
}
