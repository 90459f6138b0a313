package measure

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// QuoteFormat is the format tag of a Quote document.
const QuoteFormat = "nodeinit-tpm-quote/1"

// Quote is what `nodeinit tpm quote` emits: a TPM2 quote over QuotedPCRs,
// the event log that explains them, and the attestation key's public part, as
// one JSON document that Verify checks on any machine.
type Quote struct {
	Format string `json:"format"`
	// Nonce is the verifier's challenge (hex), signed as the quote's qualifying data.
	Nonce string   `json:"nonce"`
	Bank  string   `json:"bank"`
	PCRs  []uint32 `json:"pcrs"`
	// PCRValues are the values as read at quote time (hex), for people; Verify
	// trusts only the signed digest.
	PCRValues map[uint32]string `json:"pcr_values"`
	// Attest is the signed TPMS_ATTEST, Signature its TPMT_SIGNATURE, and
	// AKPublic the attestation key's TPMT_PUBLIC, all in TPM wire form.
	Attest    []byte   `json:"attest"`
	Signature []byte   `json:"signature"`
	AKPublic  []byte   `json:"ak_public"`
	EventLog  []Record `json:"event_log"`
}

// TakeQuote quotes QuotedPCRs of the sha256 bank with nonce, and attaches the
// log at logPath.
func TakeQuote(t TPM, nonce []byte, logPath string) (*Quote, error) {
	if len(nonce) == 0 || len(nonce) > 32 {
		return nil, fmt.Errorf("nonce of %d bytes: give 1 to 32 bytes (2 to 64 hex digits)", len(nonce))
	}
	recs, err := ReadLog(logPath)
	if err != nil {
		return nil, err
	}
	raw, err := t.Quote(SHA256, QuotedPCRs, nonce)
	if err != nil {
		return nil, err
	}
	vals, err := t.ReadPCRs(SHA256, QuotedPCRs)
	if err != nil {
		return nil, err
	}
	q := &Quote{Format: QuoteFormat, Nonce: hex.EncodeToString(nonce), Bank: SHA256.Name, PCRs: QuotedPCRs,
		PCRValues: map[uint32]string{}, Attest: raw.Attest, Signature: raw.Signature, AKPublic: raw.AKPublic, EventLog: recs}
	for p, v := range vals {
		q.PCRValues[p] = hex.EncodeToString(v)
	}
	return q, nil
}

// Expect is what a verifier requires of a quote.
type Expect struct {
	// Nonce is the challenge the verifier sent; required.
	Nonce []byte
	// Image is the manifest SHA-256 (hex) the node must have booted; "" accepts any.
	Image string
	// Action, when set, is the action the boot must have taken (boot, install, …).
	Action string
	// Steps, when set, are the steps the boot must have run, in order.
	Steps []string
	// AKPublic, when set, pins the attestation key (TPMT_PUBLIC bytes, as a
	// previous quote of the same node carried it).
	AKPublic []byte
}

// Boot is what a log says a boot did, read from nodeinit's records.
type Boot struct {
	Action  string   `json:"action,omitempty"`
	Plan    string   `json:"plan_sha256,omitempty"`
	Image   string   `json:"image_sha256,omitempty"`
	Version string   `json:"version,omitempty"`
	Slot    string   `json:"slot,omitempty"`
	Steps   []string `json:"steps,omitempty"`
	Failed  string   `json:"failed,omitempty"`
	Phases  []string `json:"phases,omitempty"`
}

// ReadBoot reads nodeinit's and the phase records of recs. It refuses a log
// whose nodeinit records do not lie between enter-initrd and leave-initrd:
// nodeinit measures only inside the initramfs.
func ReadBoot(recs []Record) (*Boot, error) {
	b := &Boot{}
	for i, r := range recs {
		s := r.Content.String
		switch r.PCR {
		case PCRPhase:
			b.Phases = append(b.Phases, s)
			continue
		case PCRNodeinit:
		default:
			continue
		}
		if !slices.Contains(b.Phases, PhaseEnterInitrd) || slices.Contains(b.Phases, PhaseLeaveInitrd) {
			return nil, fmt.Errorf("event log record %d (%s) lies outside the initramfs (between enter-initrd and leave-initrd): PCR %d was written after the boot", i, r.Describe(), PCRNodeinit)
		}
		switch {
		case strings.HasPrefix(s, PrefixAction):
			b.Action = strings.TrimPrefix(s, PrefixAction)
		case strings.HasPrefix(s, PrefixPlan):
			b.Plan = strings.TrimPrefix(s, PrefixPlan)
		case strings.HasPrefix(s, PrefixImage):
			rest := strings.TrimPrefix(s, PrefixImage)
			b.Image, b.Version, _ = strings.Cut(rest, ":version:")
		case strings.HasPrefix(s, PrefixSlot):
			b.Slot = strings.TrimPrefix(s, PrefixSlot)
		case strings.HasPrefix(s, PrefixStep):
			b.Steps = append(b.Steps, strings.TrimPrefix(s, PrefixStep))
		case strings.HasPrefix(s, PrefixFailed):
			b.Failed = strings.TrimPrefix(s, PrefixFailed)
		}
	}
	return b, nil
}

// Verdict is the outcome of Verify: what the node booted, and every way in
// which that differs from what was expected. OK means none.
type Verdict struct {
	Boot     *Boot    `json:"boot"`
	Problems []string `json:"problems,omitempty"`
}

// OK tells whether the quote verified and the boot was as expected.
func (v *Verdict) OK() bool { return len(v.Problems) == 0 }

// Verify checks q: the attestation key's signature over the quote, the nonce,
// the log's replay against the signed PCR digest, every record's digest
// against its words, and then the boot the log describes against want. An
// error means the quote cannot be trusted at all; a Verdict with Problems
// means it is genuine but the boot was not the expected one.
func Verify(q *Quote, want Expect) (*Verdict, error) {
	if q.Format != QuoteFormat {
		return nil, fmt.Errorf("quote format %q, want %q", q.Format, QuoteFormat)
	}
	if len(want.Nonce) == 0 {
		return nil, errors.New("no nonce to check the quote against")
	}
	if len(want.AKPublic) > 0 && !bytes.Equal(want.AKPublic, q.AKPublic) {
		return nil, errors.New("the quote is signed by another attestation key than the one pinned for this node")
	}
	attest, err := checkSignature(q)
	if err != nil {
		return nil, err
	}
	if attest.Type != tpm2.TPMSTAttestQuote {
		return nil, fmt.Errorf("the signed structure is a %v, not a quote", attest.Type)
	}
	if !bytes.Equal(attest.ExtraData.Buffer, want.Nonce) {
		return nil, fmt.Errorf("the quote answers nonce %x, not %x: it is an old or a replayed quote", attest.ExtraData.Buffer, want.Nonce)
	}
	info, err := attest.Attested.Quote()
	if err != nil {
		return nil, err
	}
	want24 := selection(SHA256, QuotedPCRs)
	if !bytes.Equal(tpm2.Marshal(info.PCRSelect), tpm2.Marshal(want24)) {
		return nil, fmt.Errorf("the quote covers other PCRs than sha256 %v", QuotedPCRs)
	}
	if err := CheckContent(q.EventLog, QuotedPCRs); err != nil {
		return nil, err
	}
	vals, err := Replay(q.EventLog, SHA256, QuotedPCRs)
	if err != nil {
		return nil, err
	}
	h := SHA256.Hash.New()
	for _, p := range QuotedPCRs { // ascending: the order the TPM concatenates them in
		h.Write(vals[p])
	}
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		return nil, errors.New("the event log does not replay to the quoted PCR values: the log was altered, or is not this boot's")
	}
	boot, err := ReadBoot(q.EventLog)
	if err != nil {
		return nil, err
	}
	return judge(boot, want), nil
}

func judge(b *Boot, want Expect) *Verdict {
	v := &Verdict{Boot: b}
	add := func(format string, args ...any) { v.Problems = append(v.Problems, fmt.Sprintf(format, args...)) }
	if b.Action == "" {
		add("nodeinit measured no action in this boot")
	}
	if img := strings.ToLower(strings.TrimPrefix(want.Image, "sha256:")); img != "" && b.Image != img {
		if b.Image == "" {
			add("the boot measured no image, want %s", img)
		} else {
			add("the node booted image %s (version %s), not %s", b.Image, b.Version, img)
		}
	}
	if want.Action != "" && b.Action != want.Action {
		add("the boot's action was %q, not %q", b.Action, want.Action)
	}
	if want.Steps != nil && !slices.Equal(b.Steps, want.Steps) {
		add("the boot ran steps %s, not %s", strings.Join(b.Steps, ","), strings.Join(want.Steps, ","))
	}
	if b.Failed != "" {
		add("stage %s failed", b.Failed)
	}
	// A boot or a stateless boot ends in switch_root; an install ends in a
	// reboot, without leaving the initramfs.
	handsOver := want.Action == "" || want.Action == "boot" || want.Action == "stateless"
	if handsOver && b.Failed == "" && !slices.Contains(b.Phases, PhaseLeaveInitrd) {
		add("the initramfs never measured leave-initrd: it did not hand over to the node")
	}
	return v
}

// checkSignature verifies q's signature with its attestation key and returns
// the signed TPMS_ATTEST.
func checkSignature(q *Quote) (*tpm2.TPMSAttest, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](q.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("attestation key: %w", err)
	}
	if a := pub.ObjectAttributes; !a.Restricted || !a.SignEncrypt || !a.FixedTPM {
		return nil, errors.New("the attestation key is not a restricted signing key of the TPM: it could sign anything")
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("attestation key: %w", err)
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](q.Signature)
	if err != nil {
		return nil, fmt.Errorf("quote signature: %w", err)
	}
	digest := SHA256.sum(q.Attest)
	bad := errors.New("the quote's signature does not verify with its attestation key")
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return nil, fmt.Errorf("quote signature: %w", err)
		}
		if s.Hash != tpm2.TPMAlgSHA256 {
			return nil, fmt.Errorf("quote signed with %v, want SHA-256", s.Hash)
		}
		r := new(big.Int).SetBytes(s.SignatureR.Buffer)
		ss := new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(k, digest, r, ss) {
			return nil, bad
		}
	case *rsa.PublicKey:
		return nil, errors.New("RSA attestation keys are not supported; nodeinit makes ECDSA P-256 keys")
	default:
		return nil, fmt.Errorf("attestation key of type %T", key)
	}
	attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	return attest, nil
}
