// Package deb reads the parts of Debian packaging that `nodeinit image edit`
// and `nodeinit image diff` need, without running dpkg: control paragraphs
// (a .deb's control file and dpkg's status database), version ordering as
// dpkg defines it, dependency fields, and a resolver that completes a set of
// packages from a local directory of .debs.
//
// It does no I/O beyond the readers it is given, so everything here is
// table-tested; unpacking and installing stay with dpkg.
package deb
