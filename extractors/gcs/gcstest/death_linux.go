package gcstest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the emulator when the test process dies, even by
// SIGKILL, so no emulator outlives its test.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
