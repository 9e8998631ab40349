//! The start order: `after` read into each process's list of those it starts after,
//! with unknown names, processes after a primary and cycles each one mistake. A role
//! map that writes no `after` keeps the order of its file: each sidecar and task after
//! the one before it, the primaries after all of them.

use toml::Spanned;

use super::raw::{RawProcess, RawRole};
use super::{At, Mistakes, SaidProcess};
use crate::plan::Role;
use crate::quoted::Quoted;

/// Fills in `after` for `processes`, in the plan's order, from the raw tables.
pub fn read_order(processes: &mut [SaidProcess], raw: &[RawProcess], at: &At, m: &mut Mistakes) {
    let index_of = |name: &str| processes.iter().position(|p| p.name == name);
    if raw.iter().all(|p| p.after.is_none()) {
        let roles: Vec<Role> = processes.iter().map(|p| p.role).collect();
        for (process, after) in processes.iter_mut().zip(crate::plan::file_order(&roles)) {
            process.spec.after = after;
        }
        return;
    }
    let names: Vec<&str> = raw.iter().filter_map(|p| p.name.as_ref().map(|n| n.get_ref().as_str())).collect();
    let mut wanted: Vec<(usize, Vec<usize>)> = Vec::new();
    for p in raw {
        let (Some(name), Some(after)) = (&p.name, &p.after) else { continue };
        let mut indices = Vec::new();
        for other in after.get_ref() {
            let said = raw.iter().find(|q| q.name.as_ref().is_some_and(|n| n.get_ref() == other));
            let why = match said {
                None => format!(
                    "after: {} is not a process of this role map (there are: {})",
                    Quoted(other),
                    names.join(", ")
                ),
                Some(q) if q.role.as_ref().is_some_and(|r| *r.get_ref() == RawRole::Primary) => {
                    format!("after: {} is a primary, whose end is the run's: nothing starts after one", Quoted(other))
                }
                Some(_) => {
                    indices.extend(index_of(other).filter(|i| !indices.contains(i)));
                    continue;
                }
            };
            m.push(at(after.span(), why));
        }
        if let Some(own) = index_of(name.get_ref()) {
            wanted.push((own, indices));
        }
    }
    for (own, indices) in wanted {
        processes[own].spec.after = indices;
    }
    if let Some(cycle) = find_cycle(processes) {
        let names: Vec<&str> = cycle.iter().chain(cycle.first()).map(|&i| processes[i].name.as_str()).collect();
        let first = raw.iter().find(|p| p.name.as_ref().is_some_and(|n| n.get_ref() == names[0]));
        let span = first.and_then(|p| p.after.as_ref()).map_or(0..0, Spanned::span);
        let waits: Vec<String> = names
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                if i == 0 {
                    format!("{} waits for {}", pair[0], pair[1])
                } else {
                    format!("{} for {}", pair[0], pair[1])
                }
            })
            .collect();
        m.push(at(span, format!("after: a cycle, so none of it could start: {}", waits.join(", "))));
    }
}

/// A cycle of `after`, as the processes in it, if there is one.
fn find_cycle(processes: &[SaidProcess]) -> Option<Vec<usize>> {
    // 0: not seen, 1: on the path walked now, 2: done.
    let mut mark = vec![0u8; processes.len()];
    let mut path = Vec::new();
    for start in 0..processes.len() {
        if mark[start] == 0
            && let Some(cycle) = walk(start, processes, &mut mark, &mut path)
        {
            return Some(cycle);
        }
    }
    None
}

fn walk(at: usize, processes: &[SaidProcess], mark: &mut [u8], path: &mut Vec<usize>) -> Option<Vec<usize>> {
    mark[at] = 1;
    path.push(at);
    for &next in &processes[at].after {
        match mark[next] {
            1 => {
                let from = path.iter().position(|&p| p == next).unwrap_or(0);
                return Some(path[from..].to_vec());
            }
            0 => {
                if let Some(cycle) = walk(next, processes, mark, path) {
                    return Some(cycle);
                }
            }
            _ => {}
        }
    }
    path.pop();
    mark[at] = 2;
    None
}
