// Package spec is the pure half of the node configuration: the Config that the kernel
// command line gives (FromParams), its one validation (Config.Validate) and the files it
// renders (Config.Files). It does no I/O and imports neither net nor x/sys/unix, so the
// planner imports it and refuses a bad value before anything is written; package
// nodeconfig writes the same files (Seed) after running the same check.
//
// One validation. FromParams maps parsed kernel arguments to a Config and runs
// Config.Validate, the same check nodeconfig.Seed runs before it writes anything; the
// planner calls FromParams, so a line the plan accepts is a line seed-config accepts
// (FuzzAcceptImpliesValid here, FuzzAcceptImpliesSeed in nodeconfig). Validate checks
// every value against the grammar of the file it lands in: systemd's unit files split
// lists on whitespace and treat * ? [ in Name= as patterns, shadow(5) splits on ':', and
// management.conf and monitoring.conf are KEY=VALUE files a shell may source. So host
// names are RFC 1123, IPv6 zones are interface names and only in DNS and NTP servers,
// interface names are [A-Za-z0-9_.-], hashes are crypt(3) text, and nothing carries
// white space or a control character.
//
// Host and port values (SYSLOG=, NETCONSOLE=, COLLECTD= in monitoring.conf) are HOST or
// HOST:PORT, with an IPv6 address in brackets when a port follows ([2001:db8::1]:514),
// as net.SplitHostPort reads them. management.conf keeps the host and the port apart
// (MANAGEMENT_SERVER=2001:db8::1, MANAGEMENT_PORT=443).
//
// Why not package net. net's address helpers (ParseMAC, SplitHostPort, JoinHostPort,
// IPMask.Size) are pure, but importing net links the resolver and its syscalls into
// every planning package. The few lines they need live in addr.go, and addr_test.go
// checks them against net's own functions.
package spec
