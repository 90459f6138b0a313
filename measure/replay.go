package measure

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/nodeinit/nodeinit/plan"
)

// PCRPhase is the PCR of the boot phases (systemd-pcrphase).
const PCRPhase = plan.PCRPhase

// PCRNodeinit is the PCR of nodeinit's own measurements; the package doc says
// why this one.
const PCRNodeinit = plan.PCRNodeinit

// QuotedPCRs are the PCRs that the userspace log fully accounts for on a
// nodeinit node: a check or a quote covers these. Other PCRs in the log (such
// as systemd's PCR 15) also hold firmware or kernel measurements that this log
// does not list, so they cannot be replayed from it.
var QuotedPCRs = []uint32{PCRPhase, PCRNodeinit}

// PCRValues are PCR values of one bank, by PCR index.
type PCRValues map[uint32][]byte

// Replay computes the values that pcrs of bank hold after the log's records,
// from all-zero PCRs. A record for one of pcrs without a digest of bank is an
// error: the TPM extended that bank and the log cannot say with what.
func Replay(recs []Record, bank Bank, pcrs []uint32) (PCRValues, error) {
	out := PCRValues{}
	for _, p := range pcrs {
		out[p] = make([]byte, bank.Hash.Size())
	}
	for i, r := range recs {
		if !slices.Contains(pcrs, r.PCR) {
			continue
		}
		d, err := r.digest(bank)
		if err != nil {
			return nil, fmt.Errorf("event log record %d (%s): %w", i, r.Describe(), err)
		}
		out[r.PCR] = bank.extend(out[r.PCR], d)
	}
	return out, nil
}

func (r Record) digest(bank Bank) ([]byte, error) {
	for _, d := range r.Digests {
		if d.HashAlg == bank.Name {
			b, err := hex.DecodeString(d.Digest)
			if err != nil {
				return nil, err
			}
			return b, bank.check(b)
		}
	}
	return nil, fmt.Errorf("no %s digest", bank.Name)
}

// CheckContent confirms that each record of pcrs that carries a string has
// the digest of that string: the words say what was measured, and this checks
// that they are what was measured.
func CheckContent(recs []Record, pcrs []uint32) error {
	for i, r := range recs {
		if !slices.Contains(pcrs, r.PCR) || r.ContentType != ContentTypeSystemd {
			continue
		}
		for _, d := range r.Digests {
			bank, ok := BankByName(d.HashAlg)
			if !ok {
				continue
			}
			got, _ := hex.DecodeString(d.Digest)
			if !bytes.Equal(got, bank.sum([]byte(r.Content.String))) {
				return fmt.Errorf("event log record %d (%s): its %s digest is not that of its string: the log was altered", i, r.Describe(), bank.Name)
			}
		}
	}
	return nil
}

// Mismatch is a PCR whose value in the TPM differs from the log's replay.
type Mismatch struct {
	PCR    uint32
	Bank   string
	Replay []byte
	TPM    []byte
}

func (m Mismatch) String() string {
	return fmt.Sprintf("PCR %d (%s): the log replays to %x, the TPM holds %x", m.PCR, m.Bank, m.Replay, m.TPM)
}

// Compare lists the PCRs where replay and tpm differ, in PCR order.
func Compare(bank Bank, replay, tpm PCRValues) []Mismatch {
	var out []Mismatch
	var pcrs []uint32
	for p := range replay {
		pcrs = append(pcrs, p)
	}
	slices.Sort(pcrs)
	for _, p := range pcrs {
		if !bytes.Equal(replay[p], tpm[p]) {
			out = append(out, Mismatch{PCR: p, Bank: bank.Name, Replay: replay[p], TPM: tpm[p]})
		}
	}
	return out
}
