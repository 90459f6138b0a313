// Package remotelog sends the installer's events to the operator's log
// collector while the install runs, in the initramfs, not only on the
// installed node.
//
// Two kernel arguments name a collector, as oVirt Node's did:
//
//	syslog=HOST[:PORT]          RFC 5424 over UDP (RFC 5426), port 514
//	syslog=udp://HOST[:PORT]    the same, said explicitly
//	syslog=tcp://HOST[:PORT]    RFC 5424 over TCP with octet-counting
//	                            framing (RFC 6587 §3.4.1), port 514
//	netconsole=HOST[:PORT]      plain text lines over UDP, port 6666
//
// netconsole= is taken to mean what a netconsole receiver (`nc -u -l 6666`,
// or rsyslog's imudp on that port) expects: one readable line per datagram.
// The initramfs does not configure the kernel's netconsole module through
// configfs: that needs the collector's (or gateway's) MAC address and
// module support, and what an operator watches on that port during an
// install is the installer's progress, which this sends. Kernel messages
// keep going to the consoles and to the JSON log as before. A netconsole=
// value in the kernel's own syntax (with '@') is not ours: cmdline keeps it
// for the kernel.
//
// Every event becomes one message. Its structured data carry the machine's
// host name, boot MAC and the install id (one per run of the installer, the
// same as in the status record), so a collector can sort forty nodes' lines:
//
//	<29>1 2026-12-01T10:00:00.000000Z node7 nodeinit - done [origin software="nodeinit"]
//	[nodeinit@32473 hostname="node7" mac="52:54:00:12:34:56" install_id="…" stage="partition"
//	kind="done"] [partition] done in 1.2s
//
// (one line on the wire). 32473 is the private enterprise number RFC 5612
// sets aside for examples and documentation: nodeinit has none of its own.
// The facility is daemon; the severity is err for failed, warning for
// break, notice for start, done, skipped and the plan, info for remarks and
// debug for progress (at most one progress message per stage every 5s).
//
// Sending never blocks the install and never fails it. Events wait in a
// bounded queue per collector; when the queue is full the oldest event is
// dropped and counted. Events made before the network is up stay queued
// (the collector cannot be reached yet) and go out once it is: a sender
// retries with jittered backoff, and NetworkUp tells it to try at once.
// The event that ends the run (the hand-off's start, or a failure, which
// the failure policy follows) waits up to FlushWait for the queues to
// drain, so the last lines leave before a reboot.
package remotelog
