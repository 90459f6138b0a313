package measure

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/operr"
)

// Phases measured into PCR 11, as systemd-pcrphase names them.
const (
	PhaseEnterInitrd = "enter-initrd"
	PhaseLeaveInitrd = "leave-initrd"
)

// The strings nodeinit measures into PCRNodeinit start with these; Verify
// reads them back.
const (
	PrefixAction = "nodeinit:action:"
	PrefixPlan   = "nodeinit:plan:sha256:"
	PrefixImage  = "nodeinit:image:sha256:"
	PrefixSlot   = "nodeinit:slot:"
	PrefixStep   = "nodeinit:step:"
	PrefixFailed = "nodeinit:failed:"
)

// ImageString is what measuring an image extends: its manifest's SHA-256 and
// version.
func ImageString(manifestSHA256, version string) string {
	return PrefixImage + strings.ToLower(manifestSHA256) + ":version:" + version
}

// Measurer extends PCRs and appends the matching log records. Its zero value
// with a nil TPM measures nothing. It is safe for concurrent use.
type Measurer struct {
	// TPM is the TPM to extend; nil when the machine has none.
	TPM TPM
	// LogPath is the event log; DefaultLogPath when empty.
	LogPath string
	// Required makes every failure to measure an error for the caller to stop
	// on (nodeinit.tpm=required), and a missing TPM one too.
	Required bool
	// BootID is the kernel's boot id, for the records; read from /proc when empty.
	BootID string
	// Clock is the time for the records' timestamps; CLOCK_BOOTTIME when nil.
	Clock func() time.Duration
	// Report receives what the caller should tell the operator: no TPM, a
	// failure. May be nil.
	Report func(msg string)

	mu      sync.Mutex
	banks   []Bank
	stopped error // the first failure: nothing more is measured after it
	said    bool
}

// ErrStopped wraps a measurement that was not made because an earlier one failed.
var ErrStopped = errors.New("measuring stopped after an earlier TPM failure")

// Active tells whether measurements reach a TPM.
func (m *Measurer) Active() bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.TPM != nil && m.stopped == nil
}

// Phase measures a boot phase word into PCR 11.
func (m *Measurer) Phase(word string) error {
	return m.measure(PCRPhase, word, EventTypePhase)
}

// Measure extends s into PCRNodeinit: one of nodeinit's own measurements.
func (m *Measurer) Measure(s string) error {
	return m.measure(PCRNodeinit, s, "")
}

// BeforeStep measures the step about to run (stages.Engine calls it before
// the step acts). Before switch_root it also measures leave-initrd, as
// systemd-pcrphase-initrd does when the initrd ends.
func (m *Measurer) BeforeStep(_ context.Context, stage string) error {
	if err := m.Measure(PrefixStep + stage); err != nil {
		return err
	}
	if stage == "switch-root" {
		return m.Phase(PhaseLeaveInitrd)
	}
	return nil
}

// StepFailed measures the failing stage. The failure is already being
// reported, so a failure to measure it is only reported.
func (m *Measurer) StepFailed(stage string) {
	m.Measure(PrefixFailed + stage)
}

func (m *Measurer) report(format string, args ...any) {
	if m.Report != nil {
		m.Report(fmt.Sprintf(format, args...))
	}
}

func (m *Measurer) measure(pcr uint32, s, eventType string) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.TPM == nil {
		if !m.said {
			m.said = true
			m.report("no TPM 2.0 on this machine: nothing is measured")
		}
		if m.Required {
			return requiredError("measure "+s, ErrNoTPM)
		}
		return nil
	}
	if m.stopped != nil {
		if m.Required {
			return requiredError("measure "+s, fmt.Errorf("%w: %v", ErrStopped, m.stopped))
		}
		return nil
	}
	if err := m.extendAndLog(pcr, s, eventType); err != nil {
		m.stopped = err
		m.report("TPM: %v; nothing more is measured in this boot", err)
		if m.Required {
			return requiredError("measure "+s, err)
		}
	}
	return nil
}

func (m *Measurer) extendAndLog(pcr uint32, s, eventType string) error {
	if m.banks == nil {
		b, err := m.TPM.Banks()
		if err != nil {
			return err
		}
		m.banks = b
	}
	digests := map[string][]byte{}
	rec := Record{PCR: pcr, ContentType: ContentTypeSystemd,
		Content: Content{String: s, BootID: m.bootID(), Timestamp: uint64(m.clock() / time.Microsecond), EventType: eventType}}
	for _, b := range m.banks {
		d := b.sum([]byte(s))
		digests[b.Name] = d
		rec.Digests = append(rec.Digests, Digest{HashAlg: b.Name, Digest: hex.EncodeToString(d)})
	}
	line, err := marshalRecord(rec)
	if err != nil {
		return err
	}
	path := m.LogPath
	if path == "" {
		path = DefaultLogPath
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return fmt.Errorf("event log %s: lock: %w", path, err)
	}
	defer unlock()
	// The sticky bit marks the log dirty from the extend until its record is
	// written, as systemd does: a reader knows a record may be missing.
	if err := f.Chmod(0o600 | os.ModeSticky); err != nil {
		return fmt.Errorf("event log %s: %w", path, err)
	}
	if err := m.TPM.Extend(pcr, digests); err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("event log %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("event log %s: %w", path, err)
	}
	return f.Chmod(0o600)
}

func (m *Measurer) bootID() string {
	if m.BootID == "" {
		if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
			m.BootID = strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "")
		}
	}
	return m.BootID
}

func (m *Measurer) clock() time.Duration {
	if m.Clock != nil {
		return m.Clock()
	}
	return bootTime()
}

// requiredError is a measurement that failed where nodeinit.tpm=required asked
// for one: an operator error whose fix says how to boot on.
func requiredError(what string, err error) error {
	fix := "check the TPM (firmware setup, `dmesg | grep -i tpm`), or boot without nodeinit.tpm=required to boot unmeasured"
	if errors.Is(err, ErrNoTPM) {
		fix = "enable the TPM 2.0 in the firmware setup, or boot without nodeinit.tpm=required"
	}
	return operr.Wrap(err, "nodeinit.tpm=required: "+what, fix, "nodeinit.tpm=auto")
}
