//! exeunt's integration tests, compiled as one binary with a module per topic, so the
//! helpers in `common` are built once. Each test runs real processes: exeunt as PID 1
//! of a new PID namespace, servers, sockets, pods played by podman, and the static
//! release builds.

mod common;

mod aarch64;
mod activation;
mod control;
mod docker;
mod dumb_init;
mod environment;
mod exit_policies;
mod exit_status;
mod faults;
mod forwarding;
mod fuzz_corpus;
mod gates;
mod graveyard;
mod graveyard_faults;
mod idle;
mod leftovers;
mod notify;
mod output;
mod own_log;
mod pods;
mod privileges;
mod readiness;
mod reaping;
mod release;
mod release_binary;
mod rolemap;
mod shared_namespace;
mod shutdown;
mod signal_state;
mod stop_actions;
mod tasks;
