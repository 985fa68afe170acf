package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireBinary fails the test (it does not skip: CI installs the clients)
// when a client program is missing.
func requireBinary(t *testing.T, path, aptPackage string) {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("%s not found (%v): install the Debian package %q (apt-get install %s)",
			path, err, aptPackage, aptPackage)
	}
}

// syncBuffer is a goroutine-safe output sink that keeps at most max bytes
// (the newest).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.max > 0 && b.buf.Len() > b.max {
		b.buf.Next(b.buf.Len() - b.max)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a child process in a process group of its own. Its stdout and
// stderr are captured and logged when the test fails; cleanup kills the
// whole group.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // valid once done is closed
}

// startProc starts argv[0] with argv[1:] and registers its cleanup.
func startProc(t *testing.T, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncBuffer{max: 1 << 20}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	t.Logf("started %s (pid %d): %s", name, p.cmd.Process.Pid, strings.Join(argv, " "))
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("SEEDPAY_E2E_LOGS") != "" {
			t.Logf("---- output of %s (%s) ----\n%s\n---- end of %s ----",
				name, p.exitString(), tail(p.out.String(), 64<<10), name)
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitString describes how the process ended (or that it still runs).
func (p *proc) exitString() string {
	if !p.exited() {
		return "running"
	}
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// wait waits up to d for the process to exit; it reports whether it did.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if p.wait(5 * time.Second) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers in the group
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	p.wait(5 * time.Second)
}

// runCmd runs a short command to completion with a timeout and returns its
// combined output.
func runCmd(timeout time.Duration, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out syncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out.String())
		}
		return out.String(), nil
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("%s: timed out after %v", strings.Join(argv, " "), timeout)
	}
}

// mustRun is runCmd that fails the test on error.
func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := runCmd(30*time.Second, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond every interval until it returns true, at most timeout
// (and never more than timeout/interval+1 times). It returns the last
// error-free state: true when cond held.
func waitFor(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for i := 0; i <= int(timeout/interval); i++ {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return cond()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...(truncated)...\n" + s[len(s)-n:]
}

// killPid sends SIGKILL to one process.
func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
