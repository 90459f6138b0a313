package measure

import (
	"crypto"
	_ "crypto/sha1" // the sha1 PCR bank
	_ "crypto/sha256"
	_ "crypto/sha512" // sha384 and sha512 banks
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Bank is a PCR bank: the hash algorithm its PCRs are extended with.
type Bank struct {
	Alg  tpm2.TPMIAlgHash
	Hash crypto.Hash
	Name string // as CEL-JSON names it: sha1, sha256, …
}

// knownBanks are the banks nodeinit measures into, when the TPM has them.
var knownBanks = []Bank{
	{tpm2.TPMAlgSHA1, crypto.SHA1, "sha1"},
	{tpm2.TPMAlgSHA256, crypto.SHA256, "sha256"},
	{tpm2.TPMAlgSHA384, crypto.SHA384, "sha384"},
	{tpm2.TPMAlgSHA512, crypto.SHA512, "sha512"},
}

// BankByName finds a bank by its CEL-JSON name.
func BankByName(name string) (Bank, bool) {
	for _, b := range knownBanks {
		if b.Name == name {
			return b, true
		}
	}
	return Bank{}, false
}

func bankByAlg(alg tpm2.TPMIAlgHash) (Bank, bool) {
	for _, b := range knownBanks {
		if b.Alg == alg {
			return b, true
		}
	}
	return Bank{}, false
}

// SHA256 is the bank that checks and quotes use.
var SHA256 = knownBanks[1]

// sum is the bank's digest of data.
func (b Bank) sum(data []byte) []byte {
	h := b.Hash.New()
	h.Write(data)
	return h.Sum(nil)
}

// extend is what the TPM does: new = H(old || digest).
func (b Bank) extend(old, digest []byte) []byte {
	h := b.Hash.New()
	h.Write(old)
	h.Write(digest)
	return h.Sum(nil)
}

func (b Bank) String() string { return b.Name }

func (b Bank) check(digest []byte) error {
	if len(digest) != b.Hash.Size() {
		return fmt.Errorf("%s digest of %d bytes, want %d", b.Name, len(digest), b.Hash.Size())
	}
	return nil
}
