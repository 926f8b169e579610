package chaos

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills a child (the binary, fake-gcs-server) when the
// campaign dies, even by SIGKILL, so none outlives it.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
