package media

import "encoding/binary"

// ExitEFI returns a minimal x86-64 UEFI application whose entry point returns
// EFI_NOT_FOUND at once. systemd-boot has no "leave and boot the next device" entry, but
// when an image it starts fails, it exits with that error and the firmware's boot manager
// goes on to the next boot option: the local drive. No Debian package ships such a
// program, so it is assembled here: one PE32+ header, one .text section of 11 bytes
// (mov rax, 0x800000000000000E; ret), no relocations needed (the code is position
// independent).
func ExitEFI() []byte {
	const (
		fileAlign = 0x200
		sectAlign = 0x1000
		peOff     = 0x40
	)
	b := make([]byte, 2*fileAlign)
	le := binary.LittleEndian
	copy(b, "MZ")
	le.PutUint32(b[0x3c:], peOff)
	copy(b[peOff:], "PE\x00\x00")
	coff := b[peOff+4:]
	le.PutUint16(coff[0:], 0x8664) // Machine: x86-64
	le.PutUint16(coff[2:], 1)      // NumberOfSections
	le.PutUint16(coff[16:], 240)   // SizeOfOptionalHeader (PE32+, 16 data directories)
	le.PutUint16(coff[18:], 0x22)  // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
	opt := coff[20:]
	le.PutUint16(opt[0:], 0x20b)        // PE32+
	le.PutUint32(opt[4:], fileAlign)    // SizeOfCode
	le.PutUint32(opt[16:], sectAlign)   // AddressOfEntryPoint
	le.PutUint32(opt[20:], sectAlign)   // BaseOfCode
	le.PutUint64(opt[24:], 0x10000000)  // ImageBase
	le.PutUint32(opt[32:], sectAlign)   // SectionAlignment
	le.PutUint32(opt[36:], fileAlign)   // FileAlignment
	le.PutUint32(opt[56:], 2*sectAlign) // SizeOfImage
	le.PutUint32(opt[60:], fileAlign)   // SizeOfHeaders
	le.PutUint16(opt[68:], 10)          // Subsystem: EFI application
	le.PutUint32(opt[108:], 16)         // NumberOfRvaAndSizes (all zero)
	sec := opt[240:]
	copy(sec[0:8], ".text")
	le.PutUint32(sec[8:], fileAlign)   // VirtualSize
	le.PutUint32(sec[12:], sectAlign)  // VirtualAddress
	le.PutUint32(sec[16:], fileAlign)  // SizeOfRawData
	le.PutUint32(sec[20:], fileAlign)  // PointerToRawData
	le.PutUint32(sec[36:], 0x60000020) // CODE | EXECUTE | READ
	code := []byte{0x48, 0xb8, 0x0e, 0, 0, 0, 0, 0, 0, 0x80, 0xc3}
	copy(b[fileAlign:], code)
	return b
}
