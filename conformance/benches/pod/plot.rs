//! `pod.svg`: the latency distributions (ADD, DEL) of the 3-interface scenarios as
//! cumulative curves, and the per-pod cost against the number of
//! interfaces.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::Results;
use super::stats::{Samples, Timings};

/// One curve: its label, colour and samples.
type Curve<'a> = (&'a str, RGBColor, &'a Samples);

/// Renders the plot of `results` to `path`.
pub(crate) fn render(results: &Results, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1500, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, 3));
    let mut scenarios: Vec<(&str, RGBColor, &Timings)> = vec![
        ("kernel floor", BLACK, &results.floor),
        ("meta-cni (nadDir)", BLUE, &results.ours),
    ];
    if let Ok((kube, _)) = &results.kube {
        scenarios.push(("meta-cni (Kubernetes API)", GREEN, kube));
    }
    if let Ok((daemon, _)) = &results.daemon {
        scenarios.push(("meta-cni (daemon, Kubernetes API)", MAGENTA, daemon));
    }
    if let Ok(reference) = &results.reference {
        scenarios.push(("reference plugins", RED, reference));
    }
    let add: Vec<Curve<'_>> = scenarios.iter().map(|(n, c, t)| (*n, *c, &t.add)).collect();
    let del: Vec<Curve<'_>> = scenarios.iter().map(|(n, c, t)| (*n, *c, &t.del)).collect();
    distribution(&panels[0], "ADD, 3 interfaces", &add).map_err(|e| e.to_string())?;
    distribution(&panels[1], "DEL, 3 interfaces", &del).map_err(|e| e.to_string())?;
    scaling(&panels[2], results).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

/// Cumulative distribution: for each latency, the share of pods done within it.
fn distribution(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    curves: &[Curve<'_>],
) -> DrawResult {
    let all: Vec<f64> = curves.iter().flat_map(|(_, _, s)| s.sorted_ms()).collect();
    let hi = all.iter().copied().fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..hi, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("latency per pod, ms")
        .y_desc("% of pods done within")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (name, colour, samples) in curves {
        let ms = samples.sorted_ms();
        let n = ms.len() as f64;
        // A step per sample, from 0 % at the fastest pod to 100 % at the slowest.
        let mut points = vec![(ms.first().copied().unwrap_or_default(), 0.0)];
        for (i, &x) in ms.iter().enumerate() {
            points.push((x, i as f64 / n * 100.0));
            points.push((x, (i + 1) as f64 / n * 100.0));
        }
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}

/// Median ADD and DEL per pod against interfaces per pod.
fn scaling(area: &DrawingArea<SVGBackend<'_>, Shift>, results: &Results) -> DrawResult {
    let add: Vec<(f64, f64)> = results
        .scaling
        .iter()
        .map(|(n, t)| (*n as f64, t.add.p50()))
        .collect();
    let del: Vec<(f64, f64)> = results
        .scaling
        .iter()
        .map(|(n, t)| (*n as f64, t.del.p50()))
        .collect();
    let x_max = add.iter().map(|p| p.0).fold(1.0, f64::max) + 1.0;
    let y_max = add.iter().chain(&del).map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "meta-cni per pod, {} pods per size (p50)",
                results.scale_pods
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("interfaces per pod")
        .y_desc("ms per pod")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (name, colour, points) in [("ADD", BLUE, &add), ("DEL", MAGENTA, &del)] {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}
