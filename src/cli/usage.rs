//! What `--help` says, for exeunt and for exeunt started as dumb-init.

pub const USAGE: &str = "\
usage: exeunt [OPTIONS] [--] [COMMAND [ARG]...]
       exeunt --check [ROLEMAP...]
       exeunt --status [--json] | --ready [NAME...] | --live
       exeunt --restart NAME | --signal SIGNAL [-g] NAME
       exeunt install PATH

Runs COMMAND, or the processes of a role map, as an init: reaps zombies, forwards
signals, stops the sidecars when the primaries are done, and exits with the
primaries' status.

options:
  -c, --config FILE   the role map (TOML); also EXEUNT_CONFIG. A COMMAND given
                      with it becomes the primary
      --grace DUR     replace every grace period (500ms, 10s, 2m)
      --stop-delay DUR
                      hold a stop signal back this long, everything running,
                      before passing it on (endpoints leave a load balancer)
      --check         validate the role map(s), print the plan, start nothing
      --sidecar       this container is a sidecar of another container's primary
                      (shared process namespace): exit with the status that the
                      primary's exeunt sends with its stop signal; also EXEUNT_SIDECAR=1
  -s                  register as a child subreaper (done anyway when not PID 1)
  -g                  forward signals to the primaries' process groups
  -e CODE             exit with 0 when the primary exits with CODE (repeatable)
  -p SIGNAL           signal exeunt gets when its parent dies (e.g. SIGKILL)
  -w                  log every reaped zombie at warning level
  -r, --rewrite S:R   the primaries get signal R for signal S (numbers or
                      names, as 15:3; R = 0 ignores S); repeatable
  -v                  more logging (repeatable); also EXEUNT_LOG=LEVEL,MODULE=LEVEL
  -h, --help          show this help
      --version       show the version

asking the exeunt that runs in this container (exit 0 yes or done, 1 no, 2 error):
      --status        every process: role, pid, state, restarts, time in state
      --json          with --status: one JSON document
      --ready         exit 0 when every sidecar passed its probe and every primary
                      runs; names given after it narrow that down to them
      --live          exit 0 when exeunt's loop answers
      --restart NAME  stop sidecar NAME with its stop action, then start it again
      --signal SIGNAL NAME
                      send SIGNAL to process NAME (to its process group with -g)

`exeunt install PATH` copies exeunt to PATH, or PATH/exeunt for a directory (for an
init container that puts exeunt into a shared volume).

environment: EXEUNT_CONFIG, EXEUNT_LOG, EXEUNT_LOG_FORMAT (text or json),
EXEUNT_CONTROL_SOCKET (@NAME, a path, or off), EXEUNT_SIDECAR,
TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP, TINI_VERBOSITY, and kubexit's KUBEXIT_NAME,
KUBEXIT_GRAVEYARD, KUBEXIT_DEATH_DEPS, KUBEXIT_BIRTH_DEPS, KUBEXIT_BIRTH_TIMEOUT,
KUBEXIT_GRACE_PERIOD
";

pub const DUMB_INIT_USAGE: &str = "\
usage: dumb-init [OPTIONS] COMMAND [ARG]...

exeunt, started as dumb-init: runs COMMAND as its one child, passes every signal on
to it, reaps zombies, and exits with the child's status.

options:
  -c, --single-child  the child keeps exeunt's session, and signals go to it alone
                      (also DUMB_INIT_SETSID=0); otherwise it leads a session of
                      its own and signals go to its whole process group
  -r, --rewrite S:R   the child gets signal R for signal S (numbers, as 15:3;
                      R = 0 ignores S); repeatable
  -v, --verbose       say what happens, on stderr (also DUMB_INIT_DEBUG=1)
  -V, --version       show the version
  -h, --help          show this help
";
