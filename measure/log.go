package measure

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// DefaultLogPath is where systemd keeps its userspace measurement log, and
// where nodeinit appends its own records.
const DefaultLogPath = "/run/log/systemd/tpm2-measure.log"

// recordSeparator starts each JSON-SEQ record (RFC 7464).
const recordSeparator = 0x1e

// Digest is one bank's digest of a record, as CEL-JSON writes it.
type Digest struct {
	HashAlg string `json:"hashAlg"`
	Digest  string `json:"digest"` // lowercase hex
}

// Content is the "content" of a systemd record: the measured string in
// words, the boot it belongs to, when (CLOCK_BOOTTIME, µs) and what kind.
type Content struct {
	String    string `json:"string,omitempty"`
	BootID    string `json:"bootId,omitempty"`
	Timestamp uint64 `json:"timestamp,omitempty"`
	EventType string `json:"eventType,omitempty"`
}

// Record is one CEL-JSON record of the userspace event log.
type Record struct {
	RecNum      *uint64  `json:"recnum,omitempty"` // systemd writes none; CEL allows it
	PCR         uint32   `json:"pcr"`
	Digests     []Digest `json:"digests"`
	ContentType string   `json:"content_type"`
	Content     Content  `json:"content"`
}

// ContentTypeSystemd is the content_type of systemd's (and nodeinit's) records.
const ContentTypeSystemd = "systemd"

// EventTypePhase is systemd's eventType for boot phase records.
const EventTypePhase = "phase"

// marshalRecord is r as one JSON-SEQ record.
func marshalRecord(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode log record: %w", err)
	}
	out := make([]byte, 0, len(b)+2)
	out = append(out, recordSeparator)
	out = append(out, b...)
	return append(out, '\n'), nil
}

// ParseLog reads a userspace event log: JSON-SEQ as systemd writes it, or
// one JSON object a line. An empty log has no records.
func ParseLog(data []byte) ([]Record, error) {
	var out []Record
	chunks := bytes.Split(data, []byte{recordSeparator})
	if !bytes.Contains(data, []byte{recordSeparator}) {
		chunks = bytes.Split(data, []byte("\n"))
	}
	for i, c := range chunks {
		c = bytes.TrimSpace(c)
		if len(c) == 0 {
			continue
		}
		var r Record
		dec := json.NewDecoder(bytes.NewReader(c))
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("event log record %d: %w", i, err)
		}
		for _, d := range r.Digests {
			if _, err := hex.DecodeString(d.Digest); err != nil {
				return nil, fmt.Errorf("event log record %d: digest %q: %w", i, d.Digest, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadLog reads and parses the log at path. A missing log has no records.
func ReadLog(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	recs, err := ParseLog(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

// Describe is r in one line: PCR, kind and the measured words.
func (r Record) Describe() string {
	kind := r.Content.EventType
	if kind == "" {
		kind = r.ContentType
	}
	what := r.Content.String
	if what == "" {
		what = "(no description)"
	}
	return fmt.Sprintf("PCR %2d  %-9s %s", r.PCR, kind, what)
}

// WriteText prints recs one a line, with the SHA-256 digest when present.
func WriteText(w io.Writer, recs []Record) {
	for i, r := range recs {
		d := ""
		for _, dg := range r.Digests {
			if dg.HashAlg == "sha256" {
				d = dg.Digest
			}
		}
		fmt.Fprintf(w, "%3d  %s", i, r.Describe())
		if d != "" {
			fmt.Fprintf(w, "  sha256:%s", d)
		}
		fmt.Fprintln(w)
	}
}
