package image

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"aead.dev/minisign"
)

// Keyring is the set of trusted minisign public keys, normally the *.pub
// files of a directory inside the initramfs.
type Keyring struct {
	keys  []minisign.PublicKey
	names []string // file each key came from, for messages
}

// LoadKeyring reads every *.pub file in dir, or the one key file dir names.
// A missing directory gives an empty keyring (every signature then fails to
// verify); a malformed key file is an error naming it.
func LoadKeyring(dir string) (Keyring, error) {
	var kr Keyring
	matches, err := filepath.Glob(filepath.Join(dir, "*.pub"))
	if err != nil {
		return kr, fmt.Errorf("load keyring %s: %w", dir, err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().IsRegular() {
		matches = []string{dir}
	}
	sort.Strings(matches)
	for _, p := range matches {
		k, err := minisign.PublicKeyFromFile(p)
		if err != nil {
			return kr, newError("load public key", p, err,
				"the file must be a minisign public key as written by `minisign -G` or `nodeinit image keygen`")
		}
		kr.Add(k, p)
	}
	return kr, nil
}

// Add trusts one more key; name is used in messages.
func (kr *Keyring) Add(k minisign.PublicKey, name string) {
	kr.keys = append(kr.keys, k)
	kr.names = append(kr.names, name)
}

// Len is the number of trusted keys.
func (kr Keyring) Len() int { return len(kr.keys) }

// verify returns the ID of the key that verifies sig over msg.
func (kr Keyring) verify(msg, sig []byte) (string, bool) {
	for _, k := range kr.keys {
		if minisign.Verify(k, msg, sig) {
			return keyID(k.ID()), true
		}
	}
	return "", false
}

func keyID(id uint64) string { return strings.ToUpper(strconv.FormatUint(id, 16)) }

// GenerateKey writes a new minisign key pair to pubPath and privPath. An
// empty password leaves the private key unencrypted: acceptable for CI and
// tests, not for release keys. With a password the key is encrypted with
// minisign's scrypt parameters (about 1 GiB of memory and a few seconds),
// exactly as `minisign -G` does. Existing files are not overwritten.
func GenerateKey(pubPath, privPath, password string) error {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	var privText []byte
	if password == "" {
		privText, err = priv.MarshalText()
	} else {
		privText, err = minisign.EncryptKey(password, priv)
	}
	if err != nil {
		return fmt.Errorf("encode private key: %w", err)
	}
	pubText, err := pub.MarshalText()
	if err != nil {
		return fmt.Errorf("encode public key: %w", err)
	}
	pubFile := append(pubText, '\n')
	if err := writeNew(privPath, append(privText, '\n'), 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, pubFile, 0o644); err != nil {
		os.Remove(privPath)
		return err
	}
	return nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return newError("write key", path, err, "remove the old key file or choose another path")
		}
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads a minisign private key, decrypting it with password
// when it is encrypted.
func LoadPrivateKey(path, password string) (minisign.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("read private key: %w", err)
	}
	if minisign.IsEncrypted(b) {
		k, err := minisign.DecryptKey(password, b)
		if err != nil {
			return k, newError("decrypt private key", path, err, "give the key's password (--password-file)")
		}
		return k, nil
	}
	var k minisign.PrivateKey
	if err := k.UnmarshalText(b); err != nil {
		return k, newError("read private key", path, err, "the file must be a minisign secret key")
	}
	return k, nil
}

// Sign signs dir/manifest.json with the private key at privPath and writes
// dir/manifest.json.minisig. The manifest is validated first.
func Sign(dir, privPath, password string) error {
	key, err := LoadPrivateKey(privPath, password)
	if err != nil {
		return err
	}
	return signWith(dir, key)
}

// signWith is Sign with a key already loaded (and decrypted).
func signWith(dir string, key minisign.PrivateKey) error {
	mp := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(mp)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return newError("sign", mp, err, "rebuild the bundle with `nodeinit image build`")
	}
	trusted := fmt.Sprintf("nodeinit image %s %s %s", m.Name, m.Version, m.Arch)
	sig := minisign.SignWithComments(key, b, trusted, "signature from nodeinit key "+keyID(key.ID()))
	return writeFileAtomic(filepath.Join(dir, SignatureName), sig, 0o644)
}
