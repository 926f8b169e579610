//go:build !linux

package gcstest

import "os/exec"

// setDeathSignal does nothing where the kernel cannot tie a child's life to
// its parent's; t.Cleanup still stops the emulator.
func setDeathSignal(*exec.Cmd) {}
