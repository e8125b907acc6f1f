//! What the matrix prints: one line per cell as it finishes, then a markdown table and a count.

use std::time::Duration;

use crate::cells::{vname, Outcome};

/// `PASS|FAIL title version transport [negotiated] details (seconds)`.
pub fn line(o: &Outcome) -> String {
    format!(
        "{} {} {} {} [{}] {} ({:.1}s)",
        if o.pass { "PASS" } else { "FAIL" },
        o.cell.title,
        vname(o.cell.version),
        o.cell.transport.name(),
        o.negotiated,
        o.detail,
        o.secs
    )
}

/// Prints the table sorted by cell, version and transport, then `N cells, P passed, F failed`;
/// returns the number of failed cells.
pub fn summary(outcomes: &mut [Outcome], elapsed: Duration) -> usize {
    outcomes.sort_by_key(|o| (o.cell.id, o.cell.version, o.cell.transport.name()));
    println!();
    println!("| cell | version | transport | result | negotiated |");
    println!("|---|---|---|---|---|");
    for o in outcomes.iter() {
        println!(
            "| {}: {} | {} | {} | {} | {} |",
            o.cell.id,
            o.cell.title,
            vname(o.cell.version),
            o.cell.transport.name(),
            if o.pass { "PASS" } else { "FAIL" },
            if o.pass { o.negotiated.as_str() } else { "-" }
        );
    }
    let failed = outcomes.iter().filter(|o| !o.pass).count();
    println!();
    println!(
        "{} cells, {} passed, {} failed, {:.0}s",
        outcomes.len(),
        outcomes.len() - failed,
        failed,
        elapsed.as_secs_f64()
    );
    failed
}
