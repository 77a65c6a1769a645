//! [`rotated_rounds`]: the order in which a side-by-side benchmark runs its servers. Every
//! round runs each server once, and each round starts one server later than the one
//! before, so that no server always runs first (cold) or right after the same neighbour.

/// Calls `run(server)` for every server index below `servers`, `rounds` times, rotating the
/// order each round; returns each server's results in the order run.
///
/// ```
/// let mut order = Vec::new();
/// let results = loadgen::rotated_rounds(2, 3, |server| { order.push(server); server * 10 });
/// assert_eq!(order, [0, 1, 2, 1, 2, 0]);
/// assert_eq!(results, [vec![0, 0], vec![10, 10], vec![20, 20]]);
/// ```
pub fn rotated_rounds<T>(
    rounds: usize,
    servers: usize,
    mut run: impl FnMut(usize) -> T,
) -> Vec<Vec<T>> {
    let mut results: Vec<Vec<T>> = (0..servers).map(|_| Vec::with_capacity(rounds)).collect();
    for round in 0..rounds {
        for offset in 0..servers {
            let server = (round + offset) % servers;
            results[server].push(run(server));
        }
    }
    results
}
