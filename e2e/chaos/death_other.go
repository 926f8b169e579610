//go:build !linux

package chaos

import "os/exec"

// setDeathSignal does nothing where the kernel cannot tie a child's life to
// its parent's; Campaign.Close still stops the children.
func setDeathSignal(*exec.Cmd) {}
