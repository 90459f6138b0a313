package early

import (
	"fmt"
	"time"
)

// Power ends the boot: the kernel's reboot, power-off and halt. It is an interface so the
// onfail policy can be tested without stopping the machine.
type Power interface {
	Reboot() error
	PowerOff() error
	Halt() error
}

// Finish applies policy after a failure screen (or when the engine returned without handing
// off): shell opens the rescue shell and reboots when it exits; reboot waits rebootDelay so
// the screen can be read. It returns only if the Power call fails.
func (e *Env) Finish(policy OnFail) error {
	switch policy {
	case OnFailShell:
		if err := e.rescue(""); err != nil {
			fmt.Fprintf(e.Out, "nodeinit: rescue shell: %v\n", err)
		}
		fmt.Fprintln(e.Out, "nodeinit: rescue shell exited; rebooting")
		return e.Power.Reboot()
	case OnFailReboot:
		e.sleep(rebootDelay)
		return e.Power.Reboot()
	case OnFailPowerOff:
		return e.Power.PowerOff()
	default:
		return e.Power.Halt()
	}
}

// rebootDelay gives an operator time to read the failure screen before onfail=reboot.
const rebootDelay = 10 * time.Second

// Fail shows the failure screen for err on every console, saves the log to LogDir when the
// engine set one, and applies nodeinit.onfail. It returns only if the Power call fails.
func (e *Env) Fail(err error) error {
	policy, perr := ParseOnFail(e.Cmdline)
	if perr != nil {
		fmt.Fprintf(e.Out, "nodeinit: %v\n", perr)
	}
	logPath := ""
	if e.LogDir != "" {
		// Save once before the screen so the saved log holds the error and a second time
		// after, so it also holds the screen itself.
		if p, err := e.Out.SaveLog(e.LogDir); err == nil {
			logPath = p
		}
	}
	fmt.Fprint(e.Out, FailureScreen(err, policy, logPath))
	if logPath != "" {
		e.Out.SaveLog(e.LogDir)
	}
	return e.Finish(policy)
}

func (e *Env) sleep(d time.Duration) {
	if e.sleepFn != nil {
		e.sleepFn(d)
		return
	}
	time.Sleep(d)
}

func (e *Env) rescue(facts string) error {
	if e.rescueFn != nil {
		return e.rescueFn(facts)
	}
	return RescueShell(e.Out, facts)
}
