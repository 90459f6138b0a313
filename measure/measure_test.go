package measure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

const testImage = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var testPlan = &plan.Blueprint{Action: cmdline.ActionBoot, Slot: "a", Handoff: plan.HandoffSwitchRoot,
	Steps: []plan.Step{{Name: plan.StageMountRoot, Description: "mount slot a"}}}

// bootLike measures what /init measures on a normal boot, in its order.
func bootLike(t *testing.T, m *Measurer) {
	t.Helper()
	if err := m.Phase(PhaseEnterInitrd); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{plan.StageNetwork, plan.StageProbe} {
		if err := m.BeforeStep(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Plan(testPlan, Image{ManifestSHA256: testImage, Version: "1.2"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{plan.StageMountRoot, plan.StageSwitchRoot} {
		if err := m.BeforeStep(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	// Under nodeinit.tpm=auto a failure only stops measuring; a test of a
	// working TPM must see it.
	if _, real := m.TPM.(*Device); real && !m.Active() {
		t.Fatalf("measuring stopped: %v", m.stopped)
	}
}

func newMeasurer(t *testing.T, tpm TPM) *Measurer {
	return &Measurer{TPM: tpm, LogPath: filepath.Join(t.TempDir(), "run/log/systemd/tpm2-measure.log"),
		BootID: "5a1b2c3d4e5f60718293a4b5c6d7e8f9", Clock: func() time.Duration { return 1500 * time.Millisecond }}
}

// TestExtendOrderAndLogFormat: every measurement reaches the TPM and the log
// in order; the log is JSON-SEQ of systemd-shaped CEL-JSON records; and PCR 11
// and 23 hold what a hand-written extend chain of the same strings gives.
func TestExtendOrderAndLogFormat(t *testing.T) {
	tpm := startSWTPM(t)
	m := newMeasurer(t, tpm)
	bootLike(t, m)

	raw, err := os.ReadFile(m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	// JSON-SEQ: every record is 0x1E, one JSON object, "\n".
	parts := bytes.Split(raw, []byte{0x1e})
	if len(parts[0]) != 0 {
		t.Fatalf("log does not start with a record separator: %q", raw[:20])
	}
	var strs []string
	for i, p := range parts[1:] {
		if !bytes.HasSuffix(p, []byte("\n")) {
			t.Errorf("record %d does not end in a newline", i)
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(p, &rec); err != nil {
			t.Fatalf("record %d is not JSON: %v", i, err)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range rec {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, []string{"content", "content_type", "digests", "pcr"}) {
			t.Errorf("record %d has keys %v, want systemd's pcr, digests, content_type, content", i, keys)
		}
		var c struct {
			String    string `json:"string"`
			BootID    string `json:"bootId"`
			Timestamp uint64 `json:"timestamp"`
			EventType string `json:"eventType"`
		}
		json.Unmarshal(rec["content"], &c)
		if c.BootID != m.BootID || c.Timestamp != 1500000 {
			t.Errorf("record %d content %+v: want bootId and a µs timestamp", i, c)
		}
		strs = append(strs, c.String)
	}
	digest, _ := PlanDigest(testPlan)
	want := []string{"enter-initrd", "nodeinit:step:network", "nodeinit:step:probe", "nodeinit:action:boot",
		"nodeinit:plan:sha256:" + digest, "nodeinit:image:sha256:" + testImage + ":version:1.2", "nodeinit:slot:a",
		"nodeinit:step:mount-root", "nodeinit:step:switch-root", "leave-initrd"}
	if !slices.Equal(strs, want) {
		t.Fatalf("measured in order\n%s\nwant\n%s", strings.Join(strs, "\n"), strings.Join(want, "\n"))
	}
	recs, err := ParseLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].PCR != 11 || recs[0].Content.EventType != "phase" || recs[9].PCR != 11 || recs[1].PCR != 23 || recs[1].Content.EventType != "" {
		t.Errorf("PCRs or event types wrong: %+v / %+v", recs[0], recs[1])
	}
	if fi, _ := os.Stat(m.LogPath); fi.Mode()&os.ModeSticky != 0 {
		t.Error("the log is left marked dirty (sticky bit)")
	}

	// By hand: PCR = SHA256(PCR || SHA256(string)), from zero.
	chain := func(ss ...string) []byte {
		pcr := make([]byte, 32)
		for _, s := range ss {
			d := sha256.Sum256([]byte(s))
			n := sha256.Sum256(append(pcr, d[:]...))
			pcr = n[:]
		}
		return pcr
	}
	got, err := tpm.ReadPCRs(SHA256, []uint32{11, 23})
	if err != nil {
		t.Fatal(err)
	}
	if w := chain("enter-initrd", "leave-initrd"); !bytes.Equal(got[11], w) {
		t.Errorf("PCR 11 = %x, want %x", got[11], w)
	}
	if w := chain(want[1 : len(want)-1]...); !bytes.Equal(got[23], w) {
		t.Errorf("PCR 23 = %x, want %x", got[23], w)
	}
	res, err := Check(tpm, m.LogPath)
	if err != nil || len(res.Mismatches) != 0 {
		t.Fatalf("check: %v %v", err, res)
	}
	if len(res.Banks) == 0 {
		t.Fatal("no banks")
	}
}

// TestCheckDetectsTamperedLog: a record whose words were changed, or one
// dropped from the log, is found.
func TestCheckDetectsTamperedLog(t *testing.T) {
	tpm := startSWTPM(t)
	m := newMeasurer(t, tpm)
	bootLike(t, m)
	raw, _ := os.ReadFile(m.LogPath)

	// Words changed, digests left: the words no longer say what was measured.
	forged := bytes.Replace(raw, []byte("nodeinit:slot:a"), []byte("nodeinit:slot:b"), 1)
	os.WriteFile(m.LogPath, forged, 0o600)
	if _, err := Check(tpm, m.LogPath); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("changed words: err = %v", err)
	}
	// A record dropped: the replay no longer matches the TPM.
	recs, _ := ParseLog(raw)
	var b bytes.Buffer
	for i, r := range recs {
		if i == 3 {
			continue
		}
		line, _ := marshalRecord(r)
		b.Write(line)
	}
	os.WriteFile(m.LogPath, b.Bytes(), 0o600)
	res, err := Check(tpm, m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Mismatches) == 0 || res.Mismatches[0].PCR != 23 {
		t.Errorf("dropped record: mismatches %v", res.Mismatches)
	}
}

// TestQuoteAndVerify: a quote verifies with its nonce and image; another nonce,
// another image, a forged log or a forged signature are refused.
func TestQuoteAndVerify(t *testing.T) {
	tpm := startSWTPM(t)
	m := newMeasurer(t, tpm)
	bootLike(t, m)
	nonce, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	q, err := TakeQuote(tpm, nonce, m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as the document travels.
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	load := func() *Quote {
		var q Quote
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		return &q
	}
	v, err := Verify(load(), Expect{Nonce: nonce, Image: "sha256:" + testImage, Action: "boot",
		Steps: []string{"network", "probe", "mount-root", "switch-root"}})
	if err != nil || !v.OK() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	if v.Boot.Slot != "a" || v.Boot.Version != "1.2" {
		t.Errorf("boot = %+v", v.Boot)
	}
	// The same node makes the same attestation key: it can be pinned.
	q2, err := TakeQuote(tpm, nonce, m.LogPath)
	if err != nil || !bytes.Equal(q2.AKPublic, q.AKPublic) {
		t.Errorf("second quote's key differs (%v)", err)
	}
	if _, err := Verify(load(), Expect{Nonce: nonce, AKPublic: q.AKPublic}); err != nil {
		t.Errorf("pinned key: %v", err)
	}

	other, _ := hex.DecodeString("ffeeddccbbaa99887766554433221100")
	if _, err := Verify(load(), Expect{Nonce: other}); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("another nonce: err = %v", err)
	}
	v, err = Verify(load(), Expect{Nonce: nonce, Image: strings.Repeat("ab", 32)})
	if err != nil || v.OK() || !strings.Contains(strings.Join(v.Problems, ";"), "not abab") {
		t.Errorf("another image: %v %+v", err, v)
	}
	v, err = Verify(load(), Expect{Nonce: nonce, Action: "install"})
	if err != nil || v.OK() {
		t.Errorf("another action: %v %+v", err, v)
	}

	// A log rewritten consistently (words and digests) to name another image.
	forged := load()
	for i, r := range forged.EventLog {
		if strings.HasPrefix(r.Content.String, PrefixImage) {
			s := ImageString(strings.Repeat("ab", 32), "1.2")
			forged.EventLog[i].Content.String = s
			for j, d := range r.Digests {
				bank, _ := BankByName(d.HashAlg)
				forged.EventLog[i].Digests[j].Digest = hex.EncodeToString(bank.sum([]byte(s)))
			}
		}
	}
	if _, err := Verify(forged, Expect{Nonce: nonce}); err == nil || !strings.Contains(err.Error(), "does not replay") {
		t.Errorf("forged log: err = %v", err)
	}
	// A flipped bit in the signed structure.
	flipped := load()
	flipped.Attest[len(flipped.Attest)-1] ^= 1
	if _, err := Verify(flipped, Expect{Nonce: nonce}); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("flipped attest: err = %v", err)
	}
	// Another node's key.
	if _, err := Verify(load(), Expect{Nonce: nonce, AKPublic: []byte("other")}); err == nil {
		t.Error("another pinned key was accepted")
	}
}

// TestNoTPM: no TPM is normal; it is said once, and only nodeinit.tpm=required
// makes it an error, with a fix.
func TestNoTPM(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "tpmrm0")); !errors.Is(err, ErrNoTPM) {
		t.Fatalf("open missing device: %v", err)
	}
	var said []string
	m := &Measurer{LogPath: filepath.Join(t.TempDir(), "log"), Report: func(s string) { said = append(said, s) }}
	bootLike(t, m)
	if len(said) != 1 || !strings.Contains(said[0], "no TPM") {
		t.Errorf("reports: %q", said)
	}
	if _, err := os.Stat(m.LogPath); err == nil {
		t.Error("a log was written without a TPM")
	}
	if m.Active() {
		t.Error("active without a TPM")
	}
	var nilM *Measurer
	if err := nilM.Measure("x"); err != nil || nilM.Active() {
		t.Errorf("nil measurer: %v", err)
	}
	req := &Measurer{Required: true}
	err := req.Phase(PhaseEnterInitrd)
	if err == nil || operr.Describe(err).Fix == "" || !errors.Is(err, ErrNoTPM) {
		t.Fatalf("required without a TPM: %v", err)
	}
}

// failingTPM counts extends and fails from the nth on.
type failingTPM struct {
	n, calls int
}

func (f *failingTPM) Banks() ([]Bank, error) { return []Bank{SHA256}, nil }
func (f *failingTPM) Extend(uint32, map[string][]byte) error {
	f.calls++
	if f.calls >= f.n {
		return errors.New("TPM2_PCR_Extend: TPM_RC_FAILURE")
	}
	return nil
}
func (f *failingTPM) ReadPCRs(Bank, []uint32) (PCRValues, error) { return nil, errors.New("unused") }
func (f *failingTPM) Quote(Bank, []uint32, []byte) (*RawQuote, error) {
	return nil, errors.New("unused")
}
func (f *failingTPM) Close() error { return nil }

// TestTPMFailsMidBoot: the failure is reported once, measuring stops, the log
// holds only what reached the TPM, and the boot goes on unless required.
func TestTPMFailsMidBoot(t *testing.T) {
	f := &failingTPM{n: 3}
	var said []string
	m := newMeasurer(t, f)
	m.Report = func(s string) { said = append(said, s) }
	bootLike(t, m) // fails the test if any call returns an error
	if f.calls != 3 {
		t.Errorf("%d extends after the failure, want none", f.calls-3)
	}
	if len(said) != 1 || !strings.Contains(said[0], "TPM_RC_FAILURE") {
		t.Errorf("reports %q", said)
	}
	recs, err := ReadLog(m.LogPath)
	if err != nil || len(recs) != 2 {
		t.Fatalf("log has %d records (%v), want the 2 that reached the TPM", len(recs), err)
	}

	req := newMeasurer(t, &failingTPM{n: 2})
	req.Required = true
	if err := req.Phase(PhaseEnterInitrd); err != nil {
		t.Fatal(err)
	}
	err = req.BeforeStep(t.Context(), "probe")
	if err == nil || operr.Describe(err).Arg != "nodeinit.tpm=auto" {
		t.Fatalf("required: %v", err)
	}
	if err := req.Measure("later"); !errors.Is(err, ErrStopped) {
		t.Errorf("after the failure: %v", err)
	}
}

// TestReplayNeedsEveryBank: a record without a digest for a bank the TPM
// extended cannot be replayed in that bank.
func TestReplayNeedsEveryBank(t *testing.T) {
	recs := []Record{{PCR: 11, Digests: []Digest{{HashAlg: "sha1", Digest: strings.Repeat("00", 20)}}}}
	if _, err := Replay(recs, SHA256, QuotedPCRs); err == nil {
		t.Fatal("replayed a bank the record has no digest for")
	}
}
