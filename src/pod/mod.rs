//! Where pods are coordinated: a graveyard of tombstones on a shared volume (as kubexit
//! did), kubexit's environment variables, and the processes of other containers found
//! in a shared process namespace, with the exit status one container's exeunt hands
//! another's ([`peer`]).

pub mod graveyard;
pub mod kubexit_env;
pub mod peer;
pub mod shared_pid;
pub mod tombstone;
