package measure

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPM is the part of a TPM 2.0 that measuring, checking and quoting use: the
// device edge for the TPM. Device is the real one; tests use swtpm through it,
// or a fake that fails on demand.
type TPM interface {
	// Banks lists the PCR banks the TPM has allocated and nodeinit knows.
	Banks() ([]Bank, error)
	// Extend extends pcr in each bank named in digests (bank name → digest).
	Extend(pcr uint32, digests map[string][]byte) error
	// ReadPCRs reads pcrs of bank.
	ReadPCRs(bank Bank, pcrs []uint32) (PCRValues, error)
	// Quote signs pcrs of bank and nonce with the attestation key.
	Quote(bank Bank, pcrs []uint32, nonce []byte) (*RawQuote, error)
	Close() error
}

// RawQuote is a TPM2_Quote as the TPM returned it, each part in its TPM wire
// form: the TPMS_ATTEST that was signed, the TPMT_SIGNATURE, and the
// attestation key's TPMT_PUBLIC.
type RawQuote struct {
	Attest    []byte
	Signature []byte
	AKPublic  []byte
}

// Device is a TPM 2.0 reached through go-tpm's transport (the kernel's
// resource manager /dev/tpmrm0, or an emulator's socket).
type Device struct {
	t transport.TPMCloser
}

// NewDevice wraps an open go-tpm transport.
func NewDevice(t transport.TPMCloser) *Device { return &Device{t: t} }

// Close closes the transport.
func (d *Device) Close() error { return d.t.Close() }

// Banks asks the TPM which PCR banks it has allocated.
func (d *Device) Banks() ([]Bank, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_GetCapability(PCRs): %w", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, err
	}
	var out []Bank
	for _, s := range sel.PCRSelections {
		b, ok := bankByAlg(s.Hash)
		if ok && slices.ContainsFunc(s.PCRSelect, func(x byte) bool { return x != 0 }) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the TPM has no sha1, sha256, sha384 or sha512 PCR bank")
	}
	return out, nil
}

// Extend runs TPM2_PCR_Extend with one digest for each bank in digests.
func (d *Device) Extend(pcr uint32, digests map[string][]byte) error {
	var vals []tpm2.TPMTHA
	for _, b := range knownBanks {
		if dg, ok := digests[b.Name]; ok {
			vals = append(vals, tpm2.TPMTHA{HashAlg: b.Alg, Digest: dg})
		}
	}
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: vals},
	}.Execute(d.t)
	if err != nil {
		return fmt.Errorf("TPM2_PCR_Extend(PCR %d): %w", pcr, err)
	}
	return nil
}

// ReadPCRs reads pcrs of bank, one TPM2_PCR_Read each (a read returns at most
// eight digests, and one at a time cannot be cut short).
func (d *Device) ReadPCRs(bank Bank, pcrs []uint32) (PCRValues, error) {
	out := PCRValues{}
	for _, p := range pcrs {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: selection(bank, []uint32{p})}.Execute(d.t)
		if err != nil {
			return nil, fmt.Errorf("TPM2_PCR_Read(PCR %d %s): %w", p, bank.Name, err)
		}
		if len(rsp.PCRValues.Digests) != 1 {
			return nil, fmt.Errorf("TPM2_PCR_Read(PCR %d %s): the TPM has no such PCR", p, bank.Name)
		}
		out[p] = rsp.PCRValues.Digests[0].Buffer
	}
	return out, nil
}

func selection(bank Bank, pcrs []uint32) tpm2.TPMLPCRSelection {
	idx := make([]uint, len(pcrs))
	for i, p := range pcrs {
		idx[i] = uint(p)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: bank.Alg, PCRSelect: tpm2.PCClientCompatible.PCRs(idx...)},
	}}
}

// akTemplate is the attestation key: a restricted ECDSA P-256 signing key,
// made as a primary key of the owner hierarchy. A primary key comes from the
// hierarchy's seed and the template, so the same TPM makes the same key on
// every boot until the TPM is cleared: a verifier can pin its public part.
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		Restricted:          true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	}),
}

// Quote makes the attestation key, quotes pcrs of bank with nonce as the
// qualifying data, and flushes the key.
func (d *Device) Quote(bank Bank, pcrs []uint32, nonce []byte) (*RawQuote, error) {
	ak, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(akTemplate),
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("create the attestation key (TPM2_CreatePrimary): %w", err)
	}
	defer tpm2.FlushContext{FlushHandle: ak.ObjectHandle}.Execute(d.t)
	q, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      selection(bank, pcrs),
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_Quote: %w", err)
	}
	pub, err := ak.OutPublic.Contents()
	if err != nil {
		return nil, err
	}
	return &RawQuote{
		Attest:    q.Quoted.Bytes(),
		Signature: tpm2.Marshal(q.Signature),
		AKPublic:  tpm2.Marshal(pub),
	}, nil
}
