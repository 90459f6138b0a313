package measure

import "fmt"

// CheckResult is the outcome of Check: the replayed and the TPM's values of
// QuotedPCRs in every bank the TPM has, and where they differ.
type CheckResult struct {
	Records    []Record
	Banks      []Bank
	Replay     map[string]PCRValues
	TPM        map[string]PCRValues
	Mismatches []Mismatch
}

// Check replays the log at logPath and compares the result with the PCR
// values that t reports, in every bank. A log whose words do not match its
// digests is an error.
func Check(t TPM, logPath string) (*CheckResult, error) {
	recs, err := ReadLog(logPath)
	if err != nil {
		return nil, err
	}
	if err := CheckContent(recs, QuotedPCRs); err != nil {
		return nil, err
	}
	banks, err := t.Banks()
	if err != nil {
		return nil, err
	}
	res := &CheckResult{Records: recs, Banks: banks, Replay: map[string]PCRValues{}, TPM: map[string]PCRValues{}}
	for _, b := range banks {
		want, err := Replay(recs, b, QuotedPCRs)
		if err != nil {
			return nil, fmt.Errorf("replay %s: %w", b.Name, err)
		}
		got, err := t.ReadPCRs(b, QuotedPCRs)
		if err != nil {
			return nil, err
		}
		res.Replay[b.Name], res.TPM[b.Name] = want, got
		res.Mismatches = append(res.Mismatches, Compare(b, want, got)...)
	}
	return res, nil
}
