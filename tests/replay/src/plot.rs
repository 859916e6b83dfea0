//! The report's PNG: wait-time distributions (CDF, high and normal priority) and cluster cpu
//! utilization over time, one colour per policy. Text needs a TrueType font: DejaVu Sans
//! (Debian `fonts-dejavu-core`) unless `REPLAY_FONT` names another file.

use std::path::Path;

use plotters::prelude::*;

use crate::record::Recorder;
use crate::trace::Priority;

/// Why the plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No usable font.
    #[error(
        "no font for the plot's text: {0} (install fonts-dejavu-core, or set REPLAY_FONT to a .ttf file)"
    )]
    Font(String),
    /// Drawing or writing failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// Output file.
        path: String,
        /// What failed.
        message: String,
    },
}

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn register_font(font: Option<&Path>) -> Result<(), PlotError> {
    let candidates: Vec<&Path> = match font {
        Some(p) => vec![p],
        None => FONT_PATHS.iter().map(Path::new).collect(),
    };
    let Some((path, bytes)) = candidates
        .iter()
        .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
    else {
        return Err(PlotError::Font(format!(
            "none of {candidates:?} is readable"
        )));
    };
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| PlotError::Font(format!("{} is not a TrueType font", path.display())))
}

/// Colours by policy index.
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Sorted finite waits (minutes) and the count of jobs that never started.
fn waits_minutes(r: &Recorder, priority: Priority) -> (Vec<f64>, usize, usize) {
    let jobs: Vec<_> = r
        .jobs
        .iter()
        .filter(|j| j.priority == priority && j.enqueued.is_some())
        .collect();
    let mut w: Vec<f64> = jobs
        .iter()
        .filter_map(|j| j.wait())
        .map(|s| s / 60.0)
        .collect();
    w.sort_by(f64::total_cmp);
    let total = jobs.len();
    (
        w,
        total - jobs.iter().filter(|j| j.wait().is_some()).count(),
        total,
    )
}

/// Draws the PNG for the runs (`(policy name, recorder)`).
pub fn draw(out: &Path, runs: &[(&str, &Recorder)], font: Option<&Path>) -> Result<(), PlotError> {
    register_font(font)?;
    let fail = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: out.display().to_string(),
        message: e.to_string(),
    };
    let root = BitMapBackend::new(out, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (top, bottom) = root.split_vertically(520);
    let halves = top.split_evenly((1, 2));
    for (area, priority) in halves.iter().zip([Priority::High, Priority::Normal]) {
        let data: Vec<_> = runs
            .iter()
            .map(|(name, r)| (*name, waits_minutes(r, priority)))
            .collect();
        let xmax = data
            .iter()
            .filter_map(|(_, (w, _, _))| w.last().copied())
            .fold(1.0, f64::max)
            * 1.05;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!(
                    "{} priority: wait to executors ready (CDF)",
                    priority.as_str()
                ),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..xmax, 0.0..1.0)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("wait (simulated minutes)")
            .y_desc("share of jobs")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, (name, (w, never, total))) in data.iter().enumerate() {
            if *total == 0 {
                continue;
            }
            let colour = COLOURS[i % COLOURS.len()];
            let n = *total as f64;
            let points: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
                .chain(w.iter().enumerate().map(|(k, x)| (*x, (k + 1) as f64 / n)))
                .chain(w.last().map(|_| (xmax, w.len() as f64 / n)))
                .collect();
            let label = if *never > 0 {
                format!("{name} ({never} never)")
            } else {
                (*name).to_owned()
            };
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| fail(&e))?;
    }
    let tmax = runs
        .iter()
        .filter_map(|(_, r)| r.samples.last().map(|s| s.t / 3600.0))
        .fold(0.1, f64::max);
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "cluster cpu requested / allocatable (thin marks: work that fits is waiting)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..tmax, 0.0..1.05)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("simulated hours since the first submission")
        .y_desc("cpu utilization")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, (name, r)) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let util =
            |s: &crate::record::Sample| s.cpu_requested as f64 / s.cpu_allocatable.max(1) as f64;
        chart
            .draw_series(LineSeries::new(
                r.samples.iter().map(|s| (s.t / 3600.0, util(s))),
                colour.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
        let lane = 0.02 + 0.015 * i as f64;
        chart
            .draw_series(
                r.samples
                    .iter()
                    .filter(|s| s.waiting_fits)
                    .map(|s| Circle::new((s.t / 3600.0, lane), 1, colour.filled())),
            )
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
