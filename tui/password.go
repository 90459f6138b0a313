package tui

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// HashPassword is the SHA-512 crypt(3) hash of password ("$6$<salt>$<hash>",
// a 16-character random salt), made by go-crypt's shacrypt, the hash
// `openssl passwd -6` makes and adminpw= takes. It uses crypt's default
// 5000 rounds, which the form leaves out, as openssl and mkpasswd do.
//
// The password is only ever in RAM: the page's fields are overwritten once
// it is hashed. Go gives no way to wipe the string copies the library makes;
// they are unreachable afterwards and nothing writes them anywhere.
func HashPassword(password string) (string, error) {
	h, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(shacrypt.IterationsDefaultOmitted))
	if err != nil {
		return "", err
	}
	d, err := h.Hash(password)
	if err != nil {
		return "", err
	}
	return d.Encode(), nil
}

func (s *State) passwordItems() []item {
	s.field("pw1").secret, s.field("pw2").secret = true, true
	s.field("sshkey").max = 16384
	return []item{{id: "pw1", field: s.field("pw1")}, {id: "pw2", field: s.field("pw2")}, {id: "sshkey", field: s.field("sshkey")}}
}

// passwordDone hashes the password once it was typed twice alike, and checks
// the SSH key. Empty fields keep a password already set (here, or by adminpw=
// or nodeinit.adminpw=bundle on the command line).
func (s *State) passwordDone() error {
	p1, p2 := s.field("pw1"), s.field("pw2")
	switch {
	case p1.Empty() && p2.Empty():
		if s.hash == "" && s.Base.AdminPW == "" && s.Base.Node.AdminPWFrom == "" {
			s.focus = "pw1"
			return errors.New("type the admin password, twice")
		}
	case p1.String() != p2.String():
		p1.Clear()
		p2.Clear()
		s.focus = "pw1"
		return errors.New("the two passwords differ: type it again, twice")
	default:
		hash := s.Hash
		if hash == nil {
			hash = HashPassword
		}
		h, err := hash(p1.String())
		p1.Clear()
		p2.Clear()
		if err != nil {
			return fmt.Errorf("hash the password: %w", err)
		}
		s.hash = h
	}
	key := strings.Join(strings.Fields(s.field("sshkey").String()), " ")
	if err := checkSSHKey(key); err != nil {
		s.focus = "sshkey"
		return err
	}
	s.sshKey = key
	return nil
}

// checkSSHKey accepts "" or one OpenSSH public key line: a key type, the
// base64 key blob, which names that type, and an optional comment.
func checkSSHKey(k string) error {
	if k == "" {
		return nil
	}
	f := strings.Fields(k)
	bad := errors.New("the SSH key is not an OpenSSH public key line (ssh-ed25519 AAAA… user@host)")
	if len(f) < 2 {
		return bad
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4 {
		return bad
	}
	n := binary.BigEndian.Uint32(blob)
	if int(n) > len(blob)-4 || string(blob[4:4+n]) != f[0] {
		return bad
	}
	return nil
}

func (s *State) passwordBody(b *body, w int) {
	b.para(0, w, 1, "The password of the node's admin user, for its console and SSH. It is hashed here with SHA-512 crypt, and only the hash goes on the command line.")
	b.nl()
	for _, f := range []struct{ id, label string }{{"pw1", "Password"}, {"pw2", "Password again"}} {
		b.text(" %s %s", s.marker(f.id), pad(f.label, 18))
		b.add(s.focusAttr(f.id), "[%s]", pad(s.field(f.id).show(30), 30))
		b.nl()
	}
	switch {
	case s.hash != "":
		b.para(0, w, 4, "A password is set. Type a new one to change it.")
	case s.Base.Node.AdminPWFrom != "":
		b.para(0, w, 4, "The command line takes the password hash from the image bundle; leave these empty to keep it.")
	case s.Base.AdminPW != "":
		b.para(0, w, 4, "The command line sets a password hash (adminpw=); leave these empty to keep it.")
	}
	b.nl()
	b.text(" %s %s", s.marker("sshkey"), pad("SSH public key", 18))
	b.add(s.focusAttr("sshkey"), "[%s]", pad(s.field("sshkey").show(w-25), w-25))
	b.nl()
	b.para(0, w, 4, "Optional: one line such as ssh-ed25519 AAAA… admin@example.com. It is not part of the kernel command line: no argument carries one.")
	b.nl()
	s.buttons(b, "next", "back")
}
