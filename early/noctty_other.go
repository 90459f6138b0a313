//go:build !linux

package early

const noctty = 0
