package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one run of the binary in the background, its stderr kept line by
// line with the time each line arrived (to time how long a stall went
// unnoticed).
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	done   chan struct{}
	code   int // valid once done is closed; -1: killed by a signal

	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	at   time.Time
	text string
}

// start runs bin with args and env in the background, its stderr also
// written to run-N.log in the case's directory (kept with -keep).
func (e *caseEnv) start(bin string, env, args []string) (*proc, error) {
	e.runs++
	logf, err := os.Create(filepath.Join(e.dir, fmt.Sprintf("run-%02d.log", e.runs)))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "$ baasmigrate %s\n", strings.Join(redact(args), " "))
	p, err := start(bin, env, args, logf)
	if err != nil {
		logf.Close()
	}
	return p, err
}

// start runs bin with args and env in the background; stderr lines are
// also written to logf, which is closed when the process has exited.
func start(bin string, env, args []string, logf *os.File) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = &p.stdout
	setDeathSignal(p.cmd)
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, logLine{time.Now(), sc.Text()})
			p.mu.Unlock()
			fmt.Fprintln(logf, sc.Text())
		}
		err := p.cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			p.code = exit.ExitCode()
		default:
			p.code = -1
		}
		fmt.Fprintf(logf, "(exit %d)\n", p.code)
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// signal sends sig to the process (no effect once it has exited).
func (p *proc) signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// wait waits up to d for the process to exit and reports whether it did.
func (p *proc) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.lines {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// firstLineAfter returns the time of the first stderr line at or after t
// matching re.
func (p *proc) firstLineAfter(t time.Time, re *regexp.Regexp) (time.Time, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if !l.at.Before(t) && re.MatchString(l.text) {
			return l.at, l.text, true
		}
	}
	return time.Time{}, "", false
}

// outcome is a finished run.
type outcome struct {
	code   int
	stdout string
	p      *proc
}

func (o outcome) stderr() string { return o.p.stderr() }

// runToEnd runs the binary to completion, killing it after RunTimeout.
func (c *Campaign) runToEnd(ctx context.Context, env *caseEnv, args, vars []string) outcome {
	p, err := env.start(c.cfg.Binary, vars, args)
	if err != nil {
		return outcome{code: -2, p: &proc{}}
	}
	select {
	case <-p.done:
	case <-time.After(c.cfg.RunTimeout):
		p.kill()
		env.res.problem("a run without faults did not finish within %s (killed): %s", c.cfg.RunTimeout, strings.Join(redact(args), " "))
	case <-ctx.Done():
		p.kill()
	}
	return outcome{code: p.code, stdout: p.stdout.String(), p: p}
}

// redact hides the values of secret flags.
func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		if strings.HasPrefix(out[i-1], "--hash-") || out[i-1] == "--postgres" {
			out[i] = "***"
		}
	}
	return out
}

// waitProgress polls progress until it reaches target, the process exits,
// or limit passes. It reports whether the target was reached while the
// process still ran.
func waitProgress(ctx context.Context, p *proc, target int64, progress func(context.Context) int64, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if progress(ctx) >= target {
			select {
			case <-p.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-p.done:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// freePort returns a port free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
